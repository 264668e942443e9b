//! Consensus by log order: racing sealers make one chain; stale and invalid blocks are ignored
//! by every node alike; proof of work.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kchain_ledger::{
    leading_zero_bits, replay, state_digest, submit, verify_ledger, Event, IgnoreReason,
    InvalidBlock, LedgerReport, Node, RejectReason, SealedTx, SourceRange, Transaction, TxId,
    VerifyOptions,
};
use kchain_log::Log;
use support::*;

fn verify(log: &dyn Log, cast: &Cast) -> LedgerReport {
    verify_ledger(
        log,
        &cast.genesis.topics.blocks,
        &VerifyOptions::default(),
        &|_| {},
    )
    .unwrap()
}

/// Every sealed transaction id of the canonical chain, in order.
fn sealed_ids(log: &dyn Log, cast: &Cast) -> Vec<TxId> {
    let r = replay(log, &cast.genesis.topics.blocks, None).unwrap();
    assert!(r.finding.is_none(), "{:?}", r.finding);
    let blocks = kchain_ledger::canonical_blocks(log, &r.chain, 1, usize::MAX).unwrap();
    blocks
        .into_iter()
        .flat_map(|(_, b)| b.body.unwrap())
        .map(|s| *s.tx.id())
        .collect()
}

/// Three sealer nodes race (threads) while a client submits `per_wallet` transfers from each
/// of `wallets` wallets and some data records.
fn three_sealers_race(log: &dyn Log, cast: &Cast, per_wallet: u64) {
    let n = cast.wallets.len();
    let mut txs: Vec<Transaction> = Vec::new();
    for nonce in 1..=per_wallet {
        for w in 0..n {
            let to = cast.address((w + nonce as usize) % n);
            txs.push(cast.transfer(w, to, 1 + (nonce % 7), nonce));
        }
    }
    for i in 0..(n as u64 * 2) {
        let w = (i as usize) % n;
        txs.push(Transaction::data(
            &cast.wallets[w],
            cast.genesis.chain_id(),
            serde_json::json!({"scan": i, "site": format!("dock-{}", i % 5)}),
        ));
    }
    let submitted = AtomicBool::new(false);
    let stats = std::thread::scope(|s| {
        let sealers: Vec<_> = (0..3)
            .map(|i| {
                let submitted = &submitted;
                s.spawn(move || {
                    let mut events = Vec::new();
                    let mut node = Node::open(
                        log,
                        cast.node_options(),
                        Some((cast.sealer_key(i), seal_options(40 + 10 * i))),
                        &mut events,
                    )
                    .unwrap();
                    let deadline = Instant::now() + Duration::from_secs(300);
                    loop {
                        assert!(Instant::now() < deadline, "sealer {i} did not finish");
                        if !node.step(&mut events).unwrap() {
                            if submitted.load(Ordering::SeqCst) && node.caught_up().unwrap() {
                                break;
                            }
                            node.follow(Duration::from_millis(2), &mut events).unwrap();
                        }
                    }
                    node.stats().clone()
                })
            })
            .collect();
        for chunk in txs.chunks(97) {
            submit(log, &cast.genesis, chunk).unwrap();
        }
        submitted.store(true, Ordering::SeqCst);
        sealers
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let ids = sealed_ids(log, cast);
    let unique: HashSet<TxId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a transaction was sealed twice");
    let want: HashSet<TxId> = txs.iter().map(|t| *t.id()).collect();
    assert!(
        unique == want,
        "{} valid transactions not sealed, {} sealed that were not submitted",
        want.difference(&unique).count(),
        unique.difference(&want).count()
    );
    let report = verify(log, cast);
    assert!(report.ok(), "{}", report.to_text());
    let won: u64 = stats.iter().map(|s| s.won).sum();
    let lost: u64 = stats.iter().map(|s| s.lost).sum();
    assert_eq!(
        won, report.height,
        "every canonical block was won by one sealer"
    );
    let stale = report
        .ignored
        .iter()
        .filter(|i| matches!(i.reason, IgnoreReason::Stale { .. }))
        .count() as u64;
    assert_eq!(stale, lost, "every lost race is a stale block");
    eprintln!(
        "{} txs in {} blocks; races lost: {lost}; per sealer (won, lost, abandoned): {:?}",
        ids.len(),
        report.height,
        stats
            .iter()
            .map(|s| (s.won, s.lost, s.abandoned))
            .collect::<Vec<_>>()
    );
    let r = replay(log, &cast.genesis.topics.blocks, None).unwrap();
    let total: u128 = cast.genesis.balances.values().map(|v| u128::from(*v)).sum();
    assert_eq!(
        r.chain.state().total(),
        total + u128::from(report.height * cast.genesis.reward)
    );
}

#[test]
fn three_sealers_racing_seal_every_valid_transaction_exactly_once() {
    let (_dir, log) = embedded();
    let cast = Cast::new("race", 3, 40, 1_000_000, 4);
    cast.init(&log);
    three_sealers_race(&log, &cast, 100);
}

/// Seals a few transfers with sealer 0; returns the replayed chain.
fn first_blocks(log: &dyn Log, cast: &Cast) -> kchain_ledger::Chain {
    let txs: Vec<Transaction> = (0..4)
        .map(|w| cast.transfer(w, cast.address(w + 1), 10, 1))
        .collect();
    submit(log, &cast.genesis, &txs).unwrap();
    seal_until_idle(log, cast, 0, 100);
    replay(log, &cast.genesis.topics.blocks, None)
        .unwrap()
        .chain
}

#[test]
fn a_stale_block_appended_by_a_racing_sealer_is_ignored() {
    let (_dir, log) = embedded();
    let cast = Cast::new("stale", 2, 8, 1000, 2);
    cast.init(&log);
    let chain = first_blocks(&log, &cast);
    assert!(chain.tip().height >= 1);
    let genesis = chain.block_at(0).unwrap();
    // Sealer 1 built on genesis too, and appends after sealer 0 won height 1.
    let late = hand_block(
        &cast,
        1,
        1,
        genesis.0,
        empty_sources(&open_sources(&cast)),
        vec![],
        |_| {},
    );
    let late_offset = append_block_record(&log, &cast, late.to_json());
    // And the winning block is appended a second time (a retried append).
    let (_, first_offset) = chain.block_at(1).unwrap();
    let dup = values(&log, &cast.genesis.topics.blocks, 0)[first_offset as usize].clone();
    let dup_offset = append_block_record(&log, &cast, dup);
    let report = verify(&log, &cast);
    assert!(report.ok(), "{}", report.to_text());
    assert_eq!(report.height, chain.tip().height);
    let reasons: Vec<(u64, &IgnoreReason)> = report
        .ignored
        .iter()
        .map(|i| (i.offset, &i.reason))
        .collect();
    assert!(reasons.contains(&(late_offset, &IgnoreReason::Stale { parent_height: 0 })));
    assert!(reasons.contains(&(dup_offset, &IgnoreReason::Stale { parent_height: 0 })));
    // The ledger goes on after them.
    submit(
        &log,
        &cast.genesis,
        &[cast.transfer(5, cast.address(6), 1, 1)],
    )
    .unwrap();
    seal_until_idle(&log, &cast, 1, 100);
    let report = verify(&log, &cast);
    assert!(
        report.ok() && report.height > chain.tip().height,
        "{}",
        report.to_text()
    );
}

/// The genesis source ranges (every partition from 0).
fn open_sources(cast: &Cast) -> Vec<SourceRange> {
    (0..cast.genesis.transaction_partitions)
        .map(|partition| SourceRange {
            partition,
            from: 0,
            to: 0,
        })
        .collect()
}

#[test]
fn invalid_blocks_appended_by_an_allowed_sealer_are_ignored_by_every_node() {
    let (_dir, log) = embedded();
    let mut cast = Cast::new("invalid", 2, 4, 100, 1);
    cast.genesis.difficulty = 6;
    cast.init(&log);
    // A real transaction in partition 0 at offset 0, sealed properly.
    let good = cast.transfer(0, cast.address(1), 10, 1);
    submit(&log, &cast.genesis, std::slice::from_ref(&good)).unwrap();
    seal_until_idle(&log, &cast, 0, 100);
    let chain = replay(&log, &cast.genesis.topics.blocks, None)
        .unwrap()
        .chain;
    assert_eq!(chain.tip().height, 1);
    let (b1, _) = chain.block_at(1).unwrap();
    assert!(
        leading_zero_bits(&b1) >= 6,
        "the sealer solved the proof of work"
    );
    // Four more transactions, in partition 0 at offsets 1..5.
    let more = vec![
        cast.transfer(2, cast.address(3), 1000, 1), // overdraft
        cast.transfer(1, cast.address(3), 1, 1),
        cast.transfer(3, cast.address(0), 1, 5), // wrong nonce
        cast.transfer(1, cast.address(3), 1, 2),
    ];
    submit(&log, &cast.genesis, &more).unwrap();
    let tip = chain.tip().clone();
    let sealed = |tx: &Transaction, offset| SealedTx {
        tx: tx.clone(),
        partition: 0,
        offset,
    };
    let range = |from, to| {
        vec![SourceRange {
            partition: 0,
            from,
            to,
        }]
    };
    let mut forged_sig = cast.transfer(1, cast.address(3), 1, 1);
    forged_sig = {
        let mut v = forged_sig.to_json_value();
        v["amount"] = serde_json::json!(2);
        Transaction::from_json_value(&v).unwrap()
    };
    let b = |txs: Vec<SealedTx>, sources, edit: &dyn Fn(&mut kchain_ledger::BlockHeader)| {
        hand_block(&cast, 1, 2, tip.hash, sources, txs, |h| edit(h))
    };
    type Check = fn(&InvalidBlock) -> bool;
    let cases: Vec<(&str, kchain_ledger::Block, Check)> = vec![
        (
            "overdraft",
            b(vec![sealed(&more[0], 1)], range(1, 2), &|_| {}),
            |w| {
                matches!(
                    w,
                    InvalidBlock::Tx {
                        reason: RejectReason::Overdraft { .. },
                        ..
                    }
                )
            },
        ),
        (
            "replayed",
            b(vec![sealed(&good, 1)], range(1, 2), &|_| {}),
            |w| {
                matches!(
                    w,
                    InvalidBlock::Tx {
                        reason: RejectReason::Duplicate { .. },
                        ..
                    }
                )
            },
        ),
        (
            "wrong nonce",
            b(vec![sealed(&more[2], 3)], range(1, 4), &|_| {}),
            |w| {
                matches!(
                    w,
                    InvalidBlock::Tx {
                        reason: RejectReason::WrongNonce { .. },
                        ..
                    }
                )
            },
        ),
        (
            "bad tx signature",
            b(vec![sealed(&forged_sig, 2)], range(1, 3), &|_| {}),
            |w| {
                matches!(
                    w,
                    InvalidBlock::Tx {
                        reason: RejectReason::BadSignature,
                        ..
                    }
                )
            },
        ),
        ("reward", b(vec![], range(1, 1), &|h| h.reward = 50), |w| {
            matches!(w, InvalidBlock::Reward { .. })
        }),
        ("gap in the sources", b(vec![], range(2, 2), &|_| {}), |w| {
            matches!(w, InvalidBlock::Sources(_))
        }),
        (
            "tx outside the sources",
            b(vec![sealed(&more[1], 2)], range(1, 2), &|_| {}),
            |w| matches!(w, InvalidBlock::Sources(_)),
        ),
        ("height", b(vec![], range(1, 1), &|h| h.height = 3), |w| {
            matches!(w, InvalidBlock::Height { .. })
        }),
    ];
    let mut expected = Vec::new();
    for (name, block, _) in &cases {
        expected.push((name, append_block_record(&log, &cast, block.to_json())));
    }
    // Insufficient proof of work: signed as is, with a nonce that does not solve it.
    let mut header = hand_block(&cast, 1, 2, tip.hash, range(1, 1), vec![], |_| {}).header;
    header.nonce = (0..)
        .find(|n| {
            let mut h = header.clone();
            h.nonce = *n;
            leading_zero_bits(&h.hash()) < 6
        })
        .unwrap();
    let unsolved = sign_as_is(header, vec![], &cast.sealer_key(1));
    let unsolved_offset = append_block_record(&log, &cast, unsolved.to_json());

    let report = verify(&log, &cast);
    assert!(report.ok(), "{}", report.to_text());
    assert_eq!(report.height, 1, "no invalid block became canonical");
    for ((name, offset), (_, _, check)) in expected.iter().zip(&cases) {
        let got = report.ignored.iter().find(|i| i.offset == *offset).unwrap();
        match &got.reason {
            IgnoreReason::Invalid(why) => assert!(check(why), "{name}: {why}"),
            other => panic!("{name}: ignored as {other}"),
        }
    }
    let pow = report
        .ignored
        .iter()
        .find(|i| i.offset == unsolved_offset)
        .unwrap();
    assert!(
        matches!(
            pow.reason,
            IgnoreReason::Invalid(InvalidBlock::ProofOfWork { .. })
        ),
        "{}",
        pow.reason
    );
    // Every node reaches the same state; a valid sealer then goes on from the true tip.
    let a = replay(&log, &cast.genesis.topics.blocks, None).unwrap();
    let b2 = replay(&log, &cast.genesis.topics.blocks, None).unwrap();
    assert_eq!(state_digest(&a.chain), state_digest(&b2.chain));
    let events = seal_until_idle(&log, &cast, 0, 100);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Canonical { height: 2, .. })));
    let r = replay(&log, &cast.genesis.topics.blocks, None).unwrap();
    assert!(r.finding.is_none());
    let state = r.chain.state();
    assert_eq!(state.sealed_at(more[1].id()), Some(2));
    assert_eq!(state.sealed_at(more[3].id()), Some(2));
    assert_eq!(
        state.sealed_at(more[0].id()),
        None,
        "the overdraft is rejected"
    );
    assert_eq!(state.balance(&cast.address(2)), 100);
}
