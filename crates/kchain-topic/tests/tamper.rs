//! The tamper matrix on the embedded backend: every kind of change an attacker with write
//! access to the log can make is detected at the exact offset with the right kind, and clean
//! data has zero findings.

mod common;

use common::*;
use kchain_core::{FindingKind, Item, Pin, Trust};
use kchain_log::{Header, Log, Record};
use kchain_topic::tamper::{copy_topic_with, entry_hash_of, forge, forge_after};
use kchain_topic::{TopicReport, TopicVerifier, VerifyOptions, VerifyingReader};

/// A topic name of this test's own (each test runs on its own thread), so that tests can
/// share one Kafka broker.
fn topic() -> &'static str {
    NAME.with(|n| n.get())
}

thread_local! {
    static NAME: std::cell::Cell<&'static str> = const { std::cell::Cell::new("shipments") };
}
const N: u64 = 50;

struct Fixture {
    _dir: tempfile::TempDir,
    log: kchain_log::EmbeddedLog,
    writer: kchain_core::WriterKey,
    trust: Trust,
}

/// A fresh chain of N records in batches of 10, under a topic name of its own (a Kafka
/// broker can hold a topic name only once).
fn fixture() -> Fixture {
    NAME.with(|n| n.set(Box::leak(unique_topic("shipments").into_boxed_str())));
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let writer = key("acme", 1);
    write_chain(&log, topic(), &writer, N, 10);
    let trust = trust_for(&[&writer]);
    Fixture {
        _dir: dir,
        log,
        writer,
        trust,
    }
}

/// Verifies in order on one thread, and split into small chunks among three workers: both
/// must give the same report.
fn verify(log: &dyn Log, trust: &Trust) -> TopicReport {
    let serial = TopicVerifier::new(trust)
        .options(VerifyOptions {
            threads: 1,
            chunk: 16,
            ..VerifyOptions::default()
        })
        .verify_chains(log, topic())
        .unwrap();
    let parallel = TopicVerifier::new(trust)
        .options(VerifyOptions {
            threads: 3,
            chunk: 7,
            ..VerifyOptions::default()
        })
        .verify_chains(log, topic())
        .unwrap();
    assert_eq!(serial, parallel);
    serial
}

/// Copies the fixture's chain with `mutate` applied, verifies it, and returns the finding.
fn tampered(
    f: &Fixture,
    trust: &Trust,
    mutate: impl FnOnce(&mut Vec<Record>),
) -> (u64, u64, FindingKind, String) {
    let mut records = kchain_topic::tamper::read_all(&f.log, topic(), 0).unwrap();
    mutate(&mut records);
    let mut found = Vec::new();
    for (name, copy) in destinations() {
        let c = copy.as_ref();
        copy_topic_with(&f.log, c, topic(), |_, recs| *recs = records.clone()).unwrap();
        let report = verify(c, trust);
        let finding = report.partitions[0]
            .summary
            .finding
            .clone()
            .unwrap_or_else(|| panic!("{name}: no finding; report: {report:?}"));
        found.push((name, finding));
    }
    for (name, other) in &found[1..] {
        assert_eq!(other, &found[0].1, "{name} and {} disagree", found[0].0);
    }
    let finding = found.swap_remove(0).1;
    (finding.offset, finding.height, finding.kind, finding.detail)
}

fn set_header(r: &mut Record, name: &str, value: &[u8]) {
    r.headers.iter_mut().find(|h| h.name == name).unwrap().value = value.to_vec();
}

#[test]
fn clean_chain_verifies_with_zero_findings() {
    let f = fixture();
    let report = verify(&f.log, &f.trust);
    assert!(report.ok(), "{report:?}");
    let p = &report.partitions[0];
    assert_eq!(p.summary.entries, N);
    assert_eq!(p.summary.pending, 0);
    assert_eq!(p.summary.tip.unwrap().height, N - 1);
    // And with one thread, and the copy made by the attacker tool without changes.
    let one = TopicVerifier::new(&f.trust)
        .options(VerifyOptions {
            threads: 1,
            chunk: 7,
            ..VerifyOptions::default()
        })
        .verify_chains(&f.log, topic())
        .unwrap();
    assert_eq!(one, report);
    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, topic(), |_, _| {}).unwrap();
    assert!(verify(&copy, &f.trust).ok());
}

#[test]
fn payload_byte_changed_mid_batch() {
    let f = fixture();
    let (off, h, kind, _) = tampered(&f, &f.trust, |r| {
        r[13].value.as_mut().unwrap()[3] ^= 0x01;
    });
    assert_eq!((off, h, kind), (13, 13, FindingKind::PayloadChanged));
}

#[test]
fn payload_changed_at_a_signed_batch_end() {
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        r[19].value = Some(b"{\"event\":\"scan\",\"seq\":1900}".to_vec());
    });
    assert_eq!((off, kind), (19, FindingKind::PayloadChanged));
}

#[test]
fn payload_changed_at_the_tip() {
    let f = fixture();
    // With no successor to compare links against, only the signature can tell. The records
    // before it still link to it, so it is the earliest record that could have changed (an
    // earlier one could too only with every link after it recomputed: the detail says so).
    let (off, _, kind, detail) = tampered(&f, &f.trust, |r| {
        r[49].key = Some(b"other".to_vec());
    });
    assert_eq!((off, kind), (49, FindingKind::BadSignature));
    assert!(detail.contains("40..=49"), "{detail}");
}

#[test]
fn application_header_or_timestamp_changed() {
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| set_header(&mut r[22], "source", b"evil"));
    assert_eq!((off, kind), (22, FindingKind::PayloadChanged));
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| r[23].timestamp_ms += 1);
    assert_eq!((off, kind), (23, FindingKind::PayloadChanged));
}

#[test]
fn chain_header_fields_changed() {
    let f = fixture();
    let (off, h, kind, _) = tampered(&f, &f.trust, |r| {
        set_header(&mut r[22], "kchain.height", b"99")
    });
    assert_eq!((off, h, kind), (22, 22, FindingKind::HeaderChanged));
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        set_header(&mut r[24], "kchain.prev", &[b'a'; 64])
    });
    // Either 24's link changed, or 23 and 24 both did: 23 is the earliest suspect.
    assert_eq!((off, kind), (23, FindingKind::LinkBroken));
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| set_header(&mut r[25], "kchain.v", b"2"));
    assert_eq!((off, kind), (25, FindingKind::Malformed));
}

#[test]
fn record_deleted() {
    let f = fixture();
    let (off, h, kind, _) = tampered(&f, &f.trust, |r| {
        r.remove(25);
    });
    assert_eq!((off, h, kind), (25, 25, FindingKind::Missing));
}

#[test]
fn record_inserted_with_recomputed_hash_but_no_signature() {
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        let x = forge_after(topic(), 0, &r[30], item(9999), None).unwrap();
        r.insert(31, x);
    });
    assert_eq!((off, kind), (31, FindingKind::Inserted));
    // Inserted after the original record of the same height instead of before it.
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        let x = forge_after(topic(), 0, &r[30], item(9999), None).unwrap();
        r.insert(32, x);
    });
    assert_eq!((off, kind), (32, FindingKind::Inserted));
}

#[test]
fn records_swapped() {
    let f = fixture();
    let (off, h, kind, _) = tampered(&f, &f.trust, |r| r.swap(33, 34));
    assert_eq!((off, h, kind), (33, 33, FindingKind::Reordered));
}

#[test]
fn record_duplicated() {
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        let dup = r[36].clone();
        r.insert(37, dup);
    });
    assert_eq!((off, kind), (37, FindingKind::Duplicate));
}

#[test]
fn tail_truncated_is_caught_against_a_trusted_tip() {
    let f = fixture();
    let tip_hash = entry_hash_of(
        topic(),
        0,
        &kchain_topic::tamper::read_all(&f.log, topic(), 0).unwrap()[49],
    )
    .unwrap();
    let mut pinned = f.trust.clone();
    pinned.set_pin(Pin {
        topic: topic().into(),
        partition: 0,
        genesis: None,
        tip: Some((N - 1, tip_hash)),
        log: None,
    });
    assert!(verify(&f.log, &pinned).ok());
    let (off, h, kind, _) = tampered(&f, &pinned, |r| r.truncate(40));
    assert_eq!((off, h, kind), (40, 40, FindingKind::Truncated));
    // Without a trusted tip, a truncation at a batch boundary is indistinguishable from a
    // shorter chain: that is what checkpoints are for.
    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, topic(), |_, r| r.truncate(40)).unwrap();
    assert!(verify(&copy, &f.trust).ok());
}

#[test]
fn truncation_inside_a_batch_leaves_an_unsigned_tail() {
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| r.truncate(45));
    assert_eq!((off, kind), (40, FindingKind::Unsigned));
}

#[test]
fn genesis_replaced() {
    let f = fixture();
    let (off, h, kind, _) = tampered(&f, &f.trust, |r| {
        r[0] = forge(topic(), 0, 0, [0; 32], item(777), None);
    });
    assert_eq!((off, h, kind), (0, 0, FindingKind::GenesisMismatch));
}

#[test]
fn genesis_pinned_in_trust_file() {
    let f = fixture();
    let mut pinned = f.trust.clone();
    pinned.set_pin(Pin {
        topic: topic().into(),
        partition: 0,
        genesis: Some([7; 32]),
        tip: None,
        log: None,
    });
    let (off, _, kind, _) = tampered(&f, &pinned, |_| {});
    assert_eq!((off, kind), (0, FindingKind::GenesisMismatch));
}

#[test]
fn forged_record_at_the_tip() {
    let f = fixture();
    // No signature.
    let (off, h, kind, _) = tampered(&f, &f.trust, |r| {
        let x = forge_after(topic(), 0, &r[49], item(5000), None).unwrap();
        r.push(x);
    });
    assert_eq!((off, h, kind), (50, 50, FindingKind::Unsigned));
    // Signed by a key the trust file does not list.
    let mallory = key("mallory", 9);
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        let x = forge_after(topic(), 0, &r[49], item(5000), Some(&mallory)).unwrap();
        r.push(x);
    });
    assert_eq!((off, kind), (50, FindingKind::UnknownKey));
    // Claiming the writer's key id with a signature that does not verify.
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        let mut x = forge_after(topic(), 0, &r[49], item(5000), Some(&mallory)).unwrap();
        set_header(&mut x, "kchain.key", f.writer.id().to_string().as_bytes());
        r.push(x);
    });
    assert_eq!((off, kind), (50, FindingKind::BadSignature));
}

#[test]
fn whole_chain_rewritten_by_another_key() {
    let f = fixture();
    let mallory = key("mallory", 9);
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        let mut prev = [0u8; 32];
        for (i, rec) in r.iter_mut().enumerate() {
            let it = kchain_topic::item_of(rec);
            let signer = (i % 10 == 9).then_some(&mallory);
            *rec = forge(topic(), 0, i as u64, prev, it, signer);
            prev = entry_hash_of(topic(), 0, rec).unwrap();
        }
    });
    assert_eq!((off, kind), (0, FindingKind::UnknownKey));
}

#[test]
fn key_trusted_for_other_topics_is_a_foreign_writer() {
    let f = fixture();
    let mut t = f.trust.clone();
    t.writers[0].topics = vec!["payments".into()];
    let (off, _, kind, _) = tampered(&f, &t, |_| {});
    assert_eq!((off, kind), (0, FindingKind::ForeignWriter));
}

#[test]
fn record_from_a_plain_producer() {
    let f = fixture();
    let (off, _, kind, _) = tampered(&f, &f.trust, |r| {
        r.insert(
            20,
            Record {
                key: None,
                value: Some(b"plain".to_vec()),
                headers: vec![Header::new("source", b"other-app".to_vec())],
                timestamp_ms: 1,
            },
        );
    });
    assert_eq!((off, kind), (20, FindingKind::ForeignWriter));
}

#[test]
fn rewritten_history_against_a_trusted_tip() {
    let f = fixture();
    let mut pinned = f.trust.clone();
    pinned.set_pin(Pin {
        topic: topic().into(),
        partition: 0,
        genesis: None,
        tip: Some((29, [1; 32])),
        log: None,
    });
    let (off, h, kind, _) = tampered(&f, &pinned, |_| {});
    assert_eq!((off, h, kind), (29, 29, FindingKind::TipMismatch));
}

#[test]
fn verifying_reader_yields_only_what_verifies_and_stops_at_the_finding() {
    let f = fixture();
    let all: Vec<_> = VerifyingReader::open(&f.log, topic(), 0, &f.trust, 0)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(all.len() as u64, N);
    assert_eq!(all[7].item, item(7));
    assert_eq!(all[7].height, 7);
    let from: Vec<_> = VerifyingReader::open(&f.log, topic(), 0, &f.trust, 45)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(from.first().map(|r| r.offset), Some(45));

    let dir = tempfile::tempdir().unwrap();
    let copy = open_log(dir.path());
    copy_topic_with(&f.log, &copy, topic(), |_, r| {
        r[25].value = Some(b"changed".to_vec());
    })
    .unwrap();
    let mut reader = VerifyingReader::open(&copy, topic(), 0, &f.trust, 0).unwrap();
    let got: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    // Records up to the last signature before the change (offset 19) are released.
    assert_eq!(got.len(), 20);
    let finding = reader.finding().unwrap();
    assert_eq!(
        (finding.offset, finding.kind),
        (25, FindingKind::PayloadChanged)
    );
    let _ = Item::default();
}
