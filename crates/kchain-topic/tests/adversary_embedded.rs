//! Attacks on a chained topic in the embedded log by someone with disk access (issue 9): each
//! test builds the tampered log the way an attacker would (CRCs recomputed, the index
//! rewritten) and checks that every way of reading it reports the same thing.

mod common;

use std::time::Duration;

use common::*;
use kchain_core::FindingKind;
use kchain_log::Log;
use kchain_topic::tamper::hide_batch_behind_index;
use kchain_topic::{TopicReport, TopicVerifier, VerifyOptions};

const TOPIC: &str = "orders";

fn verify(log: &dyn Log, trust: &kchain_core::Trust, threads: usize) -> TopicReport {
    TopicVerifier::new(trust)
        .options(VerifyOptions {
            threads,
            ..VerifyOptions::default()
        })
        .verify_chains(log, TOPIC)
        .unwrap()
}

/// Issue 9, point 1: the batch at offset 16384 of a 40,000-record partition (batches of
/// 8,192) is replaced by a tampered one whose tail hides the original batch, and the index
/// entry for 16384 points at the hidden copy. The parallel verifier's chunk reader starting
/// at 16384 must not see the hidden records: every thread count reports the first changed
/// record, as one thread does.
#[test]
fn planted_index_entry_does_not_hide_a_tampered_batch() {
    let dir = tempfile::tempdir().unwrap();
    let key = key("acme", 9);
    let trust = trust_for(&[&key]);
    {
        let log = open_log(dir.path());
        write_chain(&log, TOPIC, &key, 40_000, 8_192);
        let clean = verify(&log, &trust, 4);
        assert!(clean.ok(), "{clean:?}");
        let hidden = hide_batch_behind_index(&log, TOPIC, 0, 16_384, |records| {
            records[5].value = Some(b"{\"event\":\"refund\",\"amount\":999999}".to_vec());
        })
        .unwrap();
        assert!(hidden > 0);
    }
    let log = open_log(dir.path());
    let serial = verify(&log, &trust, 1);
    let finding = serial.partitions[0]
        .summary
        .finding
        .clone()
        .unwrap_or_else(|| panic!("no finding with one thread: {serial:?}"));
    assert_eq!(
        (finding.offset, finding.kind),
        (16_389, FindingKind::PayloadChanged),
        "{finding:?}"
    );
    for threads in [2, 3, 4, 8] {
        let parallel = verify(&log, &trust, threads);
        assert_eq!(parallel, serial, "{threads} threads");
    }
    // A reader opened right at the tampered batch sees what a reader from the start sees.
    let mut reader = log.reader(TOPIC, 0, 16_384).unwrap();
    let got = reader.poll(10, Duration::ZERO).unwrap();
    assert_eq!(got[0].offset, 16_384);
    assert_eq!(
        got[5].record.value.as_deref(),
        Some(&b"{\"event\":\"refund\",\"amount\":999999}"[..])
    );
    let mut from_start = log.reader(TOPIC, 0, 0).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 16_394 {
        seen.extend(from_start.poll(20_000, Duration::ZERO).unwrap());
    }
    assert_eq!(seen[16_389].record, got[5].record);
}
