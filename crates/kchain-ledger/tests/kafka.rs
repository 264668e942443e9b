//! The ledger's behaviour scenarios (`support/scenarios.rs`) on a real Kafka-API broker: this
//! test binary's private tansu (see `kchain_testkit::Broker`). Every test uses
//! ledger names of its own, so the tests share the broker without meeting.
//!
//! Sizes are smaller than on the embedded backend: tansu's sqlite engine slows down as
//! records pile up (see `docs/kafka.md`).

#![cfg(feature = "kafka")]

mod support;

use kchain_testkit::Broker;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kchain_ledger::{submit, Node, NodeOptions, Transaction};
use kchain_log::{KafkaLog, KafkaOptions};
use support::scenarios::*;
use support::*;

/// A Kafka log on `brokers`.
fn connect(brokers: &str) -> KafkaLog {
    KafkaLog::connect(brokers, KafkaOptions::default()).expect("connect to the test broker")
}

/// A Kafka log on this test binary's private broker.
fn kafka() -> KafkaLog {
    connect(&Broker::shared().brokers)
}

/// A ledger name no other test (or earlier run against the same broker) uses.
use kchain_testkit::unique_name as unique;

#[test]
fn kafka_three_sealers_racing_seal_every_valid_transaction_exactly_once() {
    let log = kafka();
    // 20 wallets x 40 transfers + 40 data records: 840 transactions.
    let cast = Cast::new(&unique("race"), 3, 20, 1_000_000, 4);
    cast.init(&log);
    let (a, b, c) = (kafka(), kafka(), kafka());
    three_sealers_race(&log, [&a, &b, &c], &cast, 40);
}

#[test]
fn kafka_a_stale_block_appended_by_a_racing_sealer_is_ignored() {
    stale_blocks_are_ignored(&kafka(), &unique("stale"));
}

#[test]
fn kafka_invalid_blocks_appended_by_an_allowed_sealer_are_ignored_by_every_node() {
    invalid_blocks_are_ignored(&kafka(), &unique("invalid"));
}

#[test]
fn kafka_every_kind_of_bad_transaction_is_rejected_and_the_node_keeps_sealing() {
    let log = kafka();
    let mut cast = Cast::new(&unique("rejects"), 1, 10, 1000, 2);
    cast.genesis.max_payload_bytes = 1000;
    cast.init(&log);
    bad_transactions(&log, &cast);
}

#[test]
fn kafka_sealers_dropped_between_any_two_steps_lose_nothing_and_seal_nothing_twice() {
    let (log, a, b) = (kafka(), kafka(), kafka());
    // One seed and a third of the transactions of the embedded test: every restart
    // reconnects to the broker and replays from its snapshot, which takes a while on Kafka.
    let seed = 7;
    let dir = tempfile::tempdir().unwrap();
    let cast = Cast::new(&unique(&format!("crash{seed}")), 2, 12, 10_000, 3);
    cast.init(&log);
    crash_and_restart(
        &log,
        [&a, &b],
        &cast,
        &dir.path().join("state"),
        seed,
        20,
        Duration::from_millis(100),
    );
}

#[test]
fn kafka_a_snapshot_restart_equals_a_full_replay_and_a_mismatched_snapshot_is_discarded() {
    let log = kafka();
    let dir = tempfile::tempdir().unwrap();
    snapshots_resume_or_are_discarded(&log, &log, &unique("snap"), &unique("other"), dir.path());
}

/// The cast of the SIGKILL test (its child rebuilds it from the ledger name).
fn killed_cast(name: &str) -> Cast {
    Cast::new(name, 1, 10, 10_000, 3)
}

/// The child side of the SIGKILL test: a sealer on the broker and ledger named by the
/// environment (`BROKERS LEDGER STATE_DIR`), until it is killed.
#[test]
fn kafka_child_sealer_process() {
    let Ok(spec) = std::env::var("KCHAIN_LEDGER_KAFKA_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(3, ' ').collect();
    let log = connect(parts[0]);
    let cast = killed_cast(parts[1]);
    let opts = NodeOptions {
        state_dir: Some(Path::new(parts[2]).to_path_buf()),
        snapshot_every: 3,
        ..cast.node_options()
    };
    let mut events = Vec::new();
    let mut node = Node::open(
        &log,
        opts,
        Some((cast.sealer_key(0), seal_options(15))),
        &mut events,
    )
    .unwrap();
    node.run(false, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
}

#[test]
fn kafka_a_sealer_killed_with_sigkill_at_random_times_loses_and_duplicates_nothing() {
    let log = kafka();
    let name = unique("killed");
    let cast = killed_cast(&name);
    cast.init(&log);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (good, bad) = workload(&cast, 20);
    let mut all: Vec<Transaction> = bad.iter().chain(&good).cloned().collect();
    all.sort_by_key(|t| match t.body() {
        kchain_ledger::TxBody::Transfer { nonce, .. } => *nonce,
        _ => 0,
    });
    let spec = format!("{} {name} {}", Broker::shared().brokers, state.display());
    let mut rng = Rng(99);
    let mut chunks = all.chunks(23);
    let mut kills = 0;
    loop {
        let mut child = kchain_testkit::test_in_child("kafka_child_sealer_process")
            .env("KCHAIN_LEDGER_KAFKA_CHILD", &spec)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let more = chunks.next();
        if let Some(chunk) = more {
            submit(&log, &cast.genesis, chunk).unwrap();
        }
        // Connecting to the broker takes a moment: let some children get to seal.
        std::thread::sleep(Duration::from_millis(150 + rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if more.is_none() {
            break;
        }
    }
    eprintln!("{kills} kills");
    // A last run in process, from the snapshot the killed ones left.
    let mut events = Vec::new();
    let opts = NodeOptions {
        state_dir: Some(state),
        ..cast.node_options()
    };
    let mut node = Node::open(
        &log,
        opts,
        Some((cast.sealer_key(0), seal_options(15))),
        &mut events,
    )
    .unwrap();
    node.run(true, &AtomicBool::new(false), &mut |e| {
        events.push(e.clone())
    })
    .unwrap();
    drop(node);
    check_exactly_once(&log, &cast, &good, &bad);
}
