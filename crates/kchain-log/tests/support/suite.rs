//! The behaviour every [`Log`](kchain_log::Log) backend must have, as one suite.
//!
//! Written against `&dyn Log` only: cases use random topic names (so they can share a broker
//! with other runs), never touch files, and wait with timeouts rather than assuming that an
//! append is visible at once. A test file includes `support` with `#[macro_use]` and
//! instantiates the suite for its backend with `conformance!(name, make)`, where `make` is
//! an expression building a value with a `log(&self) -> &dyn Log` method that lives for the
//! test: `tests/conformance.rs` does so for the embedded backend, `tests/kafka_conformance.rs`
//! for Kafka.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kchain_log::{Header, Log, LogError, Reader, Record, StoredRecord, TopicConfig};

/// How long a case waits for records it knows were appended.
const PATIENCE: Duration = Duration::from_secs(20);

/// A topic name no other run uses.
fn topic_name(case: &str) -> String {
    kchain_testkit::unique_name(&format!("conformance-{case}"))
}

fn new_topic(log: &dyn Log, case: &str, partitions: u32) -> String {
    let name = topic_name(case);
    let config = TopicConfig {
        partitions,
        retention_ms: None,
    };
    log.create_topic(&name, &config).expect("create topic");
    name
}

/// A record whose contents are a function of `i`, so a reader can check it.
fn numbered(i: u64) -> Record {
    let mut value = i.to_be_bytes().to_vec();
    value.extend((0..(i % 97) as u8).map(|b| b ^ i as u8));
    Record {
        key: (!i.is_multiple_of(3)).then(|| format!("key-{i}").into_bytes()),
        value: Some(value),
        headers: (0..i % 4)
            .map(|h| Header::new(format!("h{h}"), vec![h as u8; h as usize]))
            .collect(),
        timestamp_ms: 1_700_000_000_000 + i as i64,
    }
}

/// Reads exactly `n` records (waiting for them), then checks nothing else arrives soon.
fn read_exactly(reader: &mut dyn Reader, n: usize) -> Vec<StoredRecord> {
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records arrived",
            out.len()
        );
        out.extend(
            reader
                .poll(n - out.len(), Duration::from_millis(200))
                .unwrap(),
        );
    }
    let extra = reader.poll(10, Duration::from_millis(50)).unwrap();
    assert!(extra.is_empty(), "unexpected records after {n}: {extra:?}");
    out
}

fn read_all(log: &dyn Log, topic: &str, partition: u32) -> Vec<StoredRecord> {
    let end = log.end_offset(topic, partition).unwrap();
    let start = log.start_offset(topic, partition).unwrap();
    let mut reader = log.reader(topic, partition, start).unwrap();
    read_exactly(reader.as_mut(), (end - start) as usize)
}

pub fn topics(log: &dyn Log) {
    let three = new_topic(log, "topics", 3);
    let one = new_topic(log, "topics", 1);
    let info = log.topic(&three).unwrap();
    assert_eq!((info.name.as_str(), info.partitions), (three.as_str(), 3));
    assert!(
        info.settings
            .iter()
            .any(|(k, v)| k == "retention.ms" && v == "-1"),
        "records are kept forever by default: {:?}",
        info.settings
    );
    let listed = log.list_topics().unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {names:?}");
    assert!(names.contains(&three.as_str()) && names.contains(&one.as_str()));
    let listed_one = listed.iter().find(|t| t.name == one).unwrap();
    assert_eq!(listed_one.partitions, 1);

    let again = log.create_topic(&three, &TopicConfig::default());
    assert!(
        matches!(again, Err(LogError::TopicExists(ref t)) if *t == three),
        "{again:?}"
    );
    for bad in ["", "..", "with space", "slash/y", &"x".repeat(250)] {
        let r = log.create_topic(bad, &TopicConfig::default());
        assert!(
            matches!(r, Err(LogError::InvalidTopicName { .. })),
            "{bad:?}: {r:?}"
        );
    }

    let missing = topic_name("missing");
    assert!(matches!(log.topic(&missing), Err(LogError::NoSuchTopic(ref t)) if *t == missing));
    assert!(matches!(
        log.appender(&missing, 0).err(),
        Some(LogError::NoSuchTopic(_))
    ));
    assert!(matches!(
        log.reader(&missing, 0, 0).err(),
        Some(LogError::NoSuchTopic(_))
    ));
    assert!(matches!(
        log.end_offset(&missing, 0),
        Err(LogError::NoSuchTopic(_))
    ));

    let no_partition = |r: Result<(), LogError>| match r {
        Err(LogError::NoSuchPartition {
            topic,
            partition: 3,
            partitions: 3,
        }) => assert_eq!(topic, three),
        other => panic!("expected NoSuchPartition, got {other:?}"),
    };
    no_partition(log.appender(&three, 3).map(drop));
    no_partition(log.reader(&three, 3, 0).map(drop));
    no_partition(log.end_offset(&three, 3).map(drop));
    no_partition(log.start_offset(&three, 3).map(drop));
}

pub fn records_round_trip(log: &dyn Log) {
    let topic = new_topic(log, "roundtrip", 1);
    let all_bytes: Vec<u8> = (0..=255).collect();
    let batches = vec![
        vec![Record {
            timestamp_ms: 3,
            ..Record::default()
        }],
        vec![
            Record {
                key: Some(Vec::new()),
                value: Some(Vec::new()),
                headers: vec![],
                timestamp_ms: 4,
            },
            Record {
                key: None,
                value: Some(b"null key".to_vec()),
                headers: vec![],
                timestamp_ms: 1,
            },
            Record {
                key: Some(b"null value".to_vec()),
                value: None,
                headers: vec![],
                timestamp_ms: 2,
            },
        ],
        vec![Record {
            key: Some(all_bytes.clone()),
            value: Some(all_bytes.iter().rev().copied().collect()),
            headers: (0..40)
                .map(|i| Header::new(format!("kchain.h{}", i % 7), all_bytes[i..].to_vec()))
                .chain([
                    Header::new("empty", vec![]),
                    Header::new("ünïcode", vec![0, 0]),
                ])
                .collect(),
            timestamp_ms: 1_700_000_000_123,
        }],
        vec![Record {
            key: Some(b"large".to_vec()),
            value: Some((0..512 * 1024).map(|i| (i * 7 % 251) as u8).collect()),
            headers: vec![Header::new("kchain.version", b"1".to_vec())],
            timestamp_ms: 1_700_000_000_124,
        }],
        (0..100).map(numbered).collect(),
    ];
    let mut appender = log.appender(&topic, 0).unwrap();
    let mut expected = Vec::new();
    for batch in &batches {
        let offsets = appender.append(batch).unwrap();
        let first = expected.len() as u64;
        assert_eq!(
            offsets,
            (first..first + batch.len() as u64).collect::<Vec<_>>()
        );
        expected.extend(batch.iter().cloned());
    }
    let got = read_all(log, &topic, 0);
    assert_eq!(got.len(), expected.len());
    for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got.offset, i as u64);
        assert_eq!(&got.record, want, "record {i}");
    }
}

pub fn offsets(log: &dyn Log) {
    let topic = new_topic(log, "offsets", 1);
    assert_eq!(log.start_offset(&topic, 0).unwrap(), 0);
    assert_eq!(log.end_offset(&topic, 0).unwrap(), 0);
    let mut appender = log.appender(&topic, 0).unwrap();
    assert_eq!(appender.next_offset(), 0);
    assert_eq!(appender.append(&[]).unwrap(), Vec::<u64>::new());
    let mut next = 0;
    for size in [1u64, 5, 3, 17, 1, 64] {
        let batch: Vec<Record> = (next..next + size).map(numbered).collect();
        let offsets = appender.append(&batch).unwrap();
        assert_eq!(offsets, (next..next + size).collect::<Vec<_>>());
        next += size;
        assert_eq!(appender.next_offset(), next);
        assert_eq!(log.end_offset(&topic, 0).unwrap(), next);
    }
    appender.flush().unwrap();
    assert_eq!(log.start_offset(&topic, 0).unwrap(), 0);
    drop(appender);
    // A new appender continues where the last one stopped.
    let mut appender = log.appender(&topic, 0).unwrap();
    assert_eq!(appender.next_offset(), next);
    assert_eq!(appender.append(&[numbered(next)]).unwrap(), vec![next]);
    assert_eq!(log.end_offset(&topic, 0).unwrap(), next + 1);
}

pub fn readers_from_every_offset(log: &dyn Log) {
    let topic = new_topic(log, "every-offset", 1);
    let mut appender = log.appender(&topic, 0).unwrap();
    let mut n = 0;
    for size in [3u64, 1, 10, 2, 30, 4] {
        appender
            .append(&(n..n + size).map(numbered).collect::<Vec<_>>())
            .unwrap();
        n += size;
    }
    for from in 0..=n {
        let mut reader = log.reader(&topic, 0, from).unwrap();
        assert_eq!(reader.position(), from);
        let got = read_exactly(reader.as_mut(), (n - from) as usize);
        for (i, r) in got.iter().enumerate() {
            let offset = from + i as u64;
            assert_eq!((r.offset, &r.record), (offset, &numbered(offset)));
        }
        assert_eq!(reader.position(), n);
    }
    // `max` bounds a poll.
    let mut reader = log.reader(&topic, 0, 0).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut seen = 0;
    while seen < n {
        assert!(Instant::now() < deadline);
        let got = reader.poll(7, Duration::from_millis(100)).unwrap();
        assert!(got.len() <= 7);
        seen += got.len() as u64;
    }
    assert!(reader.poll(0, Duration::ZERO).unwrap().is_empty());
    match log.reader(&topic, 0, n + 1).err() {
        Some(LogError::OffsetOutOfRange { offset, end, .. }) => {
            assert_eq!((offset, end), (n + 1, n))
        }
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

pub fn poll_waits_for_later_appends(log: &dyn Log) {
    let topic = new_topic(log, "poll-wait", 1);
    let mut appender = log.appender(&topic, 0).unwrap();
    appender.append(&[numbered(0)]).unwrap();
    let mut reader = log.reader(&topic, 0, 1).unwrap();
    let t = Instant::now();
    assert!(reader.poll(10, Duration::ZERO).unwrap().is_empty());
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "a zero wait does not wait"
    );
    assert!(reader
        .poll(10, Duration::from_millis(100))
        .unwrap()
        .is_empty());
    std::thread::scope(|s| {
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            appender.append(&[numbered(1), numbered(2)]).unwrap();
        });
        let mut got = reader.poll(10, PATIENCE).unwrap();
        assert!(!got.is_empty(), "poll returned before the append arrived");
        if got.len() < 2 {
            got.extend(reader.poll(10, PATIENCE).unwrap());
        }
        let offsets: Vec<u64> = got.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1, 2]);
        assert_eq!(got[1].record, numbered(2));
    });
}

pub fn second_appender_is_locked(log: &dyn Log) {
    let topic = new_topic(log, "locked", 2);
    let mut first = log.appender(&topic, 0).unwrap();
    first.append(&[numbered(0)]).unwrap();
    match log.appender(&topic, 0).err() {
        Some(LogError::Locked {
            topic: locked,
            partition: 0,
            ..
        }) => assert_eq!(locked, topic),
        other => panic!("expected Locked, got {other:?}"),
    }
    // Another partition has its own appender.
    let mut other = log.appender(&topic, 1).unwrap();
    other.append(&[numbered(0)]).unwrap();
    drop(first);
    let mut again = log.appender(&topic, 0).unwrap();
    assert_eq!(again.append(&[numbered(1)]).unwrap(), vec![1]);
}

pub fn partitions_are_independent(log: &dyn Log) {
    let topic = new_topic(log, "partitions", 3);
    let mut appenders: Vec<_> = (0..3).map(|p| log.appender(&topic, p).unwrap()).collect();
    for round in 0..4u64 {
        for (p, a) in appenders.iter_mut().enumerate() {
            let p = p as u64;
            let count = p * 2 + 1;
            let first = round * count;
            let batch: Vec<Record> = (first..first + count)
                .map(|i| numbered(i * 10 + p))
                .collect();
            assert_eq!(a.append(&batch).unwrap()[0], first);
        }
    }
    for p in 0..3u32 {
        let count = u64::from(p) * 2 + 1;
        assert_eq!(log.end_offset(&topic, p).unwrap(), 4 * count);
        let got = read_all(log, &topic, p);
        for r in &got {
            assert_eq!(r.record, numbered(r.offset * 10 + u64::from(p)));
        }
    }
}

pub fn concurrent_reader_sees_whole_ordered_records(log: &dyn Log) {
    let topic = new_topic(log, "concurrent", 1);
    let mut appender = log.appender(&topic, 0).unwrap();
    let total: u64 = (0..300u64).map(|b| b % 13 + 1).sum();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = 0;
            for b in 0..300u64 {
                let size = b % 13 + 1;
                let batch: Vec<Record> = (next..next + size).map(numbered).collect();
                appender.append(&batch).unwrap();
                next += size;
                if b % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut reader = log.reader(&topic, 0, 0).unwrap();
        let deadline = Instant::now() + PATIENCE;
        let mut next = 0;
        while next < total {
            assert!(Instant::now() < deadline, "stuck at {next} of {total}");
            for r in reader.poll(64, Duration::from_millis(100)).unwrap() {
                assert_eq!(r.offset, next, "records in order, none missing");
                assert_eq!(r.record, numbered(next), "whole record at {next}");
                next += 1;
            }
        }
    });
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(log.end_offset(&topic, 0).unwrap(), total);
}

/// One `#[test]` per suite case, for the backend that `$make` builds (a value with a
/// `log(&self) -> &dyn Log` method that lives as long as the test).
macro_rules! conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn topics() {
                suite::topics($make.log())
            }
            #[test]
            fn records_round_trip() {
                suite::records_round_trip($make.log())
            }
            #[test]
            fn offsets() {
                suite::offsets($make.log())
            }
            #[test]
            fn readers_from_every_offset() {
                suite::readers_from_every_offset($make.log())
            }
            #[test]
            fn poll_waits_for_later_appends() {
                suite::poll_waits_for_later_appends($make.log())
            }
            #[test]
            fn second_appender_is_locked() {
                suite::second_appender_is_locked($make.log())
            }
            #[test]
            fn partitions_are_independent() {
                suite::partitions_are_independent($make.log())
            }
            #[test]
            fn concurrent_reader_sees_whole_ordered_records() {
                suite::concurrent_reader_sees_whole_ordered_records($make.log())
            }
        }
    };
}
