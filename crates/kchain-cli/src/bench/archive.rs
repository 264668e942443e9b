//! `kchain bench archive`: archiving a chained topic to object storage and verifying it from
//! there, as ratios of `verify` on the local embedded log, measured side by side in one run,
//! repeated and reported as medians with their spread.
//!
//! ```text
//!  temporary embedded log ──► N chained records + a checkpoint          (once)
//!  each repetition, into a fresh archive prefix:
//!     verify (log)          ── the baseline: entries/s
//!     archive --to URL      ── entries/s, ratio to the baseline
//!     verify --archive URL  ── entries/s, ratio to the baseline
//!  each phase also: this process's CPU time (getrusage), and with --server-pid the object
//!  store server's (/proc/PID/stat), so a rate bound by the server shows as the server's
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use kchain_archive::{archive_topic, verify_archive, Store};
use kchain_core::{Item, TrustFile, WriterKey};
use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
use kchain_topic::{ChainWriter, CheckpointOptions, TopicVerifier, WriterOptions};
use serde_json::{json, Value};

use super::report::Stat;

#[derive(Args, Debug)]
pub struct BenchArchiveArgs {
    /// Records in the archived topic.
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// The archive [default: file:// in a temporary directory]; an s3:// URL measures an S3
    /// (or S3-compatible) store, configured from the environment.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Repetitions (each into a fresh archive prefix): figures are medians with their spread.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// The object store server's process id (an S3-compatible server on this machine): its
    /// CPU time per phase is reported beside kchain's (Linux /proc).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Print the measurements as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Runs the measurement in a temporary directory, removed after.
pub fn run(a: &BenchArchiveArgs) -> Result<()> {
    if a.records == 0 || a.repeat == 0 {
        bail!("--records and --repeat must be positive");
    }
    let dir = std::env::temp_dir().join(format!("kchain-bench-archive-{}", std::process::id()));
    let result = measure(a, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(a: &BenchArchiveArgs, dir: &std::path::Path) -> Result<()> {
    let log = EmbeddedLog::create(dir.join("log"), EmbeddedOptions::default())?;
    let topic = "kchain-bench-archive";
    log.create_topic(topic, &TopicConfig::default())?;
    let key = WriterKey::generate("bench");
    let mut w = ChainWriter::open(&log, topic, 0, &key, WriterOptions::default())?
        .with_checkpoints(&log, CheckpointOptions::default())?;
    let value = vec![b'x'; a.size];
    let mut left = a.records;
    while left > 0 {
        let n = left.min(1000);
        let items = (0..n)
            .map(|_| Item {
                value: Some(value.clone()),
                ..Item::default()
            })
            .collect();
        w.append(items)?;
        left -= n;
    }
    w.checkpoint()?;
    drop(w);
    let trust = super::bench_trust(&key);
    let file = TrustFile::from_toml(&trust.to_toml())?;
    let base = match &a.to {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!("file://{}", dir.join("archive").display()),
    };
    let (mut reps, mut objects) = (Vec::new(), 0);
    for rep in 0..a.repeat {
        let url = format!("{base}/bench-{}-{rep}", std::process::id());
        let server = a.server_pid;
        let verify = phase(server, || {
            Ok(TopicVerifier::new(&trust).verify(&log, topic)?.ok())
        })?;
        let store = Store::open(&url)?;
        let archive = phase(server, || {
            let r = archive_topic(&log as &dyn Log, topic, &file, &store)?;
            Ok(r.chains.iter().map(|c| c.objects).sum::<usize>())
        })?;
        let from = phase(server, || Ok(verify_archive(&store, topic, &file, None)?))?;
        if !verify.out || !from.out.ok() {
            bail!("the fresh log or archive did not verify: {:?}", from.out);
        }
        objects = archive.out;
        reps.push([verify.drop_out(), archive.drop_out(), from.drop_out()]);
    }
    report(a, &base, objects, &reps);
    Ok(())
}

/// One phase of one repetition: its wall time, this process's CPU time and the server's.
struct Phase<T> {
    out: T,
    wall: Duration,
    cpu: f64,
    server_cpu: Option<f64>,
}

impl<T> Phase<T> {
    fn drop_out(self) -> Phase<()> {
        Phase {
            out: (),
            wall: self.wall,
            cpu: self.cpu,
            server_cpu: self.server_cpu,
        }
    }
}

fn phase<T>(server: Option<u32>, f: impl FnOnce() -> Result<T>) -> Result<Phase<T>> {
    let (cpu0, server0) = (own_cpu(), server.map(server_cpu).transpose()?);
    let t = Instant::now();
    let out = f()?;
    let wall = t.elapsed();
    let server_cpu = match (server, server0) {
        (Some(pid), Some(s0)) => Some(server_cpu(pid)? - s0),
        _ => None,
    };
    Ok(Phase {
        out,
        wall,
        cpu: own_cpu() - cpu0,
        server_cpu,
    })
}

/// This process's user and system CPU seconds so far.
pub(crate) fn own_cpu() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A process's user and system CPU seconds so far, from /proc/PID/stat.
pub(crate) fn server_cpu(pid: u32) -> Result<f64> {
    Ok(kchain_log::cpu::of_pid(pid)?)
}

const PHASES: [&str; 3] = ["verify (local log)", "archive (upload)", "verify --archive"];

/// Prints the medians; `objects` is what one archive run wrote (read back by each verify).
fn report(a: &BenchArchiveArgs, url: &str, objects: usize, reps: &[[Phase<()>; 3]]) {
    let n = a.records as f64;
    let stat = |f: &dyn Fn(&[Phase<()>; 3]) -> f64| Stat::of(reps.iter().map(f).collect());
    let rate = |i: usize| stat(&|r| n / r[i].wall.as_secs_f64().max(1e-9));
    let ratio = |i: usize| stat(&|r| r[0].wall.as_secs_f64() / r[i].wall.as_secs_f64().max(1e-9));
    let cpu = |i: usize| stat(&|r| r[i].cpu);
    let server = |i: usize| {
        a.server_pid
            .map(|_| stat(&|r| r[i].server_cpu.unwrap_or(f64::NAN)))
    };
    if a.json {
        let phases: Vec<Value> = (0..3)
            .map(|i| {
                json!({"phase": PHASES[i], "per_s": rate(i).json(), "ratio": ratio(i).json(),
                       "wall_s": stat(&|r| r[i].wall.as_secs_f64()).json(),
                       "cpu_s": cpu(i).json(), "server_cpu_s": server(i).map(|s| s.json())})
            })
            .collect();
        println!(
            "{}",
            json!({"records": a.records, "size": a.size, "archive": url, "repeat": a.repeat,
                   "objects": objects, "phases": phases, "target": 0.5})
        );
        return;
    }
    println!(
        "{} records of {} bytes, archive {url}, {} repetition(s), medians (min-max)",
        a.records, a.size, a.repeat
    );
    println!(
        "{:<22}{:>12} {:>19}{:>7} {:>13} {:>10}",
        "phase", "entries/s", "spread", "ratio", "kchain CPU s", "server CPU s"
    );
    for (i, name) in PHASES.iter().enumerate() {
        let (r, q, c) = (rate(i), ratio(i), cpu(i));
        let s = server(i).map_or("-".to_owned(), |s| format!("{:.2}", s.median));
        println!(
            "{name:<22}{:>12.0} {:>9.0}-{:<9.0}{:>7.2} {:>13.2} {s:>10}",
            r.median, r.min, r.max, q.median, c.median
        );
    }
    println!(
        "{objects} objects per archive; target: archive and verify --archive >= 0.5 of verify \
         on the local log"
    );
}
