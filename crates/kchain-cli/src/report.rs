//! Rendering verification results for people (text) and machines (`--json`).

use kchain_core::{to_hex, Finding};
use kchain_topic::{short, PartitionReport, TopicReport};
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

fn partition_json(p: &PartitionReport) -> Value {
    let s = &p.summary;
    json!({
        "partition": p.partition,
        "ok": s.ok(),
        "entries": s.entries,
        "tip_height": s.tip.map(|t| t.height),
        "tip_hash": s.tip.map(|t| to_hex(&t.hash)),
        "pending": s.pending,
        "start_offset": p.start_offset,
        "end_offset": p.end_offset,
        "finding": s.finding.as_ref().map(finding_json),
    })
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
    let mut out = if bad == 0 {
        format!(
            "{}: OK, {} partition(s), {entries} entries verified\n",
            r.topic,
            r.partitions.len()
        )
    } else {
        format!(
            "{}: TAMPERING FOUND in {bad} of {} partition(s)\n",
            r.topic,
            r.partitions.len()
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
    }
    for w in &r.warnings {
        out += &format!("  warning: {w}\n");
    }
    out
}
