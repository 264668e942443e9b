//! A broker restart in the middle of a run loses and duplicates nothing: the monitor
//! reports the log unreachable (a status, not a finding), goes on from where it was, and
//! verifies exactly what was produced. Kafka only (a private tansu on sqlite storage).

#![cfg(feature = "kafka")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kchain_monitor::{Alerts, Monitor};
use support::*;

#[test]
fn a_broker_restart_mid_run_loses_and_duplicates_nothing() {
    let mut broker = kchain_testkit::Broker::start("sqlite");
    let log = kafka(&broker.brokers);
    let (key, state) = (key(), kchain_testkit::tempdir());
    let trust = trust(&key);
    let t = topic(&log, "restart");
    write(&log, &t, &key, 200, true);
    let lines = Lines::default();
    let statuses = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let counts = std::thread::scope(|s| {
        let m = s.spawn(|| {
            let alerts = Alerts::new(Box::new(lines.clone()), None);
            let seen = Arc::clone(&statuses);
            let mut m = Monitor::open(&log, &trust, options(&t, state.path()), alerts)
                .unwrap()
                .on_status(move |s| seen.lock().unwrap().push(s.to_owned()));
            m.run(&|| stop.load(std::sync::atomic::Ordering::SeqCst))
                .unwrap();
            (m.entries_verified(), m.records_read())
        });
        std::thread::sleep(Duration::from_secs(2));
        broker.restart();
        // A writer of its own connection, after the restart.
        let writer_log = kafka(&broker.brokers);
        write(&writer_log, &t, &key, 200, true);
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        let state_file = state.path().join(kchain_monitor::STATE_FILE);
        loop {
            let done = std::fs::read_to_string(&state_file)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v["partitions"][format!("{t}/0")]["entries"].as_u64())
                == Some(400);
            if done || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        m.join().unwrap()
    });
    assert_eq!(counts, (400, 400), "entries verified and records read");
    assert!(lines.alerts().is_empty(), "{:?}", lines.alerts());
}
