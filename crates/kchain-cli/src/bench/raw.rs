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

/// Wall time and this process's CPU time (every thread) of one measurement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Took {
    pub(crate) wall: Duration,
    /// CPU seconds; NaN where the clock cannot be read.
    pub(crate) cpu: f64,
}

/// Times a measurement from [`Stopwatch::start`] to [`Stopwatch::stop`].
pub(crate) struct Stopwatch {
    wall: Instant,
    cpu: f64,
}

impl Stopwatch {
    pub(crate) fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: process_cpu(),
        }
    }

    pub(crate) fn stop(&self) -> Took {
        Took {
            wall: self.wall.elapsed(),
            cpu: process_cpu() - self.cpu,
        }
    }
}

/// CPU seconds of this process so far ([`kchain_log::cpu::process`]: every thread, living
/// or ended, to the nanosecond); NaN if the clock cannot be read.
fn process_cpu() -> f64 {
    kchain_log::cpu::process().unwrap_or(f64::NAN)
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
pub(crate) fn append(log: &dyn Log, topic: &str, vals: &[Vec<u8>]) -> Result<Took> {
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
    let t = Stopwatch::start();
    for chunk in raw_records.chunks(BATCH) {
        app.append(chunk)?;
    }
    app.flush()?;
    Ok(t.stop())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopwatch_counts_the_cpu_of_every_thread() {
        // Each thread spins until it has been on a CPU for 30 ms, however loaded the machine.
        let spin = || {
            let thread_cpu = || kchain_log::cpu::thread().expect("a thread CPU clock");
            let start = thread_cpu();
            let mut x = 0u64;
            while thread_cpu() - start < 0.030 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        };
        let t = Stopwatch::start();
        std::thread::scope(|s| {
            s.spawn(spin);
        });
        spin();
        let took = t.stop();
        // 60 ms at least, half of it from a thread that had ended when the stopwatch
        // stopped (more if other tests ran in this process meanwhile).
        assert!(took.cpu >= 0.059, "{took:?}");
        assert!(took.wall >= Duration::from_millis(30), "{took:?}");
    }
}
