//! Encrypted payloads on the embedded log (and with the `kafka` feature on a private tansu
//! broker too): an encrypted chain verifies without any key, rotation keeps old records
//! readable, shredded keys leave the chain intact, and every way a record can fail to
//! decrypt is a finding at its offset, never garbage.

mod common;

use common::*;
use kchain_core::{
    DataKey, DataKeyId, Decryption, FindingKind, Item, Keyring, Trust, WriterKey, H_ENC,
};
use kchain_log::{Log, Record, TopicConfig};
use kchain_topic::tamper::{copy_topic_with, read_all};
use kchain_topic::{
    files::{read_keyring_file, update_keyring_file, write_keyring_file},
    ChainWriter, TopicError, TopicReport, TopicVerifier, VerifiedRecord, VerifyOptions,
    VerifyingReader, WriterOptions,
};

const N: u64 = 40;
/// Records `0..ROTATE` are under key A, the rest under key B.
const ROTATE: u64 = 20;
/// A record appended without a value (a tombstone): it stays without one, unencrypted.
const TOMBSTONE: u64 = 25;

struct Fixture {
    _dir: tempfile::TempDir,
    log: kchain_log::EmbeddedLog,
    topic: String,
    a: DataKey,
    b: DataKey,
    trust: Trust,
}

fn data_key(byte: u8) -> DataKey {
    DataKey::from_secret(DataKeyId([byte; 8]), 1_700_000_000_000, &[byte; 32])
}

fn plain(i: u64) -> Item {
    let mut it = item(i);
    if i == TOMBSTONE {
        it.value = None;
    }
    it
}

fn writer<'k>(log: &dyn Log, topic: &str, key: &'k WriterKey) -> ChainWriter<'k> {
    let options = WriterOptions {
        max_batch_records: 10,
        ..WriterOptions::default()
    };
    ChainWriter::open(log, topic, 0, key, options).unwrap()
}

/// A chain of N records in batches of 10 on `log`: the first ROTATE encrypted under key A,
/// then the writer reopened with key B (a rotation).
fn write_encrypted(log: &dyn Log, topic: &str, w: &WriterKey, a: &DataKey, b: &DataKey) {
    log.create_topic(topic, &TopicConfig::default()).unwrap();
    let mut first = writer(log, topic, w).with_encryption(a);
    first.append((0..ROTATE).map(plain).collect()).unwrap();
    drop(first);
    let mut second = writer(log, topic, w).with_encryption(b);
    second.append((ROTATE..N).map(plain).collect()).unwrap();
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("sealed");
    let w = key("acme", 1);
    let (a, b) = (data_key(0xa1), data_key(0xb2));
    write_encrypted(&log, &topic, &w, &a, &b);
    Fixture {
        _dir: dir,
        log,
        topic,
        a,
        b,
        trust: trust_for(&[&w]),
    }
}

fn keyring(keys: &[&DataKey]) -> Keyring {
    let mut ring = Keyring::default();
    for k in keys {
        ring.add((*k).clone()).unwrap();
    }
    ring
}

/// Verifies in order on one thread and in small chunks on three, with or without a keyring:
/// both must agree.
fn verify(log: &dyn Log, topic: &str, trust: &Trust, ring: Option<&Keyring>) -> TopicReport {
    let run = |threads, chunk| {
        let options = VerifyOptions {
            threads,
            chunk,
            ..VerifyOptions::default()
        };
        match ring {
            Some(r) => TopicVerifier::new(trust)
                .keyring(r)
                .options(options)
                .verify_chains(log, topic),
            None => TopicVerifier::new(trust)
                .options(options)
                .verify_chains(log, topic),
        }
        .unwrap()
    };
    let serial = run(1, 16);
    assert_eq!(serial, run(3, 7));
    serial
}

fn read(log: &dyn Log, topic: &str, trust: &Trust, ring: Option<&Keyring>) -> Vec<VerifiedRecord> {
    let r = VerifyingReader::open(log, topic, 0, trust, 0).unwrap();
    let r = match ring {
        Some(k) => r.with_keyring(k),
        None => r,
    };
    r.map(Result::unwrap).collect()
}

/// Copies the fixture's chain with `mutate` applied to every destination log and returns
/// each one's report with `ring`, checking that the backends agree.
fn tampered(f: &Fixture, ring: &Keyring, mutate: impl FnOnce(&mut Vec<Record>)) -> TopicReport {
    let mut records = read_all(&f.log, &f.topic, 0).unwrap();
    mutate(&mut records);
    let mut reports: Vec<(&str, TopicReport)> = Vec::new();
    for (name, copy) in destinations() {
        let c = copy.as_ref();
        copy_topic_with(&f.log, c, &f.topic, |_, recs| *recs = records.clone()).unwrap();
        reports.push((name, verify(c, &f.topic, &f.trust, Some(ring))));
    }
    for (name, r) in &reports[1..] {
        assert_eq!(r, &reports[0].1, "{name} and {} disagree", reports[0].0);
    }
    reports.swap_remove(0).1
}

fn enc_header(r: &Record) -> Option<&[u8]> {
    r.headers
        .iter()
        .find(|h| h.name == H_ENC)
        .map(|h| h.value.as_slice())
}

#[test]
fn clean_encrypted_chain_verifies_without_a_keyring_and_decrypts_with_one() {
    let f = fixture();
    // Stored: ciphertext, never the plaintext; a key id header; the tombstone untouched.
    let stored = read_all(&f.log, &f.topic, 0).unwrap();
    for (i, r) in stored.iter().enumerate() {
        let i = i as u64;
        if i == TOMBSTONE {
            assert_eq!((r.value.as_ref(), enc_header(r)), (None, None));
            continue;
        }
        let want = plain(i);
        let v = r.value.as_ref().unwrap();
        assert_eq!(v.len(), want.value.as_ref().unwrap().len() + 12 + 16);
        assert!(!v.windows(5).any(|w| w == b"\"seq\""), "plaintext at {i}");
        let key = if i < ROTATE { &f.a } else { &f.b };
        assert_eq!(enc_header(r), Some(&key.header_value()[..]));
        // Key and application headers stay in clear.
        assert_eq!(r.key, want.key);
        assert_eq!(r.headers[0].name, "source");
    }
    let report = verify(&f.log, &f.topic, &f.trust, None);
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.partitions[0].summary.entries, N);
    assert_eq!(report.partitions[0].encryption, None);

    let ring = keyring(&[&f.a, &f.b]);
    let report = verify(&f.log, &f.topic, &f.trust, Some(&ring));
    assert!(report.ok(), "{report:?}");
    let e = report.partitions[0].encryption.clone().unwrap();
    assert_eq!((e.decrypted, e.plain, e.shredded), (N - 1, 1, 0));
    assert_eq!((e.key_missing, e.failed, e.finding), (0, 0, None));

    // On every backend, and read back through the verifying reader: the plaintexts, under
    // both the old key and the new one.
    for (name, copy) in destinations() {
        copy_topic_with(&f.log, copy.as_ref(), &f.topic, |_, _| {}).unwrap();
        let recs = read(copy.as_ref(), &f.topic, &f.trust, Some(&ring));
        assert_eq!(recs.len() as u64, N, "{name}");
        for r in &recs {
            let want = plain(r.height);
            assert_eq!(
                r.value().unwrap(),
                want.value.as_deref(),
                "{name} {}",
                r.height
            );
            if r.height == TOMBSTONE {
                assert_eq!(r.decryption, Decryption::Plain);
            } else {
                let key = if r.height < ROTATE { &f.a } else { &f.b };
                assert_eq!(r.decryption.key(), Some(key.id()), "{name}");
            }
        }
    }
}

#[test]
fn a_shredded_key_leaves_its_records_unreadable_and_the_chain_intact() {
    let f = fixture();
    let mut ring = keyring(&[&f.a, &f.b]);
    assert!(ring.shred(f.a.id(), 1_800_000_000_000).unwrap());
    assert_eq!(ring.newest().unwrap().id(), f.b.id());

    assert!(verify(&f.log, &f.topic, &f.trust, None).ok());
    let report = verify(&f.log, &f.topic, &f.trust, Some(&ring));
    assert!(report.ok(), "shredded records are not findings: {report:?}");
    let e = report.partitions[0].encryption.clone().unwrap();
    assert_eq!(
        (e.shredded, e.decrypted, e.plain),
        (ROTATE, N - ROTATE - 1, 1)
    );

    for r in read(&f.log, &f.topic, &f.trust, Some(&ring)) {
        if r.height < ROTATE {
            assert_eq!(
                r.decryption,
                Decryption::Shredded {
                    key: f.a.id(),
                    at_ms: 1_800_000_000_000
                }
            );
            assert!(r.value().is_err());
        } else {
            assert_eq!(r.value().unwrap(), plain(r.height).value.as_deref());
        }
    }
}

#[test]
fn a_ciphertext_moved_to_another_height_is_a_chain_finding_and_does_not_decrypt() {
    let f = fixture();
    let ring = keyring(&[&f.a, &f.b]);
    // The attacker copies record 3's value and kchain.enc header into record 7 (same key).
    let report = tampered(&f, &ring, |r| {
        let (value, header) = (r[3].value.clone(), enc_header(&r[3]).unwrap().to_vec());
        r[7].value = value;
        let h = r[7].headers.iter_mut().find(|h| h.name == H_ENC).unwrap();
        h.value = header;
    });
    let p = &report.partitions[0];
    let chain = p.summary.finding.clone().unwrap();
    assert_eq!((chain.offset, chain.kind), (7, FindingKind::PayloadChanged));
    let e = p.encryption.clone().unwrap();
    let dec = e.finding.unwrap();
    assert_eq!(
        (dec.offset, dec.height, dec.kind),
        (7, 7, FindingKind::DecryptFailed)
    );
    assert!(
        dec.detail.contains("authentication failed"),
        "{}",
        dec.detail
    );
    assert!(dec.detail.contains(&f.a.id().to_string()), "{}", dec.detail);
    assert_eq!(e.failed, 1);
}

#[test]
fn a_changed_ciphertext_or_key_id_is_a_chain_finding_and_an_authentication_failure() {
    let f = fixture();
    let ring = keyring(&[&f.a, &f.b]);
    let report = tampered(&f, &ring, |r| r[5].value.as_mut().unwrap()[20] ^= 0x40);
    let p = &report.partitions[0];
    assert_eq!(p.summary.finding.as_ref().unwrap().offset, 5);
    let dec = p.encryption.clone().unwrap().finding.unwrap();
    assert_eq!((dec.offset, dec.kind), (5, FindingKind::DecryptFailed));

    // Relabelled under the other key: caught by the hash and by the associated data.
    let f = fixture();
    let report = tampered(&f, &ring, |r| {
        let h = r[30].headers.iter_mut().find(|h| h.name == H_ENC).unwrap();
        h.value = f.a.header_value();
    });
    let p = &report.partitions[0];
    assert_eq!(
        p.summary.finding.as_ref().map(|x| (x.offset, x.kind)),
        Some((30, FindingKind::PayloadChanged))
    );
    let dec = p.encryption.clone().unwrap().finding.unwrap();
    assert_eq!((dec.offset, dec.kind), (30, FindingKind::DecryptFailed));

    // Truncated to less than a nonce and a tag, and a malformed header.
    for (what, mutate) in [
        (
            "truncated",
            Box::new(|r: &mut Vec<Record>| r[2].value.as_mut().unwrap().truncate(10))
                as Box<dyn FnOnce(&mut Vec<Record>)>,
        ),
        (
            "malformed header",
            Box::new(|r: &mut Vec<Record>| {
                let h = r[2].headers.iter_mut().find(|h| h.name == H_ENC).unwrap();
                h.value = b"rot13:a1a1a1a1a1a1a1a1".to_vec();
            }),
        ),
    ] {
        let f = fixture();
        let report = tampered(&f, &ring, mutate);
        let dec = report.partitions[0].encryption.clone().unwrap().finding;
        let dec = dec.unwrap_or_else(|| panic!("{what}: {report:?}"));
        assert_eq!(
            (dec.offset, dec.kind),
            (2, FindingKind::DecryptFailed),
            "{what}"
        );
    }
}

#[test]
fn a_missing_or_wrong_key_is_a_finding_while_the_chain_verifies() {
    let f = fixture();
    // Key A is missing: the first record under it is the finding; the chain is intact.
    let report = verify(&f.log, &f.topic, &f.trust, Some(&keyring(&[&f.b])));
    assert!(!report.ok());
    let p = &report.partitions[0];
    assert!(p.summary.ok(), "{report:?}");
    let e = p.encryption.clone().unwrap();
    let dec = e.finding.clone().unwrap();
    assert_eq!((dec.offset, dec.kind), (0, FindingKind::KeyMissing));
    assert!(dec.detail.contains(&f.a.id().to_string()), "{}", dec.detail);
    assert_eq!((e.key_missing, e.decrypted), (ROTATE, N - ROTATE - 1));
    let recs = read(&f.log, &f.topic, &f.trust, Some(&keyring(&[&f.b])));
    assert_eq!(recs[0].decryption, Decryption::MissingKey { key: f.a.id() });
    // Without any keyring, the reader still yields every record, none as plaintext.
    let recs = read(&f.log, &f.topic, &f.trust, None);
    assert_eq!(recs.len() as u64, N);
    assert!(recs
        .iter()
        .all(|r| r.height == TOMBSTONE || r.value().is_err()));

    // A different secret under key B's id: authentication fails at the first record under B.
    let wrong_b = DataKey::from_secret(f.b.id(), 0, &[0xee; 32]);
    let report = verify(
        &f.log,
        &f.topic,
        &f.trust,
        Some(&keyring(&[&f.a, &wrong_b])),
    );
    let p = &report.partitions[0];
    assert!(p.summary.ok());
    let dec = p.encryption.clone().unwrap().finding.unwrap();
    assert_eq!((dec.offset, dec.kind), (ROTATE, FindingKind::DecryptFailed));
    let recs = read(
        &f.log,
        &f.topic,
        &f.trust,
        Some(&keyring(&[&f.a, &wrong_b])),
    );
    assert!(matches!(
        &recs[ROTATE as usize].decryption,
        Decryption::Failed { key: Some(k), why } if *k == f.b.id() && why.contains("authentication")
    ));
}

#[test]
fn the_writer_refuses_an_item_that_already_names_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    log.create_topic("t", &TopicConfig::default()).unwrap();
    let (w, a) = (key("acme", 1), data_key(1));
    let mut it = item(0);
    it.headers.push((H_ENC.into(), a.header_value()));
    let mut writer = writer(&log, "t", &w).with_encryption(&a);
    match writer.append(vec![it]) {
        Err(TopicError::Invalid(m)) => assert!(m.contains(H_ENC), "{m}"),
        other => panic!("{other:?}"),
    }
    // Nothing was appended and the writer still works.
    writer.append(vec![item(0)]).unwrap();
    assert!(verify(&log, "t", &trust_for(&[&w]), Some(&keyring(&[&a]))).ok());
}

#[test]
fn large_batches_encrypt_in_parallel_to_the_same_format() {
    // 600 records take the writer's parallel path (>= 256 per batch).
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    log.create_topic("big", &TopicConfig::default()).unwrap();
    let (w, a) = (key("acme", 1), data_key(3));
    let mut writer = ChainWriter::open(&log, "big", 0, &w, WriterOptions::default())
        .unwrap()
        .with_optional_encryption(Some(&a));
    writer.append((0..600).map(item).collect()).unwrap();
    let ring = keyring(&[&a]);
    let report = verify(&log, "big", &trust_for(&[&w]), Some(&ring));
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        report.partitions[0].encryption.as_ref().unwrap().decrypted,
        600
    );
    let recs = read(&log, "big", &trust_for(&[&w]), Some(&ring));
    let nonces: std::collections::HashSet<_> = read_all(&log, "big", 0)
        .unwrap()
        .iter()
        .map(|r| r.value.as_ref().unwrap()[..12].to_vec())
        .collect();
    assert_eq!(nonces.len(), 600, "a fresh nonce per record");
    for r in recs {
        assert_eq!(r.value().unwrap(), item(r.height).value.as_deref());
    }
}

#[test]
fn keyring_files_are_private_and_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/keyring.toml");
    let mut ring = keyring(&[&data_key(1)]);
    write_keyring_file(&path, &ring).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        ring.add(data_key(2)).unwrap();
        // Even over a file someone made readable, the new one is 0600 again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        match read_keyring_file(&path) {
            Err(TopicError::KeyringPermissions { mode: 0o644, .. }) => {}
            other => panic!("{other:?}"),
        }
        write_keyring_file(&path, &ring).unwrap();
        assert_eq!(mode(&path), 0o600);
    }
    let back = read_keyring_file(&path).unwrap();
    assert_eq!(back.to_toml(), ring.to_toml());
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("keyring.toml")]);
    // Errors name the file.
    std::fs::write(&path, "kind = 1").unwrap();
    let e = read_keyring_file(&path).unwrap_err().to_string();
    assert!(e.contains("keyring.toml") && e.contains("kind"), "{e}");
}

#[test]
fn keyring_changes_made_at_once_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.toml");
    // Two commands adding keys at once: neither may write back a keyring that lacks the
    // other's keys (the same race would resurrect a key shredded meanwhile).
    std::thread::scope(|s| {
        for t in 0..2u8 {
            let path = &path;
            s.spawn(move || {
                for i in 0..15u8 {
                    update_keyring_file(path, true, |ring| {
                        let k =
                            DataKey::from_secret(DataKeyId([t, i, 0, 0, 0, 0, 0, 0]), 0, &[i; 32]);
                        ring.add(k).map_err(|e| TopicError::Invalid(e.to_string()))
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(read_keyring_file(&path).unwrap().entries().len(), 30);
    // A change that fails writes nothing; a missing keyring is an error unless created.
    let before = std::fs::read(&path).unwrap();
    let e = update_keyring_file(&path, false, |ring| {
        ring.shred(DataKeyId([9; 8]), 1)
            .map_err(|e| TopicError::Invalid(e.to_string()))
    });
    assert!(e.unwrap_err().to_string().contains("0909090909090909"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let missing = dir.path().join("none.toml");
    assert!(update_keyring_file(&missing, false, |_| Ok(())).is_err());
    assert!(!missing.exists());
}

/// The encrypting writer on Kafka itself (the tests above copy an embedded chain to Kafka with
/// the raw appender): rotation on a real broker, read back decrypted, verified with the keyring.
#[cfg(feature = "kafka")]
#[test]
fn an_encrypted_chain_written_on_kafka_verifies_and_decrypts() {
    let log = kafka();
    let topic = unique_topic("sealed-kafka");
    let w = key("acme", 2);
    let (a, b) = (data_key(0x1a), data_key(0x2b));
    write_encrypted(&log, &topic, &w, &a, &b);
    let trust = trust_for(&[&w]);
    assert!(verify(&log, &topic, &trust, None).ok());
    let mut ring = keyring(&[&a, &b]);
    let report = verify(&log, &topic, &trust, Some(&ring));
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        report.partitions[0].encryption.as_ref().unwrap().decrypted,
        N - 1
    );
    ring.shred(b.id(), 1).unwrap();
    for r in read(&log, &topic, &trust, Some(&ring)) {
        match r.height {
            TOMBSTONE => assert_eq!(r.value(), Ok(None)),
            h if h < ROTATE => assert_eq!(r.value().unwrap(), plain(h).value.as_deref()),
            _ => assert!(matches!(r.decryption, Decryption::Shredded { .. })),
        }
    }
}
