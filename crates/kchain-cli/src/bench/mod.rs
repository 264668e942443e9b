//! `kchain bench`: append and verify throughput for fixed-size records, on the embedded log
//! or (with `-b`) on Kafka, measured in one run beside raw SHA-256 over the same values and
//! beside the raw (unchained) append and read of the same backend, reported as ratios.
//!
//! ```text
//! raw.rs      SHA-256 floor, raw append, raw read
//! chained.rs  chained append (plain, encrypted, checkpoints, witness), verify
//! ledger      kchain_ledger::bench: signed transfers sealed end to end
//! witness.rs  `bench witness`: the HTTP witness beside Ed25519 cosigning and state writes
//! report.rs   what was asked and measured; rows and ratios, as text or one JSON line
//! ```

pub mod archive;
pub mod bridge;
mod chained;
pub mod monitor;
mod raw;
mod report;
pub mod witness;

use anyhow::Result;
use kchain_core::{Trust, TrustedWriter, WriterKey};
use kchain_log::Log;

use crate::progress::Progress;
use report::Measured;
pub use report::Params;

/// The embedded log's fsync interval during the bench.
pub const FSYNC_MS: u64 = 100;

/// Runs every measurement on `log` (called `backend` in the report) and prints the report.
pub fn measure(p: &Params, log: &dyn Log, backend: &str) -> Result<()> {
    let n = p.records;
    let vals = raw::values(n, p.size);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let raw_topic = format!("kchain-bench-raw-{stamp}");
    let chained_topic = format!("kchain-bench-chained-{stamp}");
    let key = WriterKey::generate("bench");
    let trust = bench_trust(&key);
    let progress = Progress::new("bench", 9);
    let sha = raw::sha(&vals)?;
    progress.add(1);
    let raw_append = raw::append(log, &raw_topic, &vals)?;
    progress.add(1);
    let raw_read = raw::read(log, &raw_topic, n)?;
    progress.add(1);
    let on_kafka = backend == "Kafka";
    let appends = chained::appends(log, &key, &vals, &chained_topic, stamp, on_kafka, &|| {
        progress.add(1)
    })?;
    drop(vals);
    let verify1 = chained::verify(log, &chained_topic, &trust, n, 1)?;
    progress.add(1);
    let verify2 = chained::verify(log, &chained_topic, &trust, n, 2)?;
    progress.add(2);
    progress.finish();
    let ledger = ledger(log, p.ledger_txs, stamp)?;
    let m = Measured {
        sha,
        raw_append,
        raw_read,
        appends,
        verify1,
        verify2,
        ledger,
    };
    if p.json {
        report::json(p, backend, &m);
    } else {
        report::text(p, backend, &m);
    }
    Ok(())
}

/// The ledger: signed transfers sealed end to end, beside raw Ed25519 batch verification.
/// The trust of every bench: one writer, `bench`, with `key`, trusted for any topic.
pub(crate) fn bench_trust(key: &WriterKey) -> Trust {
    Trust {
        writers: vec![TrustedWriter {
            name: "bench".into(),
            key: key.public(),
            topics: Vec::new(),
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    }
}

fn ledger(log: &dyn Log, txs: usize, stamp: u128) -> Result<Option<kchain_ledger::BenchReport>> {
    if txs == 0 {
        return Ok(None);
    }
    let opts = kchain_ledger::BenchOptions {
        chain: format!("kchain-bench-ledger-{stamp}"),
        transactions: txs,
        ..kchain_ledger::BenchOptions::default()
    };
    Ok(Some(kchain_ledger::bench(log, &opts)?))
}
