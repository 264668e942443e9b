//! `verify`: a topic's chains from genesis, then held against its checkpoints.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use kchain_core::Trust;
use kchain_log::Log;
use kchain_topic::{
    verify_topic, verify_topic_decrypting, CheckpointReport, TopicReport, VerifyOptions,
};

use crate::cmd::topic::{check_partition, topic_partitions};
use crate::global::{load_trust, open_log, Global};
use crate::outcome::Outcome;
use crate::progress::Progress;
use crate::report::{checkpoint_json, topic_json, topic_text};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The chained topic to verify.
    pub topic: String,
    /// Only this partition [default: every partition].
    #[arg(long, short)]
    pub partition: Option<u32>,
    /// Worker threads [default: one per core].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Where this verifier remembers, per chain, the newest checkpoint that met its policy
    /// (rollback protection) [default: kchain-state/ beside the trust file].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// A checkpoint file handed over outside the log (`kchain witness export`, `kchain
    /// checkpoint export`): counts as if read from the log; repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
}

pub fn verify(g: &Global, a: &VerifyArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let trust = load_trust(g)?;
    let (partitions, parts) = selected(log.as_ref(), &trust, a)?;
    let total = progress_total(log.as_ref(), &a.topic, partitions, parts.as_deref());
    let keyring = crate::cmd::crypt::verify_keyring(g)?;
    // Checkpoints first: one published while the chain is read then covers no more than it.
    let first = crate::cmd::anchors::read_first(g, log.as_ref(), &a.topic, &a.checkpoints)?;
    let progress = Progress::new(format!("verifying {}", a.topic), total);
    let options = VerifyOptions {
        threads: a.threads.unwrap_or(0),
        ..VerifyOptions::default()
    };
    let (log_ref, parts_ref, on_progress) = (log.as_ref(), parts.as_deref(), &|n| progress.add(n));
    let mut report = match &keyring {
        Some(k) => verify_topic_decrypting(
            log_ref,
            &a.topic,
            parts_ref,
            &trust,
            k,
            options,
            on_progress,
        )?,
        None => verify_topic(log_ref, &a.topic, parts_ref, &trust, options, on_progress)?,
    };
    progress.finish();
    let checkpoints = crate::cmd::anchors::check(
        g,
        log.as_ref(),
        &report,
        &trust,
        first,
        a.state.as_deref(),
        &a.checkpoints,
    )?;
    add_warnings(g, &mut report, &trust, checkpoints.as_ref());
    print(a, &report, checkpoints.as_ref())?;
    Ok(
        if report.ok() && checkpoints.as_ref().is_none_or(|c| c.ok()) {
            Outcome::Clean
        } else {
            Outcome::Findings
        },
    )
}

/// The topic's partition count and the partitions to verify (`None`: all). A pinned topic
/// is verified even when the log hides it or some of its partitions: the verifier reports
/// them missing.
fn selected(log: &dyn Log, trust: &Trust, a: &VerifyArgs) -> Result<(u32, Option<Vec<u32>>)> {
    let pinned = trust.pinned_partitions(&a.topic);
    let partitions = match (topic_partitions(log, &a.topic), pinned) {
        (Ok(n), _) => n,
        (Err(_), Some(_)) => 0,
        (Err(e), None) => return Err(e),
    };
    let parts = match a.partition {
        Some(p) => {
            check_partition(&a.topic, p, partitions.max(pinned.unwrap_or(0)))?;
            Some(vec![p])
        }
        None => None,
    };
    Ok((partitions, parts))
}

/// The records to read, only for the progress bar: a partition whose end cannot be read is
/// reported by the verifier itself.
fn progress_total(log: &dyn Log, topic: &str, partitions: u32, parts: Option<&[u32]>) -> u64 {
    let all: Vec<u32> = (0..partitions).collect();
    parts
        .unwrap_or(&all)
        .iter()
        .filter(|&&p| p < partitions)
        .map(|&p| {
            let end = log.end_offset(topic, p).unwrap_or(0);
            end.saturating_sub(log.start_offset(topic, p).unwrap_or(0))
        })
        .sum()
}

/// The warnings about anchors: partitions nothing anchors, and a trust file inside the data
/// directory it verifies.
fn add_warnings(
    g: &Global,
    report: &mut TopicReport,
    trust: &Trust,
    checkpoints: Option<&CheckpointReport>,
) {
    let anchored = |p: u32| {
        checkpoints.is_some_and(|c| {
            c.partitions
                .iter()
                .any(|x| x.partition == p && (x.newest.is_some() || x.remembered.is_some()))
        })
    };
    let warnings = kchain_topic::anchor_warnings(report, trust, &anchored);
    report.warnings.extend(warnings);
    let trust_path = g.trust_path();
    if g.inside_data_dir(&trust_path) {
        report.warnings.push(format!(
            "the trust file {} lies inside the data directory it verifies: whoever can change \
             the log can change what this verifier trusts; keep it elsewhere (--config-dir, \
             --trust)",
            trust_path.display()
        ));
    }
}

/// The report, as text or one JSON line.
fn print(
    a: &VerifyArgs,
    report: &TopicReport,
    checkpoints: Option<&CheckpointReport>,
) -> Result<()> {
    if a.json {
        let mut v = topic_json(report);
        if let Some(c) = checkpoints {
            v["checkpoints"] = checkpoint_json(c);
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        print!("{}", topic_text(report));
        if let Some(c) = checkpoints {
            print!("{}", c.to_text());
        }
    }
    Ok(())
}
