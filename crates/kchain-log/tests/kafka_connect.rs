//! `KafkaLog::connect` against brokers that are not there, that never answer, and that are:
//! a refused connection fails within seconds and says why, librdkafka's `socket.timeout.ms`
//! bounds the wait for a silent one, and a reachable broker still connects, also by a name
//! (`localhost`) that resolves to an address it does not listen on first.
//!
//! Run with `cargo test -p kchain-log --features kafka --test kafka_connect`; tansu must be
//! installed (`scripts/broker.sh install`).

#![cfg(feature = "kafka")]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use kchain_log::{KafkaLog, KafkaOptions, Log};
use kchain_testkit::Broker;

/// Connects and returns the error text and how long it took to come.
fn failure(brokers: &str, options: KafkaOptions) -> (String, Duration) {
    let start = Instant::now();
    let err = KafkaLog::connect(brokers, options)
        .err()
        .unwrap_or_else(|| panic!("connected to {brokers}"));
    let took = start.elapsed();
    eprintln!("{brokers}: {err} (after {took:?})");
    (err.to_string(), took)
}

#[test]
fn a_refused_connection_fails_within_seconds_and_says_why() {
    let (text, took) = failure("127.0.0.1:1", KafkaOptions::default());
    assert!(
        text.contains("cannot reach broker 127.0.0.1:1 (connection refused)"),
        "{text}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}: {text}");
}

#[test]
fn socket_timeout_ms_bounds_the_wait_for_a_silent_broker() {
    // Accepts connections (the kernel's backlog does) and never answers a request.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let brokers = silent.local_addr().unwrap().to_string();
    let options = KafkaOptions::default().property("socket.timeout.ms", "1500");
    let (text, took) = failure(&brokers, options);
    assert!(
        text.contains(&format!("cannot reach broker {brokers}")),
        "{text}"
    );
    assert!(took >= Duration::from_millis(1400), "took {took:?}: {text}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {text}");
}

#[test]
fn a_reachable_broker_still_connects() {
    let broker = Broker::shared();
    let port = broker.brokers.rsplit(':').next().unwrap();
    for brokers in [broker.brokers.clone(), format!("localhost:{port}")] {
        let start = Instant::now();
        let log = KafkaLog::connect(&brokers, KafkaOptions::default())
            .unwrap_or_else(|e| panic!("{brokers}: {e}"));
        log.list_topics().unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "{brokers}");
    }
}
