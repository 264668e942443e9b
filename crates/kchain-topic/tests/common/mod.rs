//! Helpers shared by the chained-topic tests.
#![allow(dead_code)]

use kchain_core::{Item, Trust, TrustedWriter, WriterKey};
use kchain_log::{
    Appender, EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, LogError, Reader, TopicConfig,
    TopicInfo,
};
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

/// What a test changes of a log: the appenders or the readers it hands out (by default those
/// of the embedded log beneath).
pub trait Hooks: Send + Sync {
    fn appender(
        &self,
        log: &EmbeddedLog,
        topic: &str,
        partition: u32,
    ) -> Result<Box<dyn Appender>, LogError> {
        log.appender(topic, partition)
    }
    fn reader(
        &self,
        log: &EmbeddedLog,
        topic: &str,
        partition: u32,
        from: u64,
    ) -> Result<Box<dyn Reader>, LogError> {
        log.reader(topic, partition, from)
    }
}

/// An embedded log with a test's [`Hooks`]; every other call goes to the log unchanged.
pub struct Hooked<H> {
    pub log: EmbeddedLog,
    pub hooks: H,
}

impl<H: Hooks> Log for Hooked<H> {
    fn backend(&self) -> &'static str {
        "embedded"
    }
    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<(), LogError> {
        self.log.create_topic(name, config)
    }
    fn list_topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        self.log.list_topics()
    }
    fn topic(&self, name: &str) -> Result<TopicInfo, LogError> {
        self.log.topic(name)
    }
    fn appender(&self, topic: &str, partition: u32) -> Result<Box<dyn Appender>, LogError> {
        self.hooks.appender(&self.log, topic, partition)
    }
    fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Box<dyn Reader>, LogError> {
        self.hooks.reader(&self.log, topic, partition, from)
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.log.end_offset(topic, partition)
    }
    fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.log.start_offset(topic, partition)
    }
}
