//! The writer's two paths to the log: records built in place for an appender that takes
//! encoded batches (the embedded log's), and `Record`s for any other. Both must store the
//! same records, byte for byte where nothing is random.

mod common;

use common::*;
use kchain_core::{DataKey, DataKeyId, Item, RecordPlace, H_ENC};
use kchain_log::{Appender, EmbeddedLog, Log, LogError, Reader, Record, TopicConfig, TopicInfo};
use kchain_topic::tamper::read_all;
use kchain_topic::{ChainWriter, TopicVerifier, WriterOptions};

/// The embedded log, with appenders that take `Record`s only (as Kafka's do).
struct RecordsOnly(EmbeddedLog);

struct RecordAppender(Box<dyn Appender>);

impl Appender for RecordAppender {
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError> {
        self.0.append(records)
    }
    fn flush(&mut self) -> Result<(), LogError> {
        self.0.flush()
    }
    fn next_offset(&self) -> u64 {
        self.0.next_offset()
    }
}

impl Log for RecordsOnly {
    fn backend(&self) -> &'static str {
        "embedded"
    }
    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<(), LogError> {
        self.0.create_topic(name, config)
    }
    fn list_topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        self.0.list_topics()
    }
    fn topic(&self, name: &str) -> Result<TopicInfo, LogError> {
        self.0.topic(name)
    }
    fn appender(&self, topic: &str, partition: u32) -> Result<Box<dyn Appender>, LogError> {
        Ok(Box::new(RecordAppender(self.0.appender(topic, partition)?)))
    }
    fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Box<dyn Reader>, LogError> {
        self.0.reader(topic, partition, from)
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.0.end_offset(topic, partition)
    }
    fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.0.start_offset(topic, partition)
    }
}

/// Items of every shape: with and without key, value (tombstones) and headers; batches of
/// 301 (built in parallel) and short ones (built in one thread): odd counts, so that a
/// batch's last record has no other to pair its leaf hash with.
fn items() -> Vec<Item> {
    items_of(700)
}

fn items_of(n: u64) -> Vec<Item> {
    (0..n)
        .map(|i| {
            let mut it = item(i);
            if i % 11 == 0 {
                it.key = None;
            }
            if i % 13 == 5 {
                it.value = None;
            }
            if i % 3 == 0 {
                it.headers
                    .push(("trace.\u{e9}".into(), vec![i as u8; (i % 9) as usize]));
            }
            it
        })
        .collect()
}

fn write(log: &dyn Log, topic: &str, data_key: Option<&DataKey>) {
    log.create_topic(topic, &TopicConfig::default()).unwrap();
    let key = key("acme", 3);
    let options = WriterOptions {
        max_batch_records: 301,
        ..WriterOptions::default()
    };
    let mut w = ChainWriter::open(log, topic, 0, &key, options)
        .unwrap()
        .with_optional_encryption(data_key);
    let all = items();
    w.append(all[..651].to_vec()).unwrap();
    w.append(all[651..].to_vec()).unwrap();
    w.flush().unwrap();
    let report = TopicVerifier::new(&trust_for(&[&key]))
        .verify_chains(log, topic)
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.partitions[0].summary.entries, 700);
}

#[test]
fn both_paths_write_the_same_segment_bytes() {
    let (a, b) = (kchain_testkit::tempdir(), kchain_testkit::tempdir());
    let in_place = open_log(a.path());
    let records = RecordsOnly(open_log(b.path()));
    assert!(in_place.appender("x", 0).is_err());
    write(&in_place, "t", None);
    write(&records, "t", None);
    let bytes = kchain_testkit::segment_bytes(a.path(), "t", 0);
    assert!(bytes.len() > 700 * 100);
    assert_eq!(bytes, kchain_testkit::segment_bytes(b.path(), "t", 0));
}

/// A batch larger than the chunks the in-place path builds and links in turn (2,048
/// records), of an odd count: the same bytes as the record path's.
#[test]
fn a_batch_of_several_chunks_is_written_the_same_way() {
    let write = |log: &dyn Log| {
        log.create_topic("t", &TopicConfig::default()).unwrap();
        let key = key("acme", 3);
        let mut w = ChainWriter::open(log, "t", 0, &key, WriterOptions::default()).unwrap();
        w.append(items_of(4_099)).unwrap();
        w.append(items_of(5)).unwrap();
        w.flush().unwrap();
        let report = TopicVerifier::new(&trust_for(&[&key]))
            .verify_chains(log, "t")
            .unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.partitions[0].summary.entries, 4_104);
    };
    let (a, b) = (kchain_testkit::tempdir(), kchain_testkit::tempdir());
    write(&open_log(a.path()));
    write(&RecordsOnly(open_log(b.path())));
    let bytes = kchain_testkit::segment_bytes(a.path(), "t", 0);
    assert_eq!(bytes, kchain_testkit::segment_bytes(b.path(), "t", 0));
}

#[test]
fn both_paths_seal_values_the_same_way() {
    let data_key = DataKey::from_secret(DataKeyId([5; 8]), 1_700_000_000_000, &[5; 32]);
    let (a, b) = (kchain_testkit::tempdir(), kchain_testkit::tempdir());
    let in_place = open_log(a.path());
    let records = RecordsOnly(open_log(b.path()));
    write(&in_place, "t", Some(&data_key));
    write(&records, "t", Some(&data_key));
    let (x, y) = (
        read_all(&in_place, "t", 0).unwrap(),
        read_all(&records, "t", 0).unwrap(),
    );
    assert_eq!(x.len(), 700);
    for (h, ((r, s), it)) in x.iter().zip(&y).zip(items()).enumerate() {
        let place = RecordPlace::new("t", 0, h as u64);
        let open = |r: &Record| r.value.as_ref().map(|v| data_key.open(&place, v).unwrap());
        assert_eq!(open(r), it.value, "{h}");
        assert_eq!(open(s), it.value, "{h}");
        let names = |r: &Record| r.headers.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(r), names(s), "{h}");
        assert_eq!(r.header(H_ENC).is_some(), it.value.is_some(), "{h}");
        assert_eq!((&r.key, r.timestamp_ms), (&s.key, s.timestamp_ms));
    }
}
