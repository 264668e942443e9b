//! Attacks on the verifier itself, built the way an attacker would build them (records copied
//! and edited with a raw appender, segment bytes rewritten with their CRCs recomputed): the
//! first changed record must be named, never a later one; a header must have one spelling;
//! a long unsigned run must not make a reader hold it all; and a batch still being written
//! must read as pending, never as tampering.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kchain_core::{FindingKind, PendingLimits, Trust, H_NAME_NOT_UTF8};
use kchain_log::{Header, Log, Record};
use kchain_topic::tamper::{copy_topic_with, forge_after, read_all};
use kchain_topic::{TopicVerifier, VerifyOptions, VerifyingReader};

const N: u64 = 30;

struct Fixture {
    _dir: tempfile::TempDir,
    log: kchain_log::EmbeddedLog,
    trust: Trust,
    topic: String,
}

/// A chain of N records in signed batches of 10 (signatures at 9, 19, 29).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let writer = key("acme", 1);
    let topic = unique_topic("adversary");
    write_chain(&log, &topic, &writer, N, 10);
    Fixture {
        _dir: dir,
        log,
        trust: trust_for(&[&writer]),
        topic,
    }
}

/// The fixture's records edited by `mutate`, copied to a fresh log with a raw appender, and
/// verified (serially and in parallel, which must agree): the finding's (offset, kind).
fn finding_after(f: &Fixture, mutate: impl FnOnce(&mut Vec<Record>)) -> (u64, FindingKind, String) {
    let mut records = read_all(&f.log, &f.topic, 0).unwrap();
    mutate(&mut records);
    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, &f.topic, |_, r| *r = records.clone()).unwrap();
    let report = |threads, chunk| {
        TopicVerifier::new(&f.trust)
            .options(VerifyOptions {
                threads,
                chunk,
                ..VerifyOptions::default()
            })
            .verify_chains(&copy, &f.topic)
            .unwrap()
    };
    let serial = report(1, 16);
    assert_eq!(serial, report(3, 7));
    let finding = serial.partitions[0]
        .summary
        .finding
        .clone()
        .expect("a finding");
    // The verifying reader names the same record.
    let mut reader = VerifyingReader::open(&copy, &f.topic, 0, &f.trust, 0)
        .unwrap()
        .with_grace(Duration::ZERO);
    reader.by_ref().for_each(|r| drop(r.unwrap()));
    assert_eq!(reader.finding(), Some(&finding));
    (finding.offset, finding.kind, finding.detail)
}

fn set_header(r: &mut Record, name: &str, value: &[u8]) {
    r.headers.iter_mut().find(|h| h.name == name).unwrap().value = value.to_vec();
}

#[test]
fn two_consecutive_edited_values_are_named_at_the_first() {
    let f = fixture();
    let (off, kind, detail) = finding_after(&f, |r| {
        r[11].value = Some(b"edited 11".to_vec());
        r[12].value = Some(b"edited 12".to_vec());
    });
    assert_eq!((off, kind), (11, FindingKind::LinkBroken), "{detail}");
    assert!(detail.contains("11..=12"), "{detail}");
}

#[test]
fn an_edited_signed_tip_is_named_at_itself() {
    let f = fixture();
    let (off, kind, detail) = finding_after(&f, |r| r[29].value = Some(b"edited".to_vec()));
    assert_eq!((off, kind), (29, FindingKind::BadSignature), "{detail}");
    // The signed record and the one before it.
    let f = fixture();
    let (off, kind, _) = finding_after(&f, |r| {
        r[28].value = Some(b"edited 28".to_vec());
        r[29].value = Some(b"edited 29".to_vec());
    });
    assert_eq!((off, kind), (28, FindingKind::LinkBroken));
}

#[test]
fn key_and_signature_hex_have_one_spelling() {
    for name in ["kchain.key", "kchain.sig"] {
        let f = fixture();
        let (off, kind, detail) = finding_after(&f, |r| {
            let v = r[19]
                .headers
                .iter()
                .find(|h| h.name == name)
                .unwrap()
                .value
                .to_ascii_uppercase();
            set_header(&mut r[19], name, &v);
        });
        assert_eq!(
            (off, kind),
            (19, FindingKind::Malformed),
            "{name}: {detail}"
        );
    }
}

#[test]
fn a_header_name_the_log_could_not_read_as_utf8_is_malformed() {
    // The name a backend passes for a header name that is not UTF-8 is reserved: a record
    // carrying it is malformed, whatever else it holds.
    let f = fixture();
    let (off, kind, _) = finding_after(&f, |r| {
        r[13]
            .headers
            .insert(0, Header::new(H_NAME_NOT_UTF8, b"x".to_vec()));
    });
    assert_eq!((off, kind), (13, FindingKind::Malformed));
}

/// CRC32C (Castagnoli), as the embedded log's batches use.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn segment_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            segment_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "log") {
            out.push(p);
        }
    }
}

#[test]
fn a_header_name_rewritten_to_bytes_that_are_not_utf8_never_verifies_on_disk() {
    // An application header named U+FFFD (EF BF BD) rewritten on disk to FF FF FF, with the
    // batch CRCs recomputed: a lossy decoder would read "\u{FFFD}\u{FFFD}\u{FFFD}"; the
    // embedded log refuses the batch instead, so nothing in it verifies.
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let writer = key("acme", 1);
    let topic = unique_topic("utf8");
    log.create_topic(&topic, &kchain_log::TopicConfig::default())
        .unwrap();
    let mut w = kchain_topic::ChainWriter::open(
        &log,
        &topic,
        0,
        &writer,
        kchain_topic::WriterOptions::default(),
    )
    .unwrap();
    let items = (0..3)
        .map(|i| kchain_core::Item {
            headers: vec![("\u{FFFD}".into(), format!("{i}").into_bytes())],
            ..item(i)
        })
        .collect();
    w.append(items).unwrap();
    drop(w);
    let trust = trust_for(&[&writer]);
    let verified = |log: &dyn Log| {
        TopicVerifier::new(&trust)
            .verify_chains(log, &topic)
            .is_ok_and(|r| r.ok())
    };
    assert!(verified(&log));
    drop(log);
    let mut files = Vec::new();
    segment_files(dir.path(), &mut files);
    assert_eq!(files.len(), 1, "{files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let at = bytes
        .windows(3)
        .position(|w| w == [0xEF, 0xBF, 0xBD])
        .expect("the header name is in the segment");
    bytes[at..at + 3].copy_from_slice(&[0xFF; 3]);
    // One batch: recompute its payload CRC, then its header CRC.
    let payload_len = u32::from_be_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let payload_crc = crc32c(&bytes[40..40 + payload_len]);
    bytes[32..36].copy_from_slice(&payload_crc.to_be_bytes());
    let header_crc = crc32c(&bytes[0..36]);
    bytes[36..40].copy_from_slice(&header_crc.to_be_bytes());
    std::fs::write(&files[0], &bytes).unwrap();
    let log = open_log(dir.path());
    assert!(!verified(&log), "a rewritten header name verified");
}

#[test]
fn a_long_unsigned_run_is_reported_without_holding_it() {
    // 200 linked records of 1 MiB each and no signature, forged after the real chain: the
    // reader stops once the run passes the byte budget, holding about that much.
    let f = fixture();
    let mut records = read_all(&f.log, &f.topic, 0).unwrap();
    let big = vec![b'x'; 1 << 20];
    for i in 0..200u64 {
        let it = kchain_core::Item {
            value: Some(big.clone()),
            ..item(1000 + i)
        };
        let x = forge_after(&f.topic, 0, records.last().unwrap(), it, None).unwrap();
        records.push(x);
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, &f.topic, |_, r| {
        *r = std::mem::take(&mut records)
    })
    .unwrap();
    let limits = PendingLimits::default();
    let mut reader = VerifyingReader::open(&copy, &f.topic, 0, &f.trust, 0).unwrap();
    let delivered = reader.by_ref().map(Result::unwrap).count();
    assert_eq!(delivered as u64, N);
    let finding = reader.finding().expect("the run is a finding");
    assert_eq!(
        (finding.offset, finding.kind),
        (N, FindingKind::Unsigned),
        "{}",
        finding.detail
    );
    // The budget, plus the look-ahead and the poll that crossed it.
    let peak = reader.peak_held_bytes();
    assert!(
        peak <= limits.bytes + 4 * (1 << 21),
        "held {peak} bytes (budget {})",
        limits.bytes
    );
    // A run longer than a batch in records is a finding too, whatever its size.
    let f = fixture();
    let mut records = read_all(&f.log, &f.topic, 0).unwrap();
    for i in 0..20u64 {
        let x = forge_after(&f.topic, 0, records.last().unwrap(), item(1000 + i), None).unwrap();
        records.push(x);
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, &f.topic, |_, r| {
        *r = std::mem::take(&mut records)
    })
    .unwrap();
    let mut reader = VerifyingReader::open(&copy, &f.topic, 0, &f.trust, 0)
        .unwrap()
        .with_limits(PendingLimits {
            records: 12,
            ..limits
        });
    assert_eq!(reader.by_ref().map(Result::unwrap).count() as u64, N);
    let finding = reader.finding().unwrap();
    assert_eq!((finding.offset, finding.kind), (N, FindingKind::Unsigned));
}

#[test]
fn a_batch_in_progress_is_pending_then_verified_when_its_signature_arrives() {
    // The reader opens while only part of the last batch is in the log (as when a producer
    // splits a batch over several requests); the rest, with its signature, lands 300 ms later.
    let f = fixture();
    let records = read_all(&f.log, &f.topic, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, &f.topic, |_, r| r.truncate(25)).unwrap();
    let reader = VerifyingReader::open(&copy, &f.topic, 0, &f.trust, 0)
        .unwrap()
        .with_grace(Duration::from_secs(5));
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            let mut app = copy.appender(&f.topic, 0).unwrap();
            app.append(&records[25..]).unwrap();
            app.flush().unwrap();
        });
        let mut reader = reader;
        let got = reader.by_ref().map(Result::unwrap).count();
        assert_eq!(got as u64, N, "{:?}", reader.summary());
        assert!(reader.summary().unwrap().ok());
    });
}

#[test]
fn a_tail_still_unsigned_after_the_grace_is_unsigned_and_never_delivered() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, &f.topic, |_, r| r.truncate(25)).unwrap();
    let grace = Duration::from_millis(400);
    let started = Instant::now();
    let mut reader = VerifyingReader::open(&copy, &f.topic, 0, &f.trust, 0)
        .unwrap()
        .with_grace(grace);
    let got = reader.by_ref().map(Result::unwrap).count();
    assert!(started.elapsed() >= grace);
    assert_eq!(got, 20);
    let finding = reader.finding().unwrap();
    assert_eq!((finding.offset, finding.kind), (20, FindingKind::Unsigned));
}

#[test]
fn records_past_the_end_offset_the_reader_opened_at_are_read() {
    // The reader learns an end offset of 25 (mid-batch); the records after it are already
    // there when it reads. It reads what the log returns rather than stop at 25 and call
    // the batch unsigned, even with no grace at all.
    let f = fixture();
    let records = read_all(&f.log, &f.topic, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, &f.topic, |_, r| r.truncate(25)).unwrap();
    let mut reader = VerifyingReader::open(&copy, &f.topic, 0, &f.trust, 0)
        .unwrap()
        .with_grace(Duration::ZERO);
    let mut app = copy.appender(&f.topic, 0).unwrap();
    app.append(&records[25..]).unwrap();
    app.flush().unwrap();
    let got = reader.by_ref().map(Result::unwrap).count();
    assert_eq!(got as u64, N, "{:?}", reader.summary());
    assert!(reader.summary().unwrap().ok());
}

#[cfg(feature = "kafka")]
#[test]
fn on_kafka_a_batch_in_progress_is_pending_then_verified() {
    // The same on the test broker: part of the last batch is in the partition when the reader
    // opens; the rest, with its signature, is produced 300 ms later.
    let f = fixture();
    let records = read_all(&f.log, &f.topic, 0).unwrap();
    let log = kafka();
    copy_topic_with(&f.log, &log, &f.topic, |_, r| r.truncate(25)).unwrap();
    let reader = VerifyingReader::open(&log, &f.topic, 0, &f.trust, 0)
        .unwrap()
        .with_grace(Duration::from_secs(10));
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            let mut app = log.appender(&f.topic, 0).unwrap();
            app.append(&records[25..]).unwrap();
            app.flush().unwrap();
        });
        let mut reader = reader;
        let got = reader.by_ref().map(Result::unwrap).count();
        assert_eq!(got as u64, N, "{:?}", reader.summary());
        assert!(reader.summary().unwrap().ok());
    });
    // And a tail that stays unsigned is `unsigned` once the grace is over.
    let log = kafka();
    let f = fixture();
    copy_topic_with(&f.log, &log, &f.topic, |_, r| r.truncate(25)).unwrap();
    let mut reader = VerifyingReader::open(&log, &f.topic, 0, &f.trust, 0)
        .unwrap()
        .with_grace(Duration::from_millis(500));
    assert_eq!(reader.by_ref().map(Result::unwrap).count(), 20);
    let finding = reader.finding().unwrap();
    assert_eq!((finding.offset, finding.kind), (20, FindingKind::Unsigned));
}
