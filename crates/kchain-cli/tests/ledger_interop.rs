//! The ledger on a real Kafka-API broker (a private tansu), read by a Kafka client kchain did
//! not write: a ledger created and sealed with the `kchain` CLI, then its blocks topic read
//! with kafka-python, each record parsed as JSON with the height, hash and transactions that
//! `kchain ledger blocks --json` reports.
//!
//! Needs tansu (`scripts/broker.sh install`) and a Python with kafka-python
//! (`scripts/py-env.sh`); `scripts/test.sh` sets up both.

#![cfg(feature = "kafka")]

use serde_json::Value;

use kchain_testkit::Broker;

mod support;

use support::{kclient, Env};

fn wallet(k: &Env, name: &str) -> (String, String) {
    let wallet = k.wallet(k.dir.path(), name);
    (wallet.path, wallet.address)
}

#[test]
fn blocks_on_kafka_read_as_json_with_kafka_python() {
    let brokers = Broker::shared().brokers.clone();
    let k = Env::kafka(&brokers);
    let chain = kchain_testkit::unique_name("interop-ledger");
    let (alice_key, alice) = wallet(&k, "alice");
    let (_, bob) = wallet(&k, "bob");
    let (sealer_key, _) = wallet(&k, "sealer");
    let genesis = k.dir.path().join("genesis.toml");
    let genesis = genesis.to_str().unwrap();
    k.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            &chain,
            "--sealer",
            &sealer_key,
            "--fund",
            &format!("{alice}=1000"),
            "--partitions",
            "2",
            "--out",
            genesis,
        ],
        "",
    );
    k.ok(&["ledger", "init", "--genesis", genesis], "");
    let mut ids = Vec::new();
    for amount in 1..=7 {
        let out = k.ok(
            &[
                "tx",
                "transfer",
                "--chain",
                &chain,
                "--from-key",
                &alice_key,
                "--to",
                &bob,
                "--amount",
                &amount.to_string(),
                "--json",
            ],
            "",
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    k.ok(
        &[
            "node",
            "run",
            "--chain",
            &chain,
            "--seal",
            "--key",
            &sealer_key,
            "--block-txs",
            "3",
            "--until-idle",
            "-q",
        ],
        "",
    );
    let ours: Vec<Value> = k
        .ok(&["ledger", "blocks", "--chain", &chain, "--json"], "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(ours.len() >= 2, "{ours:?}");

    let blocks_topic = format!("{chain}.blocks");
    let theirs: Vec<Value> = kclient(&[
        "json",
        "--client",
        "kafka-python",
        "-b",
        &brokers,
        "-t",
        &blocks_topic,
        "-p",
        "0",
    ])
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    // One sealer, no races: every record is a canonical block, in order.
    assert_eq!(theirs.len(), ours.len());
    let mut sealed = Vec::new();
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(t["offset"], o["offset"]);
        let block = &t["value"];
        assert_eq!(block["height"], o["height"], "{block}");
        assert_eq!(block["hash"], o["hash"], "{block}");
        assert_eq!(block["prev"], o["prev"], "{block}");
        let txs = block["transactions"].as_array().unwrap();
        assert_eq!(txs.len() as u64, o["tx_count"].as_u64().unwrap(), "{block}");
        for s in txs {
            assert_eq!(s["tx"]["type"], "transfer", "{s}");
            assert_eq!(s["tx"]["to"], bob.as_str(), "{s}");
            sealed.push(s["tx"]["amount"].as_u64().unwrap());
        }
    }
    sealed.sort_unstable();
    assert_eq!(sealed, (1..=7).collect::<Vec<u64>>());
    // And kchain agrees about each transaction.
    for id in &ids {
        let out = k.ok(&["ledger", "tx", "--chain", &chain, id, "--json"], "");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["status"], "sealed", "{v}");
    }
}

// The ledger part of `kchain demo` (which the binary runs with `-b` too), on the broker.

#[test]
fn the_demo_ledger_tour_behaves_as_it_says_on_kafka() {
    let log = kchain_log::KafkaLog::connect(
        &Broker::shared().brokers,
        kchain_log::KafkaOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let chain = format!(
        "demo-ledger-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    assert!(kchain_cli::demo::ledger_tour(&log, dir.path(), &chain).unwrap());
}
