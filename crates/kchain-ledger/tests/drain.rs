//! A draining sealer (told that no more transactions are coming) cuts its last, partial
//! block as soon as it has judged everything it read, where one that is not waits
//! `block_ms` for the block to fill; either way the block holds every transaction once.

mod support;

use std::time::{Duration, Instant};

use kchain_ledger::{submit, Event, Node, SealOptions, Transaction};
use support::*;

/// Steps a sealer of `cast` (blocks of 100 transactions, cut after a minute at the latest)
/// for up to `within` (or until a draining one has sealed all five transactions); returns
/// the height and transaction count of each block that became canonical meanwhile.
fn seal_for(
    log: &dyn kchain_log::Log,
    cast: &Cast,
    drain: bool,
    within: Duration,
) -> Vec<(u64, u32)> {
    let mut events = Vec::new();
    let opts = SealOptions {
        block_txs: 100,
        block_ms: 60_000,
        ..SealOptions::default()
    };
    let sealer = Some((cast.sealer_key(0), opts));
    let mut node = Node::open(log, cast.node_options(), sealer, &mut events).unwrap();
    if drain {
        node.drain();
    }
    let deadline = Instant::now() + within;
    let mut sealed = Vec::new();
    while Instant::now() < deadline {
        events.clear();
        if !node.step(&mut events).unwrap() {
            node.follow(Duration::from_millis(5), &mut events).unwrap();
        }
        for e in &events {
            if let Event::Canonical { height, txs, .. } = e {
                sealed.push((*height, *txs));
            }
        }
        if drain && node.chain().state().sealed_count() == 5 {
            break;
        }
    }
    sealed
}

#[test]
fn a_draining_sealer_seals_a_partial_block_without_waiting_out_block_ms() {
    let (_dir, log) = embedded();
    let cast = Cast::new("drain", 1, 5, 100, 2);
    cast.init(&log);
    let txs: Vec<Transaction> = (0..5)
        .map(|w| cast.transfer(w, cast.address((w + 1) % 5), 1, 1))
        .collect();
    submit(&log, &cast.genesis, &txs).unwrap();

    // Not draining: five transactions are a twentieth of a block, and a minute is far off.
    assert_eq!(seal_for(&log, &cast, false, Duration::from_millis(500)), []);
    // Draining: one block of all five, well within the minute.
    let started = Instant::now();
    assert_eq!(
        seal_for(&log, &cast, true, Duration::from_secs(30)),
        [(1, 5)]
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
