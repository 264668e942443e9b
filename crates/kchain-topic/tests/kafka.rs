//! Chained topics on a real Kafka-API broker (a private tansu): writers resume, a second
//! writer on the same partition is caught by both the first writer and the verifier, and a
//! broker restart leaves a chain that verifies.

#![cfg(feature = "kafka")]

mod common;

use common::*;
use kchain_core::FindingKind;
use kchain_log::{KafkaLog, KafkaOptions, Log, TopicConfig};
use kchain_topic::{ChainWriter, TopicError, TopicVerifier, WriterOptions};

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
    let again = connect(&kchain_testkit::Broker::shared().brokers);
    let mut w = writer(&again, &t, &key);
    assert_eq!(w.tip().map(|t| t.0), Some(29));
    w.append(items(30, 30)).unwrap();
    let r = TopicVerifier::new(&trust_for(&[&key]))
        .verify_chains(&again, &t)
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.partitions[0].summary.entries, 60);
}

#[test]
fn a_second_writer_stops_the_first_and_the_verifier_reports_the_interleaving() {
    let brokers = kchain_testkit::Broker::shared().brokers.clone();
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
    let r = TopicVerifier::new(&trust_for(&[&key]))
        .verify_chains(&a_log, &t)
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
    let mut broker = kchain_testkit::Broker::start("sqlite");
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
    let r = TopicVerifier::new(&trust_for(&[&key]))
        .verify_chains(&log, &t)
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.partitions[0].summary.entries, 80);
}

#[test]
fn checkpoints_witnesses_and_proofs_work_through_kafka() {
    use kchain_core::{verify_inclusion_proof, Cosigner, TrustFile, Witness};
    use kchain_topic::{
        checkpoints::{check_checkpoints, prove_inclusion, witness_pass, WitnessEvent},
        CheckpointOptions,
    };
    let log = kafka();
    let t = unique_topic("checkpoints");
    log.create_topic(&t, &TopicConfig::default()).unwrap();
    let key = key("acme", 21);
    let trust = trust_for(&[&key]);
    let writers = vec![key.note_signer().unwrap().verifier()];
    let (w1, w2) = (
        Cosigner::from_seed("w1.example", [31; 32]).unwrap(),
        Cosigner::from_seed("w2.example", [32; 32]).unwrap(),
    );
    let ct = TrustFile::from_toml(&format!(
        "[[witness]]\nkey = \"{}\"\n[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 2\n",
        w1.verifier().to_vkey(),
        w2.verifier().to_vkey()
    ))
    .unwrap()
    .checkpoints
    .unwrap();
    let states = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pass = |c: &Cosigner, state: &std::path::Path| {
        let w = Witness::new(c.clone(), writers.clone());
        witness_pass(&log, &t, &w, &writers, state, "kchain", 1_750_000_000).unwrap()
    };
    let cosigned = |events: &[WitnessEvent]| {
        events
            .iter()
            .filter_map(|e| match e {
                WitnessEvent::Cosigned { size, .. } => Some(*size),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let write = |from: u64, n: u64| {
        let mut w = writer(&log, &t, &key)
            .with_checkpoints(
                &log,
                CheckpointOptions {
                    every_entries: 40,
                    ..CheckpointOptions::default()
                },
            )
            .unwrap();
        for chunk in items(from, n).chunks(20) {
            w.append(chunk.to_vec()).unwrap();
        }
        w.flush().unwrap();
    };
    write(0, 100);
    // 40, 80 while appending, 100 on flush; both witnesses cosign each through the topic.
    assert_eq!(cosigned(&pass(&w1, states.0.path())), vec![40, 80, 100]);
    assert_eq!(cosigned(&pass(&w2, states.1.path())), vec![40, 80, 100]);
    // More entries: each witness reads only what is new, from its frontier.
    write(100, 30);
    assert_eq!(cosigned(&pass(&w1, states.0.path())), vec![130]);
    assert_eq!(cosigned(&pass(&w2, states.1.path())), vec![130]);

    let report = TopicVerifier::new(&trust).verify_chains(&log, &t).unwrap();
    assert!(report.ok(), "{report:?}");
    let checked = check_checkpoints(&log, &report, &trust, &ct).unwrap();
    assert!(checked.ok(), "{}", checked.to_text());
    let newest = checked.partitions[0].newest.as_ref().unwrap();
    assert_eq!(newest.checkpoint.size(), 130);
    assert_eq!(newest.cosigners.len(), 2);

    let proof = prove_inclusion(&log, &t, 0, 77, "kchain").unwrap();
    let policy = ct.policy(&trust, &t, 0).unwrap();
    let v = verify_inclusion_proof(&proof, &policy).unwrap();
    assert_eq!(v.index, 77);
    assert_eq!(v.item.unwrap().value, item(77).value);
}

#[test]
fn a_producer_spreads_keys_over_partitions_as_kafka_does_and_everything_verifies() {
    use kchain_topic::{partition_for_key, ProducerOptions, TopicProducer, TopicVerifier};
    let log = kafka();
    let t = unique_topic("producer");
    let config = TopicConfig {
        partitions: 3,
        retention_ms: None,
    };
    log.create_topic(&t, &config).unwrap();
    let key = key("w", 14);
    let mut producer = TopicProducer::open(&log, &t, &key, ProducerOptions::default()).unwrap();
    let mut expected = [0u64; 3];
    for i in 0..60u64 {
        let k = format!("k{}", i % 7).into_bytes();
        let p = producer
            .send(Some(k.clone()), Some(vec![1]), vec![], 1)
            .unwrap();
        assert_eq!(p, partition_for_key(&k, 3));
        expected[p as usize] += 1;
    }
    producer.flush().unwrap();
    let report = TopicVerifier::new(&trust_for(&[&key]))
        .verify_chains(&log, &t)
        .unwrap();
    assert!(report.ok(), "{report:?}");
    let entries: Vec<u64> = report
        .partitions
        .iter()
        .map(|p| p.summary.entries)
        .collect();
    assert_eq!(entries, expected);
}
