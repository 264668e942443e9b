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

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use kchain_core::{Trust, TrustedWriter, WriterKey};
use kchain_log::Log;

use crate::progress::Progress;
use report::Measured;
pub use report::Params;

/// The embedded log's fsync interval during the bench.
pub const FSYNC_MS: u64 = 100;

/// Where the measurements of each repetition write.
pub enum BenchLog<'a> {
    /// A Kafka cluster shared by every repetition, each writing topics of its own, which
    /// are deleted when the repetition ends if `delete` is given: a broker that keeps
    /// records in memory (tansu's `memory://`) slows down as it fills, and without the
    /// deletes the later repetitions measured a fuller broker than the first
    /// (docs/benchmarks.md, ninth pass).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    Shared {
        log: &'a dyn Log,
        delete: Option<&'a DeleteTopic<'a>>,
    },
    /// A fresh embedded log for each repetition, in `dir/rep-N`, deleted when the
    /// repetition ends unless `keep`: every repetition then starts with the disk and the
    /// page cache as the first did, instead of behind the 2-3 GB of dirty pages the ones
    /// before it wrote (which made later repetitions' raw append wait for the disk).
    PerRepetition {
        dir: std::path::PathBuf,
        options: kchain_log::EmbeddedOptions,
        keep: bool,
    },
}

impl BenchLog<'_> {
    /// Runs `f` on the log of repetition `rep`, whose topic names carry `tag`.
    fn with_log<T>(
        &self,
        rep: usize,
        tag: &str,
        f: impl FnOnce(&dyn Log) -> Result<T>,
    ) -> Result<T> {
        match self {
            BenchLog::Shared { log, delete } => {
                let Some(delete) = delete else {
                    return f(*log);
                };
                let before = topic_names(*log)?;
                let result = f(*log);
                // Deleted even after a failed repetition (they are the bench's own), whose
                // error comes first.
                let deleted = delete_made(*log, *delete, tag, &before);
                let value = result?;
                deleted.map(|()| value)
            }
            BenchLog::PerRepetition { dir, options, keep } => {
                let dir = dir.join(format!("rep-{rep}"));
                let result = kchain_log::EmbeddedLog::create(&dir, options.clone())
                    .with_context(|| format!("bench directory {}", dir.display()))
                    .and_then(|log| f(&log));
                if !keep {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                result
            }
        }
    }
}

/// Deletes a topic (the Kafka backend's `delete_topic`; not in the `Log` API).
pub type DeleteTopic<'a> = dyn Fn(&str) -> Result<(), kchain_log::LogError> + 'a;

/// Every topic on `log`, by name.
fn topic_names(log: &dyn Log) -> Result<BTreeSet<String>> {
    Ok(log
        .list_topics()
        .context("listing the topics")?
        .into_iter()
        .map(|t| t.name)
        .collect())
}

/// Deletes the topics a repetition tagged `tag` made on `log` (not in `before`, named
/// `kchain-bench-...` with the tag, not followed by a digit: repetition 1's tag is a prefix
/// of repetition 10's), and nothing else: another bench may run on the same cluster. A topic
/// already gone counts as deleted. Fails if any topic that was not the bench's vanished
/// meanwhile: a broker whose DeleteTopics deletes more than it is asked (tansu 0.6's sqlite
/// engine deletes every topic) must not be used with `--delete-topics`.
fn delete_made(
    log: &dyn Log,
    delete: &DeleteTopic<'_>,
    tag: &str,
    before: &BTreeSet<String>,
) -> Result<()> {
    let tagged = |name: &str| {
        name.starts_with("kchain-bench-")
            && name
                .match_indices(tag)
                .any(|(at, _)| !name[at + tag.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    let now = topic_names(log)?;
    let made: Vec<&String> = now
        .iter()
        .filter(|n| !before.contains(*n) && tagged(n))
        .collect();
    for name in &made {
        match delete(name) {
            Ok(()) | Err(kchain_log::LogError::NoSuchTopic(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting the bench's topic {name}")),
        }
    }
    let after = topic_names(log)?;
    let lost: Vec<&str> = now
        .iter()
        .filter(|n| !after.contains(*n) && !made.contains(n))
        .map(String::as_str)
        .collect();
    if !lost.is_empty() {
        anyhow::bail!(
            "the broker deleted {} topics the bench did not ask it to delete ({}{}): its \
             DeleteTopics deletes more than the topic named (as tansu 0.6's sqlite engine \
             does); do not use --delete-topics with it",
            lost.len(),
            lost[..lost.len().min(3)].join(", "),
            if lost.len() > 3 { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// Runs every measurement on `log` (called `backend` in the report) `p.repeat` times,
/// interleaved (each repetition runs every measurement once, in the same order, on fresh
/// topics, so drift in the machine's load hits every figure alike), and prints the medians
/// and spreads.
pub fn measure(p: &Params, logs: &BenchLog<'_>, backend: &str) -> Result<()> {
    let n = p.records;
    let vals = raw::values(n, p.size);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let key = WriterKey::generate("bench");
    let trust = bench_trust(&key);
    let inputs = Inputs {
        p,
        vals: &vals,
        key: &key,
        trust: &trust,
        on_kafka: backend == "Kafka",
    };
    let reps = p.repeat.max(1);
    let progress = Progress::new("bench", 6 * reps as u64);
    let mut measured = Vec::with_capacity(reps);
    let mut measure_witness = true;
    for rep in 0..reps {
        let tag = format!("{stamp}-{rep}");
        let m = logs.with_log(rep, &tag, |log| {
            repetition(log, &inputs, &tag, &mut measure_witness, &progress)
        })?;
        measured.push(m);
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

/// What every repetition measures with: the parameters, the values, the writer's key and
/// the trust that verifies it, and the backend.
struct Inputs<'a> {
    p: &'a Params,
    vals: &'a [Vec<u8>],
    key: &'a WriterKey,
    trust: &'a Trust,
    on_kafka: bool,
}

/// One repetition of every measurement on `log`, its topics named with `tag` (the run's
/// stamp and the repetition's number); the witness is measured while
/// `measure_witness` (a broker that cannot serve it clears it for the rest of the run).
fn repetition(
    log: &dyn Log,
    i: &Inputs<'_>,
    tag: &str,
    measure_witness: &mut bool,
    progress: &Progress,
) -> Result<Measured> {
    let (p, vals, n) = (i.p, i.vals, i.p.records);
    let raw_topic = format!("kchain-bench-raw-{tag}");
    let chained_topic = format!("kchain-bench-chained-{tag}");
    let sha = raw::sha(vals);
    let sha_x2 = raw::sha_x2(vals);
    let raw_append = raw::append(log, &raw_topic, vals)?;
    let raw_read = raw::read(log, &raw_topic, n)?;
    progress.add(1);
    let appends = chained::appends(
        log,
        i.key,
        vals,
        &chained_topic,
        tag,
        i.on_kafka,
        *measure_witness,
    )?;
    *measure_witness &= appends.witness_note.is_none();
    progress.add(2);
    let verify1 = chained::verify(log, &chained_topic, i.trust, n, 1)?;
    let verify2 = chained::verify(log, &chained_topic, i.trust, n, 2)?;
    progress.add(1);
    let ledger = ledger(log, p.ledger_txs, tag)?;
    // On Kafka, the ledger on the embedded log too, side by side: the broker's share.
    let ledger_embedded = match i.on_kafka {
        true => ledger_on_embedded(p.ledger_txs, tag)?,
        false => None,
    };
    progress.add(2);
    Ok(Measured {
        sha,
        sha_x2,
        raw_append,
        raw_read,
        appends,
        verify1,
        verify2,
        ledger,
        ledger_embedded,
    })
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
