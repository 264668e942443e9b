//! `kchain bench bridge`: the bridge's throughput as a ratio of chained produce on the same
//! records (both measured in this run, best of two rounds each, alternating), and the
//! end-to-end lag it adds at a steady rate.
//!
//! ```text
//!  ratio:  N raw records ──► ChainWriter::append (chained produce of the same items)
//!                       └──► Bridge::run raw -> chained (read, add kchain.src, append)
//!  lag:    writer thread, RATE records/s, each value its append time (µs) ──► RAW
//!          Bridge::run (following) ──► CHAINED ──► reader: now - value = lag, p50 / p99
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use kchain_core::WriterKey;
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, Record, TopicConfig};
use kchain_topic::{Bridge, BridgeOptions, ChainWriter, CheckpointOptions, WriterOptions};

use super::chained::chunked;
use super::raw::{rate, values, BATCH};
use crate::global::{open_log, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct BenchBridgeArgs {
    /// Records of the throughput measurement.
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Records per second the lag measurement produces.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds the lag measurement runs.
    #[arg(long, default_value_t = 5)]
    pub lag_secs: u64,
    /// Print the measurements as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Directory for the data [default: a temporary directory, removed after].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs both measurements on the embedded log (or Kafka with `-b`) and prints them.
pub fn run(g: &Global, a: &BenchBridgeArgs) -> Result<Outcome> {
    if a.records == 0 || a.size == 0 || a.rate == 0 || a.lag_secs == 0 {
        bail!("--records, --size, --rate and --lag-secs must be positive");
    }
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kchain-bench-bridge-{}", std::process::id()))
    });
    let (log, backend): (Box<dyn Log>, String) = match g.brokers {
        Some(_) => (open_log(g, false)?, "Kafka".into()),
        None => {
            let opts = EmbeddedOptions {
                fsync: FsyncPolicy::IntervalMs(crate::bench::FSYNC_MS),
                ..EmbeddedOptions::default()
            };
            let log = EmbeddedLog::create(dir.join("log"), opts).context("bench directory")?;
            let label = format!("embedded log (fsync every {} ms)", crate::bench::FSYNC_MS);
            (Box::new(log), label)
        }
    };
    let result = measure(log.as_ref(), a);
    drop(log);
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (produce, bridge, lag) = result?;
    let n = a.records;
    let ratio = produce.as_secs_f64() / bridge.as_secs_f64().max(1e-9);
    if a.json {
        let v = serde_json::json!({
            "backend": backend, "records": n, "size": a.size,
            "chained_produce_per_s": rate(n, produce), "bridge_per_s": rate(n, bridge),
            "ratio": ratio, "lag_rate": a.rate, "lag_records": lag.len(),
            "lag_p50_ms": percentile(&lag, 0.50), "lag_p99_ms": percentile(&lag, 0.99),
        });
        println!("{v}");
    } else {
        println!("bridge bench on {backend}: {n} records of {} bytes", a.size);
        println!("  chained produce   {:>10.0} records/s", rate(n, produce));
        println!(
            "  bridge            {:>10.0} records/s   ratio {ratio:.2}",
            rate(n, bridge)
        );
        println!(
            "  lag at {} records/s ({} records): p50 {:.1} ms, p99 {:.1} ms",
            a.rate,
            lag.len(),
            percentile(&lag, 0.50),
            percentile(&lag, 0.99)
        );
    }
    Ok(Outcome::Clean)
}

/// Chained produce and bridge times (best of two each), and the lags in milliseconds.
fn measure(log: &dyn Log, a: &BenchBridgeArgs) -> Result<(Duration, Duration, Vec<f64>)> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let key = WriterKey::generate("bench");
    let vals = values(a.records, a.size);
    let raw = format!("kchain-bench-bridge-raw-{stamp}");
    log.create_topic(&raw, &TopicConfig::default())?;
    let mut app = log.appender(&raw, 0)?;
    for chunk in chunked(&vals, stamp) {
        let recs: Vec<Record> = (chunk.into_iter())
            .map(|it| Record {
                key: it.key,
                value: it.value,
                headers: Vec::new(),
                timestamp_ms: it.timestamp_ms,
            })
            .collect();
        app.append(&recs)?;
    }
    drop(app);
    let (mut produce, mut bridge) = (Duration::MAX, Duration::MAX);
    for round in 0..2 {
        let topic = format!("kchain-bench-bridge-produce-{stamp}-{round}");
        log.create_topic(&topic, &TopicConfig::default())?;
        // The items are made before the clock starts, as the raw records were.
        let chunks = chunked(&vals, stamp);
        let t = Instant::now();
        let mut w = ChainWriter::open(log, &topic, 0, &key, WriterOptions::default())?
            .with_checkpoints(log, CheckpointOptions::default())?;
        for chunk in chunks {
            w.append(chunk)?;
        }
        w.flush()?;
        produce = produce.min(t.elapsed());
        // Its topic too is created before the clock starts, as chained produce's was.
        let chained = format!("kchain-bench-bridge-chained-{stamp}-{round}");
        log.create_topic(&chained, &TopicConfig::default())?;
        let t = Instant::now();
        let copied = copy_until(log, &raw, &chained, &key, a.records, None)?;
        bridge = bridge.min(t.elapsed());
        if copied != a.records {
            bail!("the bridge copied {copied} of {} records", a.records);
        }
    }
    let lag = lag(log, a, &key, stamp)?;
    Ok((produce, bridge, lag))
}

/// Runs a bridge from `raw` to `chained` until it has copied `n` records or `stop` is set;
/// returns the records copied. Stops on its own count rather than on end offsets (tansu's
/// memory engine reports them too low).
fn copy_until(
    log: &dyn Log,
    raw: &str,
    chained: &str,
    key: &WriterKey,
    n: u64,
    stop: Option<&AtomicBool>,
) -> Result<u64> {
    let options = BridgeOptions {
        status_every: Duration::from_millis(2),
        poll_wait: Duration::from_millis(5),
        ..BridgeOptions::default()
    };
    let bridge = Bridge::open(log, raw, chained, key, options)?;
    let reached = AtomicBool::new(false);
    let copied = AtomicU64::new(0);
    let halt =
        || reached.load(Ordering::Relaxed) || stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let status = bridge.run(&halt, &mut |s| {
        let total: u64 = s.iter().map(|p| p.copied).sum();
        copied.store(total, Ordering::Relaxed);
        if total >= n {
            reached.store(true, Ordering::Relaxed);
        }
    })?;
    Ok(status.iter().map(|p| p.copied).sum())
}

/// The lag measurement: records at `a.rate` per second for `a.lag_secs`, each value its
/// append time in microseconds since the bench started; the lag of each chained record is
/// when a reader of the chained topic first sees it, minus that.
fn lag(log: &dyn Log, a: &BenchBridgeArgs, key: &WriterKey, stamp: u128) -> Result<Vec<f64>> {
    let raw = format!("kchain-bench-bridge-lag-raw-{stamp}");
    let chained = format!("kchain-bench-bridge-lag-chained-{stamp}");
    log.create_topic(&raw, &TopicConfig::default())?;
    log.create_topic(&chained, &TopicConfig::default())?;
    let total = a.rate * a.lag_secs;
    let t0 = Instant::now();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| -> Result<Vec<f64>> {
        let bridge = s.spawn(|| copy_until(log, &raw, &chained, key, u64::MAX, Some(&stop)));
        let writer = s.spawn(|| -> Result<()> {
            let mut app = log.appender(&raw, 0)?;
            let tick = Duration::from_millis(10);
            let mut sent = 0u64;
            while sent < total {
                let due = (a.rate as u128 * t0.elapsed().as_millis() / 1000) as u64;
                let now_us = t0.elapsed().as_micros().to_string().into_bytes();
                let recs: Vec<Record> = (sent..due.min(total))
                    .map(|_| Record {
                        value: Some(now_us.clone()),
                        timestamp_ms: kchain_core::time::now_ms(),
                        ..Record::default()
                    })
                    .collect();
                if !recs.is_empty() {
                    app.append(&recs)?;
                    sent += recs.len() as u64;
                }
                std::thread::sleep(tick);
            }
            Ok(())
        });
        let mut reader = log.reader(&chained, 0, 0)?;
        let mut lags = Vec::with_capacity(total as usize);
        let deadline = Instant::now() + Duration::from_secs(a.lag_secs + 60);
        while (lags.len() as u64) < total && Instant::now() < deadline {
            for r in reader.poll(BATCH, Duration::from_millis(2))? {
                let seen = t0.elapsed().as_micros() as f64;
                let sent: f64 = (r.record.value.as_deref())
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                    .unwrap_or(seen);
                lags.push((seen - sent) / 1000.0);
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer thread")?;
        bridge.join().expect("bridge thread")?;
        if (lags.len() as u64) < total {
            bail!("the chained topic showed {} of {total} records", lags.len());
        }
        Ok(lags)
    })
}

/// The `q` quantile of `v` (nearest rank), 0 for none.
fn percentile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n => s[((n as f64 * q).ceil() as usize).clamp(1, n) - 1],
    }
}
