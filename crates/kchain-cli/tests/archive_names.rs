//! Explicit chain names: a topic restored from its archive or mirrored record for record
//! under another topic name verifies, with a `[[topic]] name = .., chain = ..` entry in the
//! trust file, against the checkpoints of the topic it was written to; without the entry, or
//! with another chain name, it does not.

mod support;

use std::fs;
use std::path::PathBuf;

use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
use support::Env;

/// A log holding `orders` (300 records, a checkpoint), archived to `<dir>/a`.
struct Fixture {
    env: Env,
}

impl Fixture {
    fn new() -> Fixture {
        let env = Env::new();
        env.ok(&["keygen", "--name", "acme"], "");
        let trust = env.config().join("trust.toml");
        let mut text = fs::read_to_string(&trust).unwrap();
        text.push_str("\n[policy]\nwitnesses = 0\n");
        fs::write(&trust, text).unwrap();
        env.ok(&["topic", "create", "orders"], "");
        let input: String = (0..300).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        env.ok(
            &["produce", "orders", "--batch", "100", "--no-checkpoints"],
            &input,
        );
        env.ok(&["checkpoint", "publish", "orders"], "");
        let f = Fixture { env };
        let url = f.url();
        f.env.ok(&["archive", "orders", "--to", &url, "--json"], "");
        f
    }

    fn url(&self) -> String {
        format!("file://{}", self.archive_dir().display())
    }

    fn archive_dir(&self) -> PathBuf {
        self.env.dir.path().join("a")
    }

    fn log(&self) -> EmbeddedLog {
        EmbeddedLog::open(self.env.data(), EmbeddedOptions::default()).unwrap()
    }

    /// `verify <topic> --json` with extra arguments: exit code and report.
    fn verify(&self, env: &Env, topic: &str, extra: &[&str]) -> (i32, serde_json::Value) {
        let mut args = vec!["verify", topic, "--json"];
        args.extend_from_slice(extra);
        let out = env.run(&args, "");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let v = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}{stderr}"));
        (out.status.code().unwrap(), v)
    }
}

/// The trusted checkpoints a report holds each partition to.
fn newest_sizes(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["checkpoints"]["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|p| p["newest"]["size"].clone())
        .collect()
}

#[test]
fn a_topic_restored_under_another_name_verifies_against_the_original_checkpoints() {
    let f = Fixture::new();
    let url = f.url();
    let out = f.env.ok(
        &[
            "archive", "restore", &url, "--from", "orders", "--to", "copy",
        ],
        "",
    );
    assert!(out.contains("copy/0: restored 300 records"), "{out}");
    let original = kchain_topic::tamper::read_all(&f.log(), "orders", 0).unwrap();
    let restored = kchain_topic::tamper::read_all(&f.log(), "copy", 0).unwrap();
    assert_eq!(restored, original);

    // Without the trust file entry: held to the chain of `copy`, which it is not.
    let (code, v) = f.verify(&f.env, "copy", &[]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["ok"], false, "{v}");

    // With it: the chain of `orders`, against the checkpoints published for `orders`.
    f.env
        .ok(&["trust", "chain", "copy", "--name", "orders"], "");
    let trust = fs::read_to_string(f.env.config().join("trust.toml")).unwrap();
    assert!(trust.contains("chain = \"orders\""), "{trust}");
    let (code, v) = f.verify(&f.env, "copy", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(newest_sizes(&v), vec![serde_json::json!(300)], "{v}");
    // And it can be pinned and verified again under its pins.
    f.env.ok(&["trust", "pin", "copy"], "");
    let (code, v) = f.verify(&f.env, "copy", &[]);
    assert_eq!(code, 0, "{v}");
}

/// Another cluster (a data directory of its own, the trust file copied): the restored
/// topic verifies against the archive's checkpoint of `orders`, handed over as a file.
#[test]
fn a_restore_into_another_log_verifies_against_the_handed_checkpoint() {
    let f = Fixture::new();
    let other = Env::new();
    fs::create_dir_all(other.config()).unwrap();
    fs::copy(
        f.env.config().join("trust.toml"),
        other.config().join("trust.toml"),
    )
    .unwrap();
    let url = f.url();
    other.ok(
        &[
            "archive",
            "restore",
            &url,
            "--from",
            "orders",
            "--to",
            "orders-dr",
        ],
        "",
    );
    other.ok(&["trust", "chain", "orders-dr", "--name", "orders"], "");
    let checkpoint = f.archive_dir().join("orders/0/checkpoint");
    let checkpoint = checkpoint.display().to_string();
    let (code, v) = f.verify(&other, "orders-dr", &["--checkpoint", &checkpoint]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(newest_sizes(&v), vec![serde_json::json!(300)], "{v}");
}

/// MirrorMaker-style: the records copied as they are into another topic by a plain
/// consumer and producer, no archive involved.
#[test]
fn a_mirrored_copy_verifies_under_its_chain_name_and_only_under_it() {
    let f = Fixture::new();
    let log = f.log();
    let records = kchain_topic::tamper::read_all(&log, "orders", 0).unwrap();
    log.create_topic("mirror", &TopicConfig::default()).unwrap();
    let mut a = log.appender("mirror", 0).unwrap();
    for batch in records.chunks(64) {
        a.append(batch).unwrap();
    }
    a.flush().unwrap();
    drop(a);
    drop(log);

    // No entry: findings, no crash, no pass.
    let (code, v) = f.verify(&f.env, "mirror", &[]);
    assert_eq!((code, &v["ok"]), (3, &serde_json::json!(false)), "{v}");
    // A chain name the records were not written under: findings too.
    f.env
        .ok(&["trust", "chain", "mirror", "--name", "payments"], "");
    let (code, v) = f.verify(&f.env, "mirror", &[]);
    assert_eq!((code, &v["ok"]), (3, &serde_json::json!(false)), "{v}");
    // The chain name they were written under: clean, against the checkpoints of `orders`.
    f.env
        .ok(&["trust", "chain", "mirror", "--name", "orders"], "");
    let (code, v) = f.verify(&f.env, "mirror", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(newest_sizes(&v), vec![serde_json::json!(300)], "{v}");
    // Cleared: held to its own name again.
    f.env.ok(&["trust", "chain", "mirror", "--clear"], "");
    let trust = fs::read_to_string(f.env.config().join("trust.toml")).unwrap();
    assert!(!trust.contains("chain ="), "{trust}");
    let (code, _) = f.verify(&f.env, "mirror", &[]);
    assert_eq!(code, 3);
}

/// Kafka: the archive restored under another name into a broker of its own, verified there
/// against the archive's checkpoint of `orders`.
#[cfg(feature = "kafka")]
#[test]
fn a_restore_into_kafka_under_another_name_verifies() {
    use kchain_testkit::Broker;
    let f = Fixture::new();
    let broker = Broker::start("sqlite");
    let k = Env::kafka(&broker.brokers);
    fs::create_dir_all(k.config()).unwrap();
    fs::copy(
        f.env.config().join("trust.toml"),
        k.config().join("trust.toml"),
    )
    .unwrap();
    let url = f.url();
    let out = k.ok(
        &[
            "archive",
            "restore",
            &url,
            "--from",
            "orders",
            "--to",
            "orders-dr",
        ],
        "",
    );
    assert!(out.contains("orders-dr/0: restored 300 records"), "{out}");
    let checkpoint = f.archive_dir().join("orders/0/checkpoint");
    let checkpoint = checkpoint.display().to_string();
    let (code, v) = f.verify(&k, "orders-dr", &["--checkpoint", &checkpoint]);
    assert_eq!(code, 3, "{v}");
    k.ok(&["trust", "chain", "orders-dr", "--name", "orders"], "");
    let (code, v) = f.verify(&k, "orders-dr", &["--checkpoint", &checkpoint]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(newest_sizes(&v), vec![serde_json::json!(300)], "{v}");
}
