//! The appender's reopen without recovery and its sync thread, seen from inside.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::Ordering;

use crate::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, LogError, Record, TopicConfig};

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: None,
            value: Some(vec![b'v'; 100 + i % 7]),
            headers: Vec::new(),
            timestamp_ms: 1_700_000_000_000 + i as i64,
        })
        .collect()
}

fn log_in(dir: &std::path::Path) -> EmbeddedLog {
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::IntervalMs(100),
        index_interval_bytes: 512,
        ..EmbeddedOptions::default()
    };
    EmbeddedLog::create(dir, opts).unwrap()
}

fn recoveries(log: &EmbeddedLog) -> u64 {
    log.shared.recoveries.load(Ordering::Relaxed)
}

fn segment(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("topics/t/0/00000000000000000000.log")
}

/// Appends `batches` batches of 10 with a new appender of `log`, then drops it.
fn append(log: &EmbeddedLog, batches: usize) -> u64 {
    let mut app = log.appender("t", 0).unwrap();
    for _ in 0..batches {
        app.append(&records(10)).unwrap();
    }
    app.next_offset()
}

fn read_all(log: &EmbeddedLog) -> Vec<u64> {
    let mut r = log.reader("t", 0, 0).unwrap();
    let mut offsets = Vec::new();
    loop {
        let got = r.poll(1000, std::time::Duration::ZERO).unwrap();
        if got.is_empty() {
            return offsets;
        }
        offsets.extend(got.iter().map(|r| r.offset));
    }
}

#[test]
fn a_reopen_by_the_same_handle_continues_without_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    log.create_topic("t", &TopicConfig::default()).unwrap();
    assert_eq!(append(&log, 30), 300);
    assert_eq!(recoveries(&log), 1);
    for round in 1..=5u64 {
        assert_eq!(append(&log, 3), 300 + 30 * round);
    }
    assert_eq!(
        recoveries(&log),
        1,
        "each reopen continued where the last left"
    );
    assert_eq!(read_all(&log), (0..450).collect::<Vec<_>>());
    // A fresh handle (another process) recovers, and finds the same end and index.
    let index = std::fs::read(dir.path().join("topics/t/0/00000000000000000000.index"));
    let other = log_in(dir.path());
    assert_eq!(other.appender("t", 0).unwrap().next_offset(), 450);
    assert_eq!(recoveries(&other), 1);
    let rebuilt = std::fs::read(dir.path().join("topics/t/0/00000000000000000000.index"));
    assert_eq!(index.unwrap(), rebuilt.unwrap());
}

#[test]
fn a_reopen_after_another_handle_appended_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    log.create_topic("t", &TopicConfig::default()).unwrap();
    append(&log, 2);
    let other = log_in(dir.path());
    assert_eq!(append(&other, 3), 50);
    assert_eq!(append(&log, 1), 60, "the other handle's batches are found");
    assert_eq!(recoveries(&log), 2);
    assert_eq!(read_all(&log), (0..60).collect::<Vec<_>>());
}

#[test]
fn a_torn_tail_written_after_the_last_close_is_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    log.create_topic("t", &TopicConfig::default()).unwrap();
    append(&log, 2);
    let len = std::fs::metadata(segment(dir.path())).unwrap().len();
    // A batch header announcing more than follows: a write that never returned.
    let mut f = OpenOptions::new()
        .append(true)
        .open(segment(dir.path()))
        .unwrap();
    f.write_all(&[0u8; 30]).unwrap();
    drop(f);
    assert_eq!(append(&log, 1), 30);
    assert_eq!(recoveries(&log), 2);
    let quarantined = dir.path().join(format!(
        "topics/t/0/00000000000000000000.log.quarantine-{len}"
    ));
    assert!(quarantined.exists());
}

#[test]
fn a_reopen_after_bytes_changed_in_place_checks_the_segment_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    log.create_topic("t", &TopicConfig::default()).unwrap();
    append(&log, 3);
    // Past the granularity of a coarse file clock, so the change time moves.
    std::thread::sleep(std::time::Duration::from_millis(25));
    // Same length, one byte of a record's value changed: only a scan can tell.
    let mut f = OpenOptions::new()
        .write(true)
        .open(segment(dir.path()))
        .unwrap();
    f.seek(SeekFrom::Start(100)).unwrap();
    f.write_all(b"X").unwrap();
    drop(f);
    match log.appender("t", 0) {
        Err(LogError::Corruption { .. }) => {}
        other => panic!(
            "expected corruption, got {:?}",
            other.map(|a| a.next_offset())
        ),
    }
}

/// An appender of `t`/0 in `dir` under `fsync`, as the log opens one.
fn appender_in(dir: &std::path::Path, fsync: FsyncPolicy) -> super::EmbeddedAppender {
    let opts = EmbeddedOptions {
        fsync,
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::create(dir, opts.clone()).unwrap();
    log.create_topic("t", &TopicConfig::default()).unwrap();
    let part = log.partition("t", 0).unwrap();
    super::EmbeddedAppender::open(part, opts, log.shared.clone()).unwrap()
}

#[test]
fn interval_syncs_run_on_the_sync_thread() {
    use crate::Appender;
    let dir = tempfile::tempdir().unwrap();
    let mut app = appender_in(dir.path(), FsyncPolicy::IntervalMs(0));
    app.append(&records(10)).unwrap();
    assert!(
        app.syncer.started(),
        "the interval passed: a sync was requested"
    );
    assert!(app.dirty, "and the data stays dirty until an inline sync");
    app.flush().unwrap();
    assert!(!app.dirty);
    // Long interval: the bytes written ask for a sync all the same.
    let dir = tempfile::tempdir().unwrap();
    let mut app = appender_in(dir.path(), FsyncPolicy::IntervalMs(3_600_000));
    let big = vec![Record {
        value: Some(vec![7; 1 << 20]),
        ..records(1).remove(0)
    }];
    for _ in 0..(super::SYNC_BYTES >> 20) - 1 {
        app.append(&big).unwrap();
    }
    assert!(!app.syncer.started());
    app.append(&big).unwrap();
    assert!(app.syncer.started());
}

#[test]
fn a_failed_background_sync_fails_the_next_calls_and_the_next_open_recovers() {
    use crate::Appender;
    let dir = tempfile::tempdir().unwrap();
    let mut app = appender_in(dir.path(), FsyncPolicy::IntervalMs(0));
    app.append(&records(10)).unwrap();
    app.syncer.fail_for_test("disk gone");
    for _ in 0..2 {
        let err = app.append(&records(1)).unwrap_err().to_string();
        assert!(err.contains("disk gone"), "{err}");
    }
    assert!(app.flush().unwrap_err().to_string().contains("disk gone"));
    let shared = app.shared.clone();
    drop(app);
    assert_eq!(shared.recoveries.load(Ordering::Relaxed), 1);
    let part = super::PartitionDir {
        topic: "t".into(),
        partition: 0,
        dir: dir.path().join("topics/t/0"),
    };
    let opts = EmbeddedOptions::default();
    let again = super::EmbeddedAppender::open(part, opts, shared.clone()).unwrap();
    assert_eq!(
        shared.recoveries.load(Ordering::Relaxed),
        2,
        "no trusted end"
    );
    assert_eq!(crate::Appender::next_offset(&again), 10);
}

/// A copy of the lock file's descriptor that outlives the appender (what a child process
/// forked by another thread holds until it execs) does not keep the partition locked: the
/// appender unlocks when dropped, not only by closing its descriptor.
#[test]
fn a_copy_of_the_lock_descriptor_does_not_outlive_the_appender() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    log.create_topic("t", &TopicConfig::default()).unwrap();
    let part = log.partition("t", 0).unwrap();
    let app = super::EmbeddedAppender::open(part, log.opts.clone(), log.shared.clone()).unwrap();
    let copy = app.lock.try_clone().unwrap();
    drop(app);
    let again = log.appender("t", 0);
    assert!(again.is_ok(), "{:?}", again.err());
    drop(copy);
}
