//! Interoperability on a real Kafka-API broker (a private tansu): what kchain writes reads
//! correctly with Kafka clients kchain did not write (kafka-python, confluent-kafka), and
//! what those clients forge into a chained partition is reported by `kchain verify` at its
//! exact offset.
//!
//! Needs tansu (`scripts/broker.sh install`) and a Python with both clients
//! (`scripts/py-env.sh`); `scripts/test.sh` sets up both.

#![cfg(feature = "kafka")]

use base64::Engine as _;

use kchain_testkit::Broker;

mod support;

use support::{kclient, Env as Kchain};

fn kchain() -> Kchain {
    let k = Kchain::kafka(&Broker::shared().brokers);
    k.ok(&["keygen", "--name", "interop"], "");
    k
}

/// A topic name no other test (or earlier run against the same broker) uses.
use kchain_testkit::unique_name as topic;

fn b64(v: &serde_json::Value) -> Option<Vec<u8>> {
    v.as_str()
        .map(|s| base64::engine::general_purpose::STANDARD.decode(s).unwrap())
}

#[test]
fn third_party_clients_read_kchain_records_unchanged() {
    let k = kchain();
    let t = topic("interop-read");
    k.ok(&["topic", "create", &t, "--partitions", "2"], "");
    let input: String = (0..60)
        .map(|i| format!("cust-{}:{{\"n\":{i},\"é\":\"ü\"}}\n", i % 7))
        .collect();
    k.ok(
        &[
            "produce",
            &t,
            "-K",
            ":",
            "-H",
            "source=erp",
            "-H",
            "trace=42",
        ],
        &input,
    );
    let ours: Vec<serde_json::Value> = k
        .ok(&["consume", &t, "-e", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ours.len(), 60);
    for client in ["kafka-python", "confluent"] {
        let mut theirs = Vec::new();
        for p in ["0", "1"] {
            for line in kclient(&[
                "read",
                "--client",
                client,
                "-b",
                k.brokers.as_deref().unwrap(),
                "-t",
                &t,
                "-p",
                p,
            ])
            .lines()
            {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                v["partition"] = p.parse::<u64>().unwrap().into();
                theirs.push(v);
            }
        }
        assert_eq!(theirs.len(), 60, "{client}");
        for o in &ours {
            let t = theirs
                .iter()
                .find(|t| t["partition"] == o["partition"] && t["offset"] == o["offset"])
                .unwrap_or_else(|| panic!("{client} did not see {o}"));
            assert_eq!(
                b64(&t["key"]).unwrap(),
                o["key"].as_str().unwrap().as_bytes(),
                "{client}"
            );
            assert_eq!(
                b64(&t["value"]).unwrap(),
                o["value"].as_str().unwrap().as_bytes(),
                "{client}"
            );
            assert_eq!(t["timestamp"], o["timestamp"], "{client}");
            let app: Vec<(String, Vec<u8>)> = t["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_owned(),
                        b64(&h[1]).unwrap_or_default(),
                    )
                })
                .filter(|(n, _)| !n.starts_with("kchain."))
                .collect();
            assert_eq!(
                app,
                vec![
                    ("source".into(), b"erp".to_vec()),
                    ("trace".into(), b"42".to_vec())
                ],
                "{client}"
            );
        }
    }
}

#[test]
fn records_forged_with_third_party_clients_are_caught_at_their_offset() {
    let k = kchain();
    for client in ["kafka-python", "confluent"] {
        for (mode, kind) in [
            ("copy", "inserted"),
            ("recompute", "unsigned"),
            ("plain", "foreign_writer"),
        ] {
            let t = topic(&format!("interop-{mode}"));
            k.ok(&["topic", "create", &t], "");
            let input: String = (0..25).map(|i| format!("event {i}\n")).collect();
            k.ok(&["produce", &t, "--batch", "10", "-H", "app=x"], &input);
            k.ok(&["verify", &t], "");
            let offset: u64 = kclient(&[
                "forge",
                "--client",
                client,
                "-b",
                k.brokers.as_deref().unwrap(),
                "-t",
                &t,
                "-p",
                "0",
                "--mode",
                mode,
            ])
            .trim()
            .parse()
            .unwrap();
            assert_eq!(offset, 25, "{client} {mode}");
            let out = k.run(&["verify", &t, "--json"], "");
            assert_eq!(
                out.status.code(),
                Some(3),
                "{client} {mode}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let f = &v["partitions"][0]["finding"];
            assert_eq!(f["offset"], offset, "{client} {mode}: {f}");
            assert_eq!(f["kind"], kind, "{client} {mode}: {f}");
            assert_eq!(v["partitions"][0]["entries"], 25, "{client} {mode}");
        }
    }
}

#[test]
fn third_party_clients_read_encrypted_records_as_opaque_bytes() {
    let k = kchain();
    let t = topic("interop-encrypted");
    k.ok(&["topic", "create", &t], "");
    k.ok(&["key", "new"], "");
    let input: String = (0..10)
        .map(|i| format!("c{i}:{{\"card\":{i}}}\n"))
        .collect();
    k.ok(&["produce", &t, "-K", ":", "--encrypt"], &input);
    let ours: Vec<serde_json::Value> = k
        .ok(&["consume", &t, "-e", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ours.len(), 10);
    for client in ["kafka-python", "confluent"] {
        let brokers = k.brokers.as_deref().unwrap();
        let args = [
            "read", "--client", client, "-b", brokers, "-t", &t, "-p", "0",
        ];
        let theirs: Vec<serde_json::Value> = kclient(&args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(theirs.len(), 10, "{client}");
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!(o["encryption"], "decrypted", "{o}");
            let plain = o["value"].as_str().unwrap().as_bytes();
            let value = b64(&t["value"]).unwrap();
            // The client sees the ciphertext: nonce, ciphertext, tag; never the plaintext.
            assert_eq!(value.len(), plain.len() + 28, "{client}");
            assert!(!value.windows(6).any(|w| w == b"\"card\""), "{client}");
            assert_eq!(
                b64(&t["key"]).unwrap(),
                o["key"].as_str().unwrap().as_bytes()
            );
            let enc = t["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == "kchain.enc")
                .and_then(|h| b64(&h[1]))
                .unwrap_or_else(|| panic!("{client}: no kchain.enc header in {t}"));
            let key_id = o["key_id"].as_str().unwrap();
            assert_eq!(enc, format!("aes256gcm:{key_id}").into_bytes(), "{client}");
        }
    }
    k.ok(&["verify", &t], "");
}
