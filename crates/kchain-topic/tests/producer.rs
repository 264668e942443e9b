//! The `TopicProducer`: keyed records land where Kafka's partitioner puts them, records
//! without a key stick to one partition per batch, batches are bounded in size and in time,
//! and everything it writes verifies.

mod common;

use std::time::Duration;

use common::{key, open_log, trust_for, unique_topic};
use kchain_core::{DataKey, Keyring};
use kchain_log::{Log, LogError, TopicConfig};
use kchain_topic::{
    checkpoints::newest_checkpoint, partition_for_key, ProducerOptions, TopicError, TopicProducer,
    TopicVerifier, WriterOpenStage, WriterOptions,
};

fn topic_with(log: &dyn Log, prefix: &str, partitions: u32) -> String {
    let topic = unique_topic(prefix);
    let config = TopicConfig {
        partitions,
        retention_ms: None,
    };
    log.create_topic(&topic, &config).unwrap();
    topic
}

fn options(batch: usize, linger: Duration) -> ProducerOptions {
    ProducerOptions {
        writer: WriterOptions {
            max_batch_records: batch,
            ..WriterOptions::default()
        },
        linger,
        checkpoints: None,
    }
}

fn value(i: u64) -> Option<Vec<u8>> {
    Some(format!("value {i}").into_bytes())
}

#[test]
fn keyed_records_go_where_kafka_puts_them_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = topic_with(&log, "prod-keys", 4);
    let k = key("acme", 1);
    let mut producer =
        TopicProducer::open(&log, &topic, &k, options(8, Duration::from_secs(60))).unwrap();
    let mut expected = [0u64; 4];
    for i in 0..100u64 {
        let key = format!("customer-{}", i % 13).into_bytes();
        let p = producer
            .send(Some(key.clone()), value(i), Vec::new(), 1)
            .unwrap();
        assert_eq!(p, partition_for_key(&key, 4));
        expected[p as usize] += 1;
    }
    let receipts = producer.flush().unwrap();
    let mut appended = [0u64; 4];
    for r in &receipts {
        appended[r.partition as usize] += r.receipt.records;
        assert!(r.receipt.records <= 8, "a batch is bounded: {r:?}");
    }
    assert_eq!(appended, expected);
    let trust = trust_for(&[&k]);
    let report = TopicVerifier::new(&trust)
        .verify_chains(&log, &topic)
        .unwrap();
    assert!(report.ok(), "{report:?}");
    for p in &report.partitions {
        assert_eq!(p.summary.entries, expected[p.partition as usize]);
        assert_eq!(p.summary.pending, 0);
    }
}

#[test]
fn records_without_a_key_stick_to_a_partition_for_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = topic_with(&log, "prod-sticky", 3);
    let k = key("acme", 1);
    let mut producer =
        TopicProducer::open(&log, &topic, &k, options(4, Duration::from_secs(60))).unwrap();
    let sent: Vec<u32> = (0..14)
        .map(|i| producer.send(None, value(i), Vec::new(), 1).unwrap())
        .collect();
    assert_eq!(sent, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0]);
    let receipts = producer.flush().unwrap();
    let per: Vec<(u32, u64)> = receipts
        .iter()
        .map(|r| (r.partition, r.receipt.records))
        .collect();
    assert_eq!(per, [(0, 4), (1, 4), (2, 4), (0, 2)]);
    // The explicit partition is taken as given, and checked.
    let item = kchain_core::Item::default();
    producer.send_to(2, item.clone()).unwrap();
    match producer.send_to(3, item) {
        Err(TopicError::Log(LogError::NoSuchPartition { partition: 3, .. })) => {}
        other => panic!("expected NoSuchPartition, got {other:?}"),
    }
}

#[test]
fn a_lingering_batch_is_sent_on_the_next_send_or_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = topic_with(&log, "prod-linger", 2);
    let k = key("acme", 1);
    let linger = Duration::from_millis(50);
    let mut producer = TopicProducer::open(&log, &topic, &k, options(1000, linger)).unwrap();
    producer
        .send(Some(b"a".to_vec()), value(0), Vec::new(), 1)
        .unwrap();
    assert!(producer.flush_due().unwrap().is_empty(), "not due yet");
    std::thread::sleep(linger + Duration::from_millis(10));
    let due = producer.flush_due().unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].receipt.records, 1);
    // A send finds the other lingering batch and sends it along.
    let p = producer.send(None, value(1), Vec::new(), 1).unwrap();
    std::thread::sleep(linger + Duration::from_millis(10));
    let q = producer
        .send(Some(b"b".to_vec()), value(2), Vec::new(), 1)
        .unwrap();
    let sent = producer.flush_due().unwrap();
    assert!(
        sent.iter().any(|r| r.partition == p),
        "the lingering batch of {p} went with the send to {q}: {sent:?}"
    );
    // Every record was signed before the producer flushed: nothing pending at the end but
    // what the last send queued.
    let trust = trust_for(&[&k]);
    let report = TopicVerifier::new(&trust)
        .grace(Duration::ZERO)
        .verify_chains(&log, &topic)
        .unwrap();
    assert!(report.ok(), "{report:?}");
    producer.flush().unwrap();
    let report = TopicVerifier::new(&trust)
        .verify_chains(&log, &topic)
        .unwrap();
    let total: u64 = report.partitions.iter().map(|p| p.summary.entries).sum();
    assert_eq!(total, 3);
}

#[test]
fn flush_signs_checkpoints_and_encrypted_values_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = topic_with(&log, "prod-cp", 2);
    let k = key("acme", 1);
    let data_key = DataKey::generate(0).unwrap();
    let mut producer = TopicProducer::open(&log, &topic, &k, ProducerOptions::default())
        .unwrap()
        .with_encryption(Some(&data_key));
    for i in 0..20u64 {
        let key = format!("k{i}").into_bytes();
        producer.send(Some(key), value(i), Vec::new(), 1).unwrap();
    }
    producer.flush().unwrap();
    for (p, w) in producer.writers() {
        let note = newest_checkpoint(&log, &topic, p, "kchain")
            .unwrap()
            .unwrap();
        assert_eq!(Some(&note), w.last_checkpoint());
    }
    let mut ring = Keyring::default();
    ring.add(data_key.clone()).unwrap();
    let trust = trust_for(&[&k]);
    let report = TopicVerifier::new(&trust)
        .keyring(&ring)
        .verify_chains(&log, &topic)
        .unwrap();
    assert!(report.ok(), "{report:?}");
    let entries: u64 = report.partitions.iter().map(|p| p.summary.entries).sum();
    assert_eq!(entries, 20);
}

#[test]
fn a_writer_that_cannot_open_is_named_and_loses_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = topic_with(&log, "prod-foreign", 2);
    let (a, b) = (key("a", 1), key("b", 2));
    common::write_chain(&log, &topic, &a, 3, 3);
    let mut producer =
        TopicProducer::open(&log, &topic, &b, options(1, Duration::from_secs(60))).unwrap();
    match producer.open_writer(0) {
        Err(TopicError::ForeignRecord { partition: 0, .. }) => {}
        other => panic!("expected ForeignRecord, got {other:?}"),
    }
    // The staged form says it was the chain, not its checkpoints, that could not open.
    let e = producer.open_writer_staged(0).unwrap_err();
    assert_eq!((e.partition, e.stage), (0, WriterOpenStage::Chain));
    assert!(matches!(e.error, TopicError::ForeignRecord { .. }), "{e}");
    producer.open_writer(1).unwrap();
    // The record for partition 0 stays queued while its writer cannot open.
    assert!(producer.send(None, value(0), Vec::new(), 1).is_err());
    assert_eq!(log.end_offset(&topic, 0).unwrap(), 3);
    assert_eq!(producer.writers().map(|(p, _)| p).collect::<Vec<_>>(), [1]);
}
