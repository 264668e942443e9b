//! The freshness rule (`[policy] max_age`) as a pure function of the newest accepted
//! checkpoint, its witnesses' cosignature timestamps, the chain's size and the time: entries
//! past a checkpoint no witness cosigned recently are a finding, a quiet log is clean.

use kchain_core::checkpoint::stale;
use kchain_core::{
    merkle, Checkpoint, CheckpointFindingKind, Cosigner, NoteSigner, Policy, Witness,
};

const NOW: u64 = 1_800_000_000;
const MAX_AGE: u64 = 600;

/// A checkpoint of size 10 cosigned by each witness at its timestamp, and what the policy
/// (threshold 0) made of it.
fn cosigned_at(times: &[u64]) -> (kchain_core::SignedNote, kchain_core::TrustedCheckpoint) {
    let writer = NoteSigner::from_seed("acme", [1; 32]).unwrap();
    let leaves: Vec<_> = (0u64..10)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut note = Checkpoint::new("kchain/orders/0", 10, merkle::root(&leaves))
        .unwrap()
        .sign(&writer);
    let mut witnesses = Vec::new();
    for (i, &t) in times.iter().enumerate() {
        let c = Cosigner::from_seed(&format!("w{i}.example"), [i as u8 + 2; 32]).unwrap();
        let w = Witness::new(c.clone(), vec![writer.verifier()]);
        let sig = w.observe(None, &note, &[], t).unwrap();
        note.add_signature(sig.to_note_signature());
        witnesses.push(c.verifier());
    }
    let policy = Policy::new(vec![writer.verifier()], witnesses, 0).unwrap();
    let trusted = policy.check(&note).unwrap();
    (note, trusted)
}

#[test]
fn entries_past_an_old_checkpoint_are_stale() {
    let (note, t) = cosigned_at(&[NOW - 3600]);
    let f = stale(&note, &t, 12, NOW, MAX_AGE).expect("stale");
    assert_eq!(f.kind, CheckpointFindingKind::Stale);
    assert_eq!(f.kind.as_str(), "checkpoint_stale");
    assert_eq!(f.height, Some(10));
    assert!(
        f.detail.contains("entries 10.. are not covered"),
        "{}",
        f.detail
    );
    assert_eq!(f.evidence, vec![note]);
}

#[test]
fn a_quiet_log_is_clean_however_old_its_checkpoint() {
    let (note, t) = cosigned_at(&[NOW - 86_400]);
    assert_eq!(stale(&note, &t, 10, NOW, MAX_AGE), None);
}

#[test]
fn one_recent_cosignature_is_enough() {
    let (note, t) = cosigned_at(&[NOW - 86_400, NOW - 60]);
    assert_eq!(stale(&note, &t, 1000, NOW, MAX_AGE), None);
    let (note, t) = cosigned_at(&[NOW - MAX_AGE]);
    assert_eq!(
        stale(&note, &t, 11, NOW, MAX_AGE),
        None,
        "exactly max_age is fresh"
    );
}

#[test]
fn a_checkpoint_no_witness_cosigned_is_stale_once_the_chain_grows() {
    let (note, t) = cosigned_at(&[]);
    assert_eq!(stale(&note, &t, 10, NOW, MAX_AGE), None);
    let f = stale(&note, &t, 11, NOW, MAX_AGE).expect("stale");
    assert!(f.detail.contains("no witness cosigned it"), "{}", f.detail);
}
