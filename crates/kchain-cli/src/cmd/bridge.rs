//! `bridge run`: chains a plain topic (kchain-topic's [`Bridge`]), so that producers in any
//! language get tamper evidence by producing to the raw topic, unchanged.
//!
//! ```text
//!  --from RAW (any Kafka producer) ──► Bridge::run until SIGINT/SIGTERM (or --until-idle)
//!      ──► --to CHAINED (signed with the key file, as `produce`)
//!  status lines ──► stderr;   summary ──► stdout (text, or one JSON line with --json)
//! ```

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kchain_topic::{Bridge, BridgeOptions, PartitionStatus, WriterOptions};
use serde_json::json;

use crate::global::{open_log, Global};
use crate::outcome::Outcome;

#[derive(Subcommand, Debug)]
pub enum BridgeCmd {
    /// Copy every record of a plain topic into a chained topic, exactly once and in order
    /// per partition (raw partition p to chained partition p), until SIGINT or SIGTERM.
    Run(BridgeRunArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Each chained record keeps the raw record's key, value, headers and \
timestamp, and carries its raw offset in a kchain.src header; a restarted bridge resumes after \
the chained tip's (docs/bridge.md). SIGINT or SIGTERM stops reading, appends and signs what was \
read, prints the summary and exits 0. Exit codes: 0 stopped cleanly, 1 an error."
)]
pub struct BridgeRunArgs {
    /// The plain topic to read (written by any Kafka producer).
    #[arg(long, value_name = "RAW")]
    pub from: String,
    /// The chained topic to append to (created with RAW's partition count when missing).
    #[arg(long, value_name = "CHAINED")]
    pub to: String,
    /// Copy what the raw topic holds, then exit (for scripts and tests).
    #[arg(long, alias = "once")]
    pub until_idle: bool,
    /// Records per signed batch, at most.
    #[arg(long, default_value_t = 8192)]
    pub batch: usize,
    /// How long one read of a raw partition waits for records.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub poll_ms: u64,
    /// Seconds between status lines on standard error.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub status_secs: u64,
    #[command(flatten)]
    pub checkpoints: crate::cmd::produce::CheckpointArgs,
    /// Print the summary as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `bridge` subcommand.
pub fn bridge(g: &Global, cmd: BridgeCmd) -> Result<Outcome> {
    match cmd {
        BridgeCmd::Run(a) => run(g, &a),
    }
}

fn run(g: &Global, a: &BridgeRunArgs) -> Result<Outcome> {
    let most = kchain_core::PendingLimits::default().records;
    if a.batch == 0 || a.batch as u64 > most {
        bail!("--batch must be between 1 and {most} (docs/pending.md)");
    }
    let log = open_log(g, false)?;
    let key = g.writer_key()?;
    let options = BridgeOptions {
        writer: WriterOptions {
            max_batch_records: a.batch,
            ..WriterOptions::default()
        },
        checkpoints: a.checkpoints.options(g)?,
        poll_wait: Duration::from_millis(a.poll_ms.max(1)),
        until_idle: a.until_idle,
        status_every: Duration::from_secs(a.status_secs.max(1)),
    };
    let bridge = Bridge::open(log.as_ref(), &a.from, &a.to, &key, options)
        .with_context(|| format!("bridge {} -> {}", a.from, a.to))?;
    let quiet = g.quiet;
    if !quiet {
        eprintln!(
            "kchain bridge: {} -> {}, {} partition(s){}",
            a.from,
            a.to,
            bridge.partitions(),
            if a.until_idle { ", until idle" } else { "" }
        );
    }
    crate::stop::watch();
    let status = bridge
        .run(&|| crate::stop::requested().is_some(), &mut |s| {
            if !quiet {
                for p in s {
                    eprintln!("kchain bridge: {}", status_line(&a.from, &a.to, p));
                }
            }
        })
        .with_context(|| format!("bridge {} -> {}", a.from, a.to))?;
    let stopped = crate::stop::requested();
    if let (Some(signal), false) = (stopped, quiet) {
        eprintln!("kchain bridge: {signal}: stopped; every record read was appended and signed");
    }
    if a.json {
        println!("{}", summary_json(a, &status, stopped));
    } else {
        for p in &status {
            println!("{}", status_line(&a.from, &a.to, p));
        }
    }
    Ok(Outcome::Clean)
}

/// One partition's progress, for people.
fn status_line(from: &str, to: &str, p: &PartitionStatus) -> String {
    let adopted = match p.adopted {
        0 => String::new(),
        n => format!(", {n} unsigned record(s) of a cut batch adopted"),
    };
    let tip = p.tip_height.map_or("none".into(), |h| h.to_string());
    format!(
        "{from}/{p0} -> {to}/{p0}: copied {} record(s) from raw offset {} (next {}), tip height \
         {tip}{adopted}",
        p.copied,
        p.resumed_at,
        p.next_raw,
        p0 = p.partition
    )
}

fn summary_json(
    a: &BridgeRunArgs,
    status: &[PartitionStatus],
    stopped: Option<&str>,
) -> serde_json::Value {
    let partitions: Vec<_> = status
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition,
                "resumed_at": p.resumed_at,
                "next_raw": p.next_raw,
                "copied": p.copied,
                "adopted": p.adopted,
                "tip_height": p.tip_height,
            })
        })
        .collect();
    json!({
        "from": a.from,
        "to": a.to,
        "copied": status.iter().map(|p| p.copied).sum::<u64>(),
        "stopped_by": stopped,
        "partitions": partitions,
    })
}
