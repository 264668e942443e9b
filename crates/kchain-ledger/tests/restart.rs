//! Crashes and restarts: a sealer dropped between any two steps, or killed with SIGKILL, and
//! restarted loses nothing and seals nothing twice; snapshots resume exactly where a full
//! replay would, and a snapshot that does not match the log is discarded.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kchain_ledger::{
    canonical_blocks, replay, snapshot_file, state_digest, submit, tx_status, verify_ledger, Event,
    Node, NodeOptions, Transaction, TxId, TxStatus, VerifyOptions,
};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log};
use support::*;

/// A small deterministic random source (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `rounds` transfers from each wallet, and now and then a transfer of amount 0 (to be
/// rejected; it does not use up its nonce).
fn workload(cast: &Cast, rounds: u64) -> (Vec<Transaction>, Vec<Transaction>) {
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
fn check_exactly_once(log: &dyn Log, cast: &Cast, good: &[Transaction], bad: &[Transaction]) {
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

/// Two sealers, each dropped after a random number of steps and reopened (from its
/// snapshot), while a client submits.
fn crash_and_restart(log: &dyn Log, cast: &Cast, state: &Path, seed: u64) {
    let (good, bad) = workload(cast, 60);
    let mut all: Vec<Transaction> = bad.iter().chain(&good).cloned().collect();
    // Each wallet's transfers in nonce order (the ledger keeps a sender in one partition).
    all.sort_by_key(|t| match t.body() {
        kchain_ledger::TxBody::Transfer { nonce, .. } => *nonce,
        _ => 0,
    });
    let submitted = AtomicBool::new(false);
    std::thread::scope(|s| {
        for i in 0..2usize {
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
                        log,
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
                            node.follow(Duration::from_millis(1), &mut events).unwrap();
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

#[test]
fn sealers_dropped_between_any_two_steps_lose_nothing_and_seal_nothing_twice() {
    for seed in [7u64, 1234, 99, 4242] {
        let (dir, log) = embedded();
        let cast = Cast::new(&format!("crash{seed}"), 2, 12, 10_000, 3);
        cast.init(&log);
        crash_and_restart(&log, &cast, &dir.path().join("state"), seed);
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
    let exe = std::env::current_exe().unwrap();
    let data = dir.path().join("data");
    let mut rng = Rng(99);
    let mut chunks = all.chunks(23);
    let mut kills = 0;
    loop {
        let mut child = std::process::Command::new(&exe)
            .args([
                "child_sealer_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
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
    let cast = Cast::new("snap", 1, 6, 1000, 2);
    cast.init(&log);
    let state = dir.path().join("state");
    let opts = NodeOptions {
        state_dir: Some(state.clone()),
        snapshot_every: 1,
        ..cast.node_options()
    };
    let run = |txs: &[Transaction]| {
        submit(&log, &cast.genesis, txs).unwrap();
        let mut events = Vec::new();
        let mut node = Node::open(
            &log,
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
        &log,
        &cast.genesis,
        &[cast.transfer(3, cast.address(4), 1, 3)],
    )
    .unwrap();
    seal_until_idle(&log, &cast, 0, 4);
    let full = replay(&log, &cast.genesis.topics.blocks, None).unwrap();
    let resumed = replay(&log, &cast.genesis.topics.blocks, Some(&state)).unwrap();
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
    let r = replay(&log, &cast.genesis.topics.blocks, Some(&state)).unwrap();
    assert!(r.snapshot.unwrap().contains("discarded"), "checksum");
    assert_eq!(state_digest(&r.chain), state_digest(&full.chain));
    // Another ledger's snapshot.
    let (odir, olog) = embedded();
    let other = Cast::new("other", 1, 2, 5, 2);
    other.init(&olog);
    let ostate = odir.path().join("state");
    let mut events = Vec::new();
    let mut node = Node::open(
        &olog,
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
    let r = replay(&log, &cast.genesis.topics.blocks, Some(&state)).unwrap();
    assert!(r.snapshot.unwrap().contains("another ledger"));
    // A log that no longer holds the snapshot's tip (its last blocks cut).
    std::fs::write(&file, &good).unwrap();
    let (_cdir, cut) = embedded();
    kchain_topic::tamper::copy_topic_with(&log, &cut, &cast.genesis.topics.blocks, |_, r| {
        r.truncate(r.len() - 2);
    })
    .unwrap();
    let r = replay(&cut, &cast.genesis.topics.blocks, Some(&state)).unwrap();
    assert!(r.snapshot.unwrap().contains("no longer holds"), "cut log");
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
