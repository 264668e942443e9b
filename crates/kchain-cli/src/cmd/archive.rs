//! `archive`: a chained topic copied to object storage in C2SP tlog-tiles layout, and
//! `verify --archive`: the archive verified with nothing but read access and a trust file.
//! The work is kchain-archive's; this file parses and prints.
//!
//! ```text
//!  kchain archive TOPIC --to URL ──► archive_topic(log, trust file) ──► per chain: size, objects
//!  kchain verify TOPIC --archive URL ──► verify_archive(store, trust file, --state) ──► findings
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use kchain_archive::{archive_topic, verify_archive, ArchiveVerifyReport, Store};
use kchain_core::TrustFile;
use serde_json::json;

use crate::global::{open_log, verifier_store, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct ArchiveArgs {
    /// The chained topic to archive (each partition up to its newest checkpoint that meets
    /// the trust policy).
    pub topic: String,
    /// Where: file:///dir, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix
    /// (credentials and endpoints from the environment: AWS_ENDPOINT, AWS_ALLOW_HTTP, ...).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Print the result as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// `kchain archive TOPIC --to URL`.
pub fn archive(g: &Global, a: &ArchiveArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let trust = trust_file(&g.trust_path())?;
    let store = Store::open(&a.to)?;
    let report = archive_topic(log.as_ref(), &a.topic, &trust, &store)
        .with_context(|| format!("archiving {} to {}", a.topic, a.to))?;
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
            json!({"topic": report.topic, "url": a.to, "chains": chains})
        );
    } else {
        for c in &report.chains {
            match &c.skipped {
                Some(why) => println!("{}/{}: not archived: {why}", a.topic, c.partition),
                None => println!(
                    "{}/{}: archived up to size {} (was {}), {} objects written",
                    a.topic, c.partition, c.size, c.before, c.objects
                ),
            }
        }
    }
    Ok(Outcome::Clean)
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
    let report = verify_archive(&store, topic, &trust, Some(&remembered))
        .with_context(|| format!("verifying the archive {url}"))?;
    if json {
        println!("{}", report_json(&report));
    } else {
        print!("{}", report_text(&report));
    }
    Ok(if report.ok() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

fn trust_file(path: &PathBuf) -> Result<TrustFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading trust file {}", path.display()))?;
    TrustFile::from_toml(&text).with_context(|| format!("trust file {}", path.display()))
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
    json!({"topic": r.topic, "archive": r.url, "ok": r.ok(), "chains": chains})
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
    out += if r.ok() {
        "archive verified\n"
    } else {
        "archive FAILED verification\n"
    };
    out
}
