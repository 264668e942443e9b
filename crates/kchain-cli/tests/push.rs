//! Push mode through the binary: `witness serve` runs as its own process, the trust file
//! names it with a url, and `produce` pushes every checkpoint to it, so that `verify --trust`
//! with a 1-witness policy passes without anyone running `witness run`. A witness that is
//! down is one warning, and the writer carries on.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Child;

use support::Env;

/// A `witness serve` child process, killed (by its own handle) when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(env: &Env, args: &[&str], stdin: &str) -> (String, String) {
    let out = env.run(args, stdin);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "kchain {args:?}: {stdout}{stderr}"
    );
    (stdout, stderr)
}

/// Generates witness key `name`, trusts it, and starts `witness serve` with it on a free
/// port; the trust file gets its url and a policy of one witness.
fn serve_witness(env: &Env, name: &str, extra: &[&str]) -> Served {
    let key = env
        .dir
        .path()
        .join(format!("{name}.key"))
        .display()
        .to_string();
    let (out, _) = ok(
        env,
        &["witness", "keygen", "--name", name, "--key", &key],
        "",
    );
    let vkey = out
        .lines()
        .find_map(|l| l.strip_prefix("verifier key "))
        .expect("the verifier key is printed")
        .to_owned();
    let state = env
        .dir
        .path()
        .join(format!("{name}-state"))
        .display()
        .to_string();
    let mut args = vec![
        "witness",
        "serve",
        "--key",
        &key,
        "--state",
        &state,
        "--bind",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut child = env.command(&args).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = match line.trim().split(" listening on ").nth(1) {
        Some(url) => url.to_owned(),
        None => {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("witness serve printed {line:?}: {err}")
        }
    };
    ok(env, &["trust", "add-witness", &vkey, "--url", &url], "");
    ok(env, &["trust", "policy", "--witnesses", "1"], "");
    Served { child, url }
}

fn lines(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("{{\"n\":{i}}}\n")).collect()
}

#[test]
fn produce_pushes_to_the_trust_files_witness_and_verify_trusts_the_cosigned_checkpoint() {
    let env = Env::new();
    ok(&env, &["keygen", "--name", "acme"], "");
    ok(&env, &["topic", "create", "orders"], "");
    let served = serve_witness(&env, "w1.example", &[]);
    let (_, stderr) = ok(
        &env,
        &[
            "produce",
            "orders",
            "--batch",
            "10",
            "--checkpoint-every",
            "10",
        ],
        &lines(0, 35),
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    let (out, _) = ok(&env, &["verify", "orders"], "");
    assert!(
        out.contains("newest trusted size 35 cosigned by 1"),
        "{out}"
    );

    // More entries: the witness is asked from the size it holds, and cosigns again.
    ok(
        &env,
        &["produce", "orders", "--batch", "10"],
        &lines(35, 50),
    );
    let (out, _) = ok(&env, &["verify", "orders"], "");
    assert!(
        out.contains("newest trusted size 50 cosigned by 1"),
        "{out}"
    );

    // --no-push: the writer's checkpoint alone, which the policy does not trust.
    ok(&env, &["produce", "orders", "--no-push"], &lines(50, 55));
    let (out, _) = ok(&env, &["verify", "orders"], "");
    assert!(out.contains("newest trusted size 50"), "{out}");

    // The witness down: one warning, the entries and the checkpoint are written anyway.
    let url = served.url.clone();
    drop(served);
    let (_, stderr) = ok(
        &env,
        &[
            "produce",
            "orders",
            "--batch",
            "5",
            "--checkpoint-every",
            "5",
        ],
        &lines(55, 70),
    );
    assert_eq!(
        stderr.matches("warning: no cosignature").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains(&url), "{stderr}");
    let (out, _) = ok(
        &env,
        &["checkpoint", "export", "orders", "--output", "-"],
        "",
    );
    assert!(out.contains("\n70\n"), "{out}");
}

#[test]
fn node_run_seal_pushes_the_ledgers_checkpoints_to_the_witness() {
    let env = Env::new();
    let dir = env.dir.path();
    let alice = env.wallet(dir, "alice");
    let bob = env.wallet(dir, "bob");
    let sealer = env.wallet(dir, "sealer");
    let genesis = dir.join("genesis.toml").display().to_string();
    let fund = format!("{}=1000", alice.address);
    ok(
        &env,
        &[
            "ledger",
            "genesis",
            "--chain",
            "wit",
            "--sealer",
            &sealer.path,
            "--fund",
            &fund,
            "--partitions",
            "1",
            "--out",
            &genesis,
        ],
        "",
    );
    ok(&env, &["ledger", "init", "--genesis", &genesis], "");
    // The witness knows the ledger's origin and its sealer's key.
    let key = kchain_topic::files::read_key_file(std::path::Path::new(&sealer.path)).unwrap();
    let vkey = key.note_signer().unwrap().verifier().to_vkey();
    let logs = dir.join("logs.txt");
    std::fs::write(&logs, format!("kchain/wit.blocks {vkey}\n")).unwrap();
    let logs = logs.display().to_string();
    let _served = serve_witness(&env, "w1.example", &["--logs", &logs]);
    for amount in ["5", "6"] {
        let args = [
            "tx",
            "transfer",
            "--chain",
            "wit",
            "--from-key",
            &alice.path,
            "--to",
            &bob.address,
            "--amount",
            amount,
        ];
        ok(&env, &args, "");
    }
    let (_, stderr) = ok(
        &env,
        &[
            "node",
            "run",
            "--chain",
            "wit",
            "--seal",
            "--key",
            &sealer.path,
            "--checkpoint-every",
            "1",
            "--until-idle",
        ],
        "",
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    let (out, _) = ok(&env, &["ledger", "verify", "--chain", "wit", "--json"], "");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let height = report["height"].as_u64().unwrap();
    assert_eq!(
        report["checkpoints"]["newest"]["size"],
        height + 1,
        "{report}"
    );
}
