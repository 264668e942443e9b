//! A verifying reader paused after a page and resumed for the next: the pages together are
//! what one reader from genesis yields, resuming reads on from where the pause stood (never
//! from genesis again), a forgery after the pause is still found at its offset, and a paused
//! reader refuses what it cannot serve.

mod common;

use std::sync::Mutex;

use common::{item, key, open_log, trust_for, unique_topic, write_chain, Hooked, Hooks};
use kchain_core::FindingKind;
use kchain_log::{EmbeddedLog, Log, LogError, Reader};
use kchain_topic::tamper::{forge_after, read_all};
use kchain_topic::{PausedReader, VerifyingReader};

/// Notes the offset every reader the log opens starts at.
#[derive(Default)]
struct Watch {
    reads_from: Mutex<Vec<u64>>,
}

impl Hooks for Watch {
    fn reader(
        &self,
        log: &EmbeddedLog,
        topic: &str,
        partition: u32,
        from: u64,
    ) -> Result<Box<dyn Reader>, LogError> {
        self.reads_from.lock().unwrap().push(from);
        log.reader(topic, partition, from)
    }
}

/// Up to `n` records of `reader`: (offset, entry hash) each.
fn page(reader: &mut VerifyingReader<'_>, n: usize) -> Vec<(u64, [u8; 32])> {
    reader
        .by_ref()
        .take(n)
        .map(|r| {
            let r = r.unwrap();
            (r.offset, r.hash)
        })
        .collect()
}

#[test]
fn pages_read_by_pausing_and_resuming_are_one_reading_from_genesis() {
    let dir = kchain_testkit::tempdir();
    let log = Hooked {
        log: open_log(dir.path()),
        hooks: Watch::default(),
    };
    let topic = unique_topic("paused");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    // Batches of 7 against pages of 10: pages end inside batches, with records held.
    write_chain(&log, &topic, &k, 95, 7);

    let whole = page(
        &mut VerifyingReader::open(&log, &topic, 0, &trust, 0).unwrap(),
        usize::MAX,
    );
    assert_eq!(whole.len(), 95);
    log.hooks.reads_from.lock().unwrap().clear();

    let mut pages = Vec::new();
    let mut reader = VerifyingReader::open(&log, &topic, 0, &trust, 0).unwrap();
    loop {
        let got = page(&mut reader, 10);
        let done = got.len() < 10;
        pages.extend(got);
        let paused = reader.pause().expect("no finding, so it can go on");
        assert_eq!(paused.next(), pages.last().unwrap().0 + 1);
        if done {
            break;
        }
        reader = VerifyingReader::resume(&log, paused, &trust, pages.len() as u64)
            .unwrap()
            .ok()
            .expect("the same partition and trust, from where it stopped");
    }
    assert_eq!(pages, whole);
    let reads = log.hooks.reads_from.lock().unwrap().clone();
    assert_eq!(reads[0], 0, "the first page verifies from genesis");
    assert!(reads.len() > 2);
    assert!(
        reads[1..].windows(2).all(|w| w[0] <= w[1]) && reads[1..].iter().all(|&f| f > 0),
        "every resumed page reads on from where the last stopped, never from genesis: {reads:?}"
    );
}

#[test]
fn a_resumed_reader_skips_to_a_later_offset_and_follows_new_records() {
    let dir = kchain_testkit::tempdir();
    let log = open_log(dir.path());
    let topic = unique_topic("paused-skip");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    write_chain(&log, &topic, &k, 30, 4);

    let mut reader = VerifyingReader::open(&log, &topic, 0, &trust, 0).unwrap();
    assert_eq!(page(&mut reader, 5).len(), 5);
    let paused = reader.pause().unwrap();
    let mut reader = VerifyingReader::resume(&log, paused, &trust, 22)
        .unwrap()
        .ok()
        .unwrap();
    let rest: Vec<u64> = page(&mut reader, usize::MAX).iter().map(|r| r.0).collect();
    assert_eq!(rest, (22..30).collect::<Vec<_>>());

    // At its end, paused and resumed once more records arrived: only the new ones.
    let paused = reader.pause().unwrap();
    assert_eq!(paused.next(), 30);
    write_chain(&log, &topic, &k, 6, 4);
    let mut reader = VerifyingReader::resume(&log, paused, &trust, 30)
        .unwrap()
        .ok()
        .unwrap();
    let new: Vec<u64> = page(&mut reader, usize::MAX).iter().map(|r| r.0).collect();
    assert_eq!(new, (30..36).collect::<Vec<_>>());
    assert!(reader.finding().is_none());
}

#[test]
fn a_forgery_after_the_pause_is_found_at_its_offset_and_ends_pausing() {
    let dir = kchain_testkit::tempdir();
    let log = open_log(dir.path());
    let topic = unique_topic("paused-forged");
    let k = key("acme", 1);
    let mallory = key("mallory", 9);
    let trust = trust_for(&[&k]);
    write_chain(&log, &topic, &k, 12, 3);

    let mut reader = VerifyingReader::open(&log, &topic, 0, &trust, 0).unwrap();
    assert_eq!(page(&mut reader, 4).len(), 4);
    let paused = reader.pause().unwrap();

    // Someone with write access appends a record that links, signed by an untrusted key.
    let last = read_all(&log, &topic, 0).unwrap().pop().unwrap();
    let forged = forge_after(&topic, 0, &last, item(99), Some(&mallory)).unwrap();
    let mut appender = log.appender(&topic, 0).unwrap();
    appender.append(&[forged]).unwrap();
    drop(appender);

    let mut reader = VerifyingReader::resume(&log, paused, &trust, 4)
        .unwrap()
        .ok()
        .unwrap();
    let rest: Vec<u64> = page(&mut reader, usize::MAX).iter().map(|r| r.0).collect();
    assert_eq!(rest, (4..12).collect::<Vec<_>>());
    let fresh = {
        let mut r = VerifyingReader::open(&log, &topic, 0, &trust, 0).unwrap();
        page(&mut r, usize::MAX);
        r.finding()
            .cloned()
            .expect("a reader from genesis finds it")
    };
    let finding = reader.finding().expect("the resumed reader finds it too");
    assert_eq!(
        (finding.offset, finding.kind),
        (12, FindingKind::UnknownKey)
    );
    assert_eq!((finding.offset, finding.kind), (fresh.offset, fresh.kind));
    assert!(
        reader.pause().is_none(),
        "a finding is final: nothing to go on from"
    );
}

#[test]
fn a_paused_reader_refuses_another_trust_partition_or_an_earlier_offset() {
    let dir = kchain_testkit::tempdir();
    let log = open_log(dir.path());
    let topic = unique_topic("paused-refuse");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    let other = trust_for(&[&k, &key("bob", 2)]);
    write_chain(&log, &topic, &k, 10, 5);

    let mut reader = VerifyingReader::open(&log, &topic, 0, &trust, 0).unwrap();
    page(&mut reader, 6);
    let paused: PausedReader = reader.pause().unwrap();
    assert_eq!(paused.partition(), (topic.as_str(), 0));
    assert!(paused.can_serve(&topic, 0, &trust, 6));
    assert!(
        !paused.can_serve(&topic, 0, &trust, 5),
        "offset 5 was delivered"
    );
    assert!(!paused.can_serve(&topic, 1, &trust, 6));
    assert!(!paused.can_serve("other", 0, &trust, 6));
    assert!(
        !paused.can_serve(&topic, 0, &other, 6),
        "verified under another trust"
    );
    let paused = VerifyingReader::resume(&log, paused, &other, 6)
        .unwrap()
        .err()
        .expect("refused, and handed back");
    let paused = VerifyingReader::resume(&log, paused, &trust, 2)
        .unwrap()
        .err()
        .expect("refused, and handed back");
    assert!(VerifyingReader::resume(&log, paused, &trust, 6)
        .unwrap()
        .is_ok());
}

#[test]
fn a_snapshot_after_ready_delivers_from_the_next_record_while_the_reader_goes_on() {
    let dir = kchain_testkit::tempdir();
    let log = open_log(dir.path());
    let topic = unique_topic("paused-snapshot");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    write_chain(&log, &topic, &k, 40, 6);

    let mut reader = VerifyingReader::open(&log, &topic, 0, &trust, 17).unwrap();
    reader.ready().unwrap();
    let snap = reader.snapshot().expect("no finding");
    assert_eq!(snap.next(), 17, "verified up to the first record asked for");
    let original: Vec<u64> = page(&mut reader, usize::MAX).iter().map(|r| r.0).collect();
    assert_eq!(original, (17..40).collect::<Vec<_>>());
    for _ in 0..2 {
        // Each copy goes on by itself.
        let mut copy = VerifyingReader::resume(&log, snap.clone(), &trust, 17)
            .unwrap()
            .ok()
            .unwrap();
        let got: Vec<u64> = page(&mut copy, usize::MAX).iter().map(|r| r.0).collect();
        assert_eq!(got, original);
    }
}
