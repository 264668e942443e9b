//! The behaviour scenarios, each on any `&dyn Log`: the embedded tests and `tests/kafka.rs`
//! run the same code. Ledger names are parameters, so that tests on one broker do not meet.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kchain_core::ChainId;
use kchain_ledger::{
    canonical_blocks, leading_zero_bits, next_nonce, replay, snapshot_file, state_digest, submit,
    submit_raw, tx_status, verify_ledger, Event, IgnoreReason, InvalidBlock, LedgerReport, Node,
    NodeOptions, RejectReason, RejectionRecord, SealedTx, SourceRange, Transaction, TxId, TxStatus,
    VerifyOptions,
};
use kchain_log::Log;
use serde_json::json;

use super::*;

pub fn verify(log: &dyn Log, cast: &Cast) -> LedgerReport {
    verify_ledger(
        log,
        &cast.genesis.topics.blocks,
        &VerifyOptions::default(),
        &|_| {},
    )
    .unwrap()
}

/// Every sealed transaction id of the canonical chain, in order.
pub fn sealed_ids(log: &dyn Log, cast: &Cast) -> Vec<TxId> {
    let r = replay(log, &cast.genesis.topics.blocks, None).unwrap();
    assert!(r.finding.is_none(), "{:?}", r.finding);
    let blocks = kchain_ledger::canonical_blocks(log, &r.chain, 1, usize::MAX).unwrap();
    blocks
        .into_iter()
        .flat_map(|(_, b)| b.body.unwrap())
        .map(|s| *s.tx.id())
        .collect()
}

/// Three sealer nodes race (threads, each on its own log handle as on its own machine: on
/// Kafka a handle allows one appender per partition) while a client submits `per_wallet` transfers from each
/// of `wallets` wallets and some data records.
pub fn three_sealers_race(log: &dyn Log, sealer_logs: [&dyn Log; 3], cast: &Cast, per_wallet: u64) {
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
                        sealer_logs[i],
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

/// Seals a few transfers with sealer 0; returns the replayed chain.
pub fn first_blocks(log: &dyn Log, cast: &Cast) -> kchain_ledger::Chain {
    let txs: Vec<Transaction> = (0..4)
        .map(|w| cast.transfer(w, cast.address(w + 1), 10, 1))
        .collect();
    submit(log, &cast.genesis, &txs).unwrap();
    seal_until_idle(log, cast, 0, 100);
    replay(log, &cast.genesis.topics.blocks, None)
        .unwrap()
        .chain
}

/// A stale block (built on an old tip) and a retried append are ignored; sealing goes on.
pub fn stale_blocks_are_ignored(log: &dyn Log, chain_name: &str) {
    let cast = Cast::new(chain_name, 2, 8, 1000, 2);
    cast.init(log);
    let chain = first_blocks(log, &cast);
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
    let late_offset = append_block_record(log, &cast, late.to_json());
    // And the winning block is appended a second time (a retried append).
    let (_, first_offset) = chain.block_at(1).unwrap();
    let dup = values(log, &cast.genesis.topics.blocks, 0)[first_offset as usize].clone();
    let dup_offset = append_block_record(log, &cast, dup);
    let report = verify(log, &cast);
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
        log,
        &cast.genesis,
        &[cast.transfer(5, cast.address(6), 1, 1)],
    )
    .unwrap();
    seal_until_idle(log, &cast, 1, 100);
    let report = verify(log, &cast);
    assert!(
        report.ok() && report.height > chain.tip().height,
        "{}",
        report.to_text()
    );
}

/// The genesis source ranges (every partition from 0).
pub fn open_sources(cast: &Cast) -> Vec<SourceRange> {
    (0..cast.genesis.transaction_partitions)
        .map(|partition| SourceRange {
            partition,
            from: 0,
            to: 0,
        })
        .collect()
}

/// Blocks appended by an allowed sealer that break a rule (overdraft, replayed tx, wrong nonce,
/// bad tx signature, reward, sources, height, insufficient proof of work, bad sealer
/// signature, wrong items root) are ignored by every node; a valid sealer goes on from the
/// true tip.
pub fn invalid_blocks_are_ignored(log: &dyn Log, chain_name: &str) {
    let mut cast = Cast::new(chain_name, 2, 4, 100, 1);
    cast.genesis.difficulty = 6;
    cast.init(log);
    // A real transaction in partition 0 at offset 0, sealed properly.
    let good = cast.transfer(0, cast.address(1), 10, 1);
    submit(log, &cast.genesis, std::slice::from_ref(&good)).unwrap();
    seal_until_idle(log, &cast, 0, 100);
    let chain = replay(log, &cast.genesis.topics.blocks, None)
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
    submit(log, &cast.genesis, &more).unwrap();
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
        expected.push((name, append_block_record(log, &cast, block.to_json())));
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
    let unsolved_offset = append_block_record(log, &cast, unsolved.to_json());
    // A bad sealer signature (an allowed sealer named, another key signing), and an items
    // root that does not match the transactions, signed by the allowed sealer.
    let impostor = key("impostor", 77);
    let forged_block = sign_as_is(
        b(vec![sealed(&more[1], 2)], range(1, 3), &|_| {}).header,
        vec![sealed(&more[1], 2)],
        &impostor,
    );
    let forged_offset = append_block_record(log, &cast, forged_block.to_json());
    let mut root_header = b(vec![sealed(&more[1], 2)], range(1, 3), &|_| {}).header;
    root_header.items_root = [9; 32];
    let wrong_root = sign_as_is(root_header, vec![sealed(&more[1], 2)], &cast.sealer_key(1));
    let root_offset = append_block_record(log, &cast, wrong_root.to_json());

    let report = verify(log, &cast);
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
    for (offset, code) in [
        (forged_offset, "bad_signature"),
        (root_offset, "body_mismatch"),
    ] {
        let got = report.ignored.iter().find(|i| i.offset == offset).unwrap();
        assert!(
            matches!(got.reason, IgnoreReason::Broken { .. }) && got.reason.code() == code,
            "{code}: {}",
            got.reason
        );
    }
    // Every node reaches the same state; a valid sealer then goes on from the true tip.
    let a = replay(log, &cast.genesis.topics.blocks, None).unwrap();
    let b2 = replay(log, &cast.genesis.topics.blocks, None).unwrap();
    assert_eq!(state_digest(&a.chain), state_digest(&b2.chain));
    let events = seal_until_idle(log, &cast, 0, 100);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Canonical { height: 2, .. })));
    let r = replay(log, &cast.genesis.topics.blocks, None).unwrap();
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
/// A small deterministic random source (xorshift), seeded by each scenario.
pub use kchain_testkit::Rng;

/// `rounds` transfers from each wallet, and now and then a transfer of amount 0 (to be
/// rejected; it does not use up its nonce).
pub fn workload(cast: &Cast, rounds: u64) -> (Vec<Transaction>, Vec<Transaction>) {
    let n = cast.wallets.len();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for nonce in 1..=rounds {
        for w in 0..n {
            let to = cast.address((w + 1) % n);
            if (nonce as usize * n + w) % 10 == 3 {
                bad.push(cast.transfer(w, to, 0, nonce));
            }
            good.push(cast.transfer(w, to, 1, nonce));
        }
    }
    (good, bad)
}

/// Checks that every good transaction is sealed exactly once and every bad one rejected by
/// a canonical block.
pub fn check_exactly_once(log: &dyn Log, cast: &Cast, good: &[Transaction], bad: &[Transaction]) {
    let r = replay(log, &cast.genesis.topics.blocks, None).unwrap();
    assert!(r.finding.is_none(), "{:?}", r.finding);
    let ids: Vec<TxId> = canonical_blocks(log, &r.chain, 1, usize::MAX)
        .unwrap()
        .into_iter()
        .flat_map(|(_, b)| b.body.unwrap())
        .map(|s| *s.tx.id())
        .collect();
    let unique: HashSet<TxId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "sealed twice");
    let want: HashSet<TxId> = good.iter().map(|t| *t.id()).collect();
    assert!(
        unique == want,
        "{} good transactions not sealed, {} sealed that should not be",
        want.difference(&unique).count(),
        unique.difference(&want).count()
    );
    for tx in bad {
        match tx_status(log, &r.chain, tx.id()).unwrap() {
            TxStatus::Rejected(rec) => assert_eq!(rec.reason, "zero_amount"),
            other => panic!("a bad transaction is {other:?}"),
        }
    }
    let report = verify_ledger(
        log,
        &cast.genesis.topics.blocks,
        &VerifyOptions::default(),
        &|_| {},
    )
    .unwrap();
    assert!(report.ok(), "{}", report.to_text());
}

/// Two sealers (each on its own log handle), each dropped after a random number of steps
/// and reopened (from its snapshot), while a client submits `rounds` transfers per wallet.
/// An idle step waits `idle` for new records: it must be long enough for a fresh consumer's
/// first fetch (slow on Kafka), or a life of a few steps could end before it sees anything.
pub fn crash_and_restart(
    log: &dyn Log,
    sealer_logs: [&dyn Log; 2],
    cast: &Cast,
    state: &Path,
    seed: u64,
    rounds: u64,
    idle: Duration,
) {
    let (good, bad) = workload(cast, rounds);
    let mut all: Vec<Transaction> = bad.iter().chain(&good).cloned().collect();
    // Each wallet's transfers in nonce order (the ledger keeps a sender in one partition).
    all.sort_by_key(|t| match t.body() {
        kchain_ledger::TxBody::Transfer { nonce, .. } => *nonce,
        _ => 0,
    });
    let submitted = AtomicBool::new(false);
    std::thread::scope(|s| {
        for (i, sealer_log) in sealer_logs.into_iter().enumerate() {
            let submitted = &submitted;
            s.spawn(move || {
                let mut rng = Rng(seed + 1 + i as u64);
                let opts = NodeOptions {
                    state_dir: Some(state.join(format!("sealer{i}"))),
                    snapshot_every: 2,
                    ..cast.node_options()
                };
                let deadline = Instant::now() + Duration::from_secs(300);
                let mut crashes = 0;
                let mut after_rejections = 0;
                let mut after_append = 0;
                loop {
                    assert!(Instant::now() < deadline, "sealer {i} did not finish");
                    let mut events = Vec::new();
                    let mut node = Node::open(
                        sealer_log,
                        opts.clone(),
                        Some((
                            cast.sealer_key(i),
                            kchain_ledger::SealOptions {
                                block_ms: 2,
                                ..seal_options(20 + 7 * i)
                            },
                        )),
                        &mut events,
                    )
                    .unwrap();
                    let steps = 1 + rng.below(25);
                    let mut done = false;
                    for _ in 0..steps {
                        if !node.step(&mut events).unwrap() {
                            if submitted.load(Ordering::SeqCst) && node.caught_up().unwrap() {
                                done = true;
                                break;
                            }
                            node.follow(idle, &mut events).unwrap();
                        }
                    }
                    if done {
                        break;
                    }
                    crashes += 1;
                    match events.iter().rev().find(|e| matches!(e, Event::Seal(_))) {
                        Some(Event::Seal(kchain_ledger::SealEvent::Rejected { .. })) => {
                            after_rejections += 1
                        }
                        Some(Event::Seal(kchain_ledger::SealEvent::Appended { .. })) => {
                            after_append += 1
                        }
                        _ => {}
                    }
                    drop(node); // a crash: no snapshot, no cleanup
                }
                eprintln!(
                    "sealer {i}: {crashes} crashes, {after_rejections} right after writing \
                     rejections, {after_append} right after appending a block"
                );
            });
        }
        for chunk in all.chunks(17) {
            submit(log, &cast.genesis, chunk).unwrap();
            std::thread::sleep(Duration::from_millis(3));
        }
        submitted.store(true, Ordering::SeqCst);
    });
    // One more look by a sealer that runs to the end (the racing ones may stop early).
    seal_until_idle(log, cast, 0, 50);
    check_exactly_once(log, cast, &good, &bad);
}

/// A restart from a snapshot equals a full replay; a snapshot that does not match (changed
/// content, another ledger's, a log that no longer holds its tip) is discarded. `other` may
/// be `log` itself: the other ledger has names of its own.
pub fn snapshots_resume_or_are_discarded(
    log: &dyn Log,
    other_log: &dyn Log,
    chain_name: &str,
    other_name: &str,
    dir: &Path,
) {
    let cast = Cast::new(chain_name, 1, 6, 1000, 2);
    cast.init(log);
    let state = dir.join("state");
    let opts = NodeOptions {
        state_dir: Some(state.clone()),
        snapshot_every: 1,
        ..cast.node_options()
    };
    let run = |txs: &[Transaction]| {
        submit(log, &cast.genesis, txs).unwrap();
        let mut events = Vec::new();
        let mut node = Node::open(
            log,
            opts.clone(),
            Some((cast.sealer_key(0), seal_options(4))),
            &mut events,
        )
        .unwrap();
        node.run(true, &AtomicBool::new(false), &mut |e| {
            events.push(e.clone())
        })
        .unwrap();
        events
    };
    let first: Vec<Transaction> = (0..6)
        .map(|w| cast.transfer(w, cast.address(0), 3, 1))
        .collect();
    let events = run(&first);
    assert!(events.iter().any(|e| matches!(e, Event::Snapshot { .. })));
    let second: Vec<Transaction> = (0..6)
        .map(|w| cast.transfer(w, cast.address(1), 2, 2))
        .collect();
    let events = run(&second);
    assert!(
        matches!(events.first(), Some(Event::Resumed { height }) if *height > 0),
        "{events:?}"
    );
    // Blocks after the snapshot, sealed by a node without one.
    submit(
        log,
        &cast.genesis,
        &[cast.transfer(3, cast.address(4), 1, 3)],
    )
    .unwrap();
    seal_until_idle(log, &cast, 0, 4);
    let full = replay(log, &cast.genesis.topics.blocks, None).unwrap();
    let resumed = replay(log, &cast.genesis.topics.blocks, Some(&state)).unwrap();
    assert!(resumed.snapshot.as_deref().unwrap().starts_with("resumed"));
    assert_eq!(state_digest(&full.chain), state_digest(&resumed.chain));
    assert_eq!(full.chain.tip(), resumed.chain.tip());

    let file = snapshot_file(&state);
    let good = std::fs::read_to_string(&file).unwrap();
    // Changed content: the checksum fails.
    std::fs::write(
        &file,
        good.replacen("\"balances\":[[", "\"balances\":[[\"00\",1],[", 1),
    )
    .unwrap();
    let r = replay(log, &cast.genesis.topics.blocks, Some(&state)).unwrap();
    assert!(r.snapshot.unwrap().contains("discarded"), "checksum");
    assert_eq!(state_digest(&r.chain), state_digest(&full.chain));
    // Another ledger's snapshot.
    let olog = other_log;
    let other = Cast::new(other_name, 1, 2, 5, 2);
    other.init(olog);
    let ostate = dir.join("other-state");
    let mut events = Vec::new();
    let mut node = Node::open(
        olog,
        NodeOptions {
            state_dir: Some(ostate.clone()),
            ..other.node_options()
        },
        None,
        &mut events,
    )
    .unwrap();
    node.save_snapshot(&mut events).unwrap();
    std::fs::copy(snapshot_file(&ostate), &file).unwrap();
    let r = replay(log, &cast.genesis.topics.blocks, Some(&state)).unwrap();
    assert!(r.snapshot.unwrap().contains("another ledger"));
    // A log that no longer holds the snapshot's tip (its last blocks cut).
    std::fs::write(&file, &good).unwrap();
    let (_cdir, cut) = embedded();
    kchain_topic::tamper::copy_topic_with(log, &cut, &cast.genesis.topics.blocks, |_, r| {
        r.truncate(r.len() - 2);
    })
    .unwrap();
    let r = replay(&cut, &cast.genesis.topics.blocks, Some(&state)).unwrap();
    assert!(r.snapshot.unwrap().contains("no longer holds"), "cut log");
    // A node does not go on from the shorter chain: it saw those blocks canonical.
    let mut events = Vec::new();
    match Node::open(&cut, opts.clone(), None, &mut events) {
        Err(kchain_ledger::LedgerError::Tampered(f)) => {
            assert_eq!(f.kind, kchain_ledger::FindingKind::Truncated, "{f}")
        }
        Err(e) => panic!("expected a truncation finding, got {e}"),
        Ok(_) => panic!("a node went on from a log cut below its snapshot"),
    }
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::SnapshotDiscarded(_))));
    let report = verify_ledger(
        &cut,
        &cast.genesis.topics.blocks,
        &VerifyOptions {
            snapshot: Some(file.clone()),
            ..VerifyOptions::default()
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        report.finding.map(|f| f.kind),
        Some(kchain_ledger::FindingKind::Truncated),
        "the snapshot is an anchor"
    );
}
pub fn bad_transactions(log: &dyn Log, cast: &Cast) {
    let chain_id = cast.genesis.chain_id();
    let g = &cast.genesis;
    let to = cast.address(9);
    // Good ones, to be sealed alongside.
    let good: Vec<Transaction> = (0..4).map(|w| cast.transfer(w, to, 10, 1)).collect();
    submit(log, g, &good).unwrap();
    seal_until_idle(log, cast, 0, 5);
    // Each bad one, with the reason it must get. Raw records go to partition 1.
    let tampered = {
        let mut v = cast.transfer(4, to, 10, 1).to_json_value();
        v["amount"] = json!(11);
        v
    };
    let small_order_key = {
        let mut k = [0u8; 32];
        k[0] = 1; // the identity point
        k
    };
    let bad_key = Transaction::from_parts(
        chain_id,
        small_order_key,
        kchain_ledger::TxBody::Transfer {
            to,
            amount: 1,
            nonce: 1,
        },
        [0; 64],
    );
    let big = "x".repeat(2000);
    let raw: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "malformed"),
        (br#"{"type":"transfer"}"#.to_vec(), "malformed"),
        (vec![], "malformed"),
        (vec![b'z'; 40_000], "oversize"),
        (serde_json::to_vec(&tampered).unwrap(), "bad_signature"),
        (bad_key.to_json(), "bad_public_key"),
        (
            Transaction::data(&cast.wallets[5], chain_id, json!({ "blob": big })).to_json(),
            "oversize",
        ),
        (
            Transaction::transfer(&cast.wallets[5], ChainId([1; 16]), to, 1, 1).to_json(),
            "wrong_chain",
        ),
        (cast.transfer(5, to, 0, 1).to_json(), "zero_amount"),
        (cast.transfer(6, to, 10, 7).to_json(), "wrong_nonce"),
        (cast.transfer(7, to, 5000, 1).to_json(), "overdraft"),
        (good[0].to_json(), "duplicate"),
    ];
    let values: Vec<Vec<u8>> = raw.iter().map(|(v, _)| v.clone()).collect();
    let offsets = submit_raw(log, g, 1, &values).unwrap();
    // And a good data record after all of them.
    let data = Transaction::data(&cast.wallets[8], chain_id, json!({"lab": "ok", "n": 1}));
    submit(log, g, std::slice::from_ref(&data)).unwrap();

    seal_until_idle(log, cast, 0, 5);

    let r = replay(log, &g.topics.blocks, None).unwrap();
    assert!(r.finding.is_none());
    let chain = r.chain;
    for tx in good.iter().chain([&data]) {
        assert!(
            chain.state().sealed_at(tx.id()).is_some(),
            "good transaction sealed"
        );
    }
    assert_eq!(chain.state().sealed_count(), 5);
    // Every bad record has a rejection naming a canonical block, with the right reason.
    let mut by_offset: HashMap<u64, RejectionRecord> = HashMap::new();
    for v in values_of(log, &g.topics.rejected) {
        let rec: RejectionRecord = serde_json::from_slice(&v).unwrap();
        let block = rec.block_hash().unwrap();
        if rec.partition == 1 && chain.height_of(&block).is_some() {
            by_offset.insert(rec.offset, rec);
        }
    }
    for ((value, reason), offset) in raw.iter().zip(&offsets) {
        let rec = by_offset
            .get(offset)
            .unwrap_or_else(|| panic!("no rejection for offset {offset} ({reason})"));
        assert_eq!(&rec.reason, reason, "offset {offset}: {}", rec.detail);
        match serde_json::from_slice::<serde_json::Value>(value) {
            Ok(v) => assert_eq!(rec.tx.as_ref(), Some(&v)),
            Err(_) => assert!(rec.raw.is_some() || value.is_empty()),
        }
    }
    // What a client is told.
    let rejected = Transaction::from_json(&raw[10].0).unwrap();
    match tx_status(log, &chain, rejected.id()).unwrap() {
        TxStatus::Rejected(rec) => assert_eq!(rec.reason, "overdraft"),
        other => panic!("{other:?}"),
    }
    match tx_status(log, &chain, data.id()).unwrap() {
        TxStatus::Sealed { tx, .. } => assert_eq!(tx.id(), data.id()),
        other => panic!("{other:?}"),
    }
    let later = cast.transfer(0, to, 1, 2);
    assert_eq!(next_nonce(log, &chain, &cast.address(0)).unwrap(), 2);
    submit(log, g, std::slice::from_ref(&later)).unwrap();
    assert_eq!(next_nonce(log, &chain, &cast.address(0)).unwrap(), 3);
    assert!(matches!(
        tx_status(log, &chain, later.id()).unwrap(),
        TxStatus::Pending { .. }
    ));
    assert_eq!(tx_status(log, &chain, &[3; 32]).unwrap(), TxStatus::Unknown);
    let report = verify_ledger(log, &g.topics.blocks, &VerifyOptions::default(), &|_| {}).unwrap();
    assert!(report.ok(), "{}", report.to_text());
}

pub fn values_of(log: &dyn Log, topic: &str) -> Vec<Vec<u8>> {
    values(log, topic, 0)
}
