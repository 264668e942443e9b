//! The bytes an embedded log stored, read as files (the testkit knows no kchain crate: it
//! knows the layout `<data dir>/topics/<topic>/<partition>/*.log`).

use std::path::Path;

/// The segment files (`*.log`) of `topic`/`partition` in the embedded log at `data_dir`,
/// concatenated in name order (segments are named by their base offset, zero-padded).
pub fn segment_bytes(data_dir: &Path, topic: &str, partition: u32) -> Vec<u8> {
    let dir = data_dir
        .join("topics")
        .join(topic)
        .join(partition.to_string());
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.iter()
        .flat_map(|p| std::fs::read(p).expect("a segment file"))
        .collect()
}
