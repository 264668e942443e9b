//! `kchain bench`: append and verify throughput for fixed-size records, on the embedded log
//! or (with `-b`) on Kafka, measured in one run beside raw SHA-256 over the same values and
//! beside the raw (unchained) append and read of the same backend, reported as ratios.
//!
//! ```text
//! raw.rs      SHA-256 floor, raw append, raw read
//! chained.rs  chained append (plain, encrypted, checkpoints, witness), verify
//! ledger      kchain_ledger::bench: signed transfers sealed end to end
//! witness.rs  `bench witness`: the HTTP witness beside Ed25519 cosigning and state writes
//! report.rs   medians and spreads over interleaved repetitions, targets; text or JSON
//! peer.rs     `bench peer`: the tutorial's Python node beside kchain's ledger, same broker
//! chart.rs    `bench chart`: the JSON's ratios against their targets, as an SVG
//! ```

pub mod archive;
pub mod bridge;
mod chained;
pub mod chart;
pub mod monitor;
pub mod peer;
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

/// Runs every measurement on `log` (called `backend` in the report) `p.repeat` times,
/// interleaved (each repetition runs every measurement once, in the same order, on fresh
/// topics, so drift in the machine's load hits every figure alike), and prints the medians
/// and spreads.
pub fn measure(p: &Params, log: &dyn Log, backend: &str) -> Result<()> {
    let n = p.records;
    let vals = raw::values(n, p.size);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let key = WriterKey::generate("bench");
    let trust = bench_trust(&key);
    let on_kafka = backend == "Kafka";
    let reps = p.repeat.max(1);
    let progress = Progress::new("bench", 6 * reps as u64);
    let mut measured = Vec::with_capacity(reps);
    let mut measure_witness = true;
    for rep in 0..reps {
        let tag = format!("{stamp}-{rep}");
        let raw_topic = format!("kchain-bench-raw-{tag}");
        let chained_topic = format!("kchain-bench-chained-{tag}");
        let sha = raw::sha(&vals);
        let sha_x2 = raw::sha_x2(&vals);
        let raw_append = raw::append(log, &raw_topic, &vals)?;
        let raw_read = raw::read(log, &raw_topic, n)?;
        progress.add(1);
        let appends = chained::appends(
            log,
            &key,
            &vals,
            &chained_topic,
            &tag,
            on_kafka,
            measure_witness,
        )?;
        measure_witness &= appends.witness_note.is_none();
        progress.add(2);
        let verify1 = chained::verify(log, &chained_topic, &trust, n, 1)?;
        let verify2 = chained::verify(log, &chained_topic, &trust, n, 2)?;
        progress.add(1);
        let ledger = ledger(log, p.ledger_txs, &tag)?;
        // On Kafka, the ledger on the embedded log too, side by side: the broker's share.
        let ledger_embedded = match on_kafka {
            true => ledger_on_embedded(p.ledger_txs, &tag)?,
            false => None,
        };
        progress.add(2);
        measured.push(Measured {
            sha,
            sha_x2,
            raw_append,
            raw_read,
            appends,
            verify1,
            verify2,
            ledger,
            ledger_embedded,
        });
    }
    drop(vals);
    progress.finish();
    let summary = report::Summary::new(p, backend, &measured);
    if p.json {
        println!("{}", summary.json());
    } else {
        summary.print();
    }
    Ok(())
}

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

/// The ledger: signed transfers sealed end to end, beside raw Ed25519 batch verification.
fn ledger(log: &dyn Log, txs: usize, stamp: &str) -> Result<Option<kchain_ledger::BenchReport>> {
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

/// The ledger on an embedded log of its own (a temporary directory, fsync as the embedded
/// bench), to compare a Kafka run with in the same repetition.
fn ledger_on_embedded(txs: usize, stamp: &str) -> Result<Option<kchain_ledger::BenchReport>> {
    if txs == 0 {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!(
        "kchain-bench-ledger-{}-{stamp}",
        std::process::id()
    ));
    let opts = kchain_log::EmbeddedOptions {
        fsync: kchain_log::FsyncPolicy::IntervalMs(FSYNC_MS),
        ..kchain_log::EmbeddedOptions::default()
    };
    let result = kchain_log::EmbeddedLog::create(&dir, opts)
        .map_err(anyhow::Error::from)
        .and_then(|log| ledger(&log, txs, stamp));
    let _ = std::fs::remove_dir_all(&dir);
    result
}
