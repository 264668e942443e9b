//! `archive`: a chained topic copied to object storage in C2SP tlog-tiles layout, and
//! `verify --archive`: the archive verified with nothing but read access and a trust file.
//! The work is kchain-archive's; this file parses and prints.
//!
//! ```text
//!  kchain archive TOPIC --to URL ──► archive_topic(log, trust file) ──► per chain: size, objects
//!        --apply-retention ──► apply_retention(log, archive) ──► per chain: start offsets
//!  kchain archive --ledger CHAIN --to URL ──► archive_ledger(log, checkpoint policy) ──► size
//!  kchain ledger verify --archive URL ──► verify_ledger_archive(store, genesis) ──► findings
//!  kchain verify TOPIC --archive URL ──► verify_archive(store, trust file, --state) ──► findings
//!        the log holds TOPIC ──► verify_log_after(log, archive) per clean chain ──► findings
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kchain_archive::{
    apply_retention, archive_ledger, archive_topic, restore_topic, verify_archive,
    verify_ledger_archive, verify_log_after, ArchiveVerifyReport, GenesisAnchor, LogVerified,
    RetentionApplied, Store,
};
use kchain_core::{CheckpointTrust, TrustFile};
use kchain_ledger::TrustedLedger;
use serde_json::json;

use crate::cmd::anchors::read_checkpoint_trust;
use crate::cmd::ledger_args::read_genesis;
use crate::global::{load_trust_on, open_log, verifier_store, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    pub action: Option<ArchiveAction>,
    /// The chained topic to archive (each partition up to its newest checkpoint that meets
    /// the trust policy).
    #[arg(required_unless_present = "ledger", conflicts_with = "ledger")]
    pub topic: Option<String>,
    /// Archive this ledger's blocks chain (`<CHAIN>.blocks`) instead of a topic: its canonical
    /// blocks up to the newest sealer checkpoint that meets the policy (the genesis's sealers;
    /// with --trust FILE, its [[witness]] keys and [policy]).
    #[arg(long, value_name = "CHAIN")]
    pub ledger: Option<String>,
    /// Where: file:///dir, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix
    /// (credentials and endpoints from the environment: AWS_ENDPOINT, AWS_ALLOW_HTTP, ...).
    #[arg(long, value_name = "URL", required = true)]
    pub to: Option<String>,
    /// Then delete from the log the records that are archived and older than the topic's
    /// retention.ms (the embedded log deletes whole segments; its start offset moves).
    #[arg(long)]
    pub apply_retention: bool,
    /// Print the result as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// What else `kchain archive` does.
#[derive(Subcommand, Debug)]
pub enum ArchiveAction {
    /// Rebuild a topic from its archive: the same records, chain headers and entry hashes,
    /// verifying against the original checkpoints. The topic must be empty or missing.
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The archive (file://, s3://, gs://, az://).
    pub url: String,
    /// The topic to rebuild: the archived topic's name, or another one held to the
    /// archived chain by `kchain trust chain TOPIC --name ARCHIVED`.
    #[arg(long, value_name = "TOPIC")]
    pub to: String,
    /// The archived topic to restore [default: the --to topic].
    #[arg(long, value_name = "TOPIC")]
    pub from: Option<String>,
}

/// `kchain archive TOPIC --to URL`, `kchain archive restore URL --to TOPIC`.
pub fn archive(g: &Global, a: &ArchiveArgs) -> Result<Outcome> {
    if let Some(ArchiveAction::Restore(r)) = &a.action {
        return restore(g, r);
    }
    if let (Some(chain), Some(to)) = (&a.ledger, &a.to) {
        return archive_ledger_cmd(g, chain, to, a.json);
    }
    let (Some(topic), Some(to)) = (&a.topic, &a.to) else {
        anyhow::bail!("usage: kchain archive TOPIC --to URL");
    };
    let log = open_log(g, false)?;
    let trust = trust_file(&g.trust_path())?;
    let store = Store::open(to)?;
    let report = archive_topic(log.as_ref(), topic, &trust, &store)
        .with_context(|| format!("archiving {topic} to {to}"))?;
    let retention = if a.apply_retention {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        apply_retention(log.as_ref(), topic, &trust, &store, now)
            .with_context(|| format!("applying the retention of {topic}"))?
    } else {
        Vec::new()
    };
    if a.json {
        let chains: Vec<_> = report
            .chains
            .iter()
            .map(|c| {
                json!({"partition": c.partition, "before": c.before, "size": c.size,
                       "objects": c.objects, "skipped": c.skipped})
            })
            .collect();
        println!(
            "{}",
            json!({"topic": report.topic, "url": to, "chains": chains,
                   "retention": retention.iter().map(retention_json).collect::<Vec<_>>()})
        );
    } else {
        for c in &report.chains {
            match &c.skipped {
                Some(why) => println!("{topic}/{}: not archived: {why}", c.partition),
                None => println!(
                    "{topic}/{}: archived up to size {} (was {}), {} objects written",
                    c.partition, c.size, c.before, c.objects
                ),
            }
        }
        for r in &retention {
            println!("{}", retention_text(topic, r));
        }
    }
    Ok(Outcome::Clean)
}

/// `kchain archive --ledger CHAIN --to URL`.
fn archive_ledger_cmd(g: &Global, chain: &str, to: &str, json: bool) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let blocks = format!("{chain}.blocks");
    let trust = ledger_checkpoint_trust(g)?;
    let store = Store::open(to)?;
    let c = archive_ledger(log.as_ref(), &blocks, &trust, &store)
        .with_context(|| format!("archiving the ledger {chain} to {to}"))?;
    if json {
        println!(
            "{}",
            json!({"ledger": chain, "blocks_topic": blocks, "url": to, "before": c.before,
                   "size": c.size, "objects": c.objects, "skipped": c.skipped})
        );
    } else {
        match &c.skipped {
            Some(why) => println!("{blocks}: not archived: {why}"),
            None => println!(
                "{blocks}: archived up to size {} (was {}), {} objects written",
                c.size, c.before, c.objects
            ),
        }
    }
    Ok(Outcome::Clean)
}

/// The checkpoint policy a ledger's archive is held to, as `ledger verify` holds the ledger:
/// the `[[witness]]` and `[policy]` of `--trust FILE` when given, else the sealers alone.
fn ledger_checkpoint_trust(g: &Global) -> Result<CheckpointTrust> {
    Ok(match &g.trust {
        Some(path) => read_checkpoint_trust(path)?.1.unwrap_or_default(),
        None => CheckpointTrust::default(),
    })
}

/// `kchain ledger verify --chain CHAIN --archive URL`: the ledger's archive verified against
/// its genesis (`genesis`, else the trust file's `[[ledger]]` for its blocks topic); exit 0
/// intact, 3 findings, 1 error.
pub fn verify_ledger(
    g: &Global,
    blocks: &str,
    genesis: Option<&Path>,
    url: &str,
    json: bool,
) -> Result<Outcome> {
    let anchor = genesis_anchor(g, blocks, genesis)?;
    let trust = ledger_checkpoint_trust(g)?;
    let store = Store::open(url)?;
    let remembered = verifier_store(g, None);
    let v = verify_ledger_archive(&store, blocks, &trust, &anchor, Some(&remembered))
        .with_context(|| format!("verifying the ledger archive {url}"))?;
    let report = ArchiveVerifyReport {
        topic: blocks.into(),
        url: url.into(),
        chains: vec![v],
        log: Vec::new(),
    };
    Ok(print_report(&report, json))
}

/// The genesis a ledger's archive must start with: the genesis file's block, else the trust
/// file's `[[ledger]]` whose blocks topic is `blocks` (its genesis hash or chain id).
fn genesis_anchor(g: &Global, blocks: &str, genesis: Option<&Path>) -> Result<GenesisAnchor> {
    if let Some(path) = genesis {
        let (gen, ts) = read_genesis(path)?;
        return Ok(GenesisAnchor {
            hash: Some(gen.block(ts).hash()),
            chain_id: None,
        });
    }
    let path = g.trust_path();
    let text = std::fs::read_to_string(&path).ok().unwrap_or_default();
    let ledgers = TrustedLedger::from_trust_toml(&text)
        .map_err(|e| anyhow::anyhow!("trust file {}: {e}", path.display()))?;
    let Some(l) = ledgers.into_iter().find(|l| l.blocks_topic == blocks) else {
        anyhow::bail!(
            "no genesis to trust for {blocks}: pass --genesis FILE, or --trust FILE with a \
             [[ledger]] entry naming its genesis or chain_id"
        );
    };
    Ok(GenesisAnchor {
        hash: l.genesis,
        chain_id: l.chain_id,
    })
}

/// `kchain archive restore URL --to TOPIC`.
fn restore(g: &Global, r: &RestoreArgs) -> Result<Outcome> {
    let log = open_log(g, true)?;
    let trust = trust_file(&g.trust_path())?;
    let store = Store::open(&r.url)?;
    let from = r.from.as_deref().unwrap_or(&r.to);
    let chains = restore_topic(&store, from, &r.to, &trust, log.as_ref())
        .with_context(|| format!("restoring {from} from {} into {}", r.url, r.to))?;
    for c in &chains {
        println!("{}/{}: restored {} records", r.to, c.partition, c.records);
    }
    Ok(Outcome::Clean)
}

fn retention_json(r: &RetentionApplied) -> serde_json::Value {
    json!({"partition": r.partition, "start_before": r.start_before,
           "start_after": r.start_after, "cut": r.cut, "skipped": r.skipped})
}

fn retention_text(topic: &str, r: &RetentionApplied) -> String {
    match &r.skipped {
        Some(why) => format!("{topic}/{}: retention: nothing deleted: {why}", r.partition),
        None => format!(
            "{topic}/{}: retention: the log starts at offset {} (was {}; archived and expired \
             below {})",
            r.partition, r.start_after, r.start_before, r.cut
        ),
    }
}

/// `kchain verify TOPIC --archive URL`: exit 0 intact, 3 findings, 1 error.
pub fn verify(
    g: &Global,
    topic: &str,
    url: &str,
    state: Option<&Path>,
    json: bool,
) -> Result<Outcome> {
    let trust = trust_file(&g.trust_path())?;
    let store = Store::open(url)?;
    let remembered = verifier_store(g, state);
    let mut report = verify_archive(&store, topic, &trust, Some(&remembered))
        .with_context(|| format!("verifying the archive {url}"))?;
    verify_the_log_after(g, &store, &mut report)?;
    Ok(print_report(&report, json))
}

/// When the log (`-b`, or a data directory that exists) holds the topic, verifies its part
/// of each clean chain after the archive: the archived prefix and the log are one chain.
fn verify_the_log_after(g: &Global, store: &Store, report: &mut ArchiveVerifyReport) -> Result<()> {
    if g.brokers.is_none() && !g.data_dir.join("topics").is_dir() {
        return Ok(());
    }
    let log = open_log(g, false)?;
    if log.topic(&report.topic).is_err() {
        return Ok(());
    }
    let trust = load_trust_on(g, log.as_ref())?;
    for c in report.chains.iter().filter(|c| c.ok()) {
        let v = verify_log_after(
            log.as_ref(),
            &report.topic,
            c.partition,
            &trust,
            store,
            c.size,
        )
        .with_context(|| {
            format!(
                "verifying {}/{} after the archive",
                report.topic, c.partition
            )
        })?;
        report.log.push(v);
    }
    Ok(())
}

fn trust_file(path: &PathBuf) -> Result<TrustFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading trust file {}", path.display()))?;
    TrustFile::from_toml(&text).with_context(|| format!("trust file {}", path.display()))
}

/// Prints an archive's verification report (`--json` or text) and gives its outcome.
fn print_report(report: &ArchiveVerifyReport, json: bool) -> Outcome {
    if json {
        println!("{}", report_json(report));
    } else {
        print!("{}", report_text(report));
    }
    if report.ok() {
        Outcome::Clean
    } else {
        Outcome::Findings
    }
}

fn report_json(r: &ArchiveVerifyReport) -> serde_json::Value {
    let chains: Vec<_> = r
        .chains
        .iter()
        .map(|c| {
            let findings: Vec<_> = c
                .findings
                .iter()
                .map(|f| json!({"kind": f.kind.as_str(), "entry": f.entry, "detail": f.detail}))
                .collect();
            json!({"partition": c.partition, "size": c.size, "cosigners": c.cosigners,
                   "ok": c.ok(), "findings": findings, "more_findings": c.more_findings})
        })
        .collect();
    let log: Vec<_> = r.log.iter().map(log_json).collect();
    json!({"topic": r.topic, "archive": r.url, "ok": r.ok(), "chains": chains, "log": log})
}

fn log_json(l: &LogVerified) -> serde_json::Value {
    let finding = l.summary.finding.as_ref().map(|f| {
        json!({"kind": f.kind.as_str(), "offset": f.offset, "height": f.height,
               "detail": f.detail})
    });
    json!({"partition": l.partition, "start_offset": l.start_offset,
           "end_offset": l.end_offset, "resumed_after": l.resumed_after,
           "entries": l.summary.entries, "pending": l.summary.pending, "ok": l.ok(),
           "finding": finding})
}

fn log_text(topic: &str, l: &LogVerified) -> String {
    let name = format!("{topic}/{}", l.partition);
    let from = match l.resumed_after {
        Some(h) => format!("from offset {} after archived height {h}", l.start_offset),
        None => format!("from offset {}", l.start_offset),
    };
    match &l.summary.finding {
        None => format!(
            "{name}: OK, the log {from} continues the archive: {} entries from genesis\n",
            l.summary.entries
        ),
        Some(f) => format!(
            "{name}: log {} at offset {} (height {}): {}\n",
            f.kind.as_str(),
            f.offset,
            f.height,
            f.detail
        ),
    }
}

fn report_text(r: &ArchiveVerifyReport) -> String {
    let mut out = String::new();
    for c in &r.chains {
        let name = format!("{}/{}", r.topic, c.partition);
        if c.ok() {
            out += &format!("{name}: OK, {} entries verified from the archive\n", c.size);
            continue;
        }
        for f in &c.findings {
            let at = f
                .entry
                .map(|e| format!(" at entry {e}"))
                .unwrap_or_default();
            out += &format!("{name}: {}{at}: {}\n", f.kind.as_str(), f.detail);
        }
        if c.more_findings > 0 {
            out += &format!("{name}: and {} more findings\n", c.more_findings);
        }
    }
    for l in &r.log {
        out += &log_text(&r.topic, l);
    }
    out += if r.ok() {
        "archive verified\n"
    } else {
        "archive FAILED verification\n"
    };
    out
}
