//! `kchain monitor --ledger` through the binary on the embedded log: a ledger sealed by a
//! node is clean (exit 0, no trust file needed), a restart reads only the blocks sealed
//! since, and a blocks topic cut below what the monitor verified is a `rollback` alert
//! naming the ledger (exit 3).

mod support;

use kchain_log::{EmbeddedLog, EmbeddedOptions};
use support::Env;

/// A ledger `demo` with a funded wallet and a sealer; returns (wallet key, sealer key,
/// recipient address).
fn setup(env: &Env) -> (String, String, String) {
    let keys = env.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let alice = env.wallet(&keys, "alice");
    let bob = env.wallet(&keys, "bob");
    let sealer = env.wallet(&keys, "sealer");
    let genesis = keys.join("genesis.toml");
    let genesis = genesis.to_str().unwrap();
    let fund = format!("{}=1000", alice.address);
    env.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            "demo",
            "--sealer",
            &sealer.path,
            "--fund",
            &fund,
            "--out",
            genesis,
        ],
        "",
    );
    env.ok(&["ledger", "init", "--genesis", genesis], "");
    (alice.path, sealer.path, bob.address)
}

/// Submits `n` transfers and seals them, one block each.
fn transfers(env: &Env, (from, sealer, to): &(String, String, String), n: usize) {
    for _ in 0..n {
        let args = [
            "tx",
            "transfer",
            "--chain",
            "demo",
            "--from-key",
            from,
            "--to",
            to,
            "--amount",
            "1",
        ];
        env.ok(&args, "");
    }
    let args = [
        "node",
        "run",
        "--chain",
        "demo",
        "--seal",
        "--key",
        sealer,
        "--block-txs",
        "1",
        "--until-idle",
        "-q",
    ];
    env.ok(&args, "");
}

#[test]
fn a_ledger_is_clean_resumes_without_reading_again_and_a_cut_is_a_rollback() {
    let env = Env::new();
    let cast = setup(&env);
    transfers(&env, &cast, 3);
    let state = env.dir.path().join("monitor");
    let s = state.to_str().unwrap();
    let once = ["monitor", "--ledger", "demo", "--state", s, "--once"];
    let out = env.run(&once, "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("4 entries verified (3 records read"), "{err}");

    transfers(&env, &cast, 2);
    let out = env.run(&once, "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("6 entries verified (2 records read"), "{err}");

    // The operator cuts the last two blocks.
    let data = env.data();
    let log = EmbeddedLog::open(&data, EmbeddedOptions::default()).unwrap();
    let other = env.dir.path().join("cut");
    let copy = EmbeddedLog::create(&other, EmbeddedOptions::default()).unwrap();
    kchain_topic::tamper::copy_topic_with(&log, &copy, "demo.blocks", |_, r| r.truncate(4))
        .unwrap();
    drop((log, copy));
    let part = data.join("topics").join("demo.blocks");
    std::fs::remove_dir_all(&part).unwrap();
    std::fs::rename(other.join("topics").join("demo.blocks"), &part).unwrap();
    let out = env.run(&once, "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let alert = support::json(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(alert["kind"], "rollback", "{alert}");
    assert_eq!(alert["chain"], "demo.blocks", "{alert}");
    assert_eq!(alert["ledger"], "demo", "{alert}");
}
