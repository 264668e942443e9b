//! The floors the chained measurements are held against: raw SHA-256 over each value, and
//! the backend's own append and read with no chain.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kchain_core::{sha256, sha256_x2};
use kchain_log::{Log, Record, TopicConfig};

/// Records per append batch.
pub(crate) const BATCH: usize = 8192;

/// `n` pseudo-random lowercase values of `size` bytes (the same every run).
pub(crate) fn values(n: u64, size: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b'a' + (x % 26) as u8
                })
                .collect()
        })
        .collect()
}

/// Records per second.
pub(crate) fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Raw SHA-256 over each value: the floor any verifier of these records must pay.
pub(crate) fn sha(vals: &[Vec<u8>]) -> Duration {
    let t = Instant::now();
    let mut acc = 0u8;
    for v in vals {
        acc ^= sha256(v)[0];
    }
    std::hint::black_box(acc);
    t.elapsed()
}

/// Raw SHA-256 over each value, two values at a time ([`kchain_core::sha256_x2`]): what the
/// same hashing costs where the CPU runs two messages' rounds interleaved, as the verifier
/// does. Informational: the verify target stays against [`sha`], one value at a time.
pub(crate) fn sha_x2(vals: &[Vec<u8>]) -> Duration {
    let t = Instant::now();
    let mut acc = 0u8;
    let mut pairs = vals.chunks_exact(2);
    for p in &mut pairs {
        let [a, b] = sha256_x2(&p[0], &p[1]);
        acc ^= a[0] ^ b[0];
    }
    for v in pairs.remainder() {
        acc ^= sha256(v)[0];
    }
    std::hint::black_box(acc);
    t.elapsed()
}

/// Raw log append of `vals` to a new `topic`, no chain: what the storage alone costs.
pub(crate) fn append(log: &dyn Log, topic: &str, vals: &[Vec<u8>]) -> Result<Duration> {
    log.create_topic(topic, &TopicConfig::default())?;
    let raw_records: Vec<Record> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            key: None,
            value: Some(v.clone()),
            headers: Vec::new(),
            timestamp_ms: 1_700_000_000_000 + i as i64,
        })
        .collect();
    let mut app = log.appender(topic, 0)?;
    let t = Instant::now();
    for chunk in raw_records.chunks(BATCH) {
        app.append(chunk)?;
    }
    app.flush()?;
    Ok(t.elapsed())
}

/// Raw read of the `n` records of `topic`, no verification.
pub(crate) fn read(log: &dyn Log, topic: &str, n: u64) -> Result<Duration> {
    let mut r = log.reader(topic, 0, 0)?;
    let t = Instant::now();
    let mut got = 0;
    while got < n {
        let recs = r.poll(16384, Duration::from_secs(5))?;
        if recs.is_empty() {
            bail!("raw read stopped at {got} of {n}");
        }
        got += recs.len() as u64;
    }
    Ok(t.elapsed())
}
