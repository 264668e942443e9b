//! Crash tests at the chain level: the embedded segment is cut at every byte of its last
//! batch (a writer killed mid-append), then reopened. No acknowledged record is lost, the torn
//! batch is gone, the chain verifies, and the writer resumes it.

mod common;

use std::fs;

use common::*;
use kchain_log::Log;
use kchain_topic::{ChainWriter, TopicVerifier, WriterOptions};

const TOPIC: &str = "ledger";

#[test]
fn torn_last_batch_at_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let key = key("w", 3);
    let trust = trust_for(&[&key]);
    let segment = dir
        .path()
        .join("topics")
        .join(TOPIC)
        .join("0")
        .join(format!("{:020}.log", 0));
    // Three acknowledged batches of 5, then a fourth batch of 3 that will be torn.
    let log = open_log(dir.path());
    write_chain(&log, TOPIC, &key, 15, 5);
    drop(log);
    let acknowledged = fs::read(&segment).unwrap();
    let log = open_log(dir.path());
    write_chain(&log, TOPIC, &key, 3, 5);
    drop(log);
    let full = fs::read(&segment).unwrap();
    assert!(full.len() > acknowledged.len());

    for cut in acknowledged.len()..full.len() {
        fs::write(&segment, &full[..cut]).unwrap();
        let log = open_log(dir.path());
        // Opening the writer runs recovery: the torn batch is cut, the chain resumes.
        {
            let mut w = ChainWriter::open(&log, TOPIC, 0, &key, WriterOptions::default())
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(w.tip().map(|t| t.0), Some(14), "cut at {cut}");
            assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 15, "cut at {cut}");
            w.append((100..102).map(item).collect()).unwrap();
        }
        let report = TopicVerifier::new(&trust)
            .verify_chains(&log, TOPIC)
            .unwrap();
        assert!(report.ok(), "cut at {cut}: {report:?}");
        assert_eq!(report.partitions[0].summary.entries, 17, "cut at {cut}");
        drop(log);
        // Every acknowledged byte is still there, unchanged.
        assert_eq!(
            &fs::read(&segment).unwrap()[..acknowledged.len()],
            &acknowledged[..]
        );
    }
}

#[test]
fn readers_verify_while_another_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let key = key("w", 4);
    let trust = trust_for(&[&key]);
    let log = open_log(dir.path());
    write_chain(&log, TOPIC, &key, 10, 10);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let log = open_log(dir.path());
            for _ in 0..50 {
                write_chain(&log, TOPIC, &key, 200, 64);
            }
        });
        let mut runs = 0;
        while !writer.is_finished() || runs < 3 {
            let reader_log = open_log(dir.path());
            let report = TopicVerifier::new(&trust)
                .verify_chains(&reader_log, TOPIC)
                .unwrap();
            assert!(report.ok(), "{report:?}");
            runs += 1;
        }
        writer.join().unwrap();
    });
    let report = TopicVerifier::new(&trust)
        .verify_chains(&log, TOPIC)
        .unwrap();
    assert_eq!(report.partitions[0].summary.entries, 10 + 50 * 200);
}
