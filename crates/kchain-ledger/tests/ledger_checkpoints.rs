//! Signed checkpoints of the blocks chain: sealers publish them while sealing and when they
//! stop; `ledger verify` with a policy holds the chain against the newest trusted one (the
//! end of the chain, which the log alone cannot anchor: truncation and replacement of the
//! last blocks); a sealer refuses to sign over a chain that no longer extends its own last
//! checkpoint; and a transaction's proof (tx -> block -> checkpoint) verifies offline while
//! every mutation of it is rejected with its own error.

mod support;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kchain_core::merkle::{self, Hash};
use kchain_core::{
    chain_leaf, Checkpoint, CheckpointTrust, Cosigner, NoteSigner, SignedNote, WriterKey,
    DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_ledger::{
    ledger_origin, prove_tx, replay, sealer_verifiers, submit, verify_ledger, verify_tx_proof,
    Chain, CheckpointFindingKind, CheckpointOptions, Event, LedgerError, LedgerReport, Node,
    NodeOptions, Transaction, TrustedLedger, TrustedSealers, TxProof, TxProofError, TxProofTrust,
    VerifyOptions,
};
use kchain_log::{Log, Record};
use kchain_topic::checkpoints::{checkpoints_topic, publish_note, read_checkpoints};
use kchain_topic::tamper::copy_topic_with;
use serde_json::Value;
use support::*;

fn every(blocks: u64) -> CheckpointOptions {
    CheckpointOptions {
        every_blocks: blocks,
        every: Duration::ZERO,
        namespace: DEFAULT_ORIGIN_NAMESPACE.to_owned(),
        ..CheckpointOptions::default()
    }
}

fn options(cast: &Cast, checkpoints: Option<CheckpointOptions>) -> NodeOptions {
    NodeOptions {
        checkpoints,
        ..cast.node_options()
    }
}

/// Runs sealer `sealer` until idle with these checkpoint options; returns its events.
fn seal(
    log: &dyn Log,
    cast: &Cast,
    sealer: usize,
    checkpoints: Option<CheckpointOptions>,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut node = Node::open(
        log,
        options(cast, checkpoints),
        Some((cast.sealer_key(sealer), seal_options(1))),
        &mut events,
    )
    .unwrap();
    node.run(true, &AtomicBool::new(false), &mut |e| {
        events.push(e.clone())
    })
    .unwrap();
    events
}

fn checkpoint_sizes(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Checkpoint { size, .. } => Some(*size),
            _ => None,
        })
        .collect()
}

fn chain(log: &dyn Log, cast: &Cast) -> Chain {
    let r = replay(log, &cast.genesis.topics.blocks, None).unwrap();
    assert!(r.finding.is_none(), "{:?}", r.finding);
    r.chain
}

/// The reference: the chain tree's root at `size`, from the canonical hashes, recomputed
/// leaf by leaf.
fn root_at(chain: &Chain, size: u64) -> Hash {
    let leaves: Vec<Hash> = (0..size)
        .map(|h| chain_leaf(&chain.block_at(h).unwrap().0))
        .collect();
    merkle::root(&leaves)
}

/// The checkpoint notes on the ledger's checkpoints topic, in log order.
fn notes(log: &dyn Log, cast: &Cast) -> Vec<SignedNote> {
    read_checkpoints(log, &cast.genesis.topics.blocks)
        .unwrap()
        .into_iter()
        .map(|r| r.note)
        .collect()
}

/// Submits `n` transfers, one a block (`block_txs` 1), sealed by sealer 0 with checkpoints
/// every 2 blocks. Offsets of the blocks topic are heights: one sealer never races.
fn ledger(log: &dyn Log, name: &str, n: u64) -> Cast {
    let cast = Cast::new(name, 2, 4, 1000, 2);
    cast.init(log);
    let txs: Vec<Transaction> = (0..n)
        .map(|i| {
            cast.transfer(
                (i % 4) as usize,
                cast.address(((i + 1) % 4) as usize),
                1 + i,
                1 + i / 4,
            )
        })
        .collect();
    submit(log, &cast.genesis, &txs).unwrap();
    seal(log, &cast, 0, Some(every(2)));
    let c = chain(log, &cast);
    assert_eq!(c.state().sealed_count() as u64, n);
    assert_eq!(
        c.tip().offset,
        c.tip().height,
        "no stale blocks in this ledger"
    );
    cast
}

fn policy(witnesses: &[&Cosigner], threshold: usize) -> CheckpointTrust {
    CheckpointTrust {
        witnesses: witnesses.iter().map(|w| w.verifier()).collect(),
        threshold,
        namespace: DEFAULT_ORIGIN_NAMESPACE.to_owned(),
        endpoints: Vec::new(),
        max_age: None,
    }
}

fn verify_with(log: &dyn Log, cast: &Cast, trust: &CheckpointTrust) -> LedgerReport {
    let opts = VerifyOptions {
        checkpoints: Some(trust.clone()),
        ..VerifyOptions::default()
    };
    verify_ledger(log, &cast.genesis.topics.blocks, &opts, &|_| {}).unwrap()
}

/// Copies the whole ledger (transactions, blocks, rejected, checkpoints) into `dst`, letting
/// `mutate` change the blocks topic's records.
fn copy_ledger(
    src: &dyn Log,
    dst: &dyn Log,
    cast: &Cast,
    mutate: impl FnMut(u32, &mut Vec<Record>),
) {
    let t = &cast.genesis.topics;
    copy_topic_with(src, dst, &t.blocks, mutate).unwrap();
    for topic in [
        t.transactions.clone(),
        t.rejected.clone(),
        checkpoints_topic(&t.blocks),
    ] {
        copy_topic_with(src, dst, &topic, |_, _| {}).unwrap();
    }
}

/// Cosigns the newest checkpoint on the topic with `w` and appends it, as a witness does.
fn cosign_newest(log: &dyn Log, cast: &Cast, w: &Cosigner) -> SignedNote {
    let newest = notes(log, cast)
        .into_iter()
        .max_by_key(|n| Checkpoint::parse(n.text()).unwrap().size())
        .unwrap();
    let mut cosigned = SignedNote::new(newest.text()).unwrap();
    cosigned.add_signature(w.cosign(newest.text(), 1_750_000_000).to_note_signature());
    publish_note(log, &cast.genesis.topics.blocks, 0, &cosigned).unwrap();
    cosigned
}

#[test]
fn a_sealer_publishes_checkpoints_while_sealing_and_when_it_stops() {
    let (_dir, log) = embedded();
    let cast = Cast::new("cp-publish", 1, 4, 1000, 2);
    cast.init(&log);
    let txs: Vec<Transaction> = (0..7)
        .map(|i| {
            cast.transfer(
                (i % 4) as usize,
                cast.address(((i + 1) % 4) as usize),
                1,
                1 + i as u64 / 4,
            )
        })
        .collect();
    submit(&log, &cast.genesis, &txs).unwrap();
    let events = seal(&log, &cast, 0, Some(every(2)));
    let c = chain(&log, &cast);
    let len = c.tip().height + 1;
    assert_eq!(len, 8, "one transaction a block");

    let sizes = checkpoint_sizes(&events);
    assert!(sizes.len() >= 3, "every 2 blocks while sealing: {sizes:?}");
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    assert_eq!(
        *sizes.last().unwrap(),
        len,
        "the last covers the whole chain"
    );

    // On the topic: each a note signed by the sealer under its genesis name (not its key
    // file's), of the ledger's origin, with the chain tree's root at its size.
    let on_topic = notes(&log, &cast);
    assert_eq!(on_topic.len(), sizes.len());
    let sealers = sealer_verifiers(&cast.genesis);
    let origin = ledger_origin("kchain", &cast.genesis.topics.blocks);
    assert_eq!(origin, "kchain/cp-publish.blocks");
    for (note, size) in on_topic.iter().zip(&sizes) {
        assert_eq!(note.signatures()[0].name(), "sealer0");
        assert_ne!(cast.sealer_key(0).name(), "sealer0");
        note.verify(&sealers).unwrap();
        let cp = Checkpoint::parse(note.text()).unwrap();
        assert_eq!((cp.origin(), cp.size()), (origin.as_str(), *size));
        assert_eq!(*cp.root(), root_at(&c, *size), "size {size}");
    }

    // Checkpoints off but for the one when the node stops: exactly that one.
    let more: Vec<Transaction> = (0..2)
        .map(|i| cast.transfer(i, cast.address(3), 1, 3))
        .collect();
    submit(&log, &cast.genesis, &more).unwrap();
    let events = seal(&log, &cast, 0, Some(every(0)));
    let len = chain(&log, &cast).tip().height + 1;
    assert_eq!(checkpoint_sizes(&events), vec![len], "only at shutdown");
    // Nothing new: nothing signed again.
    let events = seal(&log, &cast, 0, Some(every(0)));
    assert_eq!(checkpoint_sizes(&events), Vec::<u64>::new());
    // And with checkpoints off, none at all.
    submit(
        &log,
        &cast.genesis,
        &[cast.transfer(0, cast.address(3), 1, 4)],
    )
    .unwrap();
    assert_eq!(
        checkpoint_sizes(&seal(&log, &cast, 0, None)),
        Vec::<u64>::new()
    );
}

#[test]
fn two_sealers_sign_consistent_checkpoints_and_a_policy_verifies_clean_data() {
    let (_dir, log) = embedded();
    let cast = ledger(&log, "cp-clean", 6);
    // The second sealer joins, seals more, and signs the same canonical chain.
    let more: Vec<Transaction> = (0..2)
        .map(|i| cast.transfer(i, cast.address(3), 1, 3))
        .collect();
    submit(&log, &cast.genesis, &more).unwrap();
    seal(&log, &cast, 1, Some(every(2)));
    let c = chain(&log, &cast);
    let len = c.tip().height + 1;
    let signers: std::collections::BTreeSet<String> = notes(&log, &cast)
        .iter()
        .map(|n| n.signatures()[0].name().to_owned())
        .collect();
    assert_eq!(signers.len(), 2, "{signers:?}");

    // Sealers alone (no witness needed): clean, anchored by the newest checkpoint.
    let report = verify_with(&log, &cast, &policy(&[], 0));
    assert!(report.ok(), "{}", report.to_text());
    let status = report.checkpoints.as_ref().unwrap();
    let (_, newest) = status.newest.as_ref().unwrap();
    assert_eq!(newest.checkpoint.size(), len);
    assert_eq!(status.untrusted, 0);
    assert!(
        report.anchors.iter().any(|a| a.contains("checkpoint")),
        "{:?}",
        report.anchors
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // One witness required: nothing cosigned yet, so every checkpoint is untrusted, which
    // is no finding.
    let w1 = Cosigner::from_seed("w1.example", [7; 32]).unwrap();
    let report = verify_with(&log, &cast, &policy(&[&w1], 1));
    assert!(report.ok(), "{}", report.to_text());
    let status = report.checkpoints.as_ref().unwrap();
    assert!(status.newest.is_none());
    assert_eq!(status.untrusted, status.seen);

    // Cosigned: trusted, and the JSON says so.
    cosign_newest(&log, &cast, &w1);
    let report = verify_with(&log, &cast, &policy(&[&w1], 1));
    assert!(report.ok(), "{}", report.to_text());
    let (_, newest) = report
        .checkpoints
        .as_ref()
        .unwrap()
        .newest
        .as_ref()
        .unwrap();
    assert_eq!(newest.checkpoint.size(), len);
    assert_eq!(newest.cosigners.len(), 1);
    let json = report.to_json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["checkpoints"]["newest"]["size"], len);
    assert_eq!(json["finding"], Value::Null);
}

#[test]
fn a_truncated_chain_contradicts_the_newest_trusted_checkpoint() {
    let (_src_dir, src) = embedded();
    let cast = ledger(&src, "cp-cut", 6);
    let w1 = Cosigner::from_seed("w1.example", [7; 32]).unwrap();
    let cosigned = cosign_newest(&src, &cast, &w1);

    // The last two canonical blocks dropped, as someone with write access could.
    let (_dst_dir, dst) = embedded();
    copy_ledger(&src, &dst, &cast, |_, r| {
        r.truncate(r.len() - 2);
    });
    let end = dst.end_offset(&cast.genesis.topics.blocks, 0).unwrap();

    // The log alone shows nothing.
    let plain = verify_ledger(
        &dst,
        &cast.genesis.topics.blocks,
        &VerifyOptions::default(),
        &|_| {},
    )
    .unwrap();
    assert!(plain.ok(), "{}", plain.to_text());

    for trust in [policy(&[], 0), policy(&[&w1], 1)] {
        let report = verify_with(&dst, &cast, &trust);
        assert!(!report.ok());
        assert!(report.finding.is_none(), "the chain itself is intact");
        let f = report.checkpoint_finding.as_ref().expect("a finding");
        assert_eq!(
            (f.kind, f.offset),
            (CheckpointFindingKind::Truncated, end),
            "{f}"
        );
        assert_eq!(f.evidence.len(), 1);
        if trust.threshold == 1 {
            assert_eq!(f.evidence[0].text(), cosigned.text());
            assert_eq!(f.evidence[0].signatures().len(), 2, "sealer and witness");
        }
        let json = report.to_json();
        assert_eq!(json["ok"], false);
        assert_eq!(json["finding"]["kind"], "checkpoint_truncated");
        assert_eq!(json["finding"]["offset"], end);
        assert!(json["checkpoint_finding"]["evidence"][0]
            .as_str()
            .unwrap()
            .contains("kchain/cp-cut.blocks\n7\n"));
        assert!(report.to_text().contains("checkpoint_truncated"));
    }

    // The sealer that signed it refuses to go on over the cut chain...
    let mut events = Vec::new();
    let opened = Node::open(
        &dst,
        options(&cast, Some(every(2))),
        Some((cast.sealer_key(0), seal_options(1))),
        &mut events,
    );
    match opened {
        Err(LedgerError::CheckpointRefused { detail, .. }) => {
            assert!(detail.contains("truncated"), "{detail}")
        }
        other => panic!("the sealer must refuse, got {:?}", other.err()),
    }
    // ...though without checkpoints the same node runs (the log itself is consistent).
    Node::open(
        &dst,
        options(&cast, None),
        Some((cast.sealer_key(0), seal_options(1))),
        &mut events,
    )
    .unwrap();
}

#[test]
fn last_blocks_replaced_by_other_valid_blocks_contradict_the_checkpoint() {
    let (_src_dir, src) = embedded();
    let cast = ledger(&src, "cp-swap", 6);
    let c = chain(&src, &cast);
    let tip = c.tip().height;
    assert_eq!(tip, 6);
    // Heights 5 and 6 replaced by two empty blocks of sealer 1 on block 4: valid blocks,
    // correctly signed by an allowed sealer, of the same length.
    let (b4, b4_offset) = c.block_at(4).unwrap();
    let b4_sources = kchain_ledger::read_block(&src, &cast.genesis.topics.blocks, b4_offset)
        .unwrap()
        .header
        .sources;
    let sources = empty_sources(&b4_sources);
    let five = hand_block(&cast, 1, 5, b4, sources.clone(), vec![], |_| {});
    let six = hand_block(&cast, 1, 6, five.hash(), sources, vec![], |_| {});
    let (_dst_dir, dst) = embedded();
    copy_ledger(&src, &dst, &cast, |_, r| {
        r.truncate(5);
        for b in [&five, &six] {
            r.push(Record {
                value: Some(b.to_json()),
                ..Record::default()
            });
        }
    });
    let swapped = chain(&dst, &cast);
    assert_eq!(swapped.tip().height, 6);
    assert_eq!(swapped.block_at(6).unwrap().0, six.hash());

    let report = verify_with(&dst, &cast, &policy(&[], 0));
    let f = report.checkpoint_finding.as_ref().expect("a finding");
    assert_eq!(
        f.kind,
        CheckpointFindingKind::Rewritten,
        "{}",
        report.to_text()
    );
    // It points no later than the first replaced block, and at a block the checkpoint
    // covers.
    let h = f.height.unwrap();
    assert!(h <= 5, "{f}");
    assert_eq!(f.offset, h, "offsets are heights here");
    assert!(f.detail.contains(&format!("heights {h}..")), "{f}");
    assert_eq!(report.to_json()["finding"]["kind"], "checkpoint_rewritten");

    let mut events = Vec::new();
    match Node::open(
        &dst,
        options(&cast, Some(every(2))),
        Some((cast.sealer_key(0), seal_options(1))),
        &mut events,
    ) {
        Err(LedgerError::CheckpointRefused { detail, .. }) => {
            assert!(detail.contains("rewritten"), "{detail}")
        }
        other => panic!("the sealer must refuse, got {:?}", other.err()),
    }
}

#[test]
fn two_roots_signed_for_one_size_are_a_fork() {
    let (_dir, log) = embedded();
    let cast = ledger(&log, "cp-fork", 4);
    let newest = notes(&log, &cast)
        .into_iter()
        .map(|n| Checkpoint::parse(n.text()).unwrap())
        .max_by_key(|c| c.size())
        .unwrap();
    // The sealer's key signs another root for the same size (a sealer gone rogue).
    let rogue = NoteSigner::from_seed("sealer0", seed_of(&cast, 0)).unwrap();
    let other = Checkpoint::new(newest.origin(), newest.size(), [9; 32]).unwrap();
    publish_note(&log, &cast.genesis.topics.blocks, 0, &other.sign(&rogue)).unwrap();
    let report = verify_with(&log, &cast, &policy(&[], 0));
    let f = report.checkpoint_finding.expect("a fork");
    assert_eq!(f.kind, CheckpointFindingKind::Fork);
    assert_eq!(f.evidence.len(), 2);
}

#[test]
fn witnesses_cosign_the_ledgers_checkpoints_and_refuse_a_fork() {
    use kchain_topic::checkpoints::WitnessEvent;
    let (_dir, log) = embedded();
    let cast = ledger(&log, "cp-witness", 6);
    let (w1, w2) = (
        Cosigner::from_seed("w1.example", [41; 32]).unwrap(),
        Cosigner::from_seed("w2.example", [42; 32]).unwrap(),
    );
    let states = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pass = |w: &Cosigner, state: &std::path::Path| {
        kchain_ledger::witness_ledger_pass(
            &log,
            &cast.genesis.topics.blocks,
            w,
            state,
            DEFAULT_ORIGIN_NAMESPACE,
            1_750_000_000,
        )
        .unwrap()
    };
    let cosigned = |events: &[WitnessEvent]| {
        events
            .iter()
            .filter_map(|e| match e {
                WitnessEvent::Cosigned { size, .. } => Some(*size),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let sizes: Vec<u64> = {
        let mut v: Vec<u64> = notes(&log, &cast)
            .iter()
            .map(|n| Checkpoint::parse(n.text()).unwrap().size())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    assert!(sizes.len() >= 2, "{sizes:?}");
    assert_eq!(cosigned(&pass(&w1, states.0.path())), sizes);
    assert_eq!(cosigned(&pass(&w2, states.1.path())), sizes);
    assert_eq!(pass(&w1, states.0.path()), vec![], "idle when caught up");

    // Two cosignatures meet a policy of two; the newest is the whole chain.
    let report = verify_with(&log, &cast, &policy(&[&w1, &w2], 2));
    assert!(report.ok(), "{}", report.to_text());
    let (_, newest) = report
        .checkpoints
        .as_ref()
        .and_then(|c| c.newest.as_ref())
        .unwrap();
    assert_eq!(newest.checkpoint.size(), *sizes.last().unwrap());
    assert_eq!(newest.cosigners.len(), 2);

    // A rogue sealer signs another root for the newest size: the witness refuses, for ever.
    let rogue = NoteSigner::from_seed("sealer0", seed_of(&cast, 0)).unwrap();
    let other = Checkpoint::new(
        newest.checkpoint.origin(),
        newest.checkpoint.size(),
        [9; 32],
    )
    .unwrap();
    publish_note(&log, &cast.genesis.topics.blocks, 0, &other.sign(&rogue)).unwrap();
    let events = pass(&w1, states.0.path());
    assert!(
        matches!(
            &events[..],
            [WitnessEvent::Refused {
                refusal: kchain_core::WitnessRefusal::Fork { .. },
                ..
            }]
        ),
        "{events:?}"
    );
    // From then on every pass raises the alarm, and the witness cosigns nothing more.
    assert!(matches!(
        &pass(&w1, states.0.path())[..],
        [WitnessEvent::Alarm { .. }]
    ));
}

/// The seed of `support::key("sealer", i)`.
fn seed_of(_cast: &Cast, i: u64) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    seed[8..14].copy_from_slice(b"sealer");
    assert_eq!(
        WriterKey::from_seed("x", seed).public(),
        key("sealer", i).public()
    );
    seed
}

// ---------------------------------------------------------------------------------------
// Proofs.

/// A ledger of blocks of three transactions (a data record among them), sealed with
/// checkpoints; returns it and the id of the transfer in the middle of block 2.
fn proof_ledger(log: &dyn Log) -> (Cast, kchain_ledger::TxId) {
    let cast = Cast::new("cp-proof", 1, 4, 1000, 1);
    cast.init(log);
    let mut txs = Vec::new();
    for nonce in 1..=3u64 {
        txs.push(cast.transfer(0, cast.address(1), 10 * nonce, nonce));
        txs.push(cast.transfer(1, cast.address(2), 7, nonce));
        txs.push(Transaction::data(
            &cast.wallets[2],
            cast.genesis.chain_id(),
            serde_json::json!({"scan": nonce, "site": "dock-7"}),
        ));
    }
    submit(log, &cast.genesis, &txs).unwrap();
    let mut events = Vec::new();
    let mut node = Node::open(
        log,
        options(&cast, Some(every(1))),
        Some((cast.sealer_key(0), seal_options(3))),
        &mut events,
    )
    .unwrap();
    node.run(true, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    (cast, *txs[4].id())
}

fn genesis_trust(cast: &Cast) -> TxProofTrust {
    TxProofTrust {
        sealers: TrustedSealers::Genesis(Box::new(cast.genesis.clone())),
        checkpoints: policy(&[], 0),
    }
}

fn flip(hex: &str) -> String {
    let mut c: Vec<char> = hex.chars().collect();
    c[10] = if c[10] == '0' { '1' } else { '0' };
    c.into_iter().collect()
}

/// Sets the block's `hash` field to its header's hash (a forger who recomputes it).
fn rehash(v: &mut Value) {
    let b = kchain_ledger::StoredBlock::parse(&serde_json::to_vec(&v["block"]).unwrap()).unwrap();
    v["block"]["hash"] = kchain_core::to_hex(&b.hash).into();
}

#[test]
fn a_tx_proof_verifies_offline_and_every_mutation_is_rejected() {
    let (_dir, log) = embedded();
    let (cast, id) = proof_ledger(&log);
    let c = chain(&log, &cast);
    let topic = &cast.genesis.topics.blocks;
    let proof = prove_tx(&log, &c, topic, &id, "kchain").unwrap();
    assert_eq!(proof.index, 1, "the middle of its block");
    assert_eq!(proof.tx_proof.len(), 2, "three leaves: a path of two");
    assert!(!proof.block_proof.is_empty());

    // Offline: from the JSON alone.
    let text = proof.to_json();
    let back = TxProof::from_json(&text).unwrap();
    assert_eq!(back, proof);
    let trust = genesis_trust(&cast);
    let v = verify_tx_proof(&back, &trust).unwrap();
    assert_eq!(v.tx.id(), &id);
    assert_eq!(v.height, proof.height);
    assert_eq!(v.block_hash, c.block_at(proof.height).unwrap().0);
    assert_eq!(v.checkpoint.writers, vec!["sealer0".to_owned()]);

    // A trust file's [[ledger]] entry: its sealers, and the genesis hash or chain id the
    // proof must be of. The proof's own `sealers` list is never trusted.
    let genesis_hash = c.block_at(0).unwrap().0;
    let entry = |genesis: Option<kchain_core::Hash>,
                 chain_id: Option<kchain_core::ChainId>,
                 sealer: kchain_core::PublicKey| TxProofTrust {
        sealers: TrustedSealers::Ledgers(vec![TrustedLedger {
            chain: cast.genesis.chain.clone(),
            blocks_topic: topic.clone(),
            genesis,
            chain_id,
            sealers: vec![kchain_ledger::SealerInfo {
                name: "sealer0".into(),
                key: sealer,
            }],
        }]),
        checkpoints: policy(&[], 0),
    };
    let sealer = cast.sealers[0].public();
    verify_tx_proof(&proof, &entry(Some(genesis_hash), None, sealer)).unwrap();
    verify_tx_proof(&proof, &entry(None, Some(cast.genesis.chain_id()), sealer)).unwrap();
    assert!(matches!(
        verify_tx_proof(&proof, &entry(Some([7; 32]), None, sealer)).unwrap_err(),
        TxProofError::GenesisNotInCheckpoint { .. }
    ));
    assert!(matches!(
        verify_tx_proof(
            &proof,
            &entry(None, Some(kchain_core::ChainId([7; 16])), sealer)
        )
        .unwrap_err(),
        TxProofError::ChainMismatch { .. }
    ));
    let stranger = WriterKey::from_seed("x", [42; 32]);
    assert!(matches!(
        verify_tx_proof(&proof, &entry(Some(genesis_hash), None, stranger.public())).unwrap_err(),
        TxProofError::Policy(_)
    ));
    // An attacker listing its own key under the sealer's name gains nothing.
    let mut forged = proof.clone();
    forged.sealers[0].public_key = stranger.public().to_hex();
    verify_tx_proof(&forged, &entry(Some(genesis_hash), None, sealer)).unwrap();
    // A proof made before proofs carried the genesis path: re-made, or bound by chain id.
    let mut old = proof.clone();
    old.genesis_proof.clear();
    assert!(matches!(
        verify_tx_proof(&old, &entry(Some(genesis_hash), None, sealer)).unwrap_err(),
        TxProofError::GenesisNotInCheckpoint { .. }
    ));
    verify_tx_proof(&old, &entry(None, Some(cast.genesis.chain_id()), sealer)).unwrap();
    // A ledger the trust file does not name.
    let mut other = entry(Some(genesis_hash), None, sealer);
    if let TrustedSealers::Ledgers(l) = &mut other.sealers {
        l[0].blocks_topic = "elsewhere.blocks".into();
    }
    assert!(matches!(
        verify_tx_proof(&proof, &other).unwrap_err(),
        TxProofError::UnknownLedger { .. }
    ));
    // The trust-file form.
    let text = format!(
        "[[writer]]\nname = \"w\"\npublic_key = \"{}\"\n\n[[ledger]]\nchain = \"{}\"\n\
         genesis = \"{}\"\nsealers = [{{ name = \"sealer0\", public_key = \"{}\" }}]\n",
        stranger.public().to_hex(),
        cast.genesis.chain,
        kchain_core::to_hex(&genesis_hash),
        sealer.to_hex()
    );
    let parsed = TrustedLedger::from_trust_toml(&text).unwrap();
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].blocks_topic, *topic);
    assert_eq!(parsed[0].genesis, Some(genesis_hash));
    assert!(TrustedLedger::from_trust_toml(
        "[[ledger]]\nchain = \"x\"\nsealers = [{ name = \"s\", public_key = \"00\" }]\n"
    )
    .unwrap_err()
    .contains("genesis"));

    // Mutations, each with the error it must give.
    let older = notes(&log, &cast)
        .into_iter()
        .map(|n| (Checkpoint::parse(n.text()).unwrap(), n))
        .filter(|(cp, _)| cp.size() > proof.height)
        .min_by_key(|(cp, _)| cp.size())
        .unwrap();
    let newest_size = Checkpoint::parse(
        SignedNote::parse(proof.checkpoint.as_bytes())
            .unwrap()
            .text(),
    )
    .unwrap()
    .size();
    assert!(
        older.0.size() < newest_size,
        "an older checkpoint covers the block too"
    );
    let attacker = NoteSigner::from_seed("sealer0", [66; 32]).unwrap();
    type Mutate = Box<dyn Fn(&mut Value)>;
    type Expect = fn(&TxProofError) -> bool;
    let cases: Vec<(&str, Mutate, Expect)> = vec![
        (
            "the amount changed",
            Box::new(|v| v["tx"]["amount"] = 999.into()),
            |e| matches!(e, TxProofError::TxNotInBlock { .. }),
        ),
        (
            "the read offset changed",
            Box::new(|v| v["offset"] = (v["offset"].as_u64().unwrap() + 1).into()),
            |e| matches!(e, TxProofError::TxNotInBlock { .. }),
        ),
        (
            "the index changed",
            Box::new(|v| v["index"] = 0.into()),
            |e| matches!(e, TxProofError::TxNotInBlock { .. }),
        ),
        (
            "a tx path hash flipped",
            Box::new(|v| v["tx_proof"][0] = flip(v["tx_proof"][0].as_str().unwrap()).into()),
            |e| matches!(e, TxProofError::TxNotInBlock { .. }),
        ),
        (
            "the tx path truncated",
            Box::new(|v| {
                v["tx_proof"].as_array_mut().unwrap().pop();
            }),
            |e| matches!(e, TxProofError::TxNotInBlock { .. }),
        ),
        (
            "the items root flipped",
            Box::new(|v| {
                v["block"]["items_root"] = flip(v["block"]["items_root"].as_str().unwrap()).into()
            }),
            |e| matches!(e, TxProofError::BlockHashMismatch { .. }),
        ),
        (
            "the items root flipped and the hash recomputed",
            Box::new(|v| {
                v["block"]["items_root"] = flip(v["block"]["items_root"].as_str().unwrap()).into();
                rehash(v);
            }),
            |e| matches!(e, TxProofError::TxNotInBlock { .. }),
        ),
        (
            "the prev hash flipped",
            Box::new(|v| v["block"]["prev"] = flip(v["block"]["prev"].as_str().unwrap()).into()),
            |e| matches!(e, TxProofError::BlockHashMismatch { .. }),
        ),
        (
            "the block hash field flipped",
            Box::new(|v| v["block"]["hash"] = flip(v["block"]["hash"].as_str().unwrap()).into()),
            |e| matches!(e, TxProofError::BlockHashMismatch { .. }),
        ),
        (
            "the block hash field removed",
            Box::new(|v| {
                v["block"].as_object_mut().unwrap().remove("hash");
            }),
            |e| matches!(e, TxProofError::BlockHashMismatch { .. }),
        ),
        (
            "the timestamp changed and the hash recomputed",
            Box::new(|v| {
                v["block"]["timestamp"] = (v["block"]["timestamp"].as_i64().unwrap() + 1).into();
                rehash(v);
            }),
            |e| matches!(e, TxProofError::BlockNotInCheckpoint { .. }),
        ),
        (
            "the height changed",
            Box::new(|v| v["height"] = (v["height"].as_u64().unwrap() + 1).into()),
            |e| matches!(e, TxProofError::HeightMismatch { .. }),
        ),
        (
            "the height changed in the header too, hash recomputed",
            Box::new(|v| {
                let h = v["height"].as_u64().unwrap() - 1;
                v["height"] = h.into();
                v["block"]["height"] = h.into();
                rehash(v);
            }),
            |e| matches!(e, TxProofError::BlockNotInCheckpoint { .. }),
        ),
        (
            "a block path hash flipped",
            Box::new(|v| v["block_proof"][0] = flip(v["block_proof"][0].as_str().unwrap()).into()),
            |e| matches!(e, TxProofError::BlockNotInCheckpoint { .. }),
        ),
        (
            "the block path extended",
            Box::new(|v| {
                v["block_proof"]
                    .as_array_mut()
                    .unwrap()
                    .push(hex::encode([1u8; 32]).into())
            }),
            |e| matches!(e, TxProofError::BlockNotInCheckpoint { .. }),
        ),
        (
            "a hash that is not 64 hex digits",
            Box::new(|v| v["block_proof"][0] = "abc".into()),
            |e| {
                matches!(
                    e,
                    TxProofError::Malformed {
                        field: "block_proof",
                        ..
                    }
                )
            },
        ),
        (
            "the checkpoint swapped for an older one",
            Box::new(move |v| v["checkpoint"] = older.1.to_text().into()),
            |e| matches!(e, TxProofError::BlockNotInCheckpoint { .. }),
        ),
        (
            "the checkpoint's size edited under its signature",
            Box::new(|v| {
                let text = v["checkpoint"].as_str().unwrap().to_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let bigger = (lines[1].parse::<u64>().unwrap() + 1).to_string();
                lines[1] = &bigger;
                v["checkpoint"] = lines.join("\n").into();
            }),
            |e| matches!(e, TxProofError::Policy(_)),
        ),
        (
            "the checkpoint re-signed by a key not in the genesis",
            Box::new(move |v| {
                let note = SignedNote::parse(v["checkpoint"].as_str().unwrap().as_bytes()).unwrap();
                let mut forged = SignedNote::new(note.text()).unwrap();
                forged.sign(&attacker);
                v["checkpoint"] = forged.to_text().into();
            }),
            |e| matches!(e, TxProofError::Policy(_)),
        ),
        (
            "the checkpoint of another origin",
            Box::new(|v| {
                let note = SignedNote::parse(v["checkpoint"].as_str().unwrap().as_bytes()).unwrap();
                let cp = Checkpoint::parse(note.text()).unwrap();
                let other =
                    Checkpoint::new("kchain/elsewhere.blocks", cp.size(), *cp.root()).unwrap();
                let signer = NoteSigner::from_seed("sealer0", seed_of_sealer0()).unwrap();
                v["checkpoint"] = other.sign(&signer).to_text().into();
            }),
            |e| matches!(e, TxProofError::Policy(_)),
        ),
        (
            "the format changed",
            Box::new(|v| v["format"] = "kchain-inclusion-proof/v1".into()),
            |e| matches!(e, TxProofError::UnsupportedFormat { .. }),
        ),
    ];
    let original = serde_json::to_value(&proof).unwrap();
    for (name, mutate, expect) in &cases {
        let mut v = original.clone();
        mutate(&mut v);
        assert_ne!(v, original, "{name}: the mutation changed nothing");
        let mutated: TxProof = serde_json::from_value(v).unwrap();
        let got = verify_tx_proof(&mutated, &trust);
        match got {
            Err(e) => assert!(expect(&e), "{name}: unexpected error {e}"),
            Ok(_) => panic!("{name}: the mutated proof verified"),
        }
    }

    // Every hash in the file, one bit flipped: never verifies.
    let mut flips = 0;
    for (field, n) in [
        ("tx_proof", proof.tx_proof.len()),
        ("block_proof", proof.block_proof.len()),
    ] {
        for i in 0..n {
            let mut v = original.clone();
            v[field][i] = flip(v[field][i].as_str().unwrap()).into();
            assert!(verify_tx_proof(&serde_json::from_value(v).unwrap(), &trust).is_err());
            flips += 1;
        }
    }
    let sig = verify_tx_proof(
        &serde_json::from_value({
            let mut v = original.clone();
            v["block"]["signature"] = flip(v["block"]["signature"].as_str().unwrap()).into();
            v
        })
        .unwrap(),
        &trust,
    );
    assert!(
        matches!(sig, Err(TxProofError::BadBlockSignature { .. })),
        "{sig:?}"
    );
    for field in ["prev", "items_root", "hash", "chain", "signature"] {
        let mut v = original.clone();
        v["block"][field] = flip(v["block"][field].as_str().unwrap()).into();
        assert!(
            verify_tx_proof(&serde_json::from_value(v).unwrap(), &trust).is_err(),
            "{field}"
        );
        flips += 1;
    }
    assert!(flips >= 8);

    // A witness policy the checkpoint does not meet, then does.
    let w1 = Cosigner::from_seed("w1.example", [7; 32]).unwrap();
    let strict = TxProofTrust {
        checkpoints: policy(&[&w1], 1),
        ..genesis_trust(&cast)
    };
    assert!(matches!(
        verify_tx_proof(&proof, &strict),
        Err(TxProofError::Policy(_))
    ));
    cosign_newest(&log, &cast, &w1);
    let cosigned = prove_tx(&log, &c, topic, &id, "kchain").unwrap();
    assert_eq!(
        verify_tx_proof(&cosigned, &strict)
            .unwrap()
            .checkpoint
            .cosigners
            .len(),
        1
    );
}

fn seed_of_sealer0() -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[8..14].copy_from_slice(b"sealer");
    seed
}

#[test]
fn no_proof_before_a_checkpoint_covers_the_block() {
    let (_dir, log) = embedded();
    let cast = Cast::new("cp-none", 1, 2, 1000, 1);
    cast.init(&log);
    let tx = cast.transfer(0, cast.address(1), 5, 1);
    submit(&log, &cast.genesis, std::slice::from_ref(&tx)).unwrap();
    seal(&log, &cast, 0, None);
    let c = chain(&log, &cast);
    let err = prove_tx(&log, &c, &cast.genesis.topics.blocks, tx.id(), "kchain").unwrap_err();
    assert!(err.to_string().contains("no checkpoint"), "{err}");
}

// ---------------------------------------------------------------------------------------
// One scenario on both backends.

/// A sealer publishes checkpoints; a policy verifies the ledger clean; a transaction's proof
/// holds offline; the ledger copied into an embedded log with its last blocks dropped
/// contradicts the newest checkpoint.
fn checkpoints_end_to_end(log: &dyn Log, name: &str) {
    let cast = ledger(log, name, 6);
    let c = chain(log, &cast);
    let len = c.tip().height + 1;
    let report = verify_with(log, &cast, &policy(&[], 0));
    assert!(report.ok(), "{}", report.to_text());
    let (_, newest) = report
        .checkpoints
        .as_ref()
        .unwrap()
        .newest
        .as_ref()
        .unwrap();
    assert_eq!(newest.checkpoint.size(), len);

    let sealed = kchain_ledger::canonical_blocks(log, &c, 3, 1).unwrap();
    let id = *sealed[0].1.body.as_ref().unwrap()[0].tx.id();
    let proof = prove_tx(log, &c, &cast.genesis.topics.blocks, &id, "kchain").unwrap();
    let proof = TxProof::from_json(&proof.to_json()).unwrap();
    assert_eq!(
        verify_tx_proof(&proof, &genesis_trust(&cast))
            .unwrap()
            .height,
        3
    );

    let (_dir, cut) = embedded();
    copy_ledger(log, &cut, &cast, |_, r| {
        r.pop();
    });
    let report = verify_with(&cut, &cast, &policy(&[], 0));
    let f = report.checkpoint_finding.expect("truncation is a finding");
    assert_eq!(
        (f.kind, f.offset),
        (CheckpointFindingKind::Truncated, len - 1)
    );
}

#[test]
fn checkpoints_publish_verify_prove_and_catch_truncation() {
    let (_dir, log) = embedded();
    checkpoints_end_to_end(&log, "cp-e2e");
}

/// The same on a Kafka-API broker: this test binary's private tansu.
#[cfg(feature = "kafka")]
mod on_kafka {
    use kchain_testkit::Broker;

    #[test]
    fn kafka_checkpoints_publish_verify_prove_and_catch_truncation() {
        let log = kchain_log::KafkaLog::connect(
            &Broker::shared().brokers,
            kchain_log::KafkaOptions::default(),
        )
        .unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("cp-kafka-{}-{nanos}", std::process::id());
        super::checkpoints_end_to_end(&log, &name);
    }
}

#[test]
fn a_sealer_that_remembers_refuses_after_its_checkpoints_were_deleted_too() {
    let (_src_dir, src) = embedded();
    let memory = tempfile::tempdir().unwrap();
    let remembering = CheckpointOptions {
        store: Some(kchain_topic::files::CheckpointStore::new(memory.path())),
        backend: "embedded:/ledger".to_owned(),
        ..every(2)
    };
    let cast = Cast::new("cp-memory", 2, 4, 1000, 2);
    cast.init(&src);
    let txs: Vec<Transaction> = (0..6)
        .map(|i| cast.transfer(i % 4, cast.address((i + 1) % 4), 1, 1 + i as u64 / 4))
        .collect();
    submit(&src, &cast.genesis, &txs).unwrap();
    seal(&src, &cast, 0, Some(remembering.clone()));
    let signed = checkpoint_sizes(&seal(&src, &cast, 0, Some(remembering.clone())));
    assert!(signed.is_empty(), "nothing new to sign: {signed:?}");

    // The last two blocks dropped, and the checkpoints topic (the sealer's only memory
    // before) not copied: the log shows no checkpoint at all.
    let (_dst_dir, dst) = embedded();
    let t = &cast.genesis.topics;
    copy_topic_with(&src, &dst, &t.blocks, |_, r| r.truncate(r.len() - 2)).unwrap();
    for topic in [&t.transactions, &t.rejected] {
        copy_topic_with(&src, &dst, topic, |_, _| {}).unwrap();
    }
    let mut events = Vec::new();
    match Node::open(
        &dst,
        options(&cast, Some(remembering)),
        Some((cast.sealer_key(0), seal_options(1))),
        &mut events,
    ) {
        Err(LedgerError::CheckpointRefused { detail, .. }) => {
            assert!(detail.contains("truncated"), "{detail}");
            assert!(
                detail.contains("remembered in"),
                "names its evidence: {detail}"
            );
        }
        other => panic!("the sealer must refuse, got {:?}", other.err()),
    }
    // Without its memory the same sealer would have signed on over the cut chain.
    Node::open(
        &dst,
        options(&cast, Some(every(2))),
        Some((cast.sealer_key(0), seal_options(1))),
        &mut events,
    )
    .unwrap();
}
