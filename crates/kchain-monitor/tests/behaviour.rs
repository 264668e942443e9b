//! The monitor's behaviour on both backends (Kafka with the `kafka` feature): it verifies
//! exactly what was produced, resumes without reading again, and alerts within 5 seconds
//! of a tamper, a fork, a rollback and a stalled writer, each alert once.

mod support;

use std::time::{Duration, Instant};

use kchain_monitor::Alerts;
use support::*;

/// The deadline every alert must meet, measured from the attacker's act.
const DEADLINE: Duration = Duration::from_secs(5);

#[test]
fn verifies_what_was_produced_and_resumes_without_reading_again() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "resume");
        write(log, &t, &key, 95, true);
        let lines = Lines::default();
        let first = once(log, &trust, options(&t, state.path()), &lines);
        assert_eq!(
            (first.entries, first.read, first.findings),
            (95, 95, 0),
            "{name}"
        );
        write(log, &t, &key, 40, true);
        // A restarted monitor reads only what is new, and counts every entry once.
        let second = once(log, &trust, options(&t, state.path()), &lines);
        assert_eq!(
            (second.entries, second.read, second.findings),
            (135, 40, 0),
            "{name}"
        );
        let third = once(log, &trust, options(&t, state.path()), &lines);
        assert_eq!((third.entries, third.read), (135, 0), "{name}");
        assert!(lines.alerts().is_empty(), "{name}: {:?}", lines.alerts());
    }
}

#[test]
fn a_forged_record_alerts_as_tamper_within_five_seconds_and_once() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "tamper");
        write(log, &t, &key, 30, true);
        let lines = Lines::default();
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let (took, counts) = live(log, &trust, options(&t, state.path()), alerts, |page| {
            wait_entries(page, &t, 30, Duration::from_secs(20));
            let forged = forged_after_tip(log, &t);
            let act = Instant::now();
            append_raw(log, &t, &[forged]);
            lines.wait_for("tamper", act, DEADLINE * 2)
        });
        assert!(took < DEADLINE, "{name}: tamper alert after {took:?}");
        assert_eq!(counts.entries, 30, "{name}");
        let a = &lines.alerts()[0];
        assert_eq!(
            (a["chain"].as_str(), a["partition"].as_u64()),
            (Some(t.as_str()), Some(0))
        );
        assert_eq!(a["offset"].as_u64(), Some(30), "{name}: {a}");
        // A restart does not raise it again, and still reports the finding.
        let again = once(log, &trust, options(&t, state.path()), &lines);
        assert_eq!(lines.alerts().len(), 1, "{name}: {:?}", lines.alerts());
        assert!(again.findings > 0, "{name}");
    }
}

#[test]
fn a_writer_signed_checkpoint_off_the_chain_alerts_as_fork() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "fork");
        write(log, &t, &key, 30, true);
        let lines = Lines::default();
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let (took, _) = live(log, &trust, options(&t, state.path()), alerts, |page| {
            wait_entries(page, &t, 30, Duration::from_secs(20));
            // The writer's key signs a second root at the size it already checkpointed.
            let act = Instant::now();
            publish(log, &t, &key, 30, [1; 32]);
            let took = lines.wait_for("fork", act, DEADLINE * 2);
            // And a checkpoint ahead of the chain waits for it, then is held to it.
            publish(log, &t, &key, 40, [2; 32]);
            std::thread::sleep(Duration::from_millis(500));
            let act = Instant::now();
            write(log, &t, &key, 10, false);
            let ahead = lines.wait_for_nth("fork", 2, act, DEADLINE * 2);
            took.max(ahead)
        });
        assert!(took < DEADLINE, "{name}: fork alert after {took:?}");
        let alerts = lines.alerts();
        assert_eq!(alerts.len(), 2, "{name}: {alerts:?}");
        assert_eq!(alerts[1]["offset"].as_u64(), Some(40), "{name}");
    }
}

#[test]
fn a_smaller_checkpoint_after_a_larger_alerts_as_rollback() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "rollback");
        write(log, &t, &key, 30, true);
        let lines = Lines::default();
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let (took, _) = live(log, &trust, options(&t, state.path()), alerts, |page| {
            wait_entries(page, &t, 30, Duration::from_secs(20));
            let act = Instant::now();
            publish(log, &t, &key, 20, [3; 32]);
            lines.wait_for("rollback", act, DEADLINE * 2)
        });
        assert!(took < DEADLINE, "{name}: rollback alert after {took:?}");
    }
}

#[test]
fn no_checkpoint_for_the_stall_limit_alerts_as_stall_and_the_next_rearms_it() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "stall");
        write(log, &t, &key, 20, true);
        let lines = Lines::default();
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let mut opts = options(&t, state.path());
        opts.stall_after = Some(Duration::from_secs(2));
        let (took, _) = live(log, &trust, opts, alerts, |page| {
            wait_entries(page, &t, 20, Duration::from_secs(20));
            // Entries arrive, checkpoints do not.
            let act = Instant::now();
            write(log, &t, &key, 20, false);
            let first = lines.wait_for("stall", act, DEADLINE * 2);
            // A new checkpoint re-arms the alert; silence again raises it again.
            write(log, &t, &key, 5, true);
            let act = Instant::now();
            let second = lines.wait_for_nth("stall", 2, act, DEADLINE * 2);
            first.max(second)
        });
        // The act is the writer's silence: the alert is due 2 s after it began.
        assert!(
            took < Duration::from_secs(2) + DEADLINE,
            "{name}: stall after {took:?}"
        );
    }
}

#[test]
fn a_log_cut_below_what_was_verified_alerts_as_rollback() {
    // The embedded log: the attacker replaces the partition with a shorter copy.
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    let (key, state) = (key(), kchain_testkit::tempdir());
    let trust = trust(&key);
    let t = topic(&log, "cut");
    write(&log, &t, &key, 30, true);
    let lines = Lines::default();
    let alerts = Alerts::new(Box::new(lines.clone()), None);
    once(&log, &trust, options(&t, state.path()), &lines);
    // Offline, the attacker keeps the first 20 records only.
    let short = kchain_testkit::tempdir();
    let copy = embedded(short.path());
    kchain_topic::tamper::copy_topic_with(&log, &copy, &t, |_, r| r.truncate(20)).unwrap();
    drop((log, copy));
    let part = dir.path().join("topics").join(&t);
    std::fs::remove_dir_all(&part).unwrap();
    std::fs::rename(short.path().join("topics").join(&t), &part).unwrap();
    let log = embedded(dir.path());
    let (_, counts) = live(&log, &trust, options(&t, state.path()), alerts, |_| {
        lines.wait_for("rollback", Instant::now(), DEADLINE)
    });
    assert!(counts.findings > 0);
    assert!(lines.alerts()[0]["detail"]
        .as_str()
        .unwrap()
        .contains("ends at offset 20"));
}

#[test]
fn a_rewritten_resume_point_alerts_as_rollback_on_restart() {
    // The embedded log: while the monitor is down, the attacker rewrites the last record it
    // verified (same length of log, so the end offset alone shows nothing).
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    let (key, state) = (key(), kchain_testkit::tempdir());
    let trust = trust(&key);
    let t = topic(&log, "resume-point");
    write(&log, &t, &key, 30, true);
    let lines = Lines::default();
    once(&log, &trust, options(&t, state.path()), &lines);
    let other = kchain_testkit::tempdir();
    let copy = embedded(other.path());
    kchain_topic::tamper::copy_topic_with(&log, &copy, &t, |_, r| {
        r[29].value = Some(b"rewritten".to_vec());
    })
    .unwrap();
    drop((log, copy));
    let part = dir.path().join("topics").join(&t);
    std::fs::remove_dir_all(&part).unwrap();
    std::fs::rename(other.path().join("topics").join(&t), &part).unwrap();
    let log = embedded(dir.path());
    let counts = once(&log, &trust, options(&t, state.path()), &lines);
    let alerts = lines.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0]["kind"].as_str(), alerts[0]["offset"].as_u64()),
        (Some("rollback"), Some(29))
    );
    assert_eq!(counts.read, 0, "nothing past the resume point was read");
    assert!(counts.findings > 0);
}

#[test]
fn a_backlog_is_read_in_chunks_exactly_once_and_a_forgery_in_it_is_found() {
    // More than two chunks of 16 Ki offsets: on the embedded log (where readers are cheap;
    // a Kafka backlog is read with the live reader, as the other tests show) the backlog is
    // read with a reader per worker, as `verify` reads.
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    {
        let (name, log) = ("embedded", &log as &dyn kchain_log::Log);
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "backlog");
        let n = 40_000;
        write(log, &t, &key, n, true);
        let lines = Lines::default();
        let first = once(log, &trust, options(&t, state.path()), &lines);
        assert_eq!(
            (first.entries, first.read, first.findings),
            (n, n, 0),
            "{name}"
        );
        assert!(lines.alerts().is_empty(), "{name}: {:?}", lines.alerts());
        let forged = forged_after_tip(log, &t);
        append_raw(log, &t, &[forged]);
        // A fresh monitor reads all of it from an empty state and stops at the forgery.
        let other = kchain_testkit::tempdir();
        let fresh = once(log, &trust, options(&t, other.path()), &lines);
        assert_eq!(fresh.read, n + 1, "{name}");
        let a = &lines.alerts()[0];
        assert_eq!(
            (a["kind"].as_str(), a["offset"].as_u64()),
            (Some("tamper"), Some(n)),
            "{name}"
        );
    }
}

#[test]
fn a_partition_replaced_under_a_running_monitor_is_seen() {
    // The embedded log: while the monitor runs, the attacker replaces the partition's
    // directory with a copy whose last verified record was rewritten, and appends to it. The
    // monitor's live reader still holds the old, deleted segment file open.
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    let (key, state) = (key(), kchain_testkit::tempdir());
    let trust = trust(&key);
    let t = topic(&log, "replaced");
    write(&log, &t, &key, 30, true);
    let lines = Lines::default();
    let alerts = Alerts::new(Box::new(lines.clone()), None);
    let (took, counts) = live(&log, &trust, options(&t, state.path()), alerts, |page| {
        wait_entries(page, &t, 30, Duration::from_secs(20));
        let other = kchain_testkit::tempdir();
        let copy = embedded(other.path());
        kchain_topic::tamper::copy_topic_with(&log, &copy, &t, |_, r| {
            r[29].value = Some(b"rewritten".to_vec());
        })
        .unwrap();
        drop(copy);
        let part = dir.path().join("topics").join(&t);
        let act = Instant::now();
        std::fs::remove_dir_all(&part).unwrap();
        std::fs::rename(other.path().join("topics").join(&t), &part).unwrap();
        let forged = forged_after_tip(&log, &t);
        append_raw(&log, &t, &[forged]);
        lines.wait_for("rollback", act, DEADLINE * 2)
    });
    assert!(took < DEADLINE, "rollback alert after {took:?}");
    assert!(counts.findings > 0);
    let a = &lines.alerts()[0];
    assert_eq!(
        (a["kind"].as_str(), a["offset"].as_u64()),
        (Some("rollback"), Some(29)),
        "{a}"
    );
}
