//! Chained topics on a real Kafka-API broker (a private tansu): writers resume, a second
//! writer on the same partition is caught by both the first writer and the verifier, and a
//! broker restart leaves a chain that verifies.

#![cfg(feature = "kafka")]

mod common;

use common::*;
use kchain_core::FindingKind;
use kchain_log::{KafkaLog, KafkaOptions, Log, TopicConfig};
use kchain_topic::{verify_topic, ChainWriter, TopicError, VerifyOptions, WriterOptions};

fn connect(brokers: &str) -> KafkaLog {
    KafkaLog::connect(brokers, KafkaOptions::default()).expect("connect to the test broker")
}

fn writer<'k>(log: &dyn Log, topic: &str, key: &'k kchain_core::WriterKey) -> ChainWriter<'k> {
    ChainWriter::open(log, topic, 0, key, WriterOptions::default()).unwrap()
}

fn items(from: u64, n: u64) -> Vec<kchain_core::Item> {
    (from..from + n).map(item).collect()
}

#[test]
fn writer_resumes_its_chain_after_a_restart() {
    let log = kafka();
    let t = unique_topic("resume");
    log.create_topic(&t, &TopicConfig::default()).unwrap();
    let key = key("w", 11);
    writer(&log, &t, &key).append(items(0, 30)).unwrap();
    // A new process (a new connection) picks the chain up at its tip.
    let again = connect(&common::broker::Broker::shared().brokers);
    let mut w = writer(&again, &t, &key);
    assert_eq!(w.tip().map(|t| t.0), Some(29));
    w.append(items(30, 30)).unwrap();
    let r = verify_topic(
        &again,
        &t,
        None,
        &trust_for(&[&key]),
        VerifyOptions::default(),
        &|_| {},
    )
    .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.partitions[0].summary.entries, 60);
}

#[test]
fn a_second_writer_stops_the_first_and_the_verifier_reports_the_interleaving() {
    let brokers = common::broker::Broker::shared().brokers.clone();
    let (a_log, b_log) = (connect(&brokers), connect(&brokers));
    let t = unique_topic("interleave");
    a_log.create_topic(&t, &TopicConfig::default()).unwrap();
    let key = key("w", 12);
    let mut a = writer(&a_log, &t, &key);
    a.append(items(0, 10)).unwrap();
    // A second process with the same key resumes the chain and appends behind A's back.
    writer(&b_log, &t, &key).append(items(100, 5)).unwrap();
    let err = a.append(items(10, 10)).unwrap_err();
    match &err {
        TopicError::ForeignRecord {
            topic,
            partition,
            offset,
            ..
        } => assert_eq!((topic.as_str(), *partition, *offset), (t.as_str(), 0, 10)),
        other => panic!("expected ForeignRecord, got {other}"),
    }
    assert!(err.to_string().contains("offset 10"), "{err}");
    // Kafka kept everything both writers were acknowledged for; the verifier names where the
    // chains interleave: A's batch claims heights that B's records already hold.
    assert_eq!(a_log.end_offset(&t, 0).unwrap(), 25);
    let r = verify_topic(
        &a_log,
        &t,
        None,
        &trust_for(&[&key]),
        VerifyOptions::default(),
        &|_| {},
    )
    .unwrap();
    let f = r.partitions[0].summary.finding.clone().expect("a finding");
    assert_eq!(f.offset, 15, "{f}");
    assert!(
        matches!(
            f.kind,
            FindingKind::Inserted | FindingKind::ForeignWriter | FindingKind::Reordered
        ),
        "{f}"
    );
    assert_eq!(r.partitions[0].summary.entries, 15);
}

#[test]
fn a_broker_restart_mid_stream_leaves_a_chain_that_verifies() {
    let mut broker = common::broker::Broker::start("sqlite");
    let t = unique_topic("restart");
    let key = key("w", 13);
    {
        let log = connect(&broker.brokers);
        // tansu's maintenance deletes every record of a topic with retention.ms=-1 (see
        // docs/kafka.md), so this test uses a long finite retention.
        log.create_topic(
            &t,
            &TopicConfig {
                partitions: 1,
                retention_ms: Some(100 * 365 * 24 * 3600 * 1000),
            },
        )
        .unwrap();
        writer(&log, &t, &key).append(items(0, 40)).unwrap();
    }
    broker.restart();
    let log = connect(&broker.brokers);
    let mut w = writer(&log, &t, &key);
    assert_eq!(w.tip().map(|t| t.0), Some(39));
    w.append(items(40, 40)).unwrap();
    let r = verify_topic(
        &log,
        &t,
        None,
        &trust_for(&[&key]),
        VerifyOptions::default(),
        &|_| {},
    )
    .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.partitions[0].summary.entries, 80);
}
