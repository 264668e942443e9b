//! What the chain headers' bytes cost the embedded log: appends 1,000,000 records of a
//! 256-byte value with no headers (a raw record), with the three text headers every chained
//! record carries (`kchain.v`, `kchain.height`, `kchain.prev` as 64 hex digits), and with one
//! binary header of the same facts (41 bytes: version, height, previous hash), the
//! `kchain.v` = 2 layout docs/decisions.md weighs. Prints bytes per record on disk and the
//! median append time of each kind over interleaved rounds.
//!
//! `cargo run --release -p kchain-log --example header_bytes [ROUNDS]` (default 5).

use std::time::{Duration, Instant};

#[path = "support/header_kinds.rs"]
mod header_kinds;

use header_kinds::{records, KINDS};
use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, Record, TopicConfig};

const RECORDS: usize = 1_000_000;
const BATCH: usize = 8192;

/// Appends `recs` to a new log; the time and the bytes of the partition's files.
fn append(recs: &[Record]) -> (Duration, u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("topics")).expect("the data directory");
    let log = EmbeddedLog::open(&root, EmbeddedOptions::default()).expect("the log");
    log.create_topic("t", &TopicConfig::default())
        .expect("a topic");
    let mut app = log.appender("t", 0).expect("its appender");
    let t = Instant::now();
    for chunk in recs.chunks(BATCH) {
        app.append(chunk).expect("an append");
    }
    app.flush().expect("a flush");
    let took = t.elapsed();
    let bytes = std::fs::read_dir(root.join("topics/t/0"))
        .expect("the partition")
        .map(|e| e.expect("an entry").metadata().expect("its size").len())
        .sum();
    (took, bytes)
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(5, |r| r.parse().expect("ROUNDS is a number"));
    let kinds = KINDS;
    let sets: Vec<Vec<Record>> = kinds.iter().map(|k| records(k, RECORDS)).collect();
    let mut times = vec![Vec::new(); kinds.len()];
    let mut sizes = vec![0; kinds.len()];
    for _ in 0..rounds {
        for (k, recs) in sets.iter().enumerate() {
            let (took, bytes) = append(recs);
            times[k].push(took);
            sizes[k] = bytes;
        }
    }
    let raw = median(&mut times[0]);
    for (k, kind) in kinds.iter().enumerate() {
        let m = median(&mut times[k]);
        println!(
            "{kind:>6}: {:>3} bytes/record on disk, append median {:.3} s ({:.0} ns/record, \
             {:.0} ns more than raw)",
            sizes[k] / RECORDS as u64,
            m.as_secs_f64(),
            m.as_secs_f64() * 1e9 / RECORDS as f64,
            (m.as_secs_f64() - raw.as_secs_f64()) * 1e9 / RECORDS as f64,
        );
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
