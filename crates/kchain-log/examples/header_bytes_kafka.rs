//! What the chain headers' bytes cost on Kafka: the Kafka counterpart of `header_bytes`.
//! Produces RECORDS records of a 256-byte value with no headers (raw), with the three text
//! headers every chained record carries (`kchain.v`, `kchain.height`, `kchain.prev` as 64 hex
//! digits), and with one binary header of the same facts (41 bytes, the `kchain.v` = 2
//! layout docs/decisions.md weighs), each kind to a topic of its own, through the appender's
//! batches in flight (`send`/`receive`, as the chain writer does), then reads each topic back
//! from its start. Prints the median produce and read rates of each kind over interleaved
//! rounds (the kinds' order rotates each round), and each as a ratio of raw's. Each topic is
//! deleted once read, so that the broker does not fill up (use a broker whose DeleteTopics
//! deletes only the topic named: tansu's memory engine, not its sqlite engine).
//!
//! `cargo run --release -p kchain-log --features kafka --example header_bytes_kafka --
//! BROKERS [ROUNDS] [RECORDS]` (defaults 3 and 300,000).

use std::time::{Duration, Instant};

#[path = "support/header_kinds.rs"]
mod header_kinds;

use header_kinds::{records, KINDS};
use kchain_log::{KafkaLog, KafkaOptions, Log, Record, TopicConfig};

const BATCH: usize = 8192;

/// Produces `recs` to a new topic `name` in batches in flight, as the chain writer hands
/// them over; the time it took (the batches are copied out of `recs` before the clock
/// starts).
fn produce(log: &KafkaLog, name: &str, recs: &[Record]) -> Duration {
    log.create_topic(name, &TopicConfig::default())
        .expect("a topic");
    let mut app = log.appender(name, 0).expect("its appender");
    assert!(app.pipelines(), "a Kafka appender keeps batches in flight");
    let batches: Vec<Vec<Record>> = recs.chunks(BATCH).map(<[Record]>::to_vec).collect();
    let t = Instant::now();
    for batch in batches {
        app.send(batch).expect("a send");
    }
    while app.receive().expect("a receive").is_some() {}
    t.elapsed()
}

/// Reads `n` records of `name` from its start; the time it took.
fn read(log: &KafkaLog, name: &str, n: usize) -> Duration {
    let mut reader = log.reader(name, 0, 0).expect("a reader");
    let t = Instant::now();
    let mut got = 0;
    while got < n {
        let polled = reader
            .poll(n - got, Duration::from_secs(10))
            .expect("a poll");
        assert!(!polled.is_empty(), "{name}: only {got} of {n} records");
        got += polled.len();
    }
    t.elapsed()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let brokers = args
        .next()
        .expect("usage: header_bytes_kafka BROKERS [ROUNDS] [RECORDS]");
    let rounds: usize = args.next().map_or(3, |r| r.parse().expect("ROUNDS"));
    let n: usize = args.next().map_or(300_000, |r| r.parse().expect("RECORDS"));
    let log = KafkaLog::connect(&brokers, KafkaOptions::default()).expect("the brokers");
    let kinds = KINDS;
    let sets: Vec<Vec<Record>> = kinds.iter().map(|k| records(k, n)).collect();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut produced = vec![Vec::new(); kinds.len()];
    let mut reads = vec![Vec::new(); kinds.len()];
    for round in 0..rounds {
        for i in 0..kinds.len() {
            let k = (i + round) % kinds.len();
            let name = format!("header-bytes-{stamp}-{round}-{}", kinds[k]);
            produced[k].push(produce(&log, &name, &sets[k]));
            reads[k].push(read(&log, &name, n));
            log.delete_topic(&name).expect("the topic deleted");
        }
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let raw = (rate(median(&mut produced[0])), rate(median(&mut reads[0])));
    for (k, kind) in kinds.iter().enumerate() {
        let (p, r) = (rate(median(&mut produced[k])), rate(median(&mut reads[k])));
        println!(
            "{kind:>6}: produce {p:>9.0}/s ({:.3} of raw), read {r:>9.0}/s ({:.3} of raw)",
            p / raw.0,
            r / raw.1,
        );
    }
}
