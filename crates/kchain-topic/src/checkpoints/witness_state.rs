//! A witness's state directory, one set of files per origin:
//!
//! ```text
//!  <hex origin>.note      the last checkpoint cosigned, with this witness's cosignature
//!  <hex origin>.frontier  its tree's frontier: the size, then one hash per set bit of it
//!  <hex origin>.forked    present once a fork or a contradiction was seen: never again
//!  evidence-<origin>-<size>.json   what proves the contradiction (WitnessEvidence)
//!  journal                the HTTP witness's newer states, not yet in their .note files:
//!                         records  u32 LE length | u32 LE crc32c(body) | body
//!                         body  =  u16 LE name length | file name | file contents
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

/// The HTTP witness's journal file in a state directory.
pub const JOURNAL_FILE: &str = "journal";

/// One journal record: the new contents of the state file `name` (a file name in the state
/// directory). A name longer than 65,535 bytes or a record past 4 GiB cannot be encoded and is
/// refused, never cut short.
pub fn journal_record(name: &str, contents: &[u8]) -> Result<Vec<u8>, TopicError> {
    let too_long = || {
        TopicError::Invalid(format!(
            "witness journal: state file {name:?} ({} bytes of contents) is too large for a \
             journal record",
            contents.len()
        ))
    };
    let name_len = u16::try_from(name.len()).map_err(|_| too_long())?;
    let body_len = u32::try_from(2 + name.len() + contents.len()).map_err(|_| too_long())?;
    let mut body = Vec::with_capacity(body_len as usize);
    body.extend_from_slice(&name_len.to_le_bytes());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(contents);
    let mut record = Vec::with_capacity(8 + body.len());
    record.extend_from_slice(&body_len.to_le_bytes());
    record.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    record.extend_from_slice(&body);
    Ok(record)
}

/// The journal's records in order, as (file name, contents). A torn or damaged tail (a crash
/// while appending: those writes were never answered) ends the journal; a name that is not a
/// plain file name is refused.
pub fn read_journal(state_dir: &Path) -> Result<Vec<(String, Vec<u8>)>, TopicError> {
    let path = state_dir.join(JOURNAL_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TopicError::io(format!("reading {}", path.display()), e)),
    };
    let mut records = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 8 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let Some(body) = rest.get(8..8 + len) else {
            break;
        };
        if len < 2 || crc32c::crc32c(body) != crc {
            break;
        }
        let name_len = u16::from_le_bytes([body[0], body[1]]) as usize;
        let Some(name) = body.get(2..2 + name_len) else {
            break;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(TopicError::Invalid(format!(
                "witness journal {}: record names {name:?}, not a state file",
                path.display()
            )));
        }
        records.push((name, body[2 + name_len..].to_vec()));
        rest = &rest[8 + len..];
    }
    Ok(records)
}

/// The checkpoints a witness cosigned, one per origin, each carrying its cosignature (the
/// `.note` files of its state directory), sorted by origin: what `kchain witness export`
/// hands to verifiers.
pub fn witness_export(state_dir: &Path) -> Result<Vec<SignedNote>, TopicError> {
    let io = |e| TopicError::io(format!("reading {}", state_dir.display()), e);
    let mut newest = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(state_dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "note") {
            if let Some((note, _)) = read_state(&path)? {
                newest.insert(path.file_name().unwrap_or_default().to_owned(), note);
            }
        }
    }
    // A witness that crashed may hold newer states in its journal than in its .note files.
    for (name, contents) in read_journal(state_dir)? {
        if name.ends_with(".note") {
            let bad = |e: kchain_core::checkpoint::NoteError| {
                TopicError::Invalid(format!("witness journal, {name}: {e}"))
            };
            let note = SignedNote::parse(&contents).map_err(bad)?;
            newest.insert(name.into(), note);
        }
    }
    let mut notes: Vec<SignedNote> = newest.into_values().collect();
    notes.sort_by(|a, b| a.text().cmp(b.text()));
    Ok(notes)
}
