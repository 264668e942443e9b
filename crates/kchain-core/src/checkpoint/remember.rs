//! The two file formats of checkpoints kept outside the log: a **remembered checkpoint** (the
//! newest checkpoint of one chain that a verifier saw meet its policy, or that a writer,
//! sealer or witness signed) and a **bundle** of checkpoints that a witness hands to
//! verifiers. Formats only; reading and writing the files is the caller's.
//!
//! ```text
//! remembered  {"format": "kchain-remembered-checkpoint/v1",
//!              "backend": "embedded:/abs/data/dir" | "kafka:host:9092,...",
//!              "origin": "kchain/orders/0",
//!              "note": "<signed checkpoint note>"}
//! bundle      {"format": "kchain-checkpoints/v1", "checkpoints": ["<signed note>", ...]}
//! ```
//!
//! A remembered checkpoint names the chain precisely: its origin (namespace, topic,
//! partition) and the log it lives in, so that two logs with the same topic names never share
//! a memory.

use serde::{Deserialize, Serialize};

use super::note::SignedNote;
use super::text::Checkpoint;

/// The format name of a remembered checkpoint.
pub const REMEMBERED_FORMAT: &str = "kchain-remembered-checkpoint/v1";
/// The format name of a bundle of checkpoints.
pub const CHECKPOINT_BUNDLE_FORMAT: &str = "kchain-checkpoints/v1";

/// Why a remembered checkpoint or a bundle cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RememberError {
    #[error("not JSON of the expected shape: {0}")]
    Json(String),
    #[error("format is {found:?}, expected {expected:?}")]
    Format { expected: String, found: String },
    #[error("it is the checkpoint of {found}, not of {expected}")]
    WrongChain { expected: String, found: String },
    #[error("checkpoint {index}: {why}")]
    Note { index: usize, why: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RememberedFile {
    format: String,
    backend: String,
    origin: String,
    note: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    format: String,
    checkpoints: Vec<String>,
}

/// The file text remembering `note` as the checkpoint of `origin` in the log `backend`.
pub fn remembered_to_json(backend: &str, origin: &str, note: &SignedNote) -> String {
    let file = RememberedFile {
        format: REMEMBERED_FORMAT.into(),
        backend: backend.into(),
        origin: origin.into(),
        note: note.to_text(),
    };
    serde_json::to_string_pretty(&file).expect("JSON of strings") + "\n"
}

/// Reads a remembered checkpoint, requiring that it is of `origin` in `backend` and that its
/// note is a checkpoint of `origin`.
pub fn remembered_from_json(
    bytes: &[u8],
    backend: &str,
    origin: &str,
) -> Result<SignedNote, RememberError> {
    let file: RememberedFile =
        serde_json::from_slice(bytes).map_err(|e| RememberError::Json(e.to_string()))?;
    if file.format != REMEMBERED_FORMAT {
        return Err(RememberError::Format {
            expected: REMEMBERED_FORMAT.into(),
            found: file.format,
        });
    }
    if file.backend != backend || file.origin != origin {
        return Err(RememberError::WrongChain {
            expected: format!("{origin} in {backend}"),
            found: format!("{} in {}", file.origin, file.backend),
        });
    }
    let bad = |why: String| RememberError::Note { index: 0, why };
    let note = SignedNote::parse(file.note.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let c = Checkpoint::parse(note.text()).map_err(|e| bad(e.to_string()))?;
    if c.origin() != origin {
        return Err(RememberError::WrongChain {
            expected: origin.into(),
            found: c.origin().into(),
        });
    }
    Ok(note)
}

/// The text of a bundle of checkpoint notes.
pub fn bundle_to_json(notes: &[SignedNote]) -> String {
    let file = BundleFile {
        format: CHECKPOINT_BUNDLE_FORMAT.into(),
        checkpoints: notes.iter().map(SignedNote::to_text).collect(),
    };
    serde_json::to_string_pretty(&file).expect("JSON of strings") + "\n"
}

/// Reads checkpoint notes from a bundle, or from one signed note (as `kchain checkpoint
/// export` writes): a text that starts with `{` is a bundle.
pub fn notes_from_file(bytes: &[u8]) -> Result<Vec<SignedNote>, RememberError> {
    if bytes.first() != Some(&b'{') {
        return SignedNote::parse(bytes)
            .map(|n| vec![n])
            .map_err(|e| RememberError::Note {
                index: 0,
                why: e.to_string(),
            });
    }
    let file: BundleFile =
        serde_json::from_slice(bytes).map_err(|e| RememberError::Json(e.to_string()))?;
    if file.format != CHECKPOINT_BUNDLE_FORMAT {
        return Err(RememberError::Format {
            expected: CHECKPOINT_BUNDLE_FORMAT.into(),
            found: file.format,
        });
    }
    file.checkpoints
        .iter()
        .enumerate()
        .map(|(index, text)| {
            SignedNote::parse(text.as_bytes()).map_err(|e| RememberError::Note {
                index,
                why: e.to_string(),
            })
        })
        .collect()
}

/// The format name of a witness's evidence that a log contradicts what it cosigned.
pub const WITNESS_EVIDENCE_FORMAT: &str = "kchain-witness-evidence/v1";

/// A witness's evidence that the log contradicts a checkpoint it cosigned: the log is
/// shorter than it (`truncated`), or its tree at that size has another root (`rewritten`).
/// The cosigned note, signed by the log's writer, is the proof of what the log was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessEvidence {
    pub format: String,
    /// `truncated` or `rewritten`.
    pub kind: String,
    pub origin: String,
    /// The checkpoint the witness cosigned, as a signed note.
    pub cosigned: String,
    /// Entries the log holds now.
    pub log_entries: u64,
    /// The log's tree root at the cosigned size (hex), when the log is that long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_root: Option<String>,
    /// What the witness saw, in words.
    pub detail: String,
}

impl WitnessEvidence {
    /// The evidence as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("JSON of strings") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::note_key::NoteSigner;

    fn note(origin: &str) -> SignedNote {
        let signer = NoteSigner::from_seed("w", [1; 32]).unwrap();
        Checkpoint::new(origin, 1, crate::merkle::leaf_hash(&[0; 32]))
            .unwrap()
            .sign(&signer)
    }

    #[test]
    fn remembered_checkpoints_round_trip_and_name_their_chain() {
        let n = note("kchain/orders/0");
        let text = remembered_to_json("embedded:/d", "kchain/orders/0", &n);
        let back = remembered_from_json(text.as_bytes(), "embedded:/d", "kchain/orders/0");
        assert_eq!(back.unwrap(), n);
        for (backend, origin) in [("embedded:/e", "kchain/orders/0"), ("embedded:/d", "x/y/0")] {
            assert!(matches!(
                remembered_from_json(text.as_bytes(), backend, origin),
                Err(RememberError::WrongChain { .. })
            ));
        }
        assert!(remembered_from_json(b"{}", "embedded:/d", "kchain/orders/0").is_err());
    }

    #[test]
    fn bundles_and_single_notes_read_back() {
        let notes = vec![note("kchain/orders/0"), note("kchain/orders/1")];
        assert_eq!(
            notes_from_file(bundle_to_json(&notes).as_bytes()).unwrap(),
            notes
        );
        assert_eq!(
            notes_from_file(notes[0].to_text().as_bytes()).unwrap(),
            notes[..1]
        );
        assert!(notes_from_file(b"{\"format\": \"other\", \"checkpoints\": []}").is_err());
        assert!(notes_from_file(b"garbage").is_err());
    }
}
