//! A verifying reader that follows its partition: after its end it goes on with the records
//! appended since, from where its verification stood, and still catches a forgery among them.

mod common;

use common::{item, key, open_log, trust_for, unique_topic, write_chain};
use kchain_core::FindingKind;
use kchain_log::Log;
use kchain_topic::tamper::{forge_after, read_all};
use kchain_topic::VerifyingReader;

fn offsets(reader: &mut VerifyingReader<'_>) -> Vec<u64> {
    reader.by_ref().map(|r| r.unwrap().offset).collect()
}

#[test]
fn a_followed_reader_yields_only_the_new_records() {
    let dir = kchain_testkit::tempdir();
    let log = open_log(dir.path());
    let topic = unique_topic("follow");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    write_chain(&log, &topic, &k, 5, 2);

    let mut reader = VerifyingReader::open(&log, &topic, 0, &trust, 0).unwrap();
    assert_eq!(offsets(&mut reader), vec![0, 1, 2, 3, 4]);
    assert!(!reader.follow(&log).unwrap(), "nothing new yet");

    write_chain(&log, &topic, &k, 3, 8);
    assert!(reader.follow(&log).unwrap());
    assert_eq!(offsets(&mut reader), vec![5, 6, 7]);
    assert_eq!(reader.summary().unwrap().entries, 8);
    assert!(reader.finding().is_none());
}

#[test]
fn a_forgery_appended_while_following_is_a_finding_and_ends_the_reader() {
    let dir = kchain_testkit::tempdir();
    let log = open_log(dir.path());
    let topic = unique_topic("follow-forged");
    let k = key("acme", 1);
    let mallory = key("mallory", 9);
    let trust = trust_for(&[&k]);
    write_chain(&log, &topic, &k, 3, 3);

    let mut reader = VerifyingReader::open(&log, &topic, 0, &trust, 0).unwrap();
    assert_eq!(offsets(&mut reader), vec![0, 1, 2]);

    // An outsider with write access appends a record that links correctly, signed by a key
    // the trust file does not hold.
    let last = read_all(&log, &topic, 0).unwrap().pop().unwrap();
    let forged = forge_after(&topic, 0, &last, item(99), Some(&mallory)).unwrap();
    let mut appender = log.appender(&topic, 0).unwrap();
    appender.append(&[forged]).unwrap();
    drop(appender);

    assert!(reader.follow(&log).unwrap());
    assert_eq!(offsets(&mut reader), Vec::<u64>::new());
    let finding = reader.finding().expect("the forged record is a finding");
    assert_eq!(finding.offset, 3);
    assert_eq!(finding.kind, FindingKind::UnknownKey);
    assert!(!reader.follow(&log).unwrap(), "a finding is final");
}
