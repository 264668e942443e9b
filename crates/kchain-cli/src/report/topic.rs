//! Verification results of chained topics and their checkpoints, for people (text) and
//! machines (`--json`).

use kchain_core::{to_hex, Finding};
use kchain_topic::{short, CheckpointReport, EncryptionSummary, PartitionReport, TopicReport};
use serde_json::{json, Value};

/// The `--json` form of a finding.
pub fn finding_json(f: &Finding) -> Value {
    json!({
        "offset": f.offset,
        "height": f.height,
        "kind": f.kind.as_str(),
        "detail": f.detail,
    })
}

fn encryption_json(e: &EncryptionSummary) -> Value {
    json!({
        "plain": e.plain,
        "decrypted": e.decrypted,
        "shredded": e.shredded,
        "key_missing": e.key_missing,
        "decrypt_failed": e.failed,
        "finding": e.finding.as_ref().map(finding_json),
    })
}

/// A partition's `--json` form; `encryption` appears only when verifying with a keyring.
fn partition_json(p: &PartitionReport) -> Value {
    let s = &p.summary;
    let mut v = json!({
        "partition": p.partition,
        "ok": p.ok(),
        "entries": s.entries,
        "tip_height": s.tip.map(|t| t.height),
        "tip_hash": s.tip.map(|t| to_hex(&t.hash)),
        "pending": s.pending,
        "start_offset": p.start_offset,
        "end_offset": p.end_offset,
        "finding": s.finding.as_ref().map(finding_json),
    });
    if let Some(e) = &p.encryption {
        v["encryption"] = encryption_json(e);
    }
    v
}

/// The `--json` form of a topic report.
pub fn topic_json(r: &TopicReport) -> Value {
    json!({
        "topic": r.topic,
        "ok": r.ok(),
        "partitions": r.partitions.iter().map(partition_json).collect::<Vec<_>>(),
        "warnings": r.warnings,
    })
}

/// The text form of a topic report.
pub fn topic_text(r: &TopicReport) -> String {
    let entries: u64 = r.partitions.iter().map(|p| p.summary.entries).sum();
    let bad = r.partitions.iter().filter(|p| !p.summary.ok()).count();
    let undecryptable = r.partitions.iter().filter(|p| !p.ok()).count();
    let n = r.partitions.len();
    let mut out = if bad > 0 {
        format!(
            "{}: TAMPERING FOUND in {bad} of {n} partition(s)\n",
            r.topic
        )
    } else if undecryptable > 0 {
        format!(
            "{}: chain OK ({entries} entries verified), but records that do not decrypt in \
             {undecryptable} of {n} partition(s)\n",
            r.topic
        )
    } else {
        format!(
            "{}: OK, {n} partition(s), {entries} entries verified\n",
            r.topic
        )
    };
    for p in &r.partitions {
        let s = &p.summary;
        let tip = match s.tip {
            Some(t) => format!("tip height {} hash {}", t.height, short(&t.hash)),
            None => "empty".to_owned(),
        };
        out += &format!(
            "  partition {}: {} entries, {tip}\n",
            p.partition, s.entries
        );
        if let Some(f) = &s.finding {
            out += &format!("    FINDING {f}\n");
        }
        if let Some(e) = &p.encryption {
            out += &format!(
                "    encryption: {} decrypted, {} shredded, {} not encrypted, {} key missing, {} \
                 failed\n",
                e.decrypted, e.shredded, e.plain, e.key_missing, e.failed
            );
            if let Some(f) = &e.finding {
                out += &format!("    FINDING {f}\n");
            }
        }
    }
    for w in &r.warnings {
        out += &format!("  warning: {w}\n");
    }
    out
}

/// A checkpoint report as JSON (the `checkpoints` member of `verify --json`).
pub fn checkpoint_json(r: &CheckpointReport) -> serde_json::Value {
    serde_json::json!({
        "ok": r.ok(),
        "warnings": r.warnings,
        "partitions": r.partitions.iter().map(|p| serde_json::json!({
            "partition": p.partition,
            "origin": p.origin,
            "entries": p.entries,
            "seen": p.seen,
            "untrusted": p.untrusted,
            "newest": p.newest.as_ref().map(|t| serde_json::json!({
                "size": t.checkpoint.size(),
                "root": kchain_core::to_hex(t.checkpoint.root()),
                "writers": t.writers,
                "cosigners": t.cosigners.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            })),
            "remembered": p.remembered.as_ref().map(|c| c.size()),
            "finding": p.finding.as_ref().map(|f| serde_json::json!({
                "kind": f.kind.as_str(),
                "offset": f.offset,
                "detail": f.detail,
                "evidence": f.evidence.iter().map(|n| n.to_text()).collect::<Vec<_>>(),
            })),
        })).collect::<Vec<_>>(),
    })
}
