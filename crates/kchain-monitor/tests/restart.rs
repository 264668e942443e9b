//! A broker restart in the middle of a run loses and duplicates nothing: the monitor
//! reports the log unreachable (a status, not a finding), goes on from where it was, and
//! verifies exactly what was produced. Kafka only (a private tansu on sqlite storage).

#![cfg(feature = "kafka")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kchain_log::Log;
use kchain_monitor::{Alerts, Monitor};
use support::*;

#[test]
fn a_broker_restart_mid_run_loses_and_duplicates_nothing() {
    let mut broker = kchain_testkit::Broker::start("sqlite");
    let log = kafka(&broker.brokers);
    let (key, state) = (key(), kchain_testkit::tempdir());
    let trust = trust(&key);
    // tansu's maintenance deletes every record of a topic with retention.ms=-1 on restart
    // (see docs/kafka.md): a long finite retention.
    let t = kchain_testkit::unique_name("restart");
    let config = kchain_log::TopicConfig {
        partitions: 1,
        retention_ms: Some(100 * 365 * 24 * 3600 * 1000),
    };
    log.create_topic(&t, &config).unwrap();
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
        // Stops the monitor however the test's side ends (a panic too).
        struct Stop<'s>(&'s std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _stop = Stop(&stop);
        std::thread::sleep(Duration::from_secs(2));
        broker.restart();
        // A writer of its own connection, after the restart.
        let writer_log = kafka(&broker.brokers);
        // Until the restarted broker has loaded the partition, it reports it empty.
        let up = std::time::Instant::now() + Duration::from_secs(20);
        while writer_log.end_offset(&t, 0).ok() != Some(200) && std::time::Instant::now() < up {
            std::thread::sleep(Duration::from_millis(100));
        }
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
