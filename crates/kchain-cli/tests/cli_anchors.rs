//! What anchors a verification, and on which log: pins name the log they were taken on,
//! `verify` says when nothing anchors a topic, and every command names its backend.

mod support;

use support::Env;

/// A topic name of its own on a shared broker.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A chained topic of three records on the embedded log, with a trusted key.
fn embedded_orders(topic: &str) -> Env {
    let env = Env::new();
    env.ok(&["keygen", "--name", "shop"], "");
    env.ok(&["topic", "create", topic, "--partitions", "1"], "");
    env.ok(&["produce", topic], "a\nb\nc\n");
    env
}

#[test]
fn verify_warns_when_nothing_anchors_the_topic() {
    let env = embedded_orders("orders");
    let out = env.run(&["verify", "orders"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: orders: partition(s) 0: no pin and no trusted checkpoint")
            && err.contains("kchain trust pin orders"),
        "{err}"
    );
    let out = env.run(&["verify", "orders", "--json"], "");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["warnings"].to_string().contains("no pin"),
        "{report}"
    );
    assert_eq!(report["backend"]["kind"], "embedded", "{report}");
    let log = report["backend"]["log"].as_str().unwrap();
    assert!(log.starts_with("embedded:/"), "{report}");
    // Pinned, the warning is gone.
    env.ok(&["trust", "pin", "orders"], "");
    let out = env.run(&["verify", "orders"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("no pin"), "{}", stderr(&out));
}

#[test]
fn every_command_names_its_backend_unless_quiet() {
    let env = embedded_orders("orders");
    let out = env.run(&["topic", "list"], "");
    assert_eq!(out.status.code(), Some(0));
    let line = format!("kchain: embedded log {}", env.data().display());
    assert!(stderr(&out).contains(&line), "{}", stderr(&out));
    let out = env.run(&["-q", "topic", "list"], "");
    assert!(!stderr(&out).contains("embedded log"), "{}", stderr(&out));
}

#[test]
fn kafka_properties_without_brokers_are_an_error() {
    let env = embedded_orders("orders");
    env.error(
        &["-X", "security.protocol=SASL_SSL", "topic", "list"],
        "-X given without -b",
    );
}

#[test]
fn a_pin_without_a_log_still_applies_with_a_note() {
    let env = embedded_orders("orders");
    env.ok(&["trust", "pin", "orders"], "");
    // A trust file written before pins named their log.
    let path = env.config().join("trust.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let old: String = text
        .lines()
        .filter(|l| !l.starts_with("log = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, old).unwrap();
    env.ok(&["produce", "orders"], "d\n");
    let out = env.run(&["verify", "orders"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("some pins name no log"),
        "{}",
        stderr(&out)
    );
}

#[cfg(feature = "kafka")]
use kchain_testkit::Broker;

/// The README's sequence: pin a topic on the embedded log, then verify a brand-new topic of
/// the same name on Kafka. The embedded log's pins name another chain: not applied, said so,
/// no false alarm.
#[cfg(feature = "kafka")]
#[test]
fn a_pin_taken_on_the_embedded_log_does_not_apply_on_kafka() {
    let brokers = Broker::shared().brokers.clone();
    let topic = unique("pinned");
    let env = embedded_orders(&topic);
    env.ok(&["trust", "pin", &topic], "");
    fn on_kafka<'a>(b: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        [&["-b", b][..], args].concat()
    }
    let b = brokers.as_str();
    env.ok(
        &on_kafka(b, &["topic", "create", &topic, "--partitions", "1"]),
        "",
    );
    env.ok(&on_kafka(b, &["produce", &topic]), "x\ny\n");
    let out = env.run(&on_kafka(b, &["verify", &topic, "--json"]), "");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("{topic} is pinned on embedded log /"))
            && err.contains("not on kafka cluster ")
            && err.contains("pins not applied"),
        "{err}"
    );
    assert!(
        err.contains(&format!("kchain: kafka brokers {brokers}")),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["backend"]["kind"], "kafka", "{report}");
    assert!(report["warnings"].to_string().contains("pins not applied"));
    // Pinned here too: both pins stay, each applies on its own log.
    env.ok(&on_kafka(b, &["trust", "pin", &topic]), "");
    let out = env.run(&on_kafka(b, &["verify", &topic]), "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not applied"), "{}", stderr(&out));
    let out = env.run(&["verify", &topic], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not applied"), "{}", stderr(&out));
    // And truncation on Kafka is now caught against the Kafka pin: extend, then check the
    // embedded pin still holds the embedded chain.
    env.ok(&["produce", &topic], "d\n");
    let out = env.run(&["verify", &topic], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
