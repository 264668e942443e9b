//! `verify`: a topic's chains from genesis, then held against its checkpoints.
//!
//! ```text
//!  trust file ──► pins of this log (Trust::on_log) ─┐
//!  --state, --checkpoint, [policy] ─────────────────┼─► TopicVerifier ─► report ─► text / JSON
//!  witnesses with a url (--checkpoints-from) ───────┤
//!  the log (-b or --data-dir) and its identity ─────┘                 └─► warnings on stderr
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use kchain_core::Trust;
use kchain_log::Log;
use kchain_topic::checkpoints::RemoteWitnesses;
use kchain_topic::{TopicVerifier, VerifyOptions, VerifyReport};
use serde_json::json;

use crate::cmd::anchors::{checkpoint_sources, verify_anchors, CheckpointSource};
use crate::cmd::topic::{check_partition, topic_partitions};
use crate::global::{load_trust, log_identity, open_log, Global};
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
    /// Verify the topic's archive at this URL (`kchain archive`) instead of the log.
    #[arg(long, value_name = "URL")]
    pub archive: Option<String>,
    /// Where to take checkpoints from, comma-separated: `topic` (the log's checkpoints
    /// topic), `witnesses` (each trust file witness with a url, over HTTP(S)), `files`
    /// (--checkpoint FILE) [default: every one available]. `--checkpoints-from witnesses`
    /// verifies as an outsider who never reads the operator's checkpoints topic.
    #[arg(
        long = "checkpoints-from",
        value_name = "SOURCES",
        value_delimiter = ',',
        value_enum
    )]
    pub checkpoints_from: Vec<CheckpointSource>,
}

pub fn verify(g: &Global, a: &VerifyArgs) -> Result<Outcome> {
    if let Some(url) = &a.archive {
        return crate::cmd::archive::verify(g, &a.topic, url, a.state.as_deref(), a.json);
    }
    let log = open_log(g, false)?;
    let (log_id, report) = verify_report(g, log.as_ref(), a)?;
    print(g, a, log.as_ref(), &log_id, &report)?;
    Ok(if report.ok() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

/// Verifies `a.topic` on `log` as `kchain verify` does (its anchors, checkpoint sources and
/// warnings); returns the log's identity and the report. `kchain serve` calls it too.
pub(crate) fn verify_report(
    g: &Global,
    log: &dyn Log,
    a: &VerifyArgs,
) -> Result<(String, VerifyReport)> {
    let log_id = log_identity(g, log);
    let trust = load_trust(g)?;
    let (partitions, parts) = selected(log, &trust.on_log(&log_id), a)?;
    let total = progress_total(log, &a.topic, partitions, parts.as_deref());
    let keyring = crate::cmd::crypt::verify_keyring(g)?;
    let mut anchors = verify_anchors(g, &log_id, a.state.as_deref(), &a.checkpoints)?;
    let sources = checkpoint_sources(
        g,
        anchors.policy.as_ref(),
        &a.checkpoints_from,
        &a.checkpoints,
    )?;
    anchors.check.witnesses = RemoteWitnesses(sources.witnesses);
    anchors.check.ignore_topic = sources.ignore_topic;
    let progress = Progress::new(format!("verifying {}", a.topic), total);
    let on_progress = |n| progress.add(n);
    let mut verifier = TopicVerifier::new(&trust)
        .log(log_id.clone())
        .keyring(keyring.as_ref())
        .checkpoints(anchors.policy.as_ref())
        .check_options(anchors.check)
        .options(VerifyOptions {
            threads: a.threads.unwrap_or(0),
            ..VerifyOptions::default()
        })
        .progress(&on_progress);
    if let Some(parts) = &parts {
        verifier = verifier.partitions(parts);
    }
    let mut report = verifier.verify(log, &a.topic)?;
    progress.finish();
    if let Some(c) = &mut report.checkpoints {
        c.warnings.extend(anchors.warnings);
    }
    add_warnings(g, &mut report);
    Ok((log_id, report))
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

/// The warning about a trust file inside the data directory it verifies (the verifier
/// itself warns about partitions nothing anchors and pins of other logs).
fn add_warnings(g: &Global, report: &mut VerifyReport) {
    let trust_path = g.trust_path();
    if g.inside_data_dir(&trust_path) {
        report.chain.warnings.push(format!(
            "the trust file {} lies inside the data directory it verifies: whoever can change \
             the log can change what this verifier trusts; keep it elsewhere (--config-dir, \
             --trust)",
            trust_path.display()
        ));
    }
}

/// The report, as text or one JSON line with the backend it was read from. The warnings
/// about the chains go to standard error in both forms (and into the JSON), where a user
/// reading only a summary line, or a script reading JSON, still sees them.
fn print(
    g: &Global,
    a: &VerifyArgs,
    log: &dyn Log,
    log_id: &str,
    report: &VerifyReport,
) -> Result<()> {
    for w in &report.chain.warnings {
        eprintln!("kchain: warning: {w}");
    }
    if a.json {
        let v = report_json(g, log, log_id, report);
        println!("{}", serde_json::to_string(&v)?);
    } else {
        let mut chain = report.chain.clone();
        chain.warnings.clear();
        print!("{}", topic_text(&chain));
        if let Some(c) = &report.checkpoints {
            print!("{}", c.to_text());
        }
    }
    Ok(())
}

/// The report as `verify --json` prints it: the chains, the backend it was read from, and
/// the checkpoints. `kchain serve` answers the same object.
pub(crate) fn report_json(
    g: &Global,
    log: &dyn Log,
    log_id: &str,
    report: &VerifyReport,
) -> serde_json::Value {
    let mut v = topic_json(&report.chain);
    v["backend"] = json!({
        "kind": log.backend(),
        "log": log_id,
        "location": match &g.brokers {
            Some(b) => b.clone(),
            None => g.data_dir.display().to_string(),
        },
    });
    if let Some(c) = &report.checkpoints {
        v["checkpoints"] = checkpoint_json(c);
    }
    v
}
