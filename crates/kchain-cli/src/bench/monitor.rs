//! `kchain bench monitor`: the monitor's sustained verify rate beside `verify` on the same
//! chain (a ratio, both measured in this run), and a soak that produces at a fixed rate
//! while the monitor follows, sampling the process's resident memory.
//!
//! ```text
//!  ratio: write N records ──► verify from genesis (TopicVerifier, 2 threads, best of 2)
//!                        ├──► verify with its checkpoints held to the chain (best of 2)
//!                        ├──► Monitor::run_once from an empty state (best of 2)
//!                        └──► a chain tree of N leaves alone (what verify does not build)
//!  soak:  writer thread, RATE records/s in 100 ms batches ─┐
//!         Monitor::run (100 ms passes) ───────────────────┼─► RSS every 10 s, entries == produced
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use kchain_core::{CheckpointTrust, Item, Trust, WriterKey};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, TopicConfig};
use kchain_monitor::{Alerts, Monitor, MonitorOptions};
use kchain_topic::{ChainWriter, CheckpointOptions, TopicVerifier, VerifyOptions, WriterOptions};

use crate::global::{open_log, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct BenchMonitorArgs {
    /// Records of the chain the ratio is measured on.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Soak for this many seconds instead of measuring the ratio.
    #[arg(long, default_value_t = 0)]
    pub soak_secs: u64,
    /// Records per second the soak produces.
    #[arg(long, default_value_t = 50_000)]
    pub rate: u64,
    /// Directory for the data [default: a temporary directory, removed after].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs the ratio or the soak on the embedded log (or Kafka with `-b`).
pub fn run(g: &Global, a: &BenchMonitorArgs) -> Result<Outcome> {
    if a.records == 0 || a.size == 0 || a.rate == 0 {
        bail!("--records, --size and --rate must be positive");
    }
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kchain-bench-monitor-{}", std::process::id()))
    });
    let log: Box<dyn Log> = if g.brokers.is_some() {
        open_log(g, false)?
    } else {
        let opts = EmbeddedOptions {
            fsync: FsyncPolicy::IntervalMs(crate::bench::FSYNC_MS),
            ..EmbeddedOptions::default()
        };
        Box::new(EmbeddedLog::create(dir.join("log"), opts).context("bench directory")?)
    };
    let key = WriterKey::generate("bench");
    let trust = super::bench_trust(&key);
    let topic = format!("kchain-bench-monitor-{}", kchain_core::time::now_ms());
    log.create_topic(&topic, &TopicConfig::default())?;
    let r = if a.soak_secs > 0 {
        soak(log.as_ref(), &trust, &key, &topic, a, &dir)
    } else {
        ratio(log.as_ref(), &trust, &key, &topic, a, &dir)
    };
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r.map(|()| Outcome::Clean)
}

fn items(from: u64, n: u64, size: usize) -> Vec<Item> {
    (from..from + n)
        .map(|i| Item {
            key: Some(format!("k{}", i % 1000).into_bytes()),
            value: Some(vec![b'a' + (i % 26) as u8; size]),
            headers: Vec::new(),
            timestamp_ms: kchain_core::time::now_ms(),
        })
        .collect()
}

fn ratio(
    log: &dyn Log,
    trust: &Trust,
    key: &WriterKey,
    topic: &str,
    a: &BenchMonitorArgs,
    dir: &std::path::Path,
) -> Result<()> {
    // Written as a writer writes by default: with signed checkpoints (every 100,000 entries
    // and at the end), which both `verify` and the monitor hold to the chain.
    let mut w = ChainWriter::open(log, topic, 0, key, WriterOptions::default())?
        .with_checkpoints(log, CheckpointOptions::default())?;
    let mut done = 0;
    while done < a.records {
        let n = (a.records - done).min(65_536);
        w.append(items(done, n, a.size))?;
        done += n;
    }
    w.flush()?;
    drop(w);
    let best = |f: &mut dyn FnMut() -> Result<Duration>| -> Result<Duration> { Ok(f()?.min(f()?)) };
    let verify = best(&mut || {
        let t = Instant::now();
        let opts = VerifyOptions {
            threads: 2,
            until: Some(a.records),
            ..VerifyOptions::default()
        };
        let r = TopicVerifier::new(trust)
            .options(opts)
            .verify_chains(log, topic)?;
        if !r.ok() {
            bail!("the benchmark chain did not verify: {r:?}");
        }
        Ok(t.elapsed())
    })?;
    // `kchain verify` as the command runs it: the chains, then the checkpoints held to them
    // (which builds the chain tree, as the monitor must).
    let policy = CheckpointTrust::default();
    let verify_all = best(&mut || {
        let t = Instant::now();
        let opts = VerifyOptions {
            threads: 2,
            until: Some(a.records),
            ..VerifyOptions::default()
        };
        let r = TopicVerifier::new(trust)
            .options(opts)
            .checkpoints(&policy)
            .verify(log, topic)?;
        let held = (r.checkpoints.as_ref())
            .is_some_and(|c| c.ok() && c.partitions.iter().all(|p| p.newest.is_some()));
        if !r.chain.ok() || !held {
            bail!("the benchmark chain and checkpoints did not verify: {r:?}");
        }
        Ok(t.elapsed())
    })?;
    let mut run = 0;
    let monitor = best(&mut || {
        run += 1;
        let state = dir.join(format!("state-{run}"));
        let opts = MonitorOptions::new(vec![topic.to_owned()], state);
        let alerts = Alerts::new(Box::new(std::io::stdout()), None);
        let t = Instant::now();
        let mut m = Monitor::open(log, trust, opts, alerts)?;
        m.run_once()?;
        if m.entries_verified() != a.records || m.findings() > 0 {
            bail!("the monitor verified {} entries", m.entries_verified());
        }
        Ok(t.elapsed())
    })?;
    // `verify` (without a checkpoint policy) builds no chain tree; the monitor must, to hold
    // checkpoints to it. The second ratio adds the tree's cost to `verify`'s time: what
    // `verify` would take if it built the tree too, serially.
    let tree = best(&mut || Ok(tree_time(a.records)))?;
    let rate = |d: Duration| a.records as f64 / d.as_secs_f64();
    println!(
        "monitor: {:.0} records/s, verify: {:.0} records/s, ratio {:.2} ({} records of {} bytes)",
        rate(monitor),
        rate(verify),
        rate(monitor) / rate(verify),
        a.records,
        a.size
    );
    println!(
        "verify + the chain tree (built serially, {:.0} ms): {:.0} records/s, ratio {:.2}",
        tree.as_secs_f64() * 1000.0,
        rate(verify + tree),
        rate(monitor) / rate(verify + tree)
    );
    println!(
        "verify with its checkpoints held to the chain (as `kchain verify` runs): {:.0} \
         records/s, ratio {:.2}",
        rate(verify_all),
        rate(monitor) / rate(verify_all)
    );
    // The chain tree grows during the chain pass: checkpoints should cost its hashing
    // (3 SHA-256 compressions per entry against the chain's 7), not a second read.
    println!(
        "verify with checkpoints / verify chains only: {:.2}",
        rate(verify_all) / rate(verify)
    );
    Ok(())
}

/// How long growing a chain tree of `n` leaves takes on one thread (a leaf hash and the
/// tree's node hashes per entry, as the monitor grows it).
fn tree_time(n: u64) -> Duration {
    let t = Instant::now();
    let mut tree = kchain_core::merkle::TreeBuilder::new();
    let mut entry = [0u8; 32];
    for i in 0..n {
        entry[..8].copy_from_slice(&i.to_le_bytes());
        tree.push(&kchain_core::chain_leaf(&entry));
    }
    std::hint::black_box(tree.root());
    t.elapsed()
}

fn soak(
    log: &dyn Log,
    trust: &Trust,
    key: &WriterKey,
    topic: &str,
    a: &BenchMonitorArgs,
    dir: &std::path::Path,
) -> Result<()> {
    let stop = AtomicBool::new(false);
    let per_tick = (a.rate / 10).max(1);
    let produced = std::thread::scope(|s| -> Result<u64> {
        let monitor = s.spawn(|| -> Result<u64> {
            let mut opts = MonitorOptions::new(vec![topic.to_owned()], dir.join("state"));
            opts.interval = Duration::from_millis(100);
            let alerts = Alerts::new(Box::new(std::io::stdout()), None);
            let mut m = Monitor::open(log, trust, opts, alerts)?;
            m.run(&|| stop.load(Ordering::SeqCst))?;
            m.run_once()?;
            Ok(m.entries_verified())
        });
        let mut w = ChainWriter::open(log, topic, 0, key, WriterOptions::default())?;
        let started = Instant::now();
        let mut produced = 0;
        let mut next_sample = Duration::ZERO;
        while started.elapsed() < Duration::from_secs(a.soak_secs) {
            let due = started.elapsed().as_millis() as u64 * a.rate / 1000;
            if produced < due {
                let n = (due - produced).min(per_tick * 4);
                w.append(items(produced, n, a.size))?;
                produced += n;
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
            if started.elapsed() >= next_sample {
                println!(
                    "t={:>4}s produced={produced} rss={} MiB",
                    next_sample.as_secs(),
                    rss_kib() / 1024
                );
                next_sample += Duration::from_secs(10);
            }
        }
        stop.store(true, Ordering::SeqCst);
        let verified = monitor.join().expect("the monitor thread")?;
        if verified != produced {
            bail!("the monitor verified {verified} entries of {produced} produced");
        }
        Ok(produced)
    })?;
    println!(
        "soak: {produced} records in {} s ({} records/s asked), every one verified once; rss {} MiB at the end",
        a.soak_secs,
        a.rate,
        rss_kib() / 1024
    );
    Ok(())
}

/// This process's resident memory in KiB (`VmRSS`), 0 where /proc is not there.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
