//! `kchain bench bridge`: the bridge's throughput as a ratio of chained produce on the same
//! records, over rounds that alternate which of the two goes first (median and spread of the
//! per-round ratios), and the end-to-end lag the bridge adds at a steady rate.
//!
//! ```text
//!  once:   N raw records ──► RAW
//!  round r (r even: produce first; r odd: bridge first), each on fresh topics:
//!    produce: open ChainWriter (+ checkpoints) │ clock ▶ append N items, flush ◀ clock
//!    bridge:  open Bridge; its writer opens    │ clock ▶ read RAW, add kchain.src, append,
//!                                              │         flush ◀ clock
//!  lag:    writer thread, RATE records/s, each value its append time (µs) ──► RAW
//!          Bridge::run (following) ──► CHAINED ──► reader: now - value = lag, p50 / p99
//! ```
//!
//! **Like with like.** Both clocks start once the chained topic exists and its writer is
//! open: opening an idempotent producer (a connection, metadata, a producer id) costs 50 to
//! 600 ms against tansu, at random, and was inside both clocks before, which made chained
//! produce alone swing 128k-342k/s between runs. Both write with the same writer options and
//! checkpoints, and both clocks stop after the final flush and checkpoint. The bridge's clock
//! includes opening its reader of the raw topic, which only the bridge needs (it starts
//! before the writer's checkpoint state is rebuilt, which on a fresh topic is at once).
//!
//! **CPU beside wall time.** Each side's CPU seconds (this process's, and the broker's with
//! `--broker-pid`) are taken over the same span: on cores shared with other work the wall
//! rates of single rounds swing by a factor of two, while the CPU each record costs moves
//! far less, so `cpu_ratio` (chained produce's CPU over the bridge's) says what the bridge
//! costs beside chained produce even when the wall figure cannot.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use kchain_core::WriterKey;
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, Record, TopicConfig};
use kchain_topic::{Bridge, BridgeOptions, ChainWriter, CheckpointOptions, WriterOptions};

use super::archive::{own_cpu, server_cpu};
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
    /// Rounds of the throughput measurement (each: chained produce and the bridge, in
    /// alternating order); the ratio is the median of the rounds' ratios.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// The broker's process id (tansu on this machine), whose CPU time is counted beside
    /// kchain's in the CPU figures.
    #[arg(long)]
    pub broker_pid: Option<u32>,
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
    if a.records == 0 || a.size == 0 || a.rate == 0 || a.lag_secs == 0 || a.rounds == 0 {
        bail!("--records, --size, --rounds, --rate and --lag-secs must be positive");
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
    let (rounds, lag) = result?;
    print(a, &backend, &rounds, &lag);
    Ok(Outcome::Clean)
}

/// One round: the times of chained produce and of the bridge, each from its writer's open
/// to its final flush, how long each took to open, and the CPU seconds each used meanwhile.
#[derive(Clone, Copy, Debug)]
struct Round {
    produce: Timed,
    bridge: Timed,
}

/// One side of a round.
#[derive(Clone, Copy, Debug, Default)]
struct Timed {
    wall: Duration,
    open: Duration,
    /// CPU seconds of this process (and the broker's, with `--broker-pid`) over `wall`.
    cpu: f64,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.produce.wall.as_secs_f64() / self.bridge.wall.as_secs_f64().max(1e-9)
    }

    fn cpu_ratio(&self) -> f64 {
        self.produce.cpu / self.bridge.cpu.max(1e-9)
    }
}

/// CPU seconds so far of this process and of the broker's (when its pid is given).
fn cpu_now(broker: Option<u32>) -> Result<f64> {
    Ok(own_cpu() + broker.map(server_cpu).transpose()?.unwrap_or(0.0))
}

/// The median of `v` (the mean of the middle two for an even count), 0 for none.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn print(a: &BenchBridgeArgs, backend: &str, rounds: &[Round], lag: &[f64]) {
    let n = a.records;
    let ratios: Vec<f64> = rounds.iter().map(Round::ratio).collect();
    let ratio = median(ratios.clone());
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    let produce = median(rounds.iter().map(|r| rate(n, r.produce.wall)).collect());
    let bridge = median(rounds.iter().map(|r| rate(n, r.bridge.wall)).collect());
    let ms = |f: fn(&Round) -> Duration| {
        median(rounds.iter().map(|r| f(r).as_secs_f64() * 1e3).collect())
    };
    let us = |f: fn(&Round) -> f64| median(rounds.iter().map(|r| f(r) * 1e6 / n as f64).collect());
    let (produce_us, bridge_us) = (us(|r| r.produce.cpu), us(|r| r.bridge.cpu));
    let cpu_ratio = median(rounds.iter().map(Round::cpu_ratio).collect());
    let cpu_of = match a.broker_pid {
        Some(_) => "kchain and the broker",
        None => "kchain",
    };
    let (p50, p99) = (percentile(lag, 0.50), percentile(lag, 0.99));
    if a.json {
        let rates = |f: fn(&Round) -> Duration| -> Vec<f64> {
            rounds.iter().map(|r| rate(n, f(r))).collect()
        };
        let v = serde_json::json!({
            "backend": backend, "records": n, "size": a.size, "rounds": rounds.len(),
            "chained_produce_per_s": produce, "bridge_per_s": bridge,
            "ratio": ratio, "ratio_min": lo, "ratio_max": hi, "ratios": ratios,
            "chained_produce_per_s_rounds": rates(|r| r.produce.wall),
            "bridge_per_s_rounds": rates(|r| r.bridge.wall),
            "produce_open_ms": ms(|r| r.produce.open), "bridge_open_ms": ms(|r| r.bridge.open),
            "cpu_of": cpu_of, "produce_cpu_us_per_record": produce_us,
            "bridge_cpu_us_per_record": bridge_us, "cpu_ratio": cpu_ratio,
            "lag_rate": a.rate, "lag_records": lag.len(),
            "lag_p50_ms": p50, "lag_p99_ms": p99,
        });
        println!("{v}");
        return;
    }
    println!(
        "bridge bench on {backend}: {n} records of {} bytes, {} rounds (medians)",
        a.size,
        rounds.len()
    );
    println!("  chained produce   {produce:>10.0} records/s");
    println!("  bridge            {bridge:>10.0} records/s");
    println!("  bridge / chained produce   {ratio:.3} ({lo:.3}-{hi:.3})");
    println!(
        "  writer opening, not timed: produce {:.0} ms, bridge {:.0} ms",
        ms(|r| r.produce.open),
        ms(|r| r.bridge.open)
    );
    println!(
        "  CPU of {cpu_of} per record: produce {produce_us:.2} us, bridge {bridge_us:.2} us, \
         ratio {cpu_ratio:.3}"
    );
    println!(
        "  lag at {} records/s ({} records): p50 {p50:.1} ms, p99 {p99:.1} ms",
        a.rate,
        lag.len(),
    );
}

/// The rounds (see the module diagram), and the lags in milliseconds.
fn measure(log: &dyn Log, a: &BenchBridgeArgs) -> Result<(Vec<Round>, Vec<f64>)> {
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
    let mut rounds = Vec::with_capacity(a.rounds);
    for round in 0..a.rounds {
        let tag = format!("{stamp}-{round}");
        let produce = |_: ()| produce(log, &key, &vals, &tag, stamp, a.broker_pid);
        let bridge = |_: ()| bridge(log, &key, &raw, &tag, a.records, a.broker_pid);
        let (produce, bridge) = if round % 2 == 0 {
            let p = produce(())?;
            (p, bridge(())?)
        } else {
            let b = bridge(())?;
            (produce(())?, b)
        };
        rounds.push(Round { produce, bridge });
    }
    let lag = lag(log, a, &key, stamp)?;
    Ok((rounds, lag))
}

/// Chained produce of `vals` to a fresh topic, a signed batch a call (as `kchain produce`),
/// with checkpoints: the time from the open writer to the final flush, and the open's.
fn produce(
    log: &dyn Log,
    key: &WriterKey,
    vals: &[Vec<u8>],
    tag: &str,
    stamp: u128,
    broker: Option<u32>,
) -> Result<Timed> {
    let topic = format!("kchain-bench-bridge-produce-{tag}");
    log.create_topic(&topic, &TopicConfig::default())?;
    // The items are made before the clock starts, as the raw records were.
    let chunks = chunked(vals, stamp);
    let t = Instant::now();
    let mut w = ChainWriter::open(log, &topic, 0, key, WriterOptions::default())?
        .with_checkpoints(log, CheckpointOptions::default())?;
    let open = t.elapsed();
    let (t, cpu) = (Instant::now(), cpu_now(broker)?);
    for chunk in chunks {
        w.append(chunk)?;
    }
    w.flush()?;
    Ok(Timed {
        wall: t.elapsed(),
        open,
        cpu: cpu_now(broker)? - cpu,
    })
}

/// The bridge from `raw` to a fresh chained topic until it has copied `n` records: the time
/// from its open writer to its final flush, and the open's.
fn bridge(
    log: &dyn Log,
    key: &WriterKey,
    raw: &str,
    tag: &str,
    n: u64,
    broker: Option<u32>,
) -> Result<Timed> {
    let chained = format!("kchain-bench-bridge-chained-{tag}");
    log.create_topic(&chained, &TopicConfig::default())?;
    let t = Instant::now();
    // When its partition is open: the instant and the CPU seconds then.
    let opened = Mutex::new(None);
    let copied = copy_until(log, raw, &chained, key, n, None, &|| {
        let mut o = opened.lock().unwrap_or_else(|e| e.into_inner());
        if o.is_none() {
            *o = Some((Instant::now(), cpu_now(broker).unwrap_or(f64::NAN)));
        }
    })?;
    let (end, cpu) = (Instant::now(), cpu_now(broker)?);
    if copied != n {
        bail!("the bridge copied {copied} of {n} records");
    }
    let (opened, cpu0) = (opened.into_inner().unwrap_or_else(|e| e.into_inner()))
        .context("the bridge never reported its partition open")?;
    Ok(Timed {
        wall: end - opened,
        open: opened - t,
        cpu: cpu - cpu0,
    })
}

/// Runs a bridge from `raw` to `chained` until it has copied `n` records or `stop` is set,
/// calling `on_open` with each status report once its partitions are open; returns the
/// records copied. Stops on its own count rather than on end offsets (tansu's memory engine
/// reports them too low).
fn copy_until(
    log: &dyn Log,
    raw: &str,
    chained: &str,
    key: &WriterKey,
    n: u64,
    stop: Option<&AtomicBool>,
    on_open: &dyn Fn(),
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
        if s.iter().all(|p| p.open) {
            on_open();
        }
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
        let bridge =
            s.spawn(|| copy_until(log, &raw, &chained, key, u64::MAX, Some(&stop), &|| ()));
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
