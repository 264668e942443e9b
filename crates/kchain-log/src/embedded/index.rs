//! The sparse offset index of a segment, kept exact by recovery but trusted by nobody.
//!
//! ```text
//! index = entry*            entry = relative_offset u32 | position u32   (big-endian)
//! ```
//!
//! An entry says "the batch whose first offset is `segment base + relative_offset` starts at
//! byte `position` of the segment". The segment start (0, 0) is implied and never stored.
//! Which batches get an entry is a pure function of the batch positions ([`IndexPolicy`]), so
//! recovery can rebuild the index and get the same bytes.
//!
//! Readers do not use it: a position taken from the index may point into the middle of a
//! payload, where an attacker can hide a valid batch that the log does not hold. Readers walk
//! batch headers instead (see `walk`); the index stays in the format for tools.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::error::LogError;

/// Bytes per index entry.
pub(crate) const ENTRY_LEN: usize = 8;

/// One index entry: where the batch starting at `segment base + relative_offset` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl IndexEntry {
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        b[4..].copy_from_slice(&self.position.to_be_bytes());
        b
    }

    /// Requires `b.len() == ENTRY_LEN`.
    fn decode(b: &[u8]) -> IndexEntry {
        IndexEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// Decides which batches get an index entry: the first batch that starts at least
/// `interval` bytes after the previous entry (or after the segment start).
pub(crate) struct IndexPolicy {
    interval: u64,
    last_position: u64,
}

impl IndexPolicy {
    /// A policy for a segment whose last entry so far is at `last_position` (0 if none).
    pub fn new(interval: u32, last_position: u64) -> Self {
        IndexPolicy {
            interval: u64::from(interval),
            last_position,
        }
    }

    /// Position of the last entry so far (0 if none).
    pub fn last_position(&self) -> u64 {
        self.last_position
    }

    /// Called for every batch of a segment in order: the entry to add for the batch with
    /// first offset `batch_offset` at byte `position`, if it gets one.
    pub fn entry_for(
        &mut self,
        segment_base: u64,
        position: u64,
        batch_offset: u64,
    ) -> Option<IndexEntry> {
        if position == 0 || position - self.last_position < self.interval.max(1) {
            return None;
        }
        let entry = IndexEntry {
            relative_offset: u32::try_from(batch_offset.checked_sub(segment_base)?).ok()?,
            position: u32::try_from(position).ok()?,
        };
        self.last_position = position;
        Some(entry)
    }
}

/// Encodes entries as the index file's bytes.
pub(crate) fn encode(entries: &[IndexEntry]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.encode()).collect()
}

/// The entries of an index file's bytes, or `None` unless every entry is well-formed: whole
/// entries, strictly increasing in both fields, positions inside `1..log_len`.
pub(crate) fn parse_strict(bytes: &[u8], log_len: u64) -> Option<Vec<IndexEntry>> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return None;
    }
    let entries = parse_prefix(bytes);
    let all = entries.len() * ENTRY_LEN == bytes.len();
    let inside = entries
        .last()
        .is_none_or(|e| u64::from(e.position) < log_len);
    (all && inside).then_some(entries)
}

/// The longest well-formed prefix of an index file's bytes (what a reader may use while an
/// appender is adding entries).
pub(crate) fn parse_prefix(bytes: &[u8]) -> Vec<IndexEntry> {
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for chunk in bytes.chunks_exact(ENTRY_LEN) {
        let e = IndexEntry::decode(chunk);
        let increasing = match entries.last() {
            None => e.position > 0,
            Some(prev) => e.position > prev.position && e.relative_offset > prev.relative_offset,
        };
        if !increasing {
            break;
        }
        entries.push(e);
    }
    entries
}

/// Reads a whole index file; `Ok(None)` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>, LogError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(format!("reading index {}", path.display()), e)),
    }
}

/// Replaces an index file's contents with `entries`. Not atomic, and needs not be: a torn
/// index is detected and rebuilt like any other bad hint.
pub(crate) fn write(path: &Path, entries: &[IndexEntry]) -> Result<(), LogError> {
    let mut f = File::create(path)
        .map_err(|e| LogError::io(format!("rewriting index {}", path.display()), e))?;
    f.write_all(&encode(entries))
        .map_err(|e| LogError::io(format!("rewriting index {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(relative_offset: u32, position: u32) -> IndexEntry {
        IndexEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn policy_indexes_every_interval() {
        let mut p = IndexPolicy::new(100, 0);
        let got: Vec<_> = [(0, 0), (60, 3), (120, 6), (180, 9), (250, 12)]
            .iter()
            .filter_map(|&(pos, off)| p.entry_for(1000, pos, 1000 + off))
            .collect();
        assert_eq!(got, vec![e(6, 120), e(12, 250)]);
    }

    #[test]
    fn parsing() {
        let entries = vec![e(5, 100), e(9, 300)];
        let bytes = encode(&entries);
        assert_eq!(parse_strict(&bytes, 301), Some(entries.clone()));
        assert_eq!(parse_strict(&bytes, 300), None);
        assert_eq!(parse_strict(&bytes[..12], 1000), None);
        assert_eq!(parse_prefix(&bytes[..12]), vec![e(5, 100)]);
        let mut bad = bytes.clone();
        bad.extend_from_slice(&e(9, 400).encode());
        assert_eq!(parse_strict(&bad, 1000), None);
        assert_eq!(parse_prefix(&bad), entries);
    }
}
