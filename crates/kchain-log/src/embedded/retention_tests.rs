//! `delete_records_before` on the embedded log: whole segments only, never the last, the
//! start offset moves, readers and appenders carry on.

use std::time::Duration;

use super::{EmbeddedLog, EmbeddedOptions};
use crate::api::{FsyncPolicy, Log, Record, TopicConfig};

/// A log whose segments roll every few batches, with `batches` batches of 10 records.
fn log_with_segments(dir: &std::path::Path, batches: u64) -> EmbeddedLog {
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::Never,
        segment_bytes: 2048,
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::create(dir, opts).unwrap();
    log.create_topic("t", &TopicConfig::default()).unwrap();
    let mut a = log.appender("t", 0).unwrap();
    for b in 0..batches {
        let records: Vec<Record> = (0..10)
            .map(|i| Record {
                value: Some(format!("record {} padded to some length ....", b * 10 + i).into()),
                ..Record::default()
            })
            .collect();
        a.append(&records).unwrap();
    }
    log
}

#[test]
fn deletes_whole_segments_below_the_offset_and_never_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_segments(dir.path(), 20);
    let part = log.partition("t", 0).unwrap();
    let segments = part.segments().unwrap();
    assert!(segments.len() >= 4, "{segments:?}");
    // Below the second segment's base: only the first goes.
    let start = log.delete_records_before("t", 0, segments[1]).unwrap();
    assert_eq!(start, segments[1]);
    assert_eq!(log.start_offset("t", 0).unwrap(), segments[1]);
    // Inside the third segment: the second goes, the third stays.
    let start = log.delete_records_before("t", 0, segments[2] + 1).unwrap();
    assert_eq!(start, segments[2]);
    // Beyond the end: everything but the last segment.
    let start = log.delete_records_before("t", 0, u64::MAX).unwrap();
    assert_eq!(start, *segments.last().unwrap());
    assert_eq!(part.segments().unwrap(), vec![start]);
    // The rest reads from the new start, and appends go on.
    let mut r = log.reader("t", 0, 0).unwrap();
    let got = r.poll(1000, Duration::from_millis(100)).unwrap();
    assert_eq!(got[0].offset, start);
    assert_eq!(got.last().unwrap().offset, 199);
    let mut a = log.appender("t", 0).unwrap();
    assert_eq!(a.append(&[Record::default()]).unwrap(), vec![200]);
}

#[test]
fn deleting_below_the_start_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_segments(dir.path(), 20);
    let before = log.partition("t", 0).unwrap().segments().unwrap();
    assert_eq!(log.delete_records_before("t", 0, 0).unwrap(), 0);
    assert_eq!(log.delete_records_before("t", 0, before[1] - 1).unwrap(), 0);
    assert_eq!(log.partition("t", 0).unwrap().segments().unwrap(), before);
}
