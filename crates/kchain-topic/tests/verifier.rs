//! The `TopicVerifier` builder: the same findings as the entry points it replaces, the
//! checkpoint check and remembered state in one run, and the anchor warnings.

mod common;

use std::time::Duration;

use common::{item, key, open_log, trust_for, unique_topic, write_chain};
use kchain_core::{CheckpointTrust, DataKey, Keyring, TrustFile};
use kchain_log::{Log, TopicConfig};
use kchain_topic::{
    check_checkpoints, read_checkpoints, tamper, verify_topic, verify_topic_decrypting,
    ChainWriter, CheckpointFindingKind, CheckpointOptions, CheckpointStore, TopicVerifier,
    VerifyOptions, WriterOptions,
};

fn policy() -> CheckpointTrust {
    TrustFile::from_toml("[policy]\n")
        .unwrap()
        .checkpoints
        .unwrap()
}

fn write_with_checkpoints(log: &dyn Log, topic: &str, k: &kchain_core::WriterKey, n: u64) {
    if log.topic(topic).is_err() {
        log.create_topic(topic, &TopicConfig::default()).unwrap();
    }
    let options = CheckpointOptions {
        every_entries: 10,
        every: Duration::from_secs(3600),
        ..CheckpointOptions::default()
    };
    let mut w = ChainWriter::open(log, topic, 0, k, WriterOptions::default())
        .unwrap()
        .with_checkpoints(log, options)
        .unwrap();
    for i in 0..n {
        w.append(vec![item(i)]).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn the_chain_report_is_the_one_of_verify_topic() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("builder");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    log.create_topic(
        &topic,
        &TopicConfig {
            partitions: 2,
            retention_ms: None,
        },
    )
    .unwrap();
    for p in 0..2 {
        let mut w = ChainWriter::open(&log, &topic, p, &k, WriterOptions::default()).unwrap();
        w.append((0..15).map(item).collect()).unwrap();
    }
    let old = verify_topic(
        &log,
        &topic,
        None,
        &trust,
        VerifyOptions::default(),
        &|_| {},
    )
    .unwrap();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let count = |n| {
        seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    };
    let new = TopicVerifier::new(&trust)
        .threads(2)
        .progress(&count)
        .verify_chains(&log, &topic)
        .unwrap();
    assert_eq!(old, new);
    assert_eq!(seen.into_inner(), 30);
    let one = TopicVerifier::new(&trust)
        .partitions(&[1])
        .verify_chains(&log, &topic)
        .unwrap();
    assert_eq!(one.partitions.len(), 1);
    assert_eq!(one.partitions[0], old.partitions[1]);
}

#[test]
fn a_keyring_checks_decryption_as_verify_topic_decrypting_does() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("builder-enc");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    log.create_topic(&topic, &TopicConfig::default()).unwrap();
    let data_key = DataKey::generate(0).unwrap();
    let mut w = ChainWriter::open(&log, &topic, 0, &k, WriterOptions::default())
        .unwrap()
        .with_encryption(&data_key);
    w.append((0..5).map(item).collect()).unwrap();
    let mut ring = Keyring::default();
    ring.add(data_key.clone()).unwrap();
    let old = verify_topic_decrypting(
        &log,
        &topic,
        None,
        &trust,
        &ring,
        VerifyOptions::default(),
        &|_| {},
    )
    .unwrap();
    let new = TopicVerifier::new(&trust)
        .keyring(&ring)
        .verify(&log, &topic)
        .unwrap();
    assert_eq!(old.partitions, new.chain.partitions);
    let enc = new.chain.partitions[0].encryption.as_ref().unwrap();
    assert!(enc.ok(), "{enc:?}");
    // Without a keyring, nothing is decrypted.
    let plain = TopicVerifier::new(&trust)
        .keyring(None)
        .verify(&log, &topic)
        .unwrap();
    assert!(plain.chain.partitions[0].encryption.is_none());
}

#[test]
fn checkpoints_are_checked_and_remembered_in_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("builder-cp");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    write_with_checkpoints(&log, &topic, &k, 25);
    let policy = policy();
    let chain = verify_topic(
        &log,
        &topic,
        None,
        &trust,
        VerifyOptions::default(),
        &|_| {},
    )
    .unwrap();
    let old = check_checkpoints(&log, &chain, &trust, &policy).unwrap();

    let memory = tempfile::tempdir().unwrap();
    let verifier = TopicVerifier::new(&trust)
        .checkpoints(&policy)
        .remember(CheckpointStore::new(memory.path()), "embedded:test");
    let report = verifier.verify(&log, &topic).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.checkpoints.as_ref(), Some(&old));
    assert!(
        report.chain.warnings.is_empty(),
        "{:?}",
        report.chain.warnings
    );

    // The log rolled back to an older state (chain and checkpoints cut at 10 entries): the
    // checkpoints topic alone is consistent, the remembered checkpoint is not.
    let dir2 = tempfile::tempdir().unwrap();
    let older = open_log(dir2.path());
    let cps = kchain_topic::checkpoints_topic(&topic);
    tamper::copy_topic_with(&log, &older, &topic, |_, recs| recs.truncate(10)).unwrap();
    let first = read_checkpoints(&log, &topic).unwrap()[0].offset;
    tamper::copy_topic_with(&log, &older, &cps, |_, recs| {
        recs.truncate(first as usize + 1)
    })
    .unwrap();
    let rolled = verifier.verify(&older, &topic).unwrap();
    let finding = rolled.checkpoints.as_ref().unwrap().partitions[0]
        .finding
        .as_ref()
        .unwrap_or_else(|| panic!("expected a finding: {rolled:?}"));
    assert_eq!(finding.kind, CheckpointFindingKind::Rollback);
    assert!(!rolled.ok());
}

#[test]
fn a_partition_nothing_anchors_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("builder-bare");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    log.create_topic(&topic, &TopicConfig::default()).unwrap();
    write_chain(&log, &topic, &k, 5, 2);
    let report = TopicVerifier::new(&trust).verify(&log, &topic).unwrap();
    assert!(report.ok());
    assert!(report.checkpoints.is_none());
    assert_eq!(
        report.chain.warnings.len(),
        1,
        "{:?}",
        report.chain.warnings
    );
    assert!(report.chain.warnings[0].contains("no pin and no trusted checkpoint"));
    // The chains alone: no anchor warnings.
    let chains = TopicVerifier::new(&trust)
        .verify_chains(&log, &topic)
        .unwrap();
    assert!(chains.warnings.is_empty());
}
