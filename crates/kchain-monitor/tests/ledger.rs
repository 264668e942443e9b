//! The monitor watching ledgers on both backends (Kafka with the `kafka` feature): it
//! verifies the blocks chain by the ledger's rules, resumes from its snapshot without
//! reading again, and alerts within 5 seconds of a tampered block, a fork, a rollback and a
//! stalled sealer; topics and ledgers in one monitor.

mod support;

use std::time::{Duration, Instant};

use kchain_core::Trust;
use kchain_monitor::{Alerts, MonitorOptions};
use support::ledger::{ledger, Ledger};
use support::*;

/// The deadline every alert must meet, measured from the attacker's act.
const DEADLINE: Duration = Duration::from_secs(5);

/// A test monitor of `l` alone: passes every 100 ms.
fn ledger_options(l: &Ledger, state: &std::path::Path) -> MonitorOptions {
    let mut o = options("unused", state);
    o.topics.clear();
    o.ledgers = vec![l.name.clone()];
    o
}

#[test]
fn a_ledger_and_a_topic_verify_in_one_monitor_and_resume_without_reading_again() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "beside");
        write(log, &t, &key, 25, true);
        let l = ledger(log, "resume");
        l.seal(log, 5);
        assert_eq!(l.checkpoint(log), 6);
        let opts = || {
            let mut o = ledger_options(&l, state.path());
            o.topics = vec![t.clone()];
            o
        };
        let lines = Lines::default();
        let first = once(log, &trust, opts(), &lines);
        assert_eq!((first.entries, first.findings), (25 + 6, 0), "{name}");
        l.seal(log, 4);
        l.checkpoint(log);
        write(log, &t, &key, 5, true);
        // A restarted monitor takes the ledger back from its snapshot: it reads the new
        // blocks only.
        let second = once(log, &trust, opts(), &lines);
        assert_eq!(
            (second.entries, second.read, second.findings),
            (30 + 10, 5 + 4, 0),
            "{name}"
        );
        assert!(lines.alerts().is_empty(), "{name}: {:?}", lines.alerts());
    }
}

#[test]
fn a_block_built_on_a_changed_block_alerts_as_tamper_within_five_seconds() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let state = kchain_testkit::tempdir();
        let l = ledger(log, "tamper");
        l.seal(log, 3);
        let lines = Lines::default();
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let opts = ledger_options(&l, state.path());
        let (took, counts) = live(log, &Trust::default(), opts, alerts, |page| {
            wait_entries(page, &l.blocks, 4, Duration::from_secs(20));
            let height = format!("kchain_monitor_ledger_height{{ledger=\"{}\"}}", l.name);
            assert_eq!(metric(&page.lock().unwrap(), &height), Some(3.0), "{name}");
            let act = Instant::now();
            let at = l.tamper(log);
            (lines.wait_for("tamper", act, DEADLINE * 2), at)
        });
        let (took, at) = took;
        assert!(took < DEADLINE, "{name}: tamper alert after {took:?}");
        assert!(counts.findings > 0, "{name}");
        let a = &lines.alerts()[0];
        assert_eq!(a["chain"].as_str(), Some(l.blocks.as_str()), "{name}");
        assert_eq!(a["ledger"].as_str(), Some(l.name.as_str()), "{name}");
        assert_eq!(a["offset"].as_u64(), Some(at), "{name}: {a}");
        assert!(
            a["detail"].as_str().unwrap().starts_with("bad_signature"),
            "{a}"
        );
    }
}

#[test]
fn a_sealer_signed_checkpoint_off_the_chain_alerts_as_fork_and_a_smaller_as_rollback() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let state = kchain_testkit::tempdir();
        let l = ledger(log, "fork");
        l.seal(log, 4);
        l.checkpoint(log);
        let lines = Lines::default();
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let opts = ledger_options(&l, state.path());
        let (took, _) = live(log, &Trust::default(), opts, alerts, |page| {
            wait_entries(page, &l.blocks, 5, Duration::from_secs(20));
            let act = Instant::now();
            l.publish(log, 5, [1; 32]);
            let fork = lines.wait_for("fork", act, DEADLINE * 2);
            // A checkpoint ahead of the chain waits for it, then is held to it.
            l.publish(log, 7, [2; 32]);
            std::thread::sleep(Duration::from_millis(500));
            let act = Instant::now();
            l.seal(log, 2);
            let ahead = lines.wait_for_nth("fork", 2, act, DEADLINE * 2);
            let act = Instant::now();
            l.publish(log, 3, [3; 32]);
            let rollback = lines.wait_for("rollback", act, DEADLINE * 2);
            fork.max(ahead).max(rollback)
        });
        assert!(took < DEADLINE, "{name}: alert after {took:?}");
        let kinds: Vec<_> = (lines.alerts().iter())
            .map(|a| (a["kind"].as_str().unwrap().to_owned(), a["offset"].as_u64()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("fork".to_owned(), Some(5)),
                ("fork".to_owned(), Some(7)),
                ("rollback".to_owned(), Some(3))
            ],
            "{name}"
        );
    }
}

#[test]
fn no_checkpoint_for_the_stall_limit_alerts_as_stall_and_stale_past_max_age() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let state = kchain_testkit::tempdir();
        let l = ledger(log, "stall");
        l.seal(log, 2);
        l.checkpoint(log);
        let lines = Lines::default();
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let mut opts = ledger_options(&l, state.path());
        opts.stall_after = Some(Duration::from_secs(2));
        // Blocks past the newest accepted checkpoint, which no witness cosigned.
        opts.max_age = Some(3600);
        let (took, _) = live(log, &Trust::default(), opts, alerts, |page| {
            wait_entries(page, &l.blocks, 3, Duration::from_secs(20));
            let act = Instant::now();
            l.seal(log, 2);
            let stale = lines.wait_for("stale", act, DEADLINE * 2);
            let stall = lines.wait_for("stall", act, DEADLINE * 2);
            stale.max(stall.saturating_sub(Duration::from_secs(2)))
        });
        assert!(took < DEADLINE, "{name}: alert after {took:?}");
    }
}

#[test]
fn a_ledger_cut_or_rewritten_at_the_resume_point_alerts_as_rollback_on_restart() {
    // The embedded log: while the monitor is down, the attacker replaces the blocks topic
    // with a copy whose last block (the monitor's resume point) was re-sealed.
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    let state = kchain_testkit::tempdir();
    let l = ledger(&log, "resume-point");
    l.seal(&log, 3);
    let lines = Lines::default();
    let first = once(
        &log,
        &Trust::default(),
        ledger_options(&l, state.path()),
        &lines,
    );
    assert_eq!(first.entries, 4);
    let other = kchain_testkit::tempdir();
    let copy = embedded(other.path());
    kchain_topic::tamper::copy_topic_with(&log, &copy, &l.blocks, |_, r| r.truncate(3)).unwrap();
    drop((log, copy));
    let part = dir.path().join("topics").join(&l.blocks);
    std::fs::remove_dir_all(&part).unwrap();
    std::fs::rename(other.path().join("topics").join(&l.blocks), &part).unwrap();
    let log = embedded(dir.path());
    let tip = l.seal(&log, 1);
    assert_eq!(tip, 4, "the same height, another block");
    let counts = once(
        &log,
        &Trust::default(),
        ledger_options(&l, state.path()),
        &lines,
    );
    let alerts = lines.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0]["kind"].as_str(), alerts[0]["offset"].as_u64()),
        (Some("rollback"), Some(3))
    );
    assert_eq!(counts.read, 0, "nothing past the resume point was read");
    assert!(counts.findings > 0);
}

#[test]
fn a_blocks_topic_replaced_under_a_running_monitor_is_seen() {
    // The embedded log: while the monitor runs, the attacker replaces the blocks topic's
    // directory with a copy whose last block was re-sealed, and seals on from there.
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    let state = kchain_testkit::tempdir();
    let l = ledger(&log, "replaced");
    l.seal(&log, 3);
    let lines = Lines::default();
    let alerts = Alerts::new(Box::new(lines.clone()), None);
    let opts = ledger_options(&l, state.path());
    let (took, _) = live(&log, &Trust::default(), opts, alerts, |page| {
        wait_entries(page, &l.blocks, 4, Duration::from_secs(20));
        let other = kchain_testkit::tempdir();
        let copy = embedded(other.path());
        kchain_topic::tamper::copy_topic_with(&log, &copy, &l.blocks, |_, r| r.truncate(3))
            .unwrap();
        l.seal(&copy, 2);
        drop(copy);
        let part = dir.path().join("topics").join(&l.blocks);
        let act = Instant::now();
        std::fs::remove_dir_all(&part).unwrap();
        std::fs::rename(other.path().join("topics").join(&l.blocks), &part).unwrap();
        lines.wait_for("rollback", act, DEADLINE * 2)
    });
    assert!(took < DEADLINE, "rollback alert after {took:?}");
    let a = &lines.alerts()[0];
    assert_eq!(a["offset"].as_u64(), Some(3), "{a}");
}

#[test]
fn a_cut_between_the_snapshot_and_the_saved_tip_alerts_as_rollback_on_restart() {
    // The snapshot is written at most every 10 s; the state file names the newer tip. A
    // monitor that dies in between must still see blocks cut below that tip.
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    let state = kchain_testkit::tempdir();
    let l = ledger(&log, "older-snapshot");
    l.seal(&log, 3);
    let lines = Lines::default();
    let mut opts = ledger_options(&l, state.path());
    opts.save_every = Duration::ZERO;
    let trust = Trust::default();
    {
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let mut m = kchain_monitor::Monitor::open(&log, &trust, opts.clone(), alerts).unwrap();
        m.pass().unwrap();
        l.seal(&log, 2);
        m.pass().unwrap();
        assert_eq!(m.entries_verified(), 6);
        // Dropped without stopping: the snapshot holds height 3, the state height 5.
    }
    let other = kchain_testkit::tempdir();
    let copy = embedded(other.path());
    kchain_topic::tamper::copy_topic_with(&log, &copy, &l.blocks, |_, r| r.truncate(5)).unwrap();
    drop((log, copy));
    let part = dir.path().join("topics").join(&l.blocks);
    std::fs::remove_dir_all(&part).unwrap();
    std::fs::rename(other.path().join("topics").join(&l.blocks), &part).unwrap();
    let log = embedded(dir.path());
    let counts = once(&log, &Trust::default(), opts, &lines);
    let alerts = lines.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"].as_str(), Some("rollback"), "{alerts:?}");
    assert!(counts.findings > 0);
}
