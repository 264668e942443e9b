//! The bytes of the tlog-witness protocol (c2sp.org/tlog-witness), for both sides.
//!
//! ```text
//! add-checkpoint request body:
//!   "old " size "\n"                 decimal, no leading zeroes ("0" for none)
//!   base64(hash) "\n"   x 0..=63     RFC 6962 consistency proof from old size (none if old 0)
//!   "\n"
//!   checkpoint                       a signed note (may carry several signatures)
//! 200 response: note signature lines ("— name base64\n"), the witness's cosignatures
//! 409 response: size "\n", Content-Type text/x.tlog.size (the size the witness holds)
//! ```
//!
//! Parsing is strict (the spec's MUSTs) and never panics: whatever a client or a witness
//! sends is hostile until parsed.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::note::SignedNote;
use super::note_key::{NoteError, NoteSignature};
use crate::merkle::Hash;

/// The most consistency proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;

/// The content type of a 409 response's body (the witness's size).
pub const TLOG_SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why an add-checkpoint body, a 409 body or a cosignature response could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("the body does not start with an \"old <size>\" line")]
    NoOldSize,
    #[error("line {line}: {why}")]
    BadLine { line: usize, why: String },
    #[error("more than {MAX_PROOF_LINES} consistency proof lines")]
    TooManyProofLines,
    #[error("no empty line before the checkpoint")]
    NoBlankLine,
    #[error("the checkpoint: {0}")]
    Note(NoteError),
    #[error("the size body is not a decimal size and a newline")]
    BadSize,
}

/// An add-checkpoint request: the size the client believes the witness holds, the proof
/// from it, and the checkpoint to cosign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    pub checkpoint: SignedNote,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_body(&self) -> Vec<u8> {
        let mut body = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            body += &BASE64.encode(hash);
            body.push('\n');
        }
        body.push('\n');
        body += &self.checkpoint.to_text();
        body.into_bytes()
    }

    /// Parses a request body strictly.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, WireError> {
        let text = std::str::from_utf8(body).map_err(|_| WireError::NotUtf8)?;
        let (first, mut rest) = text.split_once('\n').ok_or(WireError::NoOldSize)?;
        let size = first.strip_prefix("old ").ok_or(WireError::NoOldSize)?;
        let old_size = parse_decimal(size).ok_or(WireError::BadLine {
            line: 1,
            why: format!("{first:?} is not \"old\" and a decimal size without leading zeroes"),
        })?;
        let mut proof = Vec::new();
        let mut line = 1;
        loop {
            line += 1;
            let (l, next) = rest.split_once('\n').ok_or(WireError::NoBlankLine)?;
            rest = next;
            if l.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(WireError::TooManyProofLines);
            }
            proof.push(parse_hash(l).ok_or_else(|| WireError::BadLine {
                line,
                why: "not a base64 SHA-256 hash".into(),
            })?);
        }
        let checkpoint = SignedNote::parse(rest.as_bytes()).map_err(WireError::Note)?;
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint,
        })
    }
}

/// A decimal without leading zeroes (but "0"), fitting a u64.
fn parse_decimal(s: &str) -> Option<u64> {
    let ok =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten()
}

fn parse_hash(line: &str) -> Option<Hash> {
    BASE64.decode(line).ok()?.try_into().ok()
}

/// The body of a 409 response: the witness's size and a newline.
pub fn size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Parses a 409 response's body.
pub fn parse_size_body(body: &[u8]) -> Result<u64, WireError> {
    let text = std::str::from_utf8(body).map_err(|_| WireError::BadSize)?;
    text.strip_suffix('\n')
        .and_then(parse_decimal)
        .ok_or(WireError::BadSize)
}

/// The body of a 200 response: one note signature line per cosignature.
pub fn cosignature_lines(signatures: &[NoteSignature]) -> String {
    signatures.iter().map(NoteSignature::to_line).collect()
}

/// Parses a 200 response's signature lines, as the spec suggests: appended to the checkpoint
/// text they must form a valid signed note. Signatures are not checked.
pub fn parse_cosignature_lines(
    checkpoint_text: &str,
    body: &[u8],
) -> Result<Vec<NoteSignature>, WireError> {
    let mut note = checkpoint_text.as_bytes().to_vec();
    note.push(b'\n');
    note.extend_from_slice(body);
    let parsed = SignedNote::parse(&note).map_err(WireError::Note)?;
    Ok(parsed.signatures().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::note_key::NoteSigner;

    fn note() -> SignedNote {
        let mut n =
            SignedNote::new("example.com/log\n2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
                .unwrap();
        n.sign(&NoteSigner::from_seed("example.com/log", [7; 32]).unwrap());
        n
    }

    #[test]
    fn a_request_round_trips() {
        let req = AddCheckpoint {
            old_size: 1,
            proof: vec![[1; 32], [2; 32]],
            checkpoint: note(),
        };
        assert_eq!(AddCheckpoint::parse(&req.to_body()).unwrap(), req);
        let empty = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: note(),
        };
        assert!(empty.to_body().starts_with(b"old 0\n\nexample.com/log\n"));
        assert_eq!(AddCheckpoint::parse(&empty.to_body()).unwrap(), empty);
    }

    #[test]
    fn the_spec_example_request_parses() {
        // The example request body of c2sp.org/tlog-witness.
        let body = "old 20852014\n\
            PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
            jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
            5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
            /6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
            \n\
            example.com/behind-the-sofa\n\
            20852163\n\
            CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
            \n\
            \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
            \u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";
        let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!(req.old_size, 20852014);
        assert_eq!(req.proof.len(), 4);
        assert_eq!(req.checkpoint.signatures().len(), 2);
        assert_eq!(req.to_body(), body.as_bytes());
    }

    #[test]
    fn malformed_requests_are_named() {
        let tail = format!("\n{}", note().to_text());
        for (body, want) in [
            (format!("old 01\n{tail}"), "line 1"),
            (format!("old -1\n{tail}"), "line 1"),
            (format!("new 1\n{tail}"), "old <size>"),
            (format!("old 1\nnot base64!\n{tail}"), "line 2"),
            (format!("old 1\nAAAA\n{tail}"), "line 2"),
            ("old 1\n".to_string(), "empty line"),
            (
                format!(
                    "old 1\n{}{tail}",
                    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n".repeat(64)
                ),
                "63",
            ),
            ("old 0\n\nno signatures\n".to_string(), "checkpoint"),
        ] {
            let err = AddCheckpoint::parse(body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{body:?}: {err}");
        }
    }

    #[test]
    fn size_and_cosignature_bodies() {
        assert_eq!(parse_size_body(size_body(42).as_bytes()), Ok(42));
        for bad in ["42", "042\n", "x\n", ""] {
            assert!(parse_size_body(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let n = note();
        let lines = cosignature_lines(n.signatures());
        let parsed = parse_cosignature_lines(n.text(), lines.as_bytes()).unwrap();
        assert_eq!(parsed, n.signatures());
        assert!(parse_cosignature_lines(n.text(), b"garbage").is_err());
    }

    #[test]
    fn the_spec_example_response_parses_as_three_cosignatures() {
        // The example response body of c2sp.org/tlog-witness, after the example checkpoint.
        let checkpoint = "example.com/behind-the-sofa\n20852163\n\
                          CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let body = "\u{2014} witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n\
                    \u{2014} witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n\
                    \u{2014} witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n";
        let lines = parse_cosignature_lines(checkpoint, body.as_bytes()).unwrap();
        let names: Vec<_> = lines.iter().map(|l| l.name()).collect();
        assert_eq!(
            names,
            [
                "witness.example/w1",
                "witness.example/w1",
                "witness.example/w2"
            ]
        );
        for line in &lines {
            // The shape of a cosignature/v1: 8 bytes of timestamp and 64 of signature (the
            // example's bytes are placeholders, not a valid timestamp and signature).
            assert_eq!(line.signature().len(), 72);
        }
        assert_eq!(cosignature_lines(&lines), body);
    }
}
