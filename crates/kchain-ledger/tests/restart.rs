//! Crashes and restarts: a sealer dropped between any two steps, or killed with SIGKILL, and
//! restarted loses nothing and seals nothing twice; snapshots resume exactly where a full
//! replay would, and a snapshot that does not match the log is discarded.

mod support;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kchain_ledger::{submit, Node, NodeOptions, Transaction};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy};
use support::scenarios::*;
use support::*;

#[test]
fn sealers_dropped_between_any_two_steps_lose_nothing_and_seal_nothing_twice() {
    for seed in [7u64, 1234, 99, 4242] {
        let (dir, log) = embedded();
        let cast = Cast::new(&format!("crash{seed}"), 2, 12, 10_000, 3);
        cast.init(&log);
        crash_and_restart(
            &log,
            [&log, &log],
            &cast,
            &dir.path().join("state"),
            seed,
            60,
            Duration::from_millis(1),
        );
    }
}

/// The child side of the SIGKILL test: a sealer on the data directory named by the
/// environment, until it is killed.
#[test]
fn child_sealer_process() {
    let Ok(data) = std::env::var("KCHAIN_LEDGER_TEST_CHILD") else {
        return;
    };
    let log = EmbeddedLog::open(
        &data,
        EmbeddedOptions {
            fsync: FsyncPolicy::Never,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap();
    let cast = Cast::new("killed", 1, 10, 10_000, 3);
    let opts = NodeOptions {
        state_dir: Some(Path::new(&data).join("state")),
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
fn a_sealer_killed_with_sigkill_at_random_times_loses_and_duplicates_nothing() {
    let (dir, log) = embedded();
    let cast = Cast::new("killed", 1, 10, 10_000, 3);
    cast.init(&log);
    let (good, bad) = workload(&cast, 30);
    let mut all: Vec<Transaction> = bad.iter().chain(&good).cloned().collect();
    all.sort_by_key(|t| match t.body() {
        kchain_ledger::TxBody::Transfer { nonce, .. } => *nonce,
        _ => 0,
    });
    let data = dir.path().join("data");
    let mut rng = Rng(99);
    let mut chunks = all.chunks(23);
    let mut kills = 0;
    loop {
        let mut child = kchain_testkit::test_in_child("child_sealer_process")
            .env("KCHAIN_LEDGER_TEST_CHILD", &data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let more = chunks.next();
        if let Some(chunk) = more {
            submit(&log, &cast.genesis, chunk).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20 + rng.below(150)));
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
        state_dir: Some(data.join("state")),
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

#[test]
fn a_snapshot_restart_equals_a_full_replay_and_a_mismatched_snapshot_is_discarded() {
    let (dir, log) = embedded();
    let (_odir, olog) = embedded();
    snapshots_resume_or_are_discarded(&log, &olog, "snap", "other", dir.path());
}
