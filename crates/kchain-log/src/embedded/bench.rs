//! Throughput of the embedded backend, measured side by side with a raw `write(2)` /
//! `read(2)` of the same bytes. Ignored by default; run in release mode:
//!
//! ```text
//! cargo test --release -p kchain-log --lib -- --ignored --nocapture throughput
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Header, Log, Record, TopicConfig};

const RECORDS: u64 = 2_000_000;
const BATCH: usize = 1_000;
const POLL: usize = 1_000;

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Appends `RECORDS` copies of `record` in batches of `BATCH`, then reads them back; returns
/// (append, read) durations and the bytes written.
fn run(record: &Record) -> (Duration, Duration, u64) {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::IntervalMs(100),
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::create(dir.path(), opts).unwrap();
    log.create_topic("bench", &TopicConfig::default()).unwrap();
    let batch = vec![record.clone(); BATCH];
    let mut appender = log.appender("bench", 0).unwrap();
    let t = Instant::now();
    for _ in 0..RECORDS / BATCH as u64 {
        appender.append(&batch).unwrap();
    }
    appender.flush().unwrap();
    let append = t.elapsed();
    drop(appender);

    let t = Instant::now();
    let mut reader = log.reader("bench", 0, 0).unwrap();
    let mut n = 0;
    while n < RECORDS {
        let got = reader.poll(POLL, Duration::ZERO).unwrap();
        assert!(!got.is_empty());
        n += got.len() as u64;
    }
    let read = t.elapsed();
    let bytes = std::fs::read_dir(dir.path().join("topics/bench/0"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    (append, read, bytes)
}

/// Writes `bytes` in 256 KiB writes (syncing every 100 ms), then reads them back in 512 KiB
/// reads: what the disk and page cache allow.
fn raw(bytes: u64) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw");
    let chunk = vec![7u8; 256 * 1024];
    let mut f = File::create(&path).unwrap();
    let t = Instant::now();
    let mut last_sync = Instant::now();
    let mut written = 0;
    while written < bytes {
        f.write_all(&chunk).unwrap();
        written += chunk.len() as u64;
        if last_sync.elapsed() >= Duration::from_millis(100) {
            f.sync_data().unwrap();
            last_sync = Instant::now();
        }
    }
    f.sync_data().unwrap();
    let write = t.elapsed();
    let t = Instant::now();
    let mut f = File::open(&path).unwrap();
    let mut buf = vec![0u8; 512 * 1024];
    while f.read(&mut buf).unwrap() > 0 {}
    (write, t.elapsed())
}

#[test]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
fn throughput() {
    let plain = Record {
        key: None,
        value: Some(vec![0xab; 256]),
        headers: vec![],
        timestamp_ms: 1_700_000_000_000,
    };
    let chained = Record {
        key: Some(vec![1; 16]),
        value: Some(vec![0xab; 256]),
        headers: vec![
            Header::new("kchain.v", vec![1]),
            Header::new("kchain.height", vec![0; 8]),
            Header::new("kchain.prev", vec![0; 32]),
        ],
        timestamp_ms: 1_700_000_000_000,
    };
    for (name, record) in [
        ("256 B value", &plain),
        ("256 B value + key + 3 headers", &chained),
    ] {
        let (append, read, bytes) = run(record);
        let (raw_write, raw_read) = raw(bytes);
        println!(
            "{name}: {RECORDS} records in batches of {BATCH}, {:.0} MB",
            bytes as f64 / 1e6
        );
        println!(
            "  append {:>9.0} records/s {:>5.0} MB/s | raw write {:>5.0} MB/s | ratio {:.2}",
            rate(RECORDS, append),
            rate(bytes, append) / 1e6,
            rate(bytes, raw_write) / 1e6,
            raw_write.as_secs_f64() / append.as_secs_f64(),
        );
        println!(
            "  read   {:>9.0} records/s {:>5.0} MB/s | raw read  {:>5.0} MB/s | ratio {:.2}",
            rate(RECORDS, read),
            rate(bytes, read) / 1e6,
            rate(bytes, raw_read) / 1e6,
            raw_read.as_secs_f64() / read.as_secs_f64(),
        );
    }
}

/// What reopening a partition's appender costs when its last segment holds `bytes` of
/// records: the median of 9 open-and-drop cycles after the appender that wrote them was
/// dropped by this handle (the ledger's sealer reopens its blocks appender this way), and
/// the same through a fresh handle of the same directory (a new process: full recovery).
#[test]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
fn reopen() {
    let record = Record {
        key: None,
        value: Some(vec![0xab; 256]),
        headers: vec![],
        timestamp_ms: 1_700_000_000_000,
    };
    let batch = vec![record; BATCH];
    for records in [10_000u64, 100_000, 400_000] {
        let dir = tempfile::tempdir().unwrap();
        let opts = EmbeddedOptions {
            fsync: FsyncPolicy::IntervalMs(100),
            ..EmbeddedOptions::default()
        };
        let log = EmbeddedLog::create(dir.path(), opts.clone()).unwrap();
        log.create_topic("bench", &TopicConfig::default()).unwrap();
        let mut appender = log.appender("bench", 0).unwrap();
        for _ in 0..records / BATCH as u64 {
            appender.append(&batch).unwrap();
        }
        drop(appender);
        let median = |fresh: bool| {
            let mut times: Vec<Duration> = (0..9)
                .map(|_| {
                    let other = fresh.then(|| EmbeddedLog::open(dir.path(), opts.clone()));
                    let log = other.as_ref().map_or(&log, |o| o.as_ref().unwrap());
                    let t = Instant::now();
                    drop(log.appender("bench", 0).unwrap());
                    t.elapsed()
                })
                .collect();
            times.sort();
            times[4]
        };
        let same = median(false);
        let fresh = median(true);
        println!(
            "reopen after {records} records: same handle {:>8.1} µs, fresh handle {:>8.1} µs",
            same.as_secs_f64() * 1e6,
            fresh.as_secs_f64() * 1e6,
        );
    }
}

/// Why raw append swings: appends 1,000,000 records of 256 B to fresh topics, alternately
/// with fsync every 100 ms (as `kchain bench`) and never, in `BENCH_DIR` (default: a
/// temporary directory; `/dev/shm` for tmpfs), printing each round.
#[test]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
fn raw_append_swing() {
    let base =
        std::env::var("BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let dir = tempfile::tempdir_in(base).unwrap();
    let record = Record {
        key: None,
        value: Some(vec![0xab; 256]),
        headers: vec![],
        timestamp_ms: 1_700_000_000_000,
    };
    let batch = vec![record; 8192];
    let rounds = std::env::var("ROUNDS").map_or(3, |r| r.parse().unwrap());
    for round in 0..rounds {
        for fsync in [FsyncPolicy::IntervalMs(100), FsyncPolicy::Never] {
            let opts = EmbeddedOptions {
                fsync,
                ..EmbeddedOptions::default()
            };
            let log =
                EmbeddedLog::create(dir.path().join(format!("{round}-{fsync:?}")), opts).unwrap();
            log.create_topic("t", &TopicConfig::default()).unwrap();
            let mut app = log.appender("t", 0).unwrap();
            let cpu0 = thread_cpu();
            let t = Instant::now();
            let mut slowest = Duration::ZERO;
            for _ in 0..1_000_000 / 8192 {
                let b = Instant::now();
                app.append(&batch).unwrap();
                slowest = slowest.max(b.elapsed());
            }
            app.flush().unwrap();
            let took = t.elapsed();
            let cpu = thread_cpu() - cpu0;
            println!(
                "round {round} {fsync:?}: {:.3} s (on cpu {:.2} s) = {:.2} M/s, slowest batch {:.1} ms",
                took.as_secs_f64(),
                cpu,
                1.0 / took.as_secs_f64(),
                slowest.as_secs_f64() * 1e3
            );
        }
    }
}

/// This thread's user + system CPU time in seconds (`crate::cpu::thread`).
fn thread_cpu() -> f64 {
    crate::cpu::thread().unwrap_or(0.0)
}
