//! The `TopicVerifier` builder: the same findings as the entry points it replaces, the
//! checkpoint check and remembered state in one run, and the anchor warnings.

mod common;

use std::time::Duration;

use common::{item, key, open_log, trust_for, unique_topic, write_chain};
use kchain_core::{CheckpointTrust, DataKey, Keyring, TrustFile};
use kchain_log::{Log, TopicConfig};
use kchain_topic::{
    checkpoints::{check_checkpoints, read_checkpoints, CheckpointFindingKind},
    files::CheckpointStore,
    tamper, ChainWriter, CheckpointOptions, TopicVerifier, WriterOptions,
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
fn the_chain_report_is_the_one_of_verify_chains() {
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
    let old = TopicVerifier::new(&trust)
        .verify_chains(&log, &topic)
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
fn a_keyring_checks_decryption_in_verify_chains_as_in_verify() {
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
    let old = TopicVerifier::new(&trust)
        .keyring(&ring)
        .verify_chains(&log, &topic)
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
    let chain = TopicVerifier::new(&trust)
        .verify_chains(&log, &topic)
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
    let cps = kchain_topic::checkpoints::checkpoints_topic(&topic);
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

#[test]
fn pins_of_another_log_are_not_applied_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("elsewhere");
    let k = key("acme", 1);
    log.create_topic(&topic, &TopicConfig::default()).unwrap();
    let mut w = ChainWriter::open(&log, &topic, 0, &k, WriterOptions::default()).unwrap();
    w.append((0..5).map(item).collect()).unwrap();
    let mut trust = trust_for(&[&k]);
    // A pin of the same topic name on another log, at a height this chain never reached.
    trust.set_pin(kchain_core::Pin {
        topic: topic.clone(),
        partition: 0,
        genesis: Some([9; 32]),
        tip: Some((40, [9; 32])),
        log: Some("embedded:/elsewhere".into()),
    });
    assert!(!TopicVerifier::new(&trust)
        .verify(&log, &topic)
        .unwrap()
        .ok());
    let report = TopicVerifier::new(&trust)
        .log("kafka:cluster-1")
        .verify(&log, &topic)
        .unwrap();
    assert!(report.ok(), "{report:?}");
    let warnings = report.chain.warnings.join("\n");
    assert!(
        warnings.contains(&format!(
            "{topic} is pinned on embedded log /elsewhere, not on kafka cluster cluster-1: pins \
             not applied"
        )),
        "{warnings}"
    );
    assert!(
        warnings.contains("no pin and no trusted checkpoint"),
        "{warnings}"
    );
}

/// A log that counts the readers opened on each topic (and otherwise is the log it wraps).
struct CountingLog<'a> {
    inner: &'a dyn Log,
    readers: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl CountingLog<'_> {
    fn readers_of(&self, topic: &str) -> usize {
        self.readers
            .lock()
            .unwrap()
            .get(topic)
            .copied()
            .unwrap_or(0)
    }
}

impl Log for CountingLog<'_> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<(), kchain_log::LogError> {
        self.inner.create_topic(name, config)
    }
    fn list_topics(&self) -> Result<Vec<kchain_log::TopicInfo>, kchain_log::LogError> {
        self.inner.list_topics()
    }
    fn topic(&self, name: &str) -> Result<kchain_log::TopicInfo, kchain_log::LogError> {
        self.inner.topic(name)
    }
    fn appender(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Box<dyn kchain_log::Appender>, kchain_log::LogError> {
        self.inner.appender(topic, partition)
    }
    fn reader(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
    ) -> Result<Box<dyn kchain_log::Reader>, kchain_log::LogError> {
        *self
            .readers
            .lock()
            .unwrap()
            .entry(topic.to_owned())
            .or_default() += 1;
        self.inner.reader(topic, partition, from)
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, kchain_log::LogError> {
        self.inner.end_offset(topic, partition)
    }
    fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, kchain_log::LogError> {
        self.inner.start_offset(topic, partition)
    }
    fn cheap_readers(&self) -> bool {
        self.inner.cheap_readers()
    }
}

#[test]
fn verify_with_checkpoints_reads_the_chain_once() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = open_log(dir.path());
    let log = CountingLog {
        inner: &embedded,
        readers: Default::default(),
    };
    let topic = unique_topic("once");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    write_with_checkpoints(&log, &topic, &k, 35);
    let policy = policy();
    let before = log.readers_of(&topic);
    let r = TopicVerifier::new(&trust)
        .threads(1)
        .checkpoints(&policy)
        .verify(&log, &topic)
        .unwrap();
    assert!(r.ok(), "{r:?}");
    let p = &r.checkpoints.as_ref().unwrap().partitions[0];
    assert_eq!(p.newest.as_ref().unwrap().checkpoint.size(), 35);
    // Checkpoints at sizes 10, 20, 30 and 35: every root from the one chain pass.
    assert_eq!(p.seen, 4);
    assert_eq!(
        log.readers_of(&topic) - before,
        1,
        "one reader for chain and tree"
    );
}
