//! `trust`: the trust file's writer keys and pins.

use anyhow::Result;
use clap::Subcommand;
use kchain_core::{Pin, PublicKey, Trust, TrustedWriter};
use kchain_topic::{inspect, read_trust_file, verify_topic, write_trust_file, VerifyOptions};

use crate::global::{load_trust, open_log, Global};
use crate::report::topic_text;
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// Trust a writer's public key.
    Add {
        name: String,
        /// 64 hex digits, as `kchain pubkey` prints.
        public_key: String,
        /// Restrict the key to this topic (repeatable).
        #[arg(long = "topic")]
        topics: Vec<String>,
    },
    /// Verify a topic and pin each partition's genesis and current tip, so that later
    /// truncation or rewriting is caught.
    Pin {
        topic: String,
        #[arg(long, short)]
        partition: Option<u32>,
    },
    /// Print the trust file.
    Show,
}

pub fn trust(g: &Global, cmd: TrustCmd) -> Result<Outcome> {
    match cmd {
        TrustCmd::Add {
            name,
            public_key,
            topics,
        } => {
            let key = PublicKey::from_hex(&public_key)?;
            let mut trust = load_or_new_trust(g)?;
            trust.add_writer(TrustedWriter { name, key, topics });
            write_trust_file(&g.trust_path(), &trust)?;
            println!("trusted key {} in {}", key.id(), g.trust_path().display());
            Ok(Outcome::Clean)
        }
        TrustCmd::Show => {
            print!("{}", load_trust(g)?.to_toml());
            Ok(Outcome::Clean)
        }
        TrustCmd::Pin { topic, partition } => pin(g, &topic, partition),
    }
}

pub(crate) fn load_or_new_trust(g: &Global) -> Result<Trust> {
    let path = g.trust_path();
    Ok(if path.exists() {
        read_trust_file(&path)?
    } else {
        Trust::default()
    })
}

/// Verifies the topic, then pins each partition's genesis and tip.
fn pin(g: &Global, topic: &str, partition: Option<u32>) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let mut trust = load_trust(g)?;
    let parts = partition.map(|p| vec![p]);
    let report = verify_topic(
        log.as_ref(),
        topic,
        parts.as_deref(),
        &trust,
        VerifyOptions::default(),
        &|_| {},
    )?;
    if !report.ok() {
        print!("{}", topic_text(&report));
        eprintln!("kchain: not pinning a topic that does not verify");
        return Ok(Outcome::Findings);
    }
    for p in &report.partitions {
        let Some(tip) = p.summary.tip else {
            println!("{topic}/{}: empty, nothing to pin", p.partition);
            continue;
        };
        let genesis = inspect(log.as_ref(), topic, p.partition, p.start_offset, 1)?
            .first()
            .and_then(|r| r.hash);
        trust.set_pin(Pin {
            topic: topic.to_owned(),
            partition: p.partition,
            genesis,
            tip: Some((tip.height, tip.hash)),
        });
        println!(
            "{topic}/{}: pinned tip height {} hash {}",
            p.partition,
            tip.height,
            kchain_core::to_hex(&tip.hash)
        );
    }
    // The partition count is pinned too: a log that later reports fewer partitions (a
    // metadata file edited, a topic recreated) is hiding some.
    let partitions = log.topic(topic)?.partitions;
    trust.set_topic_pin(topic, partitions);
    println!("{topic}: pinned {partitions} partition(s)");
    write_trust_file(&g.trust_path(), &trust)?;
    Ok(Outcome::Clean)
}
