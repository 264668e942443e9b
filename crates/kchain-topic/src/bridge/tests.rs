//! The bridge on the embedded log: copies unchanged and resumes exactly once, adopts a batch
//! a crash cut short only when it is an exact copy, and stops on a recreated raw topic.

use std::path::Path;

use kchain_core::{Trust, TrustedWriter, WriterKey};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Header, Log, Record, TopicConfig};

use super::tail::{parse_src, read_range, same_content};
use super::{Bridge, BridgeError, BridgeOptions, PartitionStatus};
use crate::TopicVerifier;

fn log(dir: &Path) -> EmbeddedLog {
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::Never,
        ..EmbeddedOptions::default()
    };
    EmbeddedLog::create(dir, opts).unwrap()
}

fn raw_record(i: u64) -> Record {
    Record {
        key: (!i.is_multiple_of(3)).then(|| format!("k{}", i % 5).into_bytes()),
        value: (!i.is_multiple_of(7)).then(|| vec![i as u8; (i % 11) as usize]),
        headers: vec![
            Header::new("n", i.to_string()),
            Header::new("bin", vec![0, 255]),
        ],
        timestamp_ms: 1_700_000_000_000 + i as i64,
    }
}

/// Appends raw records `from..to` to every partition of `topic`.
fn produce(log: &dyn Log, topic: &str, from: u64, to: u64) {
    for p in 0..log.topic(topic).unwrap().partitions {
        let recs: Vec<Record> = (from..to).map(raw_record).collect();
        log.appender(topic, p).unwrap().append(&recs).unwrap();
    }
}

fn options(batch: usize) -> BridgeOptions {
    let mut o = BridgeOptions {
        checkpoints: None,
        until_idle: true,
        ..BridgeOptions::default()
    };
    o.writer.max_batch_records = batch;
    o
}

fn run(
    log: &dyn Log,
    raw: &str,
    key: &WriterKey,
    batch: usize,
) -> Result<Vec<PartitionStatus>, BridgeError> {
    Bridge::open(log, raw, "chained", key, options(batch))?.run(&|| false, &mut |_| {})
}

fn trust(key: &WriterKey) -> Trust {
    Trust {
        writers: vec![TrustedWriter {
            name: key.name().into(),
            key: key.public(),
            topics: vec![],
        }],
        pins: vec![],
        topics: vec![],
    }
}

/// Every raw record of every partition is in the chained partition once, in order, and the
/// chained topic verifies.
fn assert_copied(log: &dyn Log, raw: &str, key: &WriterKey) {
    for p in 0..log.topic(raw).unwrap().partitions {
        let end = log.end_offset(raw, p).unwrap();
        let raws = read_range(log, raw, p, 0, end).unwrap();
        let chained =
            read_range(log, "chained", p, 0, log.end_offset("chained", p).unwrap()).unwrap();
        assert_eq!(chained.len(), raws.len(), "partition {p}");
        for (c, r) in chained.iter().zip(&raws) {
            assert_eq!(parse_src(&c.record), Some(r.offset));
            assert!(same_content(&c.record, &r.record), "offset {}", r.offset);
        }
    }
    let report = TopicVerifier::new(&trust(key))
        .verify(log, "chained")
        .unwrap();
    assert!(report.ok(), "{report:?}");
}

#[test]
fn copies_unchanged_and_resumes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path());
    let key = WriterKey::generate("bridge");
    log.create_topic(
        "raw",
        &TopicConfig {
            partitions: 3,
            retention_ms: None,
        },
    )
    .unwrap();
    produce(&log, "raw", 0, 50);
    let s = run(&log, "raw", &key, 16).unwrap();
    assert_eq!(s.iter().map(|p| p.copied).sum::<u64>(), 150);
    assert_eq!(log.topic("chained").unwrap().partitions, 3);
    // Nothing new: nothing copied.
    let s = run(&log, "raw", &key, 16).unwrap();
    assert!(
        s.iter().all(|p| p.copied == 0 && p.resumed_at == 50),
        "{s:?}"
    );
    produce(&log, "raw", 50, 70);
    let s = run(&log, "raw", &key, 7).unwrap();
    assert!(
        s.iter().all(|p| p.copied == 20 && p.resumed_at == 50),
        "{s:?}"
    );
    assert_copied(&log, "raw", &key);
}

/// A chained partition whose last batch a crash cut short: the first `keep` records of a
/// batch of `batch`, written by the bridge itself into a model log, copied over unsigned.
fn cut_batch(dir: &Path, key: &WriterKey, keep: u64) -> EmbeddedLog {
    let model_dir = dir.join("model");
    let model = log(&model_dir);
    let real = log(&dir.join("real"));
    for l in [&model, &real] {
        l.create_topic("raw", &TopicConfig::default()).unwrap();
        produce(l, "raw", 0, 5);
    }
    run(&real, "raw", key, 8192).unwrap();
    produce(&model, "raw", 5, 12);
    run(&model, "raw", key, 8192).unwrap();
    let cut = read_range(&model, "chained", 0, 5, 5 + keep).unwrap();
    let cut: Vec<Record> = cut.into_iter().map(|s| s.record).collect();
    real.appender("chained", 0).unwrap().append(&cut).unwrap();
    produce(&real, "raw", 5, 12);
    real
}

#[test]
fn adopts_a_batch_cut_short_and_signs_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = WriterKey::generate("bridge");
    let real = cut_batch(dir.path(), &key, 4);
    let s = run(&real, "raw", &key, 8192).unwrap();
    assert_eq!(
        (s[0].adopted, s[0].resumed_at, s[0].copied),
        (4, 9, 3),
        "{s:?}"
    );
    assert_copied(&real, "raw", &key);
}

#[test]
fn refuses_an_unsigned_tail_that_is_not_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let key = WriterKey::generate("bridge");
    let real = cut_batch(dir.path(), &key, 4);
    // Someone else's key writes the same records: they link, but the bridge did not sign the
    // batch before them... so write one record that links but copies nothing.
    let other = WriterKey::generate("bridge");
    let forged = cut_batch(&dir.path().join("forged"), &other, 4);
    let err = run(&forged, "raw", &key, 8192).unwrap_err();
    assert!(matches!(err, BridgeError::NotBridged { .. }), "{err}");
    // The raw record at an adopted offset changed: the run is not a copy.
    real.create_topic("raw2", &TopicConfig::default()).unwrap();
    let mut recs: Vec<Record> = (0..12).map(raw_record).collect();
    recs[7].value = Some(b"changed".to_vec());
    real.appender("raw2", 0).unwrap().append(&recs).unwrap();
    let err = run(&real, "raw2", &key, 8192).unwrap_err();
    assert!(
        matches!(err, BridgeError::NotBridged { offset: 7, .. }),
        "{err}"
    );
}

#[test]
fn stops_on_a_recreated_raw_topic_and_on_reserved_headers() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path());
    let key = WriterKey::generate("bridge");
    log.create_topic("raw", &TopicConfig::default()).unwrap();
    produce(&log, "raw", 0, 10);
    run(&log, "raw", &key, 8192).unwrap();
    // Fewer records than the chain holds: truncated or recreated.
    log.create_topic("short", &TopicConfig::default()).unwrap();
    produce(&log, "short", 0, 4);
    let err = run(&log, "short", &key, 8192).unwrap_err();
    assert!(
        matches!(
            err,
            BridgeError::AheadOfRaw {
                copied: 9,
                raw_end: 4,
                ..
            }
        ),
        "{err}"
    );
    // As many, but another record at the tip's source offset.
    log.create_topic("other", &TopicConfig::default()).unwrap();
    produce(&log, "other", 1, 12);
    let err = run(&log, "other", &key, 8192).unwrap_err();
    assert!(
        matches!(err, BridgeError::RawChanged { offset: 9, .. }),
        "{err}"
    );
    // A chained topic with fewer partitions than the raw one.
    log.create_topic(
        "wide",
        &TopicConfig {
            partitions: 2,
            retention_ms: None,
        },
    )
    .unwrap();
    let err = run(&log, "wide", &key, 8192).err().unwrap();
    assert!(matches!(err, BridgeError::TooFewPartitions { .. }), "{err}");
    // A raw record with a kchain.* header cannot be copied unchanged.
    let mut r = raw_record(10);
    r.headers.push(Header::new("kchain.height", "3"));
    log.appender("raw", 0).unwrap().append(&[r]).unwrap();
    let err = run(&log, "raw", &key, 8192).unwrap_err();
    assert!(
        matches!(err, BridgeError::ReservedHeader { offset: 10, .. }),
        "{err}"
    );
    assert_eq!(
        log.end_offset("chained", 0).unwrap(),
        10,
        "nothing copied past it"
    );
}

/// `on_status` comes every `status_every` even below the 20 ms the run loop otherwise sleeps
/// (`kchain bench bridge` stops the bridge from it, so its clock stops that much sooner).
#[test]
fn reports_status_as_often_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path());
    let key = WriterKey::generate("bridge");
    log.create_topic("raw", &TopicConfig::default()).unwrap();
    let mut opts = options(8192);
    opts.until_idle = false;
    opts.poll_wait = std::time::Duration::from_millis(5);
    opts.status_every = std::time::Duration::from_millis(2);
    let bridge = Bridge::open(&log, "raw", "chained", &key, opts).unwrap();
    let t = std::time::Instant::now();
    let mut calls = 0;
    let stop = || t.elapsed() >= std::time::Duration::from_millis(200);
    bridge.run(&stop, &mut |_| calls += 1).unwrap();
    // At 20 ms a call, at most about 10; at 2 ms, many more even on a loaded machine.
    assert!(calls > 20, "{calls} status calls in 200 ms");
}

/// A writer that fails to open after its reader has started (here: checkpoints under a key
/// whose name cannot sign notes) ends the run with its error, also while the raw partition
/// is idle: the reader, which sends nothing and so never meets the closed channel, stops
/// with the writer rather than keep the run waiting for `stop`.
#[test]
fn a_writer_that_fails_to_open_stops_its_idle_reader() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path());
    log.create_topic("raw", &TopicConfig::default()).unwrap();
    let key = WriterKey::generate("not a note key name");
    let mut opts = options(64);
    opts.until_idle = false;
    opts.checkpoints = Some(crate::CheckpointOptions::default());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = Bridge::open(&log, "raw", "chained", &key, opts)
            .and_then(|b| b.run(&|| false, &mut |_| {}));
        let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the bridge still runs 30 s after its writer failed");
    let err = got.unwrap_err();
    assert!(err.contains("cannot sign checkpoints"), "{err}");
}
