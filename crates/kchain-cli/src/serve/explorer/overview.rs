//! One verification pass over everything on the log, as the overview's JSON: the chained
//! topics (with `kchain verify --json`'s report per topic) and the ledgers (with `kchain
//! ledger verify --json`'s report), each with its findings listed flat and the cosignatures
//! of its newest trusted checkpoints. The verdicts are the libraries'
//! (`TopicVerifier::verify`, `kchain_ledger::verify_ledger`); this file only finds the
//! chains, sets the verifiers up as the commands do and gathers their reports.
//!
//! ```text
//!  log.list_topics() ──► chains(): chained topics, ledgers (<c>.blocks + <c>.transactions)
//!     topic  ──► TopicVerifier (trust, anchors, witnesses) ──► report::topic_json + cosignatures
//!     ledger ──► verify_ledger (checkpoint anchors)       ──► LedgerReport::to_json + cosignatures
//!                                                          └─► one JSON object (the overview)
//! ```

use std::collections::BTreeSet;

use anyhow::Result;
use kchain_core::TrustedCheckpoint;
use kchain_log::Log;
use kchain_topic::checkpoints::{RemoteWitnesses, CHECKPOINTS_SUFFIX};
use kchain_topic::{CheckpointReport, TopicVerifier};
use serde_json::{json, Value};

use crate::cmd::anchors::{checkpoint_sources, ledger_anchors, verify_anchors, AnchorArgs};
use crate::cmd::ledger::verify_options;
use crate::global::{load_trust, log_identity, Global};
use crate::report::{checkpoint_json, finding_json, topic_json};

/// What the log holds: the chained topics and the ledgers (by chain name), sorted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chains {
    pub topics: Vec<String>,
    pub ledgers: Vec<String>,
}

/// Sorts the log's topics into chained topics and ledgers. A ledger is a `<c>.blocks` beside
/// a `<c>.transactions`; its topics (and `<c>.rejected`) are not listed as chained topics,
/// nor is any `<t>.checkpoints` companion, nor Kafka's internal topics (`__consumer_offsets`).
pub fn chains(names: &[String]) -> Chains {
    let all: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let ledgers: Vec<String> = all
        .iter()
        .filter_map(|n| n.strip_suffix(".blocks"))
        .filter(|c| all.contains(format!("{c}.transactions").as_str()))
        .map(str::to_owned)
        .collect();
    let ledger_topic = |n: &str| {
        ledgers.iter().any(|c| {
            [".blocks", ".transactions", ".rejected"]
                .iter()
                .any(|s| n == format!("{c}{s}"))
        })
    };
    let topics = all
        .iter()
        .filter(|n| !n.starts_with("__") && !n.ends_with(CHECKPOINTS_SUFFIX) && !ledger_topic(n))
        .map(|n| n.to_string())
        .collect();
    Chains { topics, ledgers }
}

/// One pass: every chain verified, as the overview's `topics`, `ledgers` and `ok`. A chain
/// whose verification fails (not a finding: an error reading it) carries an `error`.
pub fn verify_all(g: &Global, log: &dyn Log) -> Result<Value> {
    let names: Vec<String> = log.list_topics()?.into_iter().map(|t| t.name).collect();
    let found = chains(&names);
    let topics: Vec<Value> = found
        .topics
        .iter()
        .map(|t| verify_topic(g, log, t).unwrap_or_else(|e| failed("topic", t, e)))
        .collect();
    let ledgers: Vec<Value> = found
        .ledgers
        .iter()
        .map(|c| verify_chain(g, log, c).unwrap_or_else(|e| failed("ledger", c, e)))
        .collect();
    let ok = topics.iter().chain(&ledgers).all(|v| v["ok"] == true);
    Ok(json!({ "ok": ok, "topics": topics, "ledgers": ledgers }))
}

fn failed(key: &str, name: &str, e: anyhow::Error) -> Value {
    json!({ key: name, "ok": false, "error": format!("{e:#}"), "findings": [] })
}

/// A chained topic verified as `kchain verify TOPIC --json` does it (trust file, remembered
/// and witnessed checkpoints, keyring), with its findings and cosignatures listed flat.
fn verify_topic(g: &Global, log: &dyn Log, topic: &str) -> Result<Value> {
    let log_id = log_identity(g, log);
    let trust = load_trust(g)?;
    let keyring = crate::cmd::crypt::verify_keyring(g)?;
    let mut anchors = verify_anchors(g, &log_id, None, &[])?;
    let sources = checkpoint_sources(g, anchors.policy.as_ref(), &[], &[])?;
    anchors.check.witnesses = RemoteWitnesses(sources.witnesses);
    let mut report = TopicVerifier::new(&trust)
        .log(log_id)
        .keyring(keyring.as_ref())
        .checkpoints(anchors.policy.as_ref())
        .check_options(anchors.check)
        .verify(log, topic)?;
    if let Some(c) = &mut report.checkpoints {
        c.warnings.extend(anchors.warnings);
    }
    let mut v = topic_json(&report.chain);
    let mut findings = Vec::new();
    for p in &report.chain.partitions {
        let chain = p.summary.finding.iter();
        let decrypt = p.encryption.iter().filter_map(|e| e.finding.as_ref());
        for f in chain.chain(decrypt) {
            let mut f = finding_json(f);
            f["partition"] = json!(p.partition);
            findings.push(f);
        }
    }
    v["checkpoints"] = report
        .checkpoints
        .as_ref()
        .map_or(Value::Null, checkpoint_json);
    if let Some(c) = &report.checkpoints {
        findings.extend(checkpoint_findings(c));
    }
    v["newest_checkpoints"] = json!(newest_checkpoints(report.checkpoints.as_ref()));
    v["findings"] = json!(findings);
    Ok(v)
}

fn checkpoint_findings(c: &CheckpointReport) -> Vec<Value> {
    let found = c
        .partitions
        .iter()
        .filter_map(|p| Some((p, p.finding.as_ref()?)));
    found
        .map(|(p, f)| {
            json!({
                "partition": p.partition,
                "kind": f.kind.as_str(),
                "offset": f.offset,
                "detail": f.detail,
            })
        })
        .collect()
}

/// The newest trusted checkpoint of each partition with who cosigned it, and when.
fn newest_checkpoints(c: Option<&CheckpointReport>) -> Vec<Value> {
    let parts = c.map_or(&[][..], |c| &c.partitions[..]);
    parts
        .iter()
        .filter_map(|p| {
            let mut v = cosigned(&p.origin, p.newest.as_ref()?);
            v["partition"] = json!(p.partition);
            Some(v)
        })
        .collect()
}

/// A trusted checkpoint as the explorer shows it: origin, size, root, the writers whose
/// signatures verified, and each witness's cosignature time (seconds since the epoch).
fn cosigned(origin: &str, t: &TrustedCheckpoint) -> Value {
    json!({
        "origin": origin,
        "size": t.checkpoint.size(),
        "root": kchain_core::to_hex(t.checkpoint.root()),
        "writers": t.writers,
        "cosignatures": t.cosigners.iter()
            .map(|(name, time)| json!({ "witness": name, "time": time }))
            .collect::<Vec<_>>(),
    })
}

/// A ledger verified as `kchain ledger verify --chain C --json` does it with its default
/// anchors, with its findings and its newest checkpoint's cosignatures.
fn verify_chain(g: &Global, log: &dyn Log, chain: &str) -> Result<Value> {
    let blocks = format!("{chain}.blocks");
    let anchors = ledger_anchors(g, &AnchorArgs::default())?;
    let opts = verify_options(g, &blocks, None, &[], false, anchors)?;
    let report = kchain_ledger::verify_ledger(log, &blocks, &opts, &|_| {})?;
    let mut v = report.to_json();
    let findings: Vec<Value> = v["finding"]
        .as_object()
        .map(|f| json!(f))
        .into_iter()
        .collect();
    let cosignatures: Vec<Value> = report
        .checkpoints
        .iter()
        .filter_map(|c| Some(cosigned(&c.origin, &c.newest.as_ref()?.1)))
        .collect();
    v["ledger"] = json!(chain);
    v["findings"] = json!(findings);
    v["newest_checkpoints"] = json!(cosignatures);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledgers_and_companions_are_not_chained_topics() {
        let names: Vec<String> = [
            "orders",
            "orders.checkpoints",
            "pay.transactions",
            "pay.blocks",
            "pay.blocks.checkpoints",
            "pay.rejected",
            "lonely.blocks",
            "__consumer_offsets",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            chains(&names),
            Chains {
                topics: vec!["lonely.blocks".into(), "orders".into()],
                ledgers: vec!["pay".into()],
            }
        );
    }
}
