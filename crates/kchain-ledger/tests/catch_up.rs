//! What a long-running reader (`kchain serve`) builds on: a replayed chain caught up with the
//! blocks appended since equals a replay from scratch, and one whose blocks topic no longer
//! holds what it was replayed from is refused (replay anew); the checks of a submission that
//! need no state.

mod support;

use kchain_core::ChainId;
use kchain_ledger::{
    catch_up, check_submission, replay, state_digest, submit, RejectReason, Transaction,
};
use support::*;

#[test]
fn a_caught_up_chain_equals_a_fresh_replay_and_a_changed_topic_is_replayed_anew() {
    let (_dir, log) = embedded();
    let cast = Cast::new("catchup", 1, 4, 1000, 2);
    cast.init(&log);
    let blocks = &cast.genesis.topics.blocks;
    let mut r = replay(&log, blocks, None).unwrap();
    assert_eq!(catch_up(&log, blocks, &mut r).unwrap(), Some(0));

    for round in 1..=3u64 {
        let txs: Vec<Transaction> = (0..4)
            .map(|w| cast.transfer(w, cast.address((w + 1) % 4), 1, round))
            .collect();
        submit(&log, &cast.genesis, &txs).unwrap();
        seal_until_idle(&log, &cast, 0, 2);
        let read = catch_up(&log, blocks, &mut r).unwrap().unwrap();
        assert!(read >= 2, "round {round}: {read} blocks read");
        let fresh = replay(&log, blocks, None).unwrap();
        assert_eq!(state_digest(&r.chain), state_digest(&fresh.chain));
        assert_eq!(r.chain.next_offset(), fresh.chain.next_offset());
    }
    assert_eq!(catch_up(&log, blocks, &mut r).unwrap(), Some(0));

    // Another ledger's blocks topic: shorter than what `r` read, and its first record is not
    // the genesis a fresh chain of another ledger was replayed from.
    let other = Cast::new("catchup-other", 1, 1, 10, 1);
    other.init(&log);
    let other_blocks = &other.genesis.topics.blocks;
    assert_eq!(catch_up(&log, other_blocks, &mut r).unwrap(), None);
    let mut fresh_other = replay(&log, other_blocks, None).unwrap();
    assert_eq!(catch_up(&log, blocks, &mut fresh_other).unwrap(), None);
}

#[test]
fn a_submission_is_checked_for_its_chain_amount_and_signature() {
    let (_dir, log) = embedded();
    let cast = Cast::new("submission", 1, 2, 1000, 1);
    cast.init(&log);
    let chain = replay(&log, &cast.genesis.topics.blocks, None)
        .unwrap()
        .chain;
    let good = cast.transfer(0, cast.address(1), 5, 1);
    assert_eq!(check_submission(&chain, &good), Ok(()));

    let other = Transaction::transfer(&cast.wallets[0], ChainId([7; 16]), cast.address(1), 5, 1);
    assert_eq!(
        check_submission(&chain, &other),
        Err(RejectReason::WrongChain)
    );
    let zero = cast.transfer(0, cast.address(1), 0, 1);
    assert_eq!(
        check_submission(&chain, &zero),
        Err(RejectReason::ZeroAmount)
    );
    let mut signature = *good.signature();
    signature[0] ^= 1;
    let forged = Transaction::from_parts(
        good.chain(),
        *good.public_key(),
        good.body().clone(),
        signature,
    );
    assert_eq!(
        check_submission(&chain, &forged),
        Err(RejectReason::BadSignature)
    );
}
