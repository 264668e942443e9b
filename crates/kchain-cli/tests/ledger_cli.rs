//! The ledger CLI end to end on the embedded backend: wallets, a genesis, transactions (one
//! to be rejected), a sealer run until idle, what clients are told, `ledger verify` intact
//! (exit 0), and a stored block with an amount edited afterwards: `ledger verify` exits 3
//! with the finding's kind and offset.

mod support;

use std::path::Path;

use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log};
use serde_json::Value;
use support::{json, run, Env};

/// Makes a wallet key in `dir`; returns (key path, address).
fn wallet(k: &Env, dir: &Path, name: &str) -> (String, String) {
    let wallet = k.wallet(dir, name);
    assert_eq!(wallet.address.len(), 40, "{}", wallet.address);
    (wallet.path, wallet.address)
}

fn embedded(dir: &Path, create: bool) -> EmbeddedLog {
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::Never,
        ..EmbeddedOptions::default()
    };
    if create {
        EmbeddedLog::create(dir, opts).unwrap()
    } else {
        EmbeddedLog::open(dir, opts).unwrap()
    }
}

#[test]
fn ledger_end_to_end_then_an_edited_amount_is_found_at_its_offset() {
    let k = Env::new();
    let keys = tempfile::tempdir().unwrap();
    let (alice_key, alice) = wallet(&k, keys.path(), "alice");
    let (bob_key, bob) = wallet(&k, keys.path(), "bob");
    let (sealer_key, sealer) = wallet(&k, keys.path(), "sealer");
    let genesis = keys.path().join("genesis.toml");
    let genesis = genesis.to_str().unwrap();
    k.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            "demo",
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

    let submit = |args: &[&str]| -> String {
        let mut all = vec!["tx"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--chain", "demo", "--json"]);
        json(&k.ok(&all, ""))["id"].as_str().unwrap().to_owned()
    };
    let to_bob = submit(&[
        "transfer",
        "--from-key",
        &alice_key,
        "--to",
        &bob,
        "--amount",
        "10",
    ]);
    let again = submit(&[
        "transfer",
        "--from-key",
        &alice_key,
        "--to",
        &bob,
        "--amount",
        "5",
    ]);
    let scan = submit(&[
        "data",
        "--key",
        &alice_key,
        "--payload",
        r#"{"scan":"dock-7","temp":3.5}"#,
    ]);
    // Bob has nothing yet in any state a sealer can see before this one: an overdraft.
    let overdraft = submit(&[
        "transfer",
        "--from-key",
        &bob_key,
        "--to",
        &alice,
        "--amount",
        "5000",
    ]);

    let out = k.ok(
        &[
            "node",
            "run",
            "--chain",
            "demo",
            "--seal",
            "--key",
            &sealer_key,
            "--block-txs",
            "2",
            "--until-idle",
            "-q",
        ],
        "",
    );
    eprintln!("{out}");

    let balance = |addr: &str| -> Value {
        json(&k.ok(
            &["ledger", "balance", "--chain", "demo", addr, "--json"],
            "",
        ))
    };
    assert_eq!(balance(&alice)["balance"], 985);
    assert_eq!(balance(&alice)["nonce"], 2);
    assert_eq!(balance(&bob)["balance"], 15);
    let blocks: Vec<Value> = k
        .ok(&["ledger", "blocks", "--chain", "demo", "--json"], "")
        .lines()
        .map(json)
        .collect();
    let height = blocks.last().unwrap()["height"].as_u64().unwrap();
    assert!(height >= 2, "{blocks:?}");
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(b["height"], i as u64);
    }
    assert_eq!(balance(&sealer)["balance"], height, "a reward of 1 a block");

    let status =
        |id: &str| -> Value { json(&k.ok(&["ledger", "tx", "--chain", "demo", id, "--json"], "")) };
    for id in [&to_bob, &again, &scan] {
        assert_eq!(status(id)["status"], "sealed", "{id}");
    }
    let rejected = status(&overdraft);
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["rejection"]["reason"], "overdraft", "{rejected}");
    let human = k.ok(&["ledger", "tx", "--chain", "demo", &overdraft], "");
    assert!(human.contains("overdraft"), "{human}");

    let verify = |env: &Env| {
        let out = env.run(&["ledger", "verify", "--chain", "demo", "--json"], "");
        (
            out.status.code(),
            json(&String::from_utf8_lossy(&out.stdout)),
        )
    };
    let (code, report) = verify(&k);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["height"], height);

    // The block that sealed the first transfer, copied with its amount edited into a fresh
    // data directory, as someone with write access to the topic could.
    let sealed_at = status(&to_bob)["height"].as_u64().unwrap();
    let offset = blocks[sealed_at as usize]["offset"].as_u64().unwrap();
    assert!(
        sealed_at < height,
        "the edited block must have a child to show the edit without an anchor"
    );
    let tampered = Env::new();
    {
        let src = embedded(&k.data(), false);
        let dst = embedded(&tampered.data(), true);
        let mut edited = false;
        kchain_topic::tamper::copy_topic_with(&src, &dst, "demo.blocks", |_, records| {
            let r = &mut records[offset as usize];
            let mut v: Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            for t in v["transactions"].as_array_mut().unwrap() {
                if t["tx"]["amount"] == 10 {
                    t["tx"]["amount"] = 900.into();
                    edited = true;
                }
            }
            r.value = Some(serde_json::to_vec(&v).unwrap());
        })
        .unwrap();
        assert!(edited);
        assert_eq!(
            dst.end_offset("demo.blocks", 0).unwrap(),
            src.end_offset("demo.blocks", 0).unwrap()
        );
    }
    let (code, report) = verify(&tampered);
    assert_eq!(code, Some(3), "{report}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["finding"]["kind"], "body_mismatch", "{report}");
    assert_eq!(report["finding"]["offset"], offset, "{report}");
    // And the human report says so too.
    let out = tampered.run(&["ledger", "verify", "--chain", "demo"], "");
    assert_eq!(out.status.code(), Some(3));
}

// The ledger part of `kchain demo`, run here through the library.

#[test]
fn the_demo_ledger_tour_behaves_as_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let log = embedded(&dir.path().join("log"), true);
    let ok = kchain_cli::demo::ledger_tour(&log, dir.path(), "demo-ledger").unwrap();
    assert!(ok, "the tour reported a step that did not behave");
}

#[test]
fn ledger_tx_proof_verifies_offline_with_exit_codes_0_3_1() {
    let k = Env::new();
    let keys = tempfile::tempdir().unwrap();
    let path = |name: &str| keys.path().join(name).to_str().unwrap().to_owned();
    let (alice_key, alice) = wallet(&k, keys.path(), "alice");
    let (_, bob) = wallet(&k, keys.path(), "bob");
    let (sealer_key, _) = wallet(&k, keys.path(), "sealer");
    let sealer_public = k
        .ok(&["wallet", "address", "--key", &sealer_key], "")
        .lines()
        .find_map(|l| l.strip_prefix("public key"))
        .unwrap()
        .trim()
        .to_owned();
    let genesis = path("genesis.toml");
    k.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            "pr",
            "--sealer",
            &sealer_key,
            "--fund",
            &format!("{alice}=1000"),
            "--partitions",
            "1",
            "--out",
            &genesis,
        ],
        "",
    );
    k.ok(&["ledger", "init", "--genesis", &genesis], "");
    let mut ids = Vec::new();
    for amount in ["10", "20", "30"] {
        let out = k.ok(
            &[
                "tx",
                "transfer",
                "--chain",
                "pr",
                "--from-key",
                &alice_key,
                "--to",
                &bob,
                "--amount",
                amount,
                "--json",
            ],
            "",
        );
        ids.push(json(&out)["id"].as_str().unwrap().to_owned());
    }
    // The sealer signs a checkpoint when it stops (and every block here).
    let out = k.ok(
        &[
            "node",
            "run",
            "--chain",
            "pr",
            "--seal",
            "--key",
            &sealer_key,
            "--block-txs",
            "2",
            "--checkpoint-every",
            "1",
            "--until-idle",
        ],
        "",
    );
    assert!(out.contains("signed checkpoint"), "{out}");

    // `ledger verify` holds the chain against it (sealers alone without --trust).
    let (code, out, _) = run(&k, &["ledger", "verify", "--chain", "pr", "--json"]);
    let report = json(&out);
    assert_eq!(code, Some(0), "{report}");
    let height = report["height"].as_u64().unwrap();
    assert_eq!(
        report["checkpoints"]["newest"]["size"],
        height + 1,
        "{report}"
    );

    let proof = path("proof.json");
    k.ok(
        &["ledger", "tx", "--chain", "pr", &ids[1], "--proof", &proof],
        "",
    );
    let (code, out, err) = run(
        &k,
        &["ledger", "verify-proof", &proof, "--genesis", &genesis],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("included") && out.contains(&ids[1]), "{out}");

    // A trust file naming the ledger (its genesis hash and sealer) does as well as the
    // genesis; with a witness required, the uncosigned checkpoint does not hold (3), and
    // `ledger verify` then finds no trusted checkpoint (a finding, exit 3: nothing vouches
    // against a truncation).
    let genesis_hash = json(&k.ok(&["ledger", "verify", "--chain", "pr", "--json"], ""))["genesis"]
        .as_str()
        .unwrap()
        .to_owned();
    let ledger_entry = format!(
        "[[ledger]]\nchain = \"pr\"\ngenesis = \"{genesis_hash}\"\n\
         sealers = [{{ name = \"sealer\", public_key = \"{sealer_public}\" }}]\n"
    );
    let trust = path("trust.toml");
    std::fs::write(&trust, &ledger_entry).unwrap();
    let (code, out, err) = run(&k, &["--trust", &trust, "ledger", "verify-proof", &proof]);
    assert_eq!(code, Some(0), "{out}{err}");
    let witness = kchain_core::Cosigner::from_seed("w1.example", [7; 32]).unwrap();
    let strict = path("strict.toml");
    std::fs::write(
        &strict,
        format!(
            "{ledger_entry}\n[[witness]]\nkey = \"{}\"\n\n[policy]\nwitnesses = 1\n",
            witness.verifier().to_vkey()
        ),
    )
    .unwrap();
    let (code, out, _) = run(
        &k,
        &[
            "--trust",
            &strict,
            "ledger",
            "verify-proof",
            &proof,
            "--json",
        ],
    );
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(json(&out)["ok"], false);
    let (code, out, _) = run(
        &k,
        &[
            "--trust", &strict, "ledger", "verify", "--chain", "pr", "--json",
        ],
    );
    let report = json(&out);
    assert_eq!(code, Some(3), "{report}");
    assert_eq!(report["checkpoints"]["newest"], Value::Null, "{report}");
    assert_eq!(
        report["checkpoint_finding"]["kind"], "no_trusted_checkpoint",
        "{report}"
    );

    // Mutations do not hold: exit 3, saying what failed.
    let original: Value = json(&std::fs::read_to_string(&proof).unwrap());
    let mutated = path("mutated.json");
    type Mutate = Box<dyn Fn(&mut Value)>;
    let mutations: Vec<(&str, Mutate)> = vec![
        ("amount", Box::new(|v| v["tx"]["amount"] = 2000.into())),
        (
            "height",
            Box::new(|v| v["height"] = (v["height"].as_u64().unwrap() + 1).into()),
        ),
        (
            "block path",
            Box::new(|v| {
                let h = v["block_proof"][0].as_str().unwrap();
                let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
                v["block_proof"][0] = flipped.into();
            }),
        ),
    ];
    for (name, mutate) in &mutations {
        let mut v = original.clone();
        mutate(&mut v);
        std::fs::write(&mutated, serde_json::to_string(&v).unwrap()).unwrap();
        let (code, out, err) = run(
            &k,
            &["ledger", "verify-proof", &mutated, "--genesis", &genesis],
        );
        assert_eq!(code, Some(3), "{name}: {out}{err}");
        assert!(out.contains("PROOF INVALID"), "{name}: {out}");
    }

    // Unusable input: exit 1.
    std::fs::write(&mutated, "not json").unwrap();
    k.error(
        &["ledger", "verify-proof", &mutated, "--genesis", &genesis],
        "mutated.json",
    );
    let mut v = original.clone();
    v["format"] = "something-else/v1".into();
    std::fs::write(&mutated, serde_json::to_string(&v).unwrap()).unwrap();
    let (code, _, err) = run(
        &k,
        &["ledger", "verify-proof", &mutated, "--genesis", &genesis],
    );
    assert_eq!(code, Some(1), "{err}");
    let (code, _, err) = run(
        &k,
        &[
            "ledger",
            "verify-proof",
            &path("missing.json"),
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    // No keys to trust at all (no genesis, no trust file): unusable.
    let stranger = Env::new();
    let (code, _, err) = run(&stranger, &["ledger", "verify-proof", &proof]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no keys to trust"), "{err}");
    // A pending or unknown transaction has no proof.
    let (code, _, err) = run(
        &k,
        &[
            "ledger",
            "tx",
            "--chain",
            "pr",
            &"ab".repeat(32),
            "--proof",
            &mutated,
        ],
    );
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn a_witness_cosigns_a_ledgers_checkpoints_and_meets_a_policy() {
    let k = Env::new();
    let keys = tempfile::tempdir().unwrap();
    let path = |name: &str| keys.path().join(name).to_str().unwrap().to_owned();
    let (alice_key, alice) = wallet(&k, keys.path(), "alice");
    let (_, bob) = wallet(&k, keys.path(), "bob");
    let (sealer_key, _) = wallet(&k, keys.path(), "sealer");
    let genesis = path("genesis.toml");
    k.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            "wit",
            "--sealer",
            &sealer_key,
            "--fund",
            &format!("{alice}=1000"),
            "--partitions",
            "1",
            "--out",
            &genesis,
        ],
        "",
    );
    k.ok(&["ledger", "init", "--genesis", &genesis], "");
    let out = k.ok(
        &[
            "tx",
            "transfer",
            "--chain",
            "wit",
            "--from-key",
            &alice_key,
            "--to",
            &bob,
            "--amount",
            "5",
            "--json",
        ],
        "",
    );
    let id = json(&out)["id"].as_str().unwrap().to_owned();
    k.ok(
        &[
            "node",
            "run",
            "--chain",
            "wit",
            "--seal",
            "--key",
            &sealer_key,
            "--checkpoint-every",
            "1",
            "--until-idle",
        ],
        "",
    );
    // Another organisation's witness: its key, its state, one pass over the blocks topic.
    let wkey = path("w1.key");
    let out = k.ok(
        &["witness", "keygen", "--name", "w1.example", "--key", &wkey],
        "",
    );
    let vkey = out
        .lines()
        .find_map(|l| l.strip_prefix("verifier key "))
        .unwrap()
        .trim()
        .to_owned();
    let out = k.ok(
        &[
            "witness",
            "run",
            "wit.blocks",
            "--ledger",
            "--key",
            &wkey,
            "--state",
            &path("w1-state"),
            "--until-idle",
        ],
        "",
    );
    assert!(out.contains("cosigned kchain/wit.blocks size"), "{out}");
    let strict = path("strict.toml");
    std::fs::write(
        &strict,
        format!("[[witness]]\nkey = \"{vkey}\"\n\n[policy]\nwitnesses = 1\n"),
    )
    .unwrap();
    let (code, out, _) = run(
        &k,
        &[
            "--trust", &strict, "ledger", "verify", "--chain", "wit", "--json",
        ],
    );
    let report = json(&out);
    assert_eq!(code, Some(0), "{report}");
    let height = report["height"].as_u64().unwrap();
    assert_eq!(
        report["checkpoints"]["newest"]["size"],
        height + 1,
        "{report}"
    );
    // A proof made now carries the cosignature and holds under the policy.
    let proof = path("proof.json");
    k.ok(
        &["ledger", "tx", "--chain", "wit", &id, "--proof", &proof],
        "",
    );
    let (code, out, err) = run(
        &k,
        &[
            "--trust",
            &strict,
            "ledger",
            "verify-proof",
            &proof,
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
}
