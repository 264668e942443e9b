//! `bench`: the measurements of `crate::bench`, on a temporary embedded log or on Kafka.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use kchain_log::{EmbeddedOptions, FsyncPolicy};

use crate::bench::{measure, BenchLog, Params, FSYNC_MS};
use crate::global::{open_log, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Records per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Directory for the benchmark's data [default: a temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Signed transfers for the ledger measurement (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub ledger_txs: usize,
    /// Interleaved repetitions of the whole set: each figure is reported as the median
    /// with its spread (min-max) over them.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Print the measurements as one JSON line (`kchain bench chart` draws it).
    #[arg(long)]
    pub json: bool,
    /// On Kafka (-b), delete each repetition's topics when it ends, so that a broker keeping
    /// records in memory (tansu's memory engine) holds no more for the later repetitions than
    /// for the first. Only the topics the repetition made are named; never on a broker whose
    /// DeleteTopics deletes more (tansu 0.6's sqlite engine deletes every topic): the bench
    /// stops with an error if other topics vanish.
    #[arg(long)]
    pub delete_topics: bool,
    /// Measure one part alone instead: `witness` (the HTTP witness), `archive` (archive upload
    /// and verify from the archive), `monitor` (the monitor's verify rate beside `verify`, or a soak).
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchWhat {
    /// The HTTP witness: add-checkpoint requests per second over keep-alive on loopback,
    /// beside the Ed25519 cosigning rate and the durable state write rate.
    Witness(crate::bench::witness::WitnessBenchArgs),
    /// Archive upload and verify-from-archive rates, as ratios of `verify` on the local log.
    Archive(crate::bench::archive::BenchArchiveArgs),
    /// The monitor's sustained verify rate as a ratio of `verify` on the same chain, or
    /// (--soak-secs) its memory while following a producer at --rate records/s.
    Monitor(crate::bench::monitor::BenchMonitorArgs),
    /// Draw the ratios of `kchain bench --json` runs (one JSON line each, e.g. the embedded
    /// log and Kafka) against their targets, as an SVG on standard output.
    Chart(crate::bench::chart::ChartArgs),
    /// kchain's ledger beside the tutorial's Python node (kafka-python, a block every three
    /// transactions, a four-hex-zero proof of work) on the same broker (needs -b).
    Peer(crate::bench::peer::PeerArgs),
    /// The bridge's throughput as a ratio of chained produce, and the lag it adds.
    Bridge(crate::bench::bridge::BenchBridgeArgs),
}

/// Runs the bench in `--dir` (or a temporary directory, removed after), or on Kafka.
pub fn run(g: &Global, a: &BenchArgs) -> Result<Outcome> {
    match &a.what {
        Some(BenchWhat::Witness(w)) => {
            return crate::bench::witness::run(w).map(|()| Outcome::Clean)
        }
        Some(BenchWhat::Archive(b)) => {
            return crate::bench::archive::run(b).map(|()| Outcome::Clean)
        }
        Some(BenchWhat::Monitor(m)) => return crate::bench::monitor::run(g, m),
        Some(BenchWhat::Chart(c)) => return crate::bench::chart::run(c).map(|()| Outcome::Clean),
        Some(BenchWhat::Peer(p)) => {
            let Some(brokers) = &g.brokers else {
                bail!("bench peer runs on Kafka: pass -b BROKERS (the tutorial's node is a Kafka client)");
            };
            let log = open_log(g, false)?;
            return crate::bench::peer::run(log.as_ref(), brokers, p).map(|()| Outcome::Clean);
        }
        Some(BenchWhat::Bridge(b)) => return crate::bench::bridge::run(g, b),
        None => {}
    }
    if a.records == 0 || a.size == 0 || a.repeat == 0 {
        bail!("--records, --size and --repeat must be positive");
    }
    if a.delete_topics && g.brokers.is_none() {
        bail!(
            "--delete-topics is for Kafka (-b BROKERS): on the embedded log every repetition \
             has a log of its own, deleted when it ends"
        );
    }
    let p = Params {
        records: a.records,
        size: a.size,
        ledger_txs: a.ledger_txs,
        repeat: a.repeat,
        json: a.json,
    };
    let (dir, temporary) = match &a.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("kchain-bench-{}", std::process::id())),
            true,
        ),
    };
    let result = if let Some(brokers) = &g.brokers {
        on_kafka(g, brokers, &p, a.delete_topics)
    } else {
        let logs = BenchLog::PerRepetition {
            dir: dir.clone(),
            options: EmbeddedOptions {
                fsync: FsyncPolicy::IntervalMs(FSYNC_MS),
                ..EmbeddedOptions::default()
            },
            keep: !temporary,
        };
        let label = format!("embedded log (fsync every {FSYNC_MS} ms)");
        measure(&p, &logs, &label)
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|()| Outcome::Clean)
}

/// The bench on the Kafka cluster at `brokers`, deleting each repetition's topics when
/// `delete_topics`.
#[cfg(feature = "kafka")]
fn on_kafka(g: &Global, brokers: &str, p: &Params, delete_topics: bool) -> Result<()> {
    let log = crate::global::open_kafka_log(g, brokers)?;
    crate::global::announce(g, &log);
    let delete = |name: &str| log.delete_topic(name);
    let logs = BenchLog::Shared {
        log: &log,
        delete: delete_topics.then_some(&delete),
    };
    measure(p, &logs, "Kafka")
}

/// Without the Kafka backend: the error `-b` gives everywhere.
#[cfg(not(feature = "kafka"))]
fn on_kafka(g: &Global, _brokers: &str, _p: &Params, _delete: bool) -> Result<()> {
    open_log(g, false).map(drop)
}
