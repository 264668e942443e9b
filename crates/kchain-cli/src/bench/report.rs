//! The bench report: what was asked and measured, each measurement in records per second
//! beside raw SHA-256, and the ratios measured side by side, as a table or one JSON line.

use serde_json::json;

use super::chained::Appends;
use super::raw::{rate, BATCH};

/// What to measure.
pub struct Params {
    /// Records per measurement.
    pub records: u64,
    /// Value size in bytes.
    pub size: usize,
    /// Signed transfers for the ledger measurement (0 skips it).
    pub ledger_txs: usize,
    /// One JSON line instead of a table.
    pub json: bool,
}

/// Every measurement of one run.
pub(crate) struct Measured {
    pub(crate) sha: std::time::Duration,
    pub(crate) raw_append: std::time::Duration,
    pub(crate) raw_read: std::time::Duration,
    pub(crate) appends: Appends,
    pub(crate) verify1: std::time::Duration,
    pub(crate) verify2: std::time::Duration,
    pub(crate) ledger: Option<kchain_ledger::BenchReport>,
}

/// The measurements in records per second.
fn rows(n: u64, m: &Measured) -> Vec<(&'static str, f64)> {
    let a = &m.appends;
    let mut rows = vec![
        ("raw SHA-256 over each value", rate(n, m.sha)),
        ("raw append (no chain)", rate(n, m.raw_append)),
        ("raw read (no verify)", rate(n, m.raw_read)),
        ("chained append", rate(n, a.plain)),
        ("chained append, encrypted", rate(n, a.encrypted)),
        (
            "chained append + checkpoints",
            rate(n, a.checkpointed.append),
        ),
    ];
    if let Some(w) = &a.witnessed {
        rows.push(("chained append + checkpoints + witness", rate(n, w.append)));
    }
    rows.push(("verify, 1 thread", rate(n, m.verify1)));
    rows.push(("verify, 2 threads", rate(n, m.verify2)));
    rows
}

/// The ratios of measurements taken side by side.
fn pairs(m: &Measured) -> Vec<(&'static str, f64)> {
    let a = &m.appends;
    let s = |d: std::time::Duration| d.as_secs_f64();
    let mut pairs = vec![
        ("chained append / raw append", s(m.raw_append) / s(a.plain)),
        (
            "encrypted / plain chained append",
            s(a.plain) / s(a.encrypted),
        ),
        (
            "with checkpoints / without",
            s(a.plain) / s(a.checkpointed.append),
        ),
    ];
    if let Some(w) = &a.witnessed {
        pairs.push((
            "with checkpoints + witness / without",
            s(a.plain) / s(w.append),
        ));
    }
    pairs.extend([
        ("verify 1 thread / raw read", s(m.raw_read) / s(m.verify1)),
        ("verify 2 threads / raw read", s(m.raw_read) / s(m.verify2)),
        ("verify 2 threads / 1 thread", s(m.verify1) / s(m.verify2)),
    ]);
    pairs
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

/// The report as one JSON object on one line.
pub(crate) fn json(p: &Params, backend: &str, m: &Measured) {
    let n = p.records;
    let sha_r = rate(n, m.sha);
    let mut o = serde_json::Map::new();
    o.insert("records".into(), json!(n));
    o.insert("value_bytes".into(), json!(p.size));
    o.insert("backend".into(), json!(backend));
    o.insert("cores".into(), json!(cores()));
    for (name, r) in rows(n, m) {
        o.insert(
            name.into(),
            json!({"records_per_s": r, "ratio_to_sha256": r / sha_r}),
        );
    }
    for (name, r) in pairs(m) {
        o.insert(name.into(), json!(r));
    }
    let a = &m.appends;
    o.insert(
        "checkpoints".into(),
        json!({
            "published_without_witness": a.checkpointed.checkpoints,
            "published_with_witness": a.witnessed.as_ref().map(|w| w.checkpoints),
            "cosigned": a.witnessed.as_ref().map(|w| w.cosigned),
            "witness_error": a.witness_note,
        }),
    );
    if let Some(l) = &m.ledger {
        o.insert(
            "ledger".into(),
            json!({
                "transactions": l.transactions,
                "blocks": l.blocks,
                "seconds": l.seconds,
                "sealed_per_s": l.sealed_per_sec,
                "ed25519_batch_verify_per_s": l.dalek_batch_verify_per_sec,
                "kchain_batch_verify_per_s": l.batch_verify_per_sec,
                "sign_per_s": l.sign_per_sec,
                "sealed_over_batch_verify": l.ratio(),
            }),
        );
    }
    println!("{}", serde_json::Value::Object(o));
}

/// The report as a table.
pub(crate) fn text(p: &Params, backend: &str, m: &Measured) {
    let n = p.records;
    let sha_r = rate(n, m.sha);
    println!(
        "kchain bench: {n} records of {} bytes, {backend}, batches of {BATCH}, {} core(s)",
        p.size,
        cores()
    );
    println!(
        "{:<40} {:>12} {:>10} {:>14}",
        "measurement", "records/s", "MB/s", "x raw SHA-256"
    );
    for (name, r) in rows(n, m) {
        println!(
            "{name:<40} {r:>12.0} {:>10.1} {:>14.3}",
            r * p.size as f64 / 1e6,
            r / sha_r
        );
    }
    for (name, r) in pairs(m) {
        println!("{name:<40} {r:>6.3}");
    }
    match (&m.appends.witnessed, &m.appends.witness_note) {
        (Some(w), _) => println!(
            "checkpoints published and cosigned during the witnessed append: {} and {}",
            w.checkpoints, w.cosigned
        ),
        (None, Some(e)) => println!("the witness could not be measured on this broker: {e}"),
        (None, None) => {}
    }
    if let Some(l) = &m.ledger {
        println!(
            "\nledger: {} signed transfers in {} blocks, {:.2} s",
            l.transactions, l.blocks, l.seconds
        );
        println!(
            "{:<32} {:>14.0}",
            "sealed end to end, tx/s", l.sealed_per_sec
        );
        println!(
            "{:<32} {:>14.0}",
            "ed25519 batch verify, sig/s", l.dalek_batch_verify_per_sec
        );
        println!("{:<32} {:>14.3}", "sealed / batch verify", l.ratio());
    }
}
