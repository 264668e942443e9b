//! Attacks on checkpoint policies and on the judge, in the pure core: one witness key listed
//! under two names must count once, and the judge must hold a chain to the checkpoint a
//! verifier remembers even when the log shows none.

use kchain_core::checkpoint::SignatureType;
use kchain_core::{
    judge, merkle, ChainCheckpoints, Checkpoint, CheckpointFindingKind, Cosigner, Hash,
    NoteSignature, NoteSigner, NoteVerifier, Policy, PolicyError, SignedNote,
};

const ORIGIN: &str = "kchain/orders/0";

fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect()
}

fn note(writer: &NoteSigner, size: u64, salt: u64) -> SignedNote {
    let l: Vec<Hash> = (0..size)
        .map(|i| merkle::leaf_hash(&(i + salt).to_be_bytes()))
        .collect();
    Checkpoint::new(ORIGIN, size, merkle::root(&l))
        .unwrap()
        .sign(writer)
}

/// The witness `w`'s verifier key under another name: same public key, another key id.
fn alias(w: &Cosigner, name: &str) -> NoteVerifier {
    NoteVerifier::new(
        name,
        SignatureType::CosignatureV1,
        w.verifier().public_key(),
    )
    .unwrap()
}

#[test]
fn one_witness_key_under_two_names_counts_once() {
    let writer = NoteSigner::from_seed("acme", [1; 32]).unwrap();
    let w1 = Cosigner::from_seed("w1.example", [2; 32]).unwrap();
    let w2 = Cosigner::from_seed("w2.example", [3; 32]).unwrap();
    let w1_again = alias(&w1, "w1-again.example");
    assert_eq!(w1_again.public_key(), w1.verifier().public_key());
    let policy = Policy::new(
        vec![writer.verifier()],
        vec![w1.verifier(), w1_again.clone(), w2.verifier()],
        2,
    )
    .unwrap();

    // w1 cosigns once; anyone can copy its cosignature line under the alias (a cosignature
    // does not sign the key name), which verifies under the alias key.
    let mut n = note(&writer, 5, 0);
    let cosig = w1.cosign(n.text(), 1_750_000_000).to_note_signature();
    n.add_signature(cosig.clone());
    let copied = NoteSignature::new(
        w1_again.name(),
        w1_again.key_id(),
        cosig.signature().to_vec(),
    )
    .unwrap();
    n.add_signature(copied);
    match policy.check(&n) {
        Err(PolicyError::NotEnoughCosignatures {
            have: 1, need: 2, ..
        }) => {}
        other => panic!("one witness counted twice: {other:?}"),
    }
    // The second, distinct witness makes two.
    n.add_signature(w2.cosign(n.text(), 1_750_000_001).to_note_signature());
    assert_eq!(policy.check(&n).unwrap().cosigners.len(), 2);
    // A threshold that only the same key twice could meet is refused up front.
    assert!(matches!(
        Policy::new(vec![writer.verifier()], vec![w1.verifier(), w1_again], 2),
        Err(PolicyError::ThresholdTooHigh { witnesses: 1, .. })
    ));
}

fn judged(
    policy: &Policy,
    notes: &[SignedNote],
    entries: u64,
    chain: &[Hash],
    remembered: Option<&SignedNote>,
) -> kchain_core::Judgement {
    judge::<()>(
        ChainCheckpoints {
            policy,
            writer_policy: policy,
            notes,
            entries,
            intact: true,
            remembered,
            required: true,
        },
        &mut |sizes| {
            Ok(sizes
                .iter()
                .map(|&s| merkle::root(&chain[..s as usize]))
                .collect())
        },
    )
    .unwrap()
}

#[test]
fn the_remembered_checkpoint_catches_a_log_rolled_back_with_its_checkpoints() {
    let writer = NoteSigner::from_seed("acme", [1; 32]).unwrap();
    let policy = Policy::new(vec![writer.verifier()], vec![], 0)
        .unwrap()
        .for_origin(ORIGIN);
    let chain = leaves(30);
    let c20 = note(&writer, 20, 0);
    let c30 = note(&writer, 30, 0);

    // First run: both checkpoints on the log; the newest is to be remembered.
    let j = judged(&policy, &[c20.clone(), c30.clone()], 30, &chain, None);
    assert_eq!(j.finding, None);
    assert_eq!(j.remember.as_ref(), Some(&c30));

    // The log is cut to 20 entries and the size-30 checkpoint deleted: alone, it looks fine.
    let j = judged(&policy, std::slice::from_ref(&c20), 20, &chain[..20], None);
    assert_eq!(j.finding, None);
    // Against the remembered checkpoint it is a rollback, at the chain's end.
    let j = judged(
        &policy,
        std::slice::from_ref(&c20),
        20,
        &chain[..20],
        Some(&c30),
    );
    let f = j.finding.unwrap();
    assert_eq!(
        (f.kind, f.height),
        (CheckpointFindingKind::Rollback, Some(20))
    );
    assert_eq!(f.evidence, vec![c30.clone()]);

    // Emptied and checkpoints gone: still a rollback.
    let j = judged(&policy, &[], 0, &[], Some(&c30));
    assert_eq!(j.finding.unwrap().kind, CheckpointFindingKind::Rollback);

    // Rewritten to the same length (another history) with the checkpoints gone.
    let other = leaves(40).into_iter().rev().take(30).collect::<Vec<_>>();
    let j = judged(&policy, &[], 30, &other, Some(&c30));
    assert_eq!(j.finding.unwrap().kind, CheckpointFindingKind::Rollback);

    // A chain that only grew is consistent with what was remembered: no finding, and the
    // remembered checkpoint stays until a newer one is trusted.
    let longer = leaves(35);
    let j = judged(&policy, std::slice::from_ref(&c20), 35, &longer, Some(&c30));
    assert_eq!(j.finding, None);
    assert_eq!(j.remember, None);
    assert_eq!(j.remembered_newer.map(|c| c.size()), Some(30));

    // No trusted checkpoint and nothing remembered, with entries: a finding, not silence.
    let j = judged(&policy, &[], 30, &chain, None);
    assert_eq!(
        j.finding.unwrap().kind,
        CheckpointFindingKind::NoTrustedCheckpoint
    );
}
