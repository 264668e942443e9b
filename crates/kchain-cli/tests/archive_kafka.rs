//! The archive round trip on Kafka (a tansu broker of the test's own): produce, archive,
//! the broker's retention deletes the archived records, `verify --archive` checks the
//! archived prefix from the archive and the rest from the broker as one chain from genesis,
//! and the archive restored under another topic name verifies against the original
//! checkpoints.
//!
//! What tansu 0.6 does, and why the test is shaped so (docs/archive.md):
//! - DeleteRecords is not implemented (`todo!()` in its storage engines): the request panics
//!   the broker's storage, which answers nothing after it. `archive --apply-retention`
//!   sends DeleteRecords only when it finds archived records older than the topic's
//!   retention, so here the broker's own retention deletes them instead.
//! - Its retention runs in the broker's maintenance (at start, then every 10 minutes unless
//!   the storage URL says `?maintenance_interval=...`) and deletes single records whose
//!   timestamp is older than `retention.ms`; the log start offset (ListOffsets earliest)
//!   becomes the first record left. It treats `retention.ms=-1` as 0: a topic that keeps its
//!   records forever loses them all, so the checkpoints topic is created here with a long
//!   retention.
//!
//! The old records are written with timestamps two hours back (through the library: the
//! binary stamps records with the current time), the new ones now, on a topic that keeps
//! records one hour; a restart of the broker runs its maintenance.

#![cfg(feature = "kafka")]

mod support;

use std::fs;
use std::time::{Duration, Instant};

use kchain_core::Item;
use kchain_log::{KafkaLog, KafkaOptions, Log, TopicConfig};
use kchain_testkit::Broker;
use kchain_topic::{ChainWriter, WriterOptions};
use support::{json, Env};

const HOUR_MS: i64 = 3_600_000;

fn connect(brokers: &str) -> KafkaLog {
    KafkaLog::connect(brokers, KafkaOptions::default()).unwrap()
}

/// Appends records `from..to` of `orders` with timestamps two hours old, signed with the
/// test's writer key, as the binary's producer would.
fn produce_old(env: &Env, log: &KafkaLog, from: usize, to: usize) {
    let key = kchain_topic::files::read_key_file(&env.config().join("writer.key")).unwrap();
    let mut w = ChainWriter::open(log, "orders", 0, &key, WriterOptions::default()).unwrap();
    let old = kchain_core::time::now_ms() - 2 * HOUR_MS;
    let items: Vec<Item> = (from..to)
        .map(|i| Item {
            key: None,
            value: Some(format!("{{\"n\":{i}}}").into_bytes()),
            headers: Vec::new(),
            timestamp_ms: old + i as i64,
        })
        .collect();
    for chunk in items.chunks(100) {
        w.append(chunk.to_vec()).unwrap();
    }
    w.flush().unwrap();
}

/// `verify TOPIC ... --json`: the exit code and the report.
fn verify(env: &Env, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = env.run(&all, "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 3,
        "{code}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, json(&text))
}

#[test]
fn kafka_round_trip_archive_broker_retention_verify_from_genesis_restore() {
    let mut broker = Broker::start("sqlite");
    let env = Env::kafka(&broker.brokers);
    env.ok(&["keygen", "--name", "acme"], "");
    let trust = env.config().join("trust.toml");
    let mut text = fs::read_to_string(&trust).unwrap();
    text.push_str("\n[policy]\nwitnesses = 0\n");
    fs::write(&trust, text).unwrap();
    let archive = env.dir.path().join("a");
    let url = format!("file://{}", archive.display());
    let state = env.dir.path().join("state").display().to_string();

    // 300 records two hours old, 200 new ones, a checkpoint of all 500, archived.
    {
        let log = connect(&broker.brokers);
        let hour = TopicConfig {
            partitions: 1,
            retention_ms: Some(HOUR_MS),
        };
        log.create_topic("orders", &hour).unwrap();
        let years = TopicConfig {
            partitions: 1,
            retention_ms: Some(100 * 365 * 24 * HOUR_MS),
        };
        log.create_topic("orders.checkpoints", &years).unwrap();
        produce_old(&env, &log, 0, 300);
    }
    let input: String = (300..500).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    env.ok(
        &["produce", "orders", "--batch", "100", "--no-checkpoints"],
        &input,
    );
    env.ok(&["checkpoint", "publish", "orders"], "");
    let v = json(&env.ok(&["archive", "orders", "--to", &url, "--json"], ""));
    assert_eq!(v["chains"][0]["size"], 500, "{v}");

    // The broker's retention (its maintenance, run at start) deletes the old records.
    broker.restart();
    let log = connect(&broker.brokers);
    let deadline = Instant::now() + Duration::from_secs(60);
    while log.start_offset("orders", 0).unwrap() == 0 {
        assert!(Instant::now() < deadline, "the broker deleted nothing");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(log.start_offset("orders", 0).unwrap(), 300);
    assert_eq!(log.end_offset("orders", 0).unwrap(), 500);

    // The archive (0..300 from it) and the broker's log (300..500), one chain from genesis.
    let (code, v) = verify(&env, &["orders", "--archive", &url, "--state", &state]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chains"][0]["ok"], true, "{v}");
    let l = &v["log"][0];
    assert_eq!(
        (
            &l["start_offset"],
            &l["resumed_after"],
            &l["entries"],
            &l["ok"]
        ),
        (
            &serde_json::json!(300),
            &serde_json::json!(299),
            &serde_json::json!(500),
            &serde_json::json!(true)
        ),
        "{v}"
    );
    // Without the archive, the log does not start at genesis: a finding, as before.
    let (code, v) = verify(&env, &["orders"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["partitions"][0]["finding"]["offset"], 300, "{v}");

    // --apply-retention finds nothing archived and expired left in the log: the broker is
    // not asked to delete anything, and the run says why.
    let v = json(&env.ok(
        &[
            "archive",
            "orders",
            "--to",
            &url,
            "--apply-retention",
            "--json",
        ],
        "",
    ));
    let r = &v["retention"][0];
    assert_eq!(
        (&r["start_before"], &r["start_after"]),
        (&300.into(), &300.into()),
        "{v}"
    );
    assert!(
        r["skipped"]
            .as_str()
            .unwrap()
            .contains("older than the retention"),
        "{v}"
    );

    // Restored from the archive under another name, into the same cluster: the same chain,
    // verified against the checkpoints published for `orders`.
    let out = env.ok(
        &[
            "archive",
            "restore",
            &url,
            "--from",
            "orders",
            "--to",
            "orders-restored",
        ],
        "",
    );
    assert!(
        out.contains("orders-restored/0: restored 500 records"),
        "{out}"
    );
    env.ok(
        &["trust", "chain", "orders-restored", "--name", "orders"],
        "",
    );
    let (code, v) = verify(&env, &["orders-restored"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["checkpoints"]["partitions"][0]["newest"]["size"], 500,
        "{v}"
    );
}
