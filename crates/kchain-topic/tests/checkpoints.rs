//! Checkpoints on the log: a writer publishes them, a verifier holds the chain to them, and
//! each way a broker's operator or a writer can lie is caught with its own finding:
//! truncation, a suffix rewritten with correctly recomputed hashes and signatures, a fork
//! shown to two witnesses, a replayed old checkpoint, a checkpoint signed by an unknown key.

mod common;

use std::time::Duration;

use common::{item, key, open_log, trust_for, unique_topic};
use kchain_core::{
    verify_consistency_proof, verify_inclusion_proof, Checkpoint, CheckpointTrust,
    ConsistencyProofFile, Cosigner, NoteSigner, Policy, ProofError, SignedNote, Trust, TrustFile,
    Witness, WitnessRefusal, WriterKey,
};
use kchain_log::{Log, TopicConfig};
use kchain_topic::{
    checkpoints::{
        check_checkpoints, newest_checkpoint, prove_consistency, prove_inclusion, publish_note,
        CheckpointFindingKind,
    },
    ChainWriter, CheckpointOptions, CheckpointReport, TopicVerifier, WriterOptions,
};

const NS: &str = "kchain";

fn options(every: u64) -> CheckpointOptions {
    CheckpointOptions {
        every_entries: every,
        every: Duration::from_secs(3600),
        ..CheckpointOptions::default()
    }
}

/// Appends items `from..to` (their content shifted by `salt`) to partition 0 of `topic`,
/// publishing checkpoints every `every` entries (0: no checkpoints), and flushes.
fn write(log: &dyn Log, topic: &str, k: &WriterKey, from: u64, to: u64, salt: u64, every: u64) {
    if log.topic(topic).is_err() {
        log.create_topic(topic, &TopicConfig::default()).unwrap();
    }
    let w = ChainWriter::open(
        log,
        topic,
        0,
        k,
        WriterOptions {
            max_batch_records: 4,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let mut w = if every > 0 {
        w.with_checkpoints(log, options(every)).unwrap()
    } else {
        w
    };
    for i in from..to {
        w.append(vec![item(i + salt)]).unwrap();
    }
    w.flush().unwrap();
}

fn checkpoint_trust(text: &str) -> CheckpointTrust {
    TrustFile::from_toml(text).unwrap().checkpoints.unwrap()
}

fn check(log: &dyn Log, topic: &str, trust: &Trust, ct: &CheckpointTrust) -> CheckpointReport {
    let report = TopicVerifier::new(trust).verify_chains(log, topic).unwrap();
    assert!(report.ok(), "the chain itself verifies: {report:?}");
    let read_again = check_checkpoints(log, &report, trust, ct).unwrap();
    // `verify` grows the chain tree during its chain pass instead of reading the chain a
    // second time: the same judgement.
    let one_read = TopicVerifier::new(trust)
        .checkpoints(ct)
        .verify(log, topic)
        .unwrap();
    assert_eq!(one_read.checkpoints.as_ref(), Some(&read_again));
    read_again
}

fn finding(r: &CheckpointReport) -> CheckpointFindingKind {
    r.partitions[0]
        .finding
        .as_ref()
        .unwrap_or_else(|| panic!("expected a finding: {r:?}"))
        .kind
}

fn newest(log: &dyn Log, topic: &str) -> SignedNote {
    newest_checkpoint(log, topic, 0, NS).unwrap().unwrap()
}

#[test]
fn clean_chain_with_checkpoints_has_no_findings_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("cp-clean");
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    write(&log, &topic, &k, 0, 25, 0, 10);
    // Published at 10 and 20 when due, and at 25 on flush.
    let c = Checkpoint::parse(newest(&log, &topic).text()).unwrap();
    assert_eq!(
        (c.origin(), c.size()),
        (format!("{NS}/{topic}/0").as_str(), 25)
    );

    // A resumed writer rebuilds its tree and goes on from the last checkpoint.
    write(&log, &topic, &k, 25, 31, 0, 10);
    let c = Checkpoint::parse(newest(&log, &topic).text()).unwrap();
    assert_eq!(c.size(), 31);

    let r = check(&log, &topic, &trust, &checkpoint_trust("[policy]\n"));
    assert!(r.ok(), "{}", r.to_text());
    let p = &r.partitions[0];
    assert_eq!(p.newest.as_ref().unwrap().checkpoint.size(), 31);
    assert_eq!((p.seen, p.untrusted), (4, 0));
}

#[test]
fn flush_without_new_entries_publishes_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("cp-idle");
    let k = key("acme", 1);
    write(&log, &topic, &k, 0, 5, 0, 100);
    let mut w = ChainWriter::open(&log, &topic, 0, &k, WriterOptions::default())
        .unwrap()
        .with_checkpoints(&log, options(100))
        .unwrap();
    assert!(w.last_checkpoint().is_some());
    assert_eq!(w.checkpoint().unwrap(), None);
    w.flush().unwrap();
    let records = kchain_topic::checkpoints::read_checkpoints(&log, &topic).unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
}

/// The same topic in a second log, holding another history, with the first log's checkpoint
/// copied over: what a broker's operator who rewrote the log would show a verifier.
fn tampered(
    topic: &str,
    k: &WriterKey,
    write_other: impl Fn(&dyn Log),
) -> (tempfile::TempDir, Box<dyn Log>, SignedNote) {
    let honest_dir = tempfile::tempdir().unwrap();
    let honest = open_log(honest_dir.path());
    write(&honest, topic, k, 0, 20, 0, 10);
    let note = newest(&honest, topic);
    let dir = tempfile::tempdir().unwrap();
    let log: Box<dyn Log> = Box::new(open_log(dir.path()));
    write_other(log.as_ref());
    publish_note(log.as_ref(), topic, 0, &note).unwrap();
    (dir, log, note)
}

#[test]
fn truncation_is_caught() {
    let topic = unique_topic("cp-trunc");
    let k = key("acme", 1);
    let (_d, log, note) = tampered(&topic, &k, |log| write(log, &topic, &k, 0, 15, 0, 0));
    let r = check(
        log.as_ref(),
        &topic,
        &trust_for(&[&k]),
        &checkpoint_trust("[policy]\n"),
    );
    assert_eq!(finding(&r), CheckpointFindingKind::Truncated);
    let f = r.partitions[0].finding.as_ref().unwrap();
    assert_eq!(f.evidence, vec![note]);
    assert!(f.detail.contains("20") && f.detail.contains("15"), "{f}");
}

#[test]
fn suffix_rewrite_with_recomputed_hashes_and_signatures_is_caught() {
    let topic = unique_topic("cp-rewrite");
    let k = key("acme", 1);
    // Same first 15 entries, then 5 different ones, all hashed and signed correctly.
    let (_d, log, _) = tampered(&topic, &k, |log| {
        write(log, &topic, &k, 0, 15, 0, 0);
        write(log, &topic, &k, 15, 20, 1000, 0);
    });
    let r = check(
        log.as_ref(),
        &topic,
        &trust_for(&[&k]),
        &checkpoint_trust("[policy]\n"),
    );
    assert_eq!(
        finding(&r),
        CheckpointFindingKind::Rewritten,
        "{}",
        r.to_text()
    );

    // The writer itself refuses to sign on top of the rewritten chain.
    let err = ChainWriter::open(log.as_ref(), &topic, 0, &k, WriterOptions::default())
        .unwrap()
        .with_checkpoints(log.as_ref(), options(10))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("rewritten"), "{err}");
}

#[test]
fn writer_refuses_to_sign_over_a_truncated_chain() {
    let topic = unique_topic("cp-trunc-writer");
    let k = key("acme", 1);
    let (_d, log, _) = tampered(&topic, &k, |log| write(log, &topic, &k, 0, 15, 0, 0));
    let err = ChainWriter::open(log.as_ref(), &topic, 0, &k, WriterOptions::default())
        .unwrap()
        .with_checkpoints(log.as_ref(), options(10))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn fork_shown_to_two_witnesses_is_caught() {
    let topic = unique_topic("cp-fork");
    let k = key("acme", 1);
    let writer = k.note_signer().unwrap();
    let w1 = Witness::new(
        Cosigner::from_seed("w1.example", [2; 32]).unwrap(),
        vec![writer.verifier()],
    );
    let w2 = Witness::new(
        Cosigner::from_seed("w2.example", [3; 32]).unwrap(),
        vec![writer.verifier()],
    );
    // The writer signs two histories of 20 entries and shows one to each witness.
    let (_d, log, a) = tampered(&topic, &k, |log| {
        write(log, &topic, &k, 0, 15, 0, 0);
        write(log, &topic, &k, 15, 20, 1000, 10);
    });
    let b = Checkpoint::parse(newest(log.as_ref(), &topic).text()).unwrap();
    let b = log_note(log.as_ref(), &topic, b.size(), &a);
    let now = 1_750_000_000;
    let mut a1 = a.clone();
    a1.add_signature(w1.observe(None, &a, &[], now).unwrap().to_note_signature());
    let mut b2 = b.clone();
    b2.add_signature(w2.observe(None, &b, &[], now).unwrap().to_note_signature());

    // Each history has one cosignature: neither meets a 2-of-2 policy.
    let policy = Policy::new(
        vec![writer.verifier()],
        vec![w1.cosigner().verifier(), w2.cosigner().verifier()],
        2,
    )
    .unwrap();
    assert!(policy.check(&a1).is_err() && policy.check(&b2).is_err());

    // When either witness is shown the other history it refuses, with evidence that anyone
    // can check.
    match w1.observe(Some(&a), &b, &[], now) {
        Err(WitnessRefusal::Fork { size, evidence, .. }) => {
            assert_eq!(size, 20);
            let file = ConsistencyProofFile::from(&*evidence);
            let writer_only = Policy::new(vec![writer.verifier()], vec![], 0).unwrap();
            assert!(matches!(
                verify_consistency_proof(&file, &writer_only),
                Err(ProofError::Inconsistent { .. })
            ));
        }
        other => panic!("expected a fork refusal: {other:?}"),
    }
    assert!(matches!(
        w2.observe(Some(&b), &a, &[], now),
        Err(WitnessRefusal::Fork { .. })
    ));

    // A verifier that sees both on the checkpoints topic reports the fork.
    publish_note(log.as_ref(), &topic, 0, &a1).unwrap();
    publish_note(log.as_ref(), &topic, 0, &b2).unwrap();
    let ct = checkpoint_trust(&format!(
        "[[witness]]\nkey = \"{}\"\n[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\n",
        w1.cosigner().verifier().to_vkey(),
        w2.cosigner().verifier().to_vkey()
    ));
    let r = check(log.as_ref(), &topic, &trust_for(&[&k]), &ct);
    assert_eq!(finding(&r), CheckpointFindingKind::Fork, "{}", r.to_text());
    assert_eq!(r.partitions[0].finding.as_ref().unwrap().evidence.len(), 2);
}

/// The checkpoint of size `size` on `log`'s checkpoints topic that is not `other`.
fn log_note(log: &dyn Log, topic: &str, size: u64, other: &SignedNote) -> SignedNote {
    kchain_topic::checkpoints::partition_checkpoints(log, topic, 0, NS)
        .unwrap()
        .into_iter()
        .find(|(n, c)| c.size() == size && n.text() != other.text())
        .unwrap()
        .0
}

#[test]
fn replayed_old_checkpoint_is_refused_by_a_witness_and_harmless_to_a_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("cp-replay");
    let k = key("acme", 1);
    write(&log, &topic, &k, 0, 10, 0, 100);
    let old = newest(&log, &topic);
    write(&log, &topic, &k, 10, 20, 0, 100);
    let new = newest(&log, &topic);

    let witness = Witness::new(
        Cosigner::from_seed("w1.example", [2; 32]).unwrap(),
        vec![k.note_signer().unwrap().verifier()],
    );
    let proof = prove_consistency(&log, &old, &new, NS).unwrap();
    let hashes: Vec<_> = proof
        .proof
        .iter()
        .map(|h| kchain_core::from_hex(h).unwrap())
        .collect();
    witness.observe(Some(&old), &new, &hashes, 1).unwrap();
    assert!(matches!(
        witness.observe(Some(&new), &old, &[], 2),
        Err(WitnessRefusal::Replay {
            cosigned_size: 20,
            offered_size: 10,
            ..
        })
    ));

    // An old checkpoint replayed onto the topic is still consistent with the chain.
    publish_note(&log, &topic, 0, &old).unwrap();
    let r = check(
        &log,
        &topic,
        &trust_for(&[&k]),
        &checkpoint_trust("[policy]\n"),
    );
    assert!(r.ok(), "{}", r.to_text());
    assert_eq!(
        r.partitions[0].newest.as_ref().unwrap().checkpoint.size(),
        20
    );
}

#[test]
fn checkpoint_signed_by_an_unknown_key_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("cp-unknown");
    let k = key("acme", 1);
    write(&log, &topic, &k, 0, 10, 0, 100);
    // Someone else signs a longer checkpoint and publishes it.
    let mallory = NoteSigner::from_seed("mallory", [9; 32]).unwrap();
    let forged = Checkpoint::new(&format!("{NS}/{topic}/0"), 50, [7; 32])
        .unwrap()
        .sign(&mallory);
    publish_note(&log, &topic, 0, &forged).unwrap();

    let r = check(
        &log,
        &topic,
        &trust_for(&[&k]),
        &checkpoint_trust("[policy]\n"),
    );
    assert!(
        r.ok(),
        "an untrusted checkpoint proves nothing: {}",
        r.to_text()
    );
    // A note with no line by a key of the policy is dropped as it is merged: it costs a
    // lookup, and is not even counted.
    assert_eq!((r.partitions[0].seen, r.partitions[0].untrusted), (1, 0));

    // A proof resting on it fails the policy, and a witness will not cosign it.
    let writer = k.note_signer().unwrap().verifier();
    let policy = Policy::new(vec![writer.clone()], vec![], 0).unwrap();
    let file = kchain_core::InclusionProofFile::new(0, &[0; 32], &[], &forged);
    assert!(matches!(
        verify_inclusion_proof(&file, &policy),
        Err(ProofError::Policy { .. })
    ));
    let witness = Witness::new(
        Cosigner::from_seed("w1.example", [2; 32]).unwrap(),
        vec![writer],
    );
    assert!(matches!(
        witness.observe(None, &forged, &[], 1),
        Err(WitnessRefusal::UnknownWriter { .. })
    ));
}

#[test]
fn proofs_from_the_log_verify_offline() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("cp-prove");
    let k = key("acme", 1);
    write(&log, &topic, &k, 0, 7, 0, 100);
    let old = newest(&log, &topic);
    write(&log, &topic, &k, 7, 23, 0, 100);
    let policy = Policy::new(vec![k.note_signer().unwrap().verifier()], vec![], 0).unwrap();

    for offset in [0, 6, 7, 22] {
        let file = prove_inclusion(&log, &topic, 0, offset, NS).unwrap();
        let v = verify_inclusion_proof(&file, &policy).unwrap();
        assert_eq!(v.index, offset);
        assert_eq!(v.checkpoint.checkpoint.size(), 23);
        assert_eq!(v.item.unwrap(), item(offset));
    }
    let new = newest(&log, &topic);
    let file = prove_consistency(&log, &old, &new, NS).unwrap();
    verify_consistency_proof(&file, &policy).unwrap();
    // Swapped, the proof is refused before any proof is computed.
    assert!(prove_consistency(&log, &new, &old, NS).is_err());
}

#[test]
fn cosignatures_from_the_topic_meet_a_witness_policy() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("cp-cosign");
    let k = key("acme", 1);
    write(&log, &topic, &k, 0, 12, 0, 100);
    let note = newest(&log, &topic);
    let w1 = Cosigner::from_seed("w1.example", [2; 32]).unwrap();
    let w2 = Cosigner::from_seed("w2.example", [3; 32]).unwrap();
    let ct = checkpoint_trust(&format!(
        "[[witness]]\nkey = \"{}\"\n[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 2\n",
        w1.verifier().to_vkey(),
        w2.verifier().to_vkey()
    ));
    let trust = trust_for(&[&k]);
    // Before witnesses cosign, nothing meets the policy: a finding, not silence.
    let r = check(&log, &topic, &trust, &ct);
    assert!(
        finding(&r) == CheckpointFindingKind::NoTrustedCheckpoint
            && r.partitions[0].newest.is_none(),
        "{}",
        r.to_text()
    );

    // Someone appends the text with a bogus line under w1's key first: it is dropped, and
    // does not hide w1's real cosignature.
    let mut bogus = note.clone();
    bogus.add_signature(
        kchain_core::NoteSignature::new(w1.name(), w1.key_id(), vec![0; 72]).unwrap(),
    );
    publish_note(&log, &topic, 0, &bogus).unwrap();
    // Each witness appends the note with its own cosignature; the verifier merges them.
    for w in [&w1, &w2] {
        let mut n = note.clone();
        n.add_signature(w.cosign(note.text(), 1_750_000_000).to_note_signature());
        publish_note(&log, &topic, 0, &n).unwrap();
    }
    let r = check(&log, &topic, &trust, &ct);
    let newest = r.partitions[0].newest.as_ref().expect("trusted");
    assert_eq!(newest.cosigners.len(), 2);
    assert_eq!(newest.checkpoint.size(), 12);
    assert!(r.ok(), "{}", r.to_text());
}

#[test]
fn witness_follows_the_topic_cosigns_growth_and_refuses_a_fork() {
    use kchain_topic::checkpoints::{witness_pass, WitnessEvent};
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("cp-witness");
    let k = key("acme", 1);
    let w1 = Cosigner::from_seed("w1.example", [2; 32]).unwrap();
    let writers = vec![k.note_signer().unwrap().verifier()];
    let witness = Witness::new(w1.clone(), writers.clone());
    let ct = checkpoint_trust(&format!(
        "[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\n",
        w1.verifier().to_vkey()
    ));
    let trust = trust_for(&[&k]);
    let pass = || {
        witness_pass(
            &log,
            &topic,
            &witness,
            &writers,
            state.path(),
            NS,
            1_750_000_000,
        )
        .unwrap()
    };

    write(&log, &topic, &k, 0, 10, 0, 100);
    assert!(matches!(
        &pass()[..],
        [WitnessEvent::Cosigned { size: 10, .. }]
    ));
    assert_eq!(pass(), vec![], "idle when caught up");
    write(&log, &topic, &k, 10, 17, 0, 100);
    assert!(matches!(
        &pass()[..],
        [WitnessEvent::Cosigned { size: 17, .. }]
    ));
    let r = check(&log, &topic, &trust, &ct);
    assert!(r.ok(), "{}", r.to_text());
    assert_eq!(
        r.partitions[0].newest.as_ref().unwrap().checkpoint.size(),
        17
    );

    // The writer signs another root for size 17 and publishes it: the witness refuses.
    let fork = Checkpoint::new(&format!("{NS}/{topic}/0"), 17, [5; 32])
        .unwrap()
        .sign(&k.note_signer().unwrap());
    publish_note(&log, &topic, 0, &fork).unwrap();
    let events = pass();
    assert!(
        matches!(
            &events[..],
            [WitnessEvent::Refused {
                refusal: WitnessRefusal::Fork { .. },
                ..
            }]
        ),
        "{events:?}"
    );
    // From then on every pass raises the alarm, and the witness cosigns nothing more.
    assert!(matches!(
        &pass()[..],
        [WitnessEvent::Alarm { size: 17, .. }]
    ));
    let r = check(&log, &topic, &trust, &ct);
    assert_eq!(finding(&r), CheckpointFindingKind::Fork);
}

#[test]
fn witness_keeps_a_frontier_and_rebuilds_it_when_lost_or_damaged() {
    use kchain_topic::checkpoints::{witness_pass, WitnessEvent};
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("cp-frontier");
    let k = key("acme", 1);
    let w1 = Cosigner::from_seed("w1.example", [2; 32]).unwrap();
    let writers = vec![k.note_signer().unwrap().verifier()];
    let witness = Witness::new(w1, writers.clone());
    let pass = || {
        witness_pass(
            &log,
            &topic,
            &witness,
            &writers,
            state.path(),
            NS,
            1_750_000_000,
        )
        .unwrap()
    };
    let frontier = || {
        let f = std::fs::read_dir(state.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "frontier"))
            .expect("a frontier file");
        (f.clone(), std::fs::read_to_string(f).unwrap())
    };
    let cosigned = |events: Vec<WitnessEvent>, size: u64| {
        assert!(
            matches!(&events[..], [WitnessEvent::Cosigned { size: s, .. }] if *s == size),
            "{events:?}"
        )
    };
    write(&log, &topic, &k, 0, 10, 0, 100);
    cosigned(pass(), 10);
    assert!(frontier().1.starts_with("10\n"));
    write(&log, &topic, &k, 10, 17, 0, 100);
    cosigned(pass(), 17);
    let (path, text) = frontier();
    assert_eq!(
        text.lines().count(),
        1 + 17u32.count_ones() as usize,
        "{text}"
    );
    // Lost: rebuilt from the log.
    std::fs::remove_file(&path).unwrap();
    write(&log, &topic, &k, 17, 30, 0, 100);
    cosigned(pass(), 30);
    // Damaged (a peak changed): its root no longer matches what was cosigned; rebuilt.
    let (path, text) = frontier();
    let damaged = text.replacen(&text.lines().nth(1).unwrap()[..4], "0000", 1);
    std::fs::write(&path, damaged).unwrap();
    write(&log, &topic, &k, 30, 41, 0, 100);
    cosigned(pass(), 41);
    assert!(frontier().1.starts_with("41\n"));
}
