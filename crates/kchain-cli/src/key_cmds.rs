//! `keygen`, `pubkey` and `trust`.

use anyhow::{bail, Result};
use kchain_core::{Pin, PublicKey, Trust, TrustedWriter, WriterKey};
use kchain_topic::{
    inspect, read_key_file, read_trust_file, verify_topic, write_key_file, write_trust_file,
    VerifyOptions,
};

use crate::args::{Global, KeygenArgs, TrustCmd};
use crate::report::topic_text;
use crate::{load_trust, open_log, Outcome};

fn load_or_new_trust(g: &Global) -> Result<Trust> {
    let path = g.trust_path();
    Ok(if path.exists() {
        read_trust_file(&path)?
    } else {
        Trust::default()
    })
}

pub fn keygen(g: &Global, a: &KeygenArgs) -> Result<Outcome> {
    let path = g.key_path();
    if path.exists() {
        bail!(
            "key file {} already exists; remove it first or pass --key-file for a new one",
            path.display()
        );
    }
    let key = WriterKey::generate(&a.name);
    write_key_file(&path, &key)?;
    println!(
        "wrote writer key '{}' to {} (mode 0600)",
        a.name,
        path.display()
    );
    println!("key id     {}", key.id());
    println!("public key {}", key.public().to_hex());
    if !a.no_trust {
        let mut trust = load_or_new_trust(g)?;
        trust.add_writer(TrustedWriter {
            name: a.name.clone(),
            key: key.public(),
            topics: a.topics.clone(),
        });
        write_trust_file(&g.trust_path(), &trust)?;
        println!("trusted it in {}", g.trust_path().display());
    }
    Ok(Outcome::Clean)
}

pub fn pubkey(g: &Global) -> Result<Outcome> {
    let key = read_key_file(&g.key_path())?;
    println!("{}", key.public().to_hex());
    Ok(Outcome::Clean)
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
