//! Helpers shared by the chained-topic tests.
#![allow(dead_code)]

use kchain_core::{Item, Trust, TrustedWriter, WriterKey};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, TopicConfig};
use kchain_topic::{ChainWriter, WriterOptions};

/// A topic name no other test (or earlier run against the same broker) uses.
pub fn unique_topic(prefix: &str) -> String {
    kchain_testkit::unique_name(prefix)
}

/// Fresh, empty logs to copy a chain into: an embedded log, and with the `kafka` feature the
/// test binary's private tansu broker (topics there must have names of their own).
pub fn destinations() -> Vec<(&'static str, Box<dyn Log>)> {
    let dir = Box::leak(Box::new(kchain_testkit::tempdir()));
    let out: Vec<(&'static str, Box<dyn Log>)> = vec![("embedded", Box::new(open_log(dir.path())))];
    #[cfg(feature = "kafka")]
    let out = {
        let mut out = out;
        out.push(("kafka", Box::new(kafka()) as Box<dyn Log>));
        out
    };
    out
}

/// A Kafka log on this test binary's private broker.
#[cfg(feature = "kafka")]
pub fn kafka() -> kchain_log::KafkaLog {
    kchain_log::KafkaLog::connect(
        &kchain_testkit::Broker::shared().brokers,
        kchain_log::KafkaOptions::default(),
    )
    .expect("connect to the test broker")
}

pub fn open_log(dir: &std::path::Path) -> EmbeddedLog {
    EmbeddedLog::create(
        dir,
        EmbeddedOptions {
            fsync: FsyncPolicy::Never,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap()
}

pub fn key(name: &str, seed: u8) -> WriterKey {
    WriterKey::from_seed(name, [seed; 32])
}

pub fn trust_for(keys: &[&WriterKey]) -> Trust {
    Trust {
        writers: keys
            .iter()
            .map(|k| TrustedWriter {
                name: k.name().to_owned(),
                key: k.public(),
                topics: Vec::new(),
            })
            .collect(),
        pins: Vec::new(),
        topics: Vec::new(),
    }
}

pub fn item(i: u64) -> Item {
    Item {
        key: Some(format!("key-{}", i % 7).into_bytes()),
        value: Some(format!("{{\"event\":\"scan\",\"seq\":{i}}}").into_bytes()),
        headers: vec![("source".into(), b"test".to_vec())],
        timestamp_ms: 1_700_000_000_000 + i as i64,
    }
}

/// Writes `n` items to partition 0 of `topic` in batches of `batch` (signature at the end of
/// each batch).
pub fn write_chain(log: &dyn Log, topic: &str, key: &WriterKey, n: u64, batch: usize) {
    if log.topic(topic).is_err() {
        log.create_topic(topic, &TopicConfig::default()).unwrap();
    }
    let mut w = ChainWriter::open(
        log,
        topic,
        0,
        key,
        WriterOptions {
            max_batch_records: batch,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let start = w.tip().map_or(0, |(h, _)| h + 1);
    w.append((start..start + n).map(item).collect()).unwrap();
}
