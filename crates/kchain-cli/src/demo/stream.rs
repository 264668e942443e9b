//! The chained-topic tour of `kchain demo`, step by step:
//!
//! ```text
//! 1 set up   writer key, trust, topic (4 partitions)
//! 2 write    supply-chain events keyed by shipment, one signed batch per 8,192
//! 3 verify   every hash, link and signature
//! 4 attack   copies edited, a record deleted, one inserted; a forgery appended (attacks.rs)
//! 5 ledger   (ledger.rs)        6 organisations (orgs.rs)   7 over HTTPS (hosts.rs)
//! 8 summary  each attack caught at its exact offset (attacks.rs)
//! ```

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use kchain_core::{Item, Trust, TrustedWriter, WriterKey};
use kchain_log::{Log, TopicConfig};
use kchain_topic::{partition_for_key, ChainWriter, TopicReport, TopicVerifier, WriterOptions};

use super::events::{event, Rng, PARTITIONS};
use super::{attacks, hosts, ledger, orgs};
use crate::progress::Progress;

/// Runs the whole tour: `n` events to `topic` on `log` (called `backend` in the story),
/// scratch files under `dir`. Fails when a step did not behave as the story says.
pub fn tour(n: u64, log: &dyn Log, topic: &str, dir: &Path, backend: &str) -> Result<()> {
    println!("kchain demo: tamper-evident event streams on {backend}\n");
    let (key, trust) = set_up(log, topic, dir, backend)?;
    write(log, topic, &key, n)?;
    let report = verify_fresh(log, topic, &trust, n)?;
    let attacks = attacks::run_all(log, topic, dir, &trust, &report)?;
    println!();
    let ledger_ok = ledger::tour(log, &dir.join("ledger"), &format!("{topic}-ledger"))?;
    let orgs_ok = orgs::tour(log, &dir.join("orgs"), &format!("{topic}-orgs"))?;
    let hosts_ok = hosts::tour(&std::env::current_exe()?, &dir.join("hosts"))?;
    let all = attacks::summary(&attacks, n);
    println!("   Next: `kchain keygen`, `kchain topic create`, `kchain produce`, `kchain verify` (see README).");
    if !all {
        bail!("the demo's attacks were not all caught as expected");
    }
    if !ledger_ok {
        bail!("the demo's ledger did not behave as expected");
    }
    if !orgs_ok {
        bail!("the demo's organisations did not behave as expected");
    }
    if !hosts_ok {
        bail!("the demo's organisations over HTTPS did not behave as expected");
    }
    Ok(())
}

/// Step 1: the writer key, a trust that names it, and the topic.
fn set_up(log: &dyn Log, topic: &str, dir: &Path, backend: &str) -> Result<(WriterKey, Trust)> {
    let key = WriterKey::generate("acme-logistics");
    let trust = Trust {
        writers: vec![TrustedWriter {
            name: key.name().into(),
            key: key.public(),
            topics: vec![topic.into()],
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    };
    log.create_topic(
        topic,
        &TopicConfig {
            partitions: PARTITIONS,
            ..TopicConfig::default()
        },
    )?;
    println!("1. Set up  {backend}, scratch space {}", dir.display());
    println!(
        "   writer key 'acme-logistics' (id {}), topic '{topic}' with {PARTITIONS} partitions",
        key.id()
    );
    Ok((key, trust))
}

/// Step 2: `n` events, keyed by shipment to their partitions, in signed batches.
fn write(log: &dyn Log, topic: &str, key: &WriterKey, n: u64) -> Result<()> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let t0 = 1_763_683_200_000;
    let mut by_part: Vec<Vec<Item>> = vec![Vec::new(); PARTITIONS as usize];
    for i in 0..n {
        let it = event(&mut rng, i, t0);
        let p = partition_for_key(it.key.as_deref().unwrap_or_default(), PARTITIONS);
        by_part[p as usize].push(it);
    }
    let sample =
        String::from_utf8_lossy(by_part[0][0].value.as_deref().unwrap_or_default()).into_owned();
    let progress = Progress::new("writing", n);
    let started = Instant::now();
    for (p, items) in by_part.into_iter().enumerate() {
        let mut w = ChainWriter::open(log, topic, p as u32, key, WriterOptions::default())?;
        for chunk in items.chunks(8192) {
            w.append(chunk.to_vec())?;
            progress.add(chunk.len() as u64);
        }
        w.flush()?;
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "\n2. Wrote {n} supply-chain events in {secs:.2} s ({:.0} records/s), keyed by shipment",
        n as f64 / secs
    );
    println!(
        "   each record is linked to the one before it; each batch is signed. e.g.\n   {sample}"
    );
    Ok(())
}

/// Step 3: the fresh topic must verify with no finding.
fn verify_fresh(log: &dyn Log, topic: &str, trust: &Trust, n: u64) -> Result<TopicReport> {
    let started = Instant::now();
    let progress = Progress::new("verifying", n);
    let report = TopicVerifier::new(trust)
        .progress(&|k| progress.add(k))
        .verify_chains(log, topic)?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    if !report.ok() {
        bail!("the freshly written topic did not verify: {report:?}");
    }
    let entries: u64 = report.partitions.iter().map(|p| p.summary.entries).sum();
    println!(
        "\n3. Verified {entries} entries in {PARTITIONS} partitions in {secs:.2} s: every hash, \
         link and signature, 0 findings"
    );
    Ok(report)
}
