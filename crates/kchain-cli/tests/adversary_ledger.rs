//! Attacks on a ledger through the `kchain` binary, by someone who can write its topics but
//! holds no sealer or wallet key, and by a chained topic's writer who mints a ledger of its
//! own. Each attack runs on the embedded log and on Kafka (a private tansu):
//!
//! - a 1,000,000-byte record on the transactions topic: sealers reject it (`oversize`, the
//!   rejection capped in size) and keep sealing honest transfers, also after a restart;
//! - forged blocks (an unknown key on a random parent, another chain id, a `hash` field that
//!   names a canonical block, a broken copy of a canonical block, each followed by a replay
//!   of a genuine block): ignored with their reasons, nodes keep running, `ledger verify`
//!   exits 0;
//! - a transfer in a wallet's name with a zero signature and nonce 99: the wallet's next
//!   `tx transfer` still picks the right nonce and is sealed;
//! - a proof from a ledger minted by a topic writer key: refused; an honest proof holds
//!   with `--genesis` and with a trust file's `[[ledger]]` entry.

mod support;

#[cfg(feature = "kafka")]
use kchain_testkit::Broker;

use std::path::Path;
use std::time::Duration;

use kchain_core::{ChainId, WriterKey};
use kchain_ledger::{Block, BlockHeader, SourceRange, StoredBlock, BLOCK_VERSION};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, Record};
use serde_json::Value;
use support::{field, json, run, Env};

/// A chain name no other test uses (they share one Kafka broker).
use kchain_testkit::unique_name as unique;

/// Makes a wallet key in `dir`; returns (key path, address, public key).
fn wallet(k: &Env, dir: &Path, name: &str) -> (String, String, String) {
    let wallet = k.wallet(dir, name);
    (wallet.path, wallet.address, wallet.public)
}

/// A ledger made with the CLI: alice funded with 1000, bob, one sealer.
struct Ledger {
    k: Env,
    keys: tempfile::TempDir,
    chain: String,
    alice_key: String,
    alice: String,
    alice_public: String,
    bob: String,
    sealer_key: String,
    sealer_public: String,
    genesis: String,
    /// What `ledger init` printed: the genesis hash and the chain id.
    genesis_hash: String,
    chain_id: String,
}

impl Ledger {
    fn new(k: Env, name: &str, partitions: u32) -> Ledger {
        let keys = tempfile::tempdir().unwrap();
        let chain = unique(name);
        let (alice_key, alice, alice_public) = wallet(&k, keys.path(), "alice");
        let (_, bob, _) = wallet(&k, keys.path(), "bob");
        let (sealer_key, _, sealer_public) = wallet(&k, keys.path(), "sealer");
        let genesis = keys
            .path()
            .join("genesis.toml")
            .to_str()
            .unwrap()
            .to_owned();
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
                &partitions.to_string(),
                "--out",
                &genesis,
            ],
            "",
        );
        let out = k.ok(&["ledger", "init", "--genesis", &genesis], "");
        let (genesis_hash, chain_id) = (field(&out, "genesis"), field(&out, "chain id"));
        Ledger {
            k,
            keys,
            chain,
            alice_key,
            alice,
            alice_public,
            bob,
            sealer_key,
            sealer_public,
            genesis,
            genesis_hash,
            chain_id,
        }
    }

    fn path(&self, name: &str) -> String {
        self.keys.path().join(name).to_str().unwrap().to_owned()
    }

    fn blocks_topic(&self) -> String {
        format!("{}.blocks", self.chain)
    }

    /// `tx transfer` from alice to bob; returns the submitted JSON (`id`, `tx`, ...).
    fn transfer(&self, amount: u64) -> Value {
        json(&self.k.ok(
            &[
                "tx",
                "transfer",
                "--chain",
                &self.chain,
                "--from-key",
                &self.alice_key,
                "--to",
                &self.bob,
                "--amount",
                &amount.to_string(),
                "--json",
            ],
            "",
        ))
    }

    /// `node run --seal --until-idle`: (exit code, stdout, stderr).
    fn seal(&self, extra: &[&str]) -> (Option<i32>, String, String) {
        let mut args = vec![
            "node",
            "run",
            "--chain",
            &self.chain,
            "--seal",
            "--key",
            &self.sealer_key,
            "--block-txs",
            "1",
            "--until-idle",
            "-q",
        ];
        args.extend_from_slice(extra);
        run(&self.k, &args)
    }

    fn seal_ok(&self) {
        let (code, out, err) = self.seal(&[]);
        assert_eq!(code, Some(0), "node run: {out}{err}");
    }

    fn verify(&self) -> (Option<i32>, Value) {
        let (code, out, err) = run(
            &self.k,
            &["ledger", "verify", "--chain", &self.chain, "--json"],
        );
        assert!(!out.is_empty(), "ledger verify printed nothing: {err}");
        (code, json(&out))
    }

    fn status(&self, id: &str) -> Value {
        json(
            &self
                .k
                .ok(&["ledger", "tx", "--chain", &self.chain, id, "--json"], ""),
        )
    }

    fn balance(&self, addr: &str) -> Value {
        json(&self.k.ok(
            &["ledger", "balance", "--chain", &self.chain, addr, "--json"],
            "",
        ))
    }

    /// The log, opened as an attacker with write access opens it.
    fn log(&self) -> Box<dyn Log> {
        match &self.k.brokers {
            #[cfg(feature = "kafka")]
            Some(b) => Box::new(
                kchain_log::KafkaLog::connect(b, kchain_log::KafkaOptions::default()).unwrap(),
            ),
            #[cfg(not(feature = "kafka"))]
            Some(_) => unreachable!("Kafka tests need the kafka feature"),
            None => Box::new(
                EmbeddedLog::open(
                    self.k.data(),
                    EmbeddedOptions {
                        fsync: FsyncPolicy::Never,
                        ..EmbeddedOptions::default()
                    },
                )
                .unwrap(),
            ),
        }
    }
}

/// Reads every record of one partition: (offset, value).
fn records(log: &dyn Log, topic: &str, partition: u32) -> Vec<(u64, Vec<u8>)> {
    let end = log.end_offset(topic, partition).unwrap();
    let mut reader = log.reader(topic, partition, 0).unwrap();
    let mut out = Vec::new();
    while reader.position() < end {
        let got = reader.poll(1000, Duration::from_secs(5)).unwrap();
        assert!(
            !got.is_empty(),
            "{topic}/{partition}: nothing read before {end}"
        );
        for r in got {
            out.push((r.offset, r.record.value.unwrap_or_default()));
        }
    }
    out
}

fn append(log: &dyn Log, topic: &str, partition: u32, values: Vec<Vec<u8>>) -> Vec<u64> {
    let records: Vec<Record> = values
        .into_iter()
        .map(|v| Record {
            key: None,
            value: Some(v),
            headers: vec![],
            timestamp_ms: 1_700_000_000_000,
        })
        .collect();
    let mut a = log.appender(topic, partition).unwrap();
    let offsets = a.append(&records).unwrap();
    drop(a);
    offsets
}

// --------------------------------------------------------------------------------------
// 1. One huge record must not halt the sealers.

fn a_huge_record_is_rejected_and_sealing_goes_on(k: Env) {
    let l = Ledger::new(k, "huge", 2);
    let first = l.transfer(10);
    // Just within the broker's 1,000,000-byte limit (batch overhead included), as a producer
    // may write it: a rejection embedding it would pass the limit and stop the sealer.
    let mut huge = br#"{"type":"transfer","pad":""#.to_vec();
    huge.resize(999_850 - 2, b'x');
    huge.extend_from_slice(br#""}"#);
    let junk_at: Vec<u64> = {
        let log = l.log();
        let topic = format!("{}.transactions", l.chain);
        (0..2)
            .map(|p| append(log.as_ref(), &topic, p, vec![huge.clone()])[0])
            .collect()
    };
    let second = l.transfer(5);
    l.seal_ok();
    for t in [&first, &second] {
        let id = t["id"].as_str().unwrap();
        assert_eq!(l.status(id)["status"], "sealed", "{}", l.status(id));
    }
    assert_eq!(l.balance(&l.bob)["balance"], 15);

    // Each huge record is rejected (`oversize`), by a record that does not embed it.
    let log = l.log();
    let rejected = records(log.as_ref(), &format!("{}.rejected", l.chain), 0);
    for (p, offset) in junk_at.iter().enumerate() {
        let (_, value) = rejected
            .iter()
            .find(|(_, v)| {
                let r = json(std::str::from_utf8(v).unwrap());
                r["partition"] == p && r["offset"] == *offset
            })
            .unwrap_or_else(|| panic!("no rejection of {p}:{offset}"));
        assert!(
            value.len() < 100_000,
            "a rejection of {} bytes",
            value.len()
        );
        let r = json(std::str::from_utf8(value).unwrap());
        assert_eq!(r["reason"], "oversize", "{r}");
        assert_eq!(r["raw_len"], huge.len(), "{r}");
        assert_eq!(r["raw_sha256"].as_str().unwrap().len(), 64, "{r}");
        assert!(r.get("tx").is_none(), "{r}");
    }
    drop(log);

    // A restart does not trip on it; later transfers are sealed too.
    l.seal_ok();
    let third = l.transfer(7);
    l.seal_ok();
    assert_eq!(l.status(third["id"].as_str().unwrap())["status"], "sealed");
    let (code, report) = l.verify();
    assert_eq!(code, Some(0), "{report}");
}

// --------------------------------------------------------------------------------------
// 2. Forged blocks must not halt the nodes.

/// A block of `chain` at `height` on `prev`, sealed by `key` (with no transactions).
fn forged_block(
    chain: ChainId,
    height: u64,
    prev: [u8; 32],
    tip: &StoredBlock,
    key: &WriterKey,
) -> Vec<u8> {
    let header = BlockHeader {
        version: BLOCK_VERSION,
        chain,
        height,
        prev,
        timestamp_ms: tip.header.timestamp_ms,
        items_root: [0; 32],
        tx_count: 0,
        reward: tip.header.reward,
        sealer: key.id(),
        sources: tip
            .header
            .sources
            .iter()
            .map(|s| SourceRange {
                partition: s.partition,
                from: s.to,
                to: s.to,
            })
            .collect(),
        difficulty: 0,
        nonce: 0,
    };
    Block::seal(header, vec![], key).to_json()
}

fn forged_blocks_are_ignored_and_nodes_keep_running(k: Env) {
    let l = Ledger::new(k, "forged", 1);
    for amount in [1, 2, 3] {
        l.transfer(amount);
        l.seal_ok();
    }
    let (code, report) = l.verify();
    assert_eq!(code, Some(0), "{report}");
    assert!(report["height"].as_u64().unwrap() >= 3, "{report}");

    let topic = l.blocks_topic();
    {
        let log = l.log();
        // The canonical blocks as stored (offset = height: nothing was ignored yet).
        let stored = records(log.as_ref(), &topic, 0);
        let block = |h: usize| StoredBlock::parse(&stored[h].1).unwrap();
        let tip = block(stored.len() - 1);
        let chain = tip.header.chain;
        let stranger = WriterKey::from_seed("stranger", [66; 32]);
        let replay_b2 = stored[2].1.clone();

        // a. An unknown key, on a parent that is nowhere.
        let unknown = forged_block(chain, tip.header.height + 1, [0x5a; 32], &tip, &stranger);
        // b. Another chain id, on a parent that is nowhere.
        let other = forged_block(ChainId([9; 16]), 7, [0xa5; 32], &tip, &stranger);
        // c. A genuine block whose `hash` field names canonical block 1, then a replay of
        //    block 1's genuine child.
        let mut v: Value = serde_json::from_slice(&stored[stored.len() - 1].1).unwrap();
        v["hash"] = kchain_core::to_hex(&block(1).hash).into();
        let poisoned = serde_json::to_vec(&v).unwrap();
        // d. A copy of canonical block 1 with its signature zeroed (so its header still hashes
        //    to block 1's hash), then the replay again.
        let mut v: Value = serde_json::from_slice(&stored[1].1).unwrap();
        v["signature"] = "00".repeat(64).into();
        let zeroed = serde_json::to_vec(&v).unwrap();
        append(
            log.as_ref(),
            &topic,
            0,
            vec![
                unknown,
                other,
                poisoned,
                replay_b2.clone(),
                zeroed,
                replay_b2,
            ],
        );
    }

    let (code, report) = l.verify();
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["finding"], Value::Null, "{report}");
    let reasons: Vec<&str> = report["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    for want in [
        "unknown_sealer",
        "other_chain",
        "hash_mismatch",
        "bad_signature",
    ] {
        assert!(
            reasons.contains(&want),
            "{want} not in {reasons:?}: {report}"
        );
    }
    assert_eq!(
        reasons.iter().filter(|r| **r == "stale").count(),
        2,
        "the replays are stale: {report}"
    );

    // The node runs and seals on.
    let after = l.transfer(4);
    l.seal_ok();
    assert_eq!(l.status(after["id"].as_str().unwrap())["status"], "sealed");
    let (code, report) = l.verify();
    assert_eq!(code, Some(0), "{report}");
}

// --------------------------------------------------------------------------------------
// 3. A forged transfer must not block a wallet.

fn a_forged_transfer_does_not_move_a_wallets_nonce(k: Env) {
    let l = Ledger::new(k, "nonce", 2);
    for amount in [1, 2] {
        l.transfer(amount);
    }
    l.seal_ok();
    assert_eq!(l.balance(&l.alice)["nonce"], 2);
    // In alice's name, with no key: a zero signature and nonce 99, on every partition.
    let forged = serde_json::json!({
        "type": "transfer", "chain": l.chain_id, "from": l.alice,
        "public_key": l.alice_public, "to": l.bob, "amount": 1, "nonce": 99,
        "signature": "00".repeat(64),
    });
    let line = format!("{forged}\n");
    for p in ["0", "1"] {
        l.k.ok(&["tx", "raw", "--chain", &l.chain, "--partition", p], &line);
    }
    let next = l.transfer(3);
    assert_eq!(next["tx"]["nonce"], 3, "{next}");
    // A pending transfer of her own counts.
    let then = l.transfer(4);
    assert_eq!(then["tx"]["nonce"], 4, "{then}");
    l.seal_ok();
    for t in [&next, &then] {
        let id = t["id"].as_str().unwrap();
        assert_eq!(l.status(id)["status"], "sealed", "{}", l.status(id));
    }
    assert_eq!(l.balance(&l.alice)["nonce"], 4);
}

// --------------------------------------------------------------------------------------
// 4. A proof is bound to one ledger; a topic writer is not a sealer.

fn a_proof_from_a_minted_ledger_is_refused(k: Env, mallory_env: Env) {
    // The honest ledger, a proof of a transfer in it.
    let l = Ledger::new(k, "demo", 1);
    let id = l.transfer(10)["id"].as_str().unwrap().to_owned();
    l.seal_ok();
    let honest = l.path("honest.json");
    l.k.ok(
        &["ledger", "tx", "--chain", &l.chain, &id, "--proof", &honest],
        "",
    );

    // Mallory holds a key trusted to write `orders` and mints a ledger of the same name,
    // with itself as sealer, to prove a transfer of 999,999.
    let m = mallory_env;
    let mdir = tempfile::tempdir().unwrap();
    let (mkey, maddr, mpublic) = wallet(&m, mdir.path(), "orders-writer");
    let mgenesis = mdir
        .path()
        .join("genesis.toml")
        .to_str()
        .unwrap()
        .to_owned();
    let (_, victim, _) = wallet(&m, mdir.path(), "victim");
    m.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            &l.chain,
            "--sealer",
            &mkey,
            "--fund",
            &format!("{maddr}=1000000"),
            "--partitions",
            "1",
            "--out",
            &mgenesis,
        ],
        "",
    );
    m.ok(&["ledger", "init", "--genesis", &mgenesis], "");
    let out = m.ok(
        &[
            "tx",
            "transfer",
            "--chain",
            &l.chain,
            "--from-key",
            &mkey,
            "--to",
            &victim,
            "--amount",
            "999999",
            "--json",
        ],
        "",
    );
    let mid = json(&out)["id"].as_str().unwrap().to_owned();
    m.ok(
        &[
            "node",
            "run",
            "--chain",
            &l.chain,
            "--seal",
            "--key",
            &mkey,
            "--until-idle",
            "-q",
        ],
        "",
    );
    let forged = l.path("forged.json");
    m.ok(
        &[
            "ledger", "tx", "--chain", &l.chain, &mid, "--proof", &forged,
        ],
        "",
    );

    // The victim's trust file trusts mallory's key for `orders` only.
    let writer_only = l.path("writer-only.toml");
    std::fs::write(
        &writer_only,
        format!(
            "[[writer]]\nname = \"orders-writer\"\npublic_key = \"{mpublic}\"\n\
             topics = [\"orders\"]\n"
        ),
    )
    .unwrap();
    let (code, out, err) = run(
        &l.k,
        &["--trust", &writer_only, "ledger", "verify-proof", &forged],
    );
    assert_eq!(code, Some(1), "a writer key is no sealer: {out}{err}");
    assert!(
        err.contains("[[ledger]]") && err.contains("--genesis"),
        "{err}"
    );

    // With the honest ledger named (its genesis hash, or its chain id, and its sealer), or
    // its genesis file: the forged proof does not hold, the honest one does.
    let ledger_entry = |bind: &str| {
        format!(
            "[[writer]]\nname = \"orders-writer\"\npublic_key = \"{mpublic}\"\n\
             topics = [\"orders\"]\n\n[[ledger]]\nchain = \"{}\"\n{bind}\n\
             sealers = [{{ name = \"sealer\", public_key = \"{}\" }}]\n",
            l.chain, l.sealer_public
        )
    };
    for (name, bind) in [
        (
            "by-genesis.toml",
            format!("genesis = \"{}\"", l.genesis_hash),
        ),
        ("by-chain-id.toml", format!("chain_id = \"{}\"", l.chain_id)),
    ] {
        let trust = l.path(name);
        std::fs::write(&trust, ledger_entry(&bind)).unwrap();
        let (code, out, err) = run(
            &l.k,
            &["--trust", &trust, "ledger", "verify-proof", &forged],
        );
        assert_eq!(code, Some(3), "{name}: {out}{err}");
        assert!(out.contains("PROOF INVALID"), "{out}");
        let (code, out, err) = run(
            &l.k,
            &["--trust", &trust, "ledger", "verify-proof", &honest],
        );
        assert_eq!(code, Some(0), "{name}: {out}{err}");
    }
    // Mallory's own sealer named in an entry with the honest genesis hash: still refused
    // (its checkpoint does not cover that genesis).
    let trust = l.path("mallory-sealer.toml");
    std::fs::write(
        &trust,
        format!(
            "[[ledger]]\nchain = \"{}\"\ngenesis = \"{}\"\n\
             sealers = [{{ name = \"orders-writer\", public_key = \"{mpublic}\" }}]\n",
            l.chain, l.genesis_hash
        ),
    )
    .unwrap();
    let (code, out, err) = run(
        &l.k,
        &["--trust", &trust, "ledger", "verify-proof", &forged],
    );
    assert_eq!(code, Some(3), "{out}{err}");

    let (code, out, err) = run(
        &l.k,
        &["ledger", "verify-proof", &forged, "--genesis", &l.genesis],
    );
    assert_eq!(code, Some(3), "{out}{err}");
    let (code, out, err) = run(
        &l.k,
        &["ledger", "verify-proof", &honest, "--genesis", &l.genesis],
    );
    assert_eq!(code, Some(0), "{out}{err}");
}

// --------------------------------------------------------------------------------------
// The embedded log.

#[test]
fn embedded_a_huge_record_is_rejected_and_sealing_goes_on() {
    a_huge_record_is_rejected_and_sealing_goes_on(Env::new());
}

#[test]
fn embedded_forged_blocks_are_ignored_and_nodes_keep_running() {
    forged_blocks_are_ignored_and_nodes_keep_running(Env::new());
}

#[test]
fn embedded_a_forged_transfer_does_not_move_a_wallets_nonce() {
    a_forged_transfer_does_not_move_a_wallets_nonce(Env::new());
}

#[test]
fn embedded_a_proof_from_a_minted_ledger_is_refused() {
    a_proof_from_a_minted_ledger_is_refused(Env::new(), Env::new());
}

// --------------------------------------------------------------------------------------
// Kafka (tansu).

#[cfg(feature = "kafka")]
fn kafka() -> Env {
    Env::kafka(&Broker::shared().brokers)
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_a_huge_record_is_rejected_and_sealing_goes_on() {
    a_huge_record_is_rejected_and_sealing_goes_on(kafka());
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_forged_blocks_are_ignored_and_nodes_keep_running() {
    forged_blocks_are_ignored_and_nodes_keep_running(kafka());
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_a_forged_transfer_does_not_move_a_wallets_nonce() {
    a_forged_transfer_does_not_move_a_wallets_nonce(kafka());
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_a_proof_from_a_minted_ledger_is_refused() {
    // Under the same chain name, Mallory's ledger would share the honest topics on one
    // broker; it lives on an embedded log of its own (the proof is checked offline).
    a_proof_from_a_minted_ledger_is_refused(kafka(), Env::new());
}
