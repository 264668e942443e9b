//! `kchain bench archive`: archiving a chained topic to object storage and verifying it from
//! there, as ratios of `verify` on the local embedded log, measured side by side in one run.
//!
//! ```text
//!  temporary embedded log ──► N chained records + a checkpoint
//!     verify (log)          ── the baseline: entries/s
//!     archive --to URL      ── entries/s, ratio to the baseline
//!     verify --archive URL  ── entries/s, ratio to the baseline
//! ```

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use kchain_archive::{archive_topic, verify_archive, Store};
use kchain_core::{Item, TrustFile, WriterKey};
use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
use kchain_topic::{ChainWriter, CheckpointOptions, TopicVerifier, WriterOptions};
use serde_json::json;

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
    /// Print the measurements as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Runs the measurement in a temporary directory, removed after.
pub fn run(a: &BenchArchiveArgs) -> Result<()> {
    if a.records == 0 {
        bail!("--records must be positive");
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
    let url = match &a.to {
        Some(u) => u.clone(),
        None => format!("file://{}", dir.join("archive").display()),
    };
    let n = a.records as f64;
    let t = Instant::now();
    TopicVerifier::new(&trust).verify(&log, topic)?;
    let local = n / t.elapsed().as_secs_f64();
    let store = Store::open(&url)?;
    let t = Instant::now();
    archive_topic(&log as &dyn Log, topic, &file, &store)?;
    let upload = n / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = verify_archive(&store, topic, &file, None)?;
    let from_archive = n / t.elapsed().as_secs_f64();
    if !report.ok() {
        bail!("the fresh archive did not verify: {report:?}");
    }
    if a.json {
        println!(
            "{}",
            json!({"records": a.records, "size": a.size, "archive": url,
                   "verify_log_per_s": local, "archive_per_s": upload,
                   "verify_archive_per_s": from_archive,
                   "archive_ratio": upload / local, "verify_archive_ratio": from_archive / local})
        );
    } else {
        println!("{} records of {} bytes, archive {url}", a.records, a.size);
        println!("verify (local log)     {local:>12.0} entries/s   1.00");
        println!(
            "archive (upload)       {upload:>12.0} entries/s   {:.2}",
            upload / local
        );
        println!(
            "verify --archive       {from_archive:>12.0} entries/s   {:.2}",
            from_archive / local
        );
    }
    Ok(())
}
