//! Push mode on a sealer: its checkpoints go to witnesses (in memory, behind the same
//! `RemoteWitness` trait as the HTTP client) and are published with their cosignatures, so
//! `ledger verify` with a witness policy trusts them; a witness that was down catches up
//! from its old size; a hanging witness does not hold the node.

mod support;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kchain_core::{CheckpointTrust, Cosigner, Witness, DEFAULT_ORIGIN_NAMESPACE};
use kchain_ledger::{
    sealer_verifiers, submit, verify_ledger, CheckpointOptions, Event, Node, NodeOptions,
    Transaction, VerifyOptions,
};
use kchain_log::Log;
use kchain_topic::checkpoints::{Behaviour, MemoryWitness, PushOptions, PushWitness};
use support::*;

fn witnesses(cast: &Cast) -> (Vec<Arc<MemoryWitness>>, Vec<Cosigner>) {
    let cosigners: Vec<Cosigner> = (0..2u8)
        .map(|i| Cosigner::from_seed(&format!("w{i}.example"), [60 + i; 32]).unwrap())
        .collect();
    let ws = cosigners
        .iter()
        .map(|c| {
            let w = Witness::new(c.clone(), sealer_verifiers(&cast.genesis));
            Arc::new(MemoryWitness::new(c.name(), w))
        })
        .collect();
    (ws, cosigners)
}

fn options(ws: &[Arc<MemoryWitness>], cs: &[Cosigner], wait: Duration) -> CheckpointOptions {
    let push = ws
        .iter()
        .zip(cs)
        .map(|(w, c)| PushWitness {
            witness: w.clone(),
            key: c.verifier(),
        })
        .collect();
    CheckpointOptions {
        every_blocks: 2,
        every: Duration::ZERO,
        push: Some(PushOptions::new(push, wait)),
        ..CheckpointOptions::default()
    }
}

fn txs(cast: &Cast, from: u64, n: u64) -> Vec<Transaction> {
    (from..from + n)
        .map(|i| {
            let to = cast.address(((i + 1) % 4) as usize);
            cast.transfer((i % 4) as usize, to, 1 + i, 1 + i / 4)
        })
        .collect()
}

/// Runs sealer 0 until idle; returns the sizes of the checkpoints it published.
fn seal(log: &dyn Log, cast: &Cast, checkpoints: CheckpointOptions) -> Vec<u64> {
    let mut events = Vec::new();
    let opts = NodeOptions {
        checkpoints: Some(checkpoints),
        ..cast.node_options()
    };
    let mut node = Node::open(
        log,
        opts,
        Some((cast.sealer_key(0), seal_options(1))),
        &mut events,
    )
    .unwrap();
    node.run(true, &AtomicBool::new(false), &mut |e| {
        events.push(e.clone())
    })
    .unwrap();
    events
        .iter()
        .filter_map(|e| match e {
            Event::Checkpoint { size, .. } => Some(*size),
            _ => None,
        })
        .collect()
}

/// The size of the newest checkpoint `ledger verify` trusts with `cosigner` required.
fn trusted_size(log: &dyn Log, cast: &Cast, cosigner: &Cosigner) -> Option<u64> {
    let trust = CheckpointTrust {
        witnesses: vec![cosigner.verifier()],
        threshold: 1,
        namespace: DEFAULT_ORIGIN_NAMESPACE.to_owned(),
        endpoints: Vec::new(),
        max_age: None,
    };
    let opts = VerifyOptions {
        checkpoints: Some(trust),
        ..VerifyOptions::default()
    };
    let report = verify_ledger(log, &cast.genesis.topics.blocks, &opts, &|_| {}).unwrap();
    assert!(report.ok(), "{}", report.to_text());
    let status = report.checkpoints.as_ref().unwrap();
    status.newest.as_ref().map(|(_, n)| n.checkpoint.size())
}

#[test]
fn a_sealers_checkpoints_carry_cosignatures_and_a_witness_down_catches_up() {
    let (_dir, log) = embedded();
    let cast = Cast::new("push-ledger", 2, 4, 1000, 2);
    cast.init(&log);
    let (ws, cs) = witnesses(&cast);
    ws[1].set(Behaviour::Down);
    submit(&log, &cast.genesis, &txs(&cast, 0, 6)).unwrap();
    let sizes = seal(&log, &cast, options(&ws, &cs, Duration::from_secs(5)));
    let len = *sizes.iter().max().unwrap();
    assert_eq!(trusted_size(&log, &cast, &cs[0]), Some(len));
    assert_eq!(trusted_size(&log, &cast, &cs[1]), None, "w1 was down");

    // w1 cosigns the first checkpoint it sees (nothing to prove from), then goes down
    // again while the sealer moves on; back up, it is asked from its old size, which the
    // sealer proves from its chain.
    ws[1].set(Behaviour::Up);
    submit(&log, &cast.genesis, &txs(&cast, 6, 2)).unwrap();
    seal(&log, &cast, options(&ws, &cs, Duration::from_secs(5)));
    let old = trusted_size(&log, &cast, &cs[1]).unwrap();
    ws[1].set(Behaviour::Down);
    submit(&log, &cast.genesis, &txs(&cast, 8, 6)).unwrap();
    seal(&log, &cast, options(&ws, &cs, Duration::from_secs(5)));
    ws[1].set(Behaviour::Up);
    submit(&log, &cast.genesis, &txs(&cast, 14, 6)).unwrap();
    let sizes = seal(&log, &cast, options(&ws, &cs, Duration::from_secs(5)));
    let len = *sizes.iter().max().unwrap();
    assert!(
        ws[1].proofs_from().contains(&old),
        "{:?}",
        ws[1].proofs_from()
    );
    assert_eq!(trusted_size(&log, &cast, &cs[1]), Some(len));
    assert_eq!(trusted_size(&log, &cast, &cs[0]), Some(len));
}

#[test]
fn a_hanging_witness_does_not_hold_the_sealer() {
    let (_dir, log) = embedded();
    let cast = Cast::new("push-ledger-hang", 2, 4, 1000, 2);
    cast.init(&log);
    let (ws, cs) = witnesses(&cast);
    ws[0].set(Behaviour::Hang(Duration::from_secs(5)));
    submit(&log, &cast.genesis, &txs(&cast, 0, 8)).unwrap();
    let start = Instant::now();
    let sizes = seal(&log, &cast, options(&ws, &cs, Duration::from_millis(300)));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // Every checkpoint was published, the last with w1's cosignature alone at most.
    assert!(!sizes.is_empty());
    assert_eq!(trusted_size(&log, &cast, &cs[0]), None);
}
