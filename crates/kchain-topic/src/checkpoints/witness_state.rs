//! A witness's state directory, one set of files per origin:
//!
//! ```text
//!  <hex origin>.note      the last checkpoint cosigned, with this witness's cosignature
//!  <hex origin>.frontier  its tree's frontier: the size, then one hash per set bit of it
//!  <hex origin>.forked    present once a fork or a contradiction was seen: never again
//!  evidence-<origin>-<size>.json   what proves the contradiction (WitnessEvidence)
//! ```
//!
//! Every file is replaced atomically: a witness that crashes keeps the old or the new state.
//! The pull-mode witness (`witness run`) and the HTTP witness (kchain-witness) share these
//! names, so that `kchain witness export --state` reads the state of either.

use std::path::{Path, PathBuf};

use kchain_core::merkle::TreeBuilder;
use kchain_core::{Checkpoint, Hash, SignedNote};

use crate::error::TopicError;
use crate::files::{read_capped, write_atomic, MAX_CHECKPOINT_FILE_BYTES};

/// The state files of one origin.
#[derive(Clone, Debug)]
pub struct StateFiles {
    pub note: PathBuf,
    pub frontier: PathBuf,
    pub forked: PathBuf,
}

impl StateFiles {
    pub fn new(state_dir: &Path, origin: &str) -> StateFiles {
        let note = state_dir.join(format!("{}.note", hex::encode(origin)));
        StateFiles {
            frontier: note.with_extension("frontier"),
            forked: note.with_extension("forked"),
            note,
        }
    }

    /// The evidence file of a contradiction of the checkpoint of `size` cosigned.
    pub fn evidence(state_dir: &Path, origin: &str, size: u64) -> PathBuf {
        state_dir.join(format!("evidence-{}-{size}.json", file_safe(origin)))
    }
}

pub(super) fn frontier_text(t: &TreeBuilder) -> String {
    let mut s = format!("{}\n", t.size());
    for p in t.peaks() {
        s += &hex::encode(p);
        s.push('\n');
    }
    s
}

pub(super) fn read_frontier(path: &Path) -> Option<TreeBuilder> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let size = lines.next()?.parse().ok()?;
    let peaks = lines
        .map(|l| hex::decode(l).ok()?.try_into().ok())
        .collect::<Option<Vec<Hash>>>()?;
    TreeBuilder::from_peaks(size, peaks)
}

pub fn read_state(path: &Path) -> Result<Option<(SignedNote, Checkpoint)>, TopicError> {
    let bytes = match read_capped(path, "witness state", MAX_CHECKPOINT_FILE_BYTES) {
        Ok(b) => b,
        Err(TopicError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let bad = |why: String| TopicError::Invalid(format!("witness state {}: {why}", path.display()));
    let note = SignedNote::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    let c = Checkpoint::parse(note.text()).map_err(|e| bad(e.to_string()))?;
    Ok(Some((note, c)))
}

/// Replaces a state file atomically and durably: a witness that crashes keeps the old or
/// the new state.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TopicError> {
    write_atomic(path, bytes)
}

/// The reason a witness stopped cosigning for an origin, if it did (its marker file).
pub fn read_marker(path: &Path) -> Result<Option<String>, TopicError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(
            String::from_utf8_lossy(&b[..b.len().min(4096)])
                .trim()
                .to_owned(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TopicError::io(format!("reading {}", path.display()), e)),
    }
}

/// `origin` as a file name part: letters, digits, '.' and '-' kept, the rest '_'.
pub fn file_safe(origin: &str) -> String {
    origin
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '_',
        })
        .collect()
}

/// The checkpoints a witness cosigned, one per origin, each carrying its cosignature (the
/// `.note` files of its state directory), sorted by origin: what `kchain witness export`
/// hands to verifiers.
pub fn witness_export(state_dir: &Path) -> Result<Vec<SignedNote>, TopicError> {
    let io = |e| TopicError::io(format!("reading {}", state_dir.display()), e);
    let mut notes = Vec::new();
    for entry in std::fs::read_dir(state_dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "note") {
            if let Some((note, _)) = read_state(&path)? {
                notes.push(note);
            }
        }
    }
    notes.sort_by(|a, b| a.text().cmp(b.text()));
    Ok(notes)
}
