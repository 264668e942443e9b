//! One vocabulary across commands (issue 15, points 9, 11 and 12), through the binary: one
//! flag name per concept with the old names still accepted, machine output on one line per
//! object, global -q/-v, completions, man page and version, grouped help, and the trust,
//! checkpoint and key commands that replace hand-editing and guessing.

mod support;

use serde_json::Value;
use support::Env;

/// Parses output that must be exactly one JSON object per line.
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON line: {l}: {e}")))
        .collect()
}

fn one_json(out: &str) -> Value {
    let v = json_lines(out);
    assert_eq!(v.len(), 1, "one JSON line: {out}");
    v.into_iter().next().unwrap()
}

fn path(env: &Env, name: &str) -> String {
    env.dir.path().join(name).to_str().unwrap().to_owned()
}

/// A topic with `partitions` partitions, a writer key, and `n` keyed records.
fn topic(env: &Env, name: &str, partitions: &str, n: usize) {
    env.ok(&["keygen"], "");
    env.ok(&["topic", "create", name, "--partitions", partitions], "");
    let input: String = (0..n).map(|i| format!("k{i}:v{i}\n")).collect();
    env.ok(&["produce", name, "-K", ":", "--no-checkpoints"], &input);
}

// Point 9: the key file a command signs with is --key-file everywhere; --out, --key and
// --from-key are hidden old names; wallet key files stand for addresses.
#[test]
fn one_key_flag_across_the_ledger_with_old_names_accepted() {
    let env = Env::new();
    let (alice, bob, sealer) = (
        path(&env, "alice.key"),
        path(&env, "bob.key"),
        path(&env, "sealer.key"),
    );
    env.ok(
        &["wallet", "new", "--name", "alice", "--key-file", &alice],
        "",
    );
    env.ok(&["wallet", "new", "--name", "bob", "--out", &bob], "");
    env.ok(
        &["--key-file", &sealer, "wallet", "new", "--name", "sealer"],
        "",
    );
    // The same answer by the new name and the old one; -q gives the bare address.
    let by_new = env.ok(&["wallet", "address", "--key-file", &alice], "");
    let by_old = env.ok(&["wallet", "address", "--key", &alice], "");
    assert_eq!(by_new, by_old);
    assert!(by_new.starts_with("address    "), "{by_new}");
    let bare = env.ok(&["-q", "wallet", "address", "--key-file", &alice], "");
    assert_eq!(bare.lines().count(), 1, "{bare}");
    let alice_address = bare.trim().to_owned();
    assert_eq!(alice_address.len(), 40, "{bare}");
    assert!(by_new.contains(&alice_address));

    // Key files where addresses are expected: --fund, --to, ledger balance.
    let genesis = path(&env, "genesis.toml");
    let fund = format!("{alice}=100");
    env.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            "v",
            "--sealer",
            &sealer,
            "--fund",
            &fund,
            "--partitions",
            "1",
            "--output",
            &genesis,
        ],
        "",
    );
    env.ok(&["ledger", "init", "--genesis", &genesis], "");
    env.ok(
        &[
            "tx",
            "transfer",
            "--chain",
            "v",
            "--key-file",
            &alice,
            "--to",
            &bob,
            "--amount",
            "5",
        ],
        "",
    );
    env.ok(
        &[
            "tx",
            "transfer",
            "--chain",
            "v",
            "--from-key",
            &alice,
            "--to",
            &bob,
            "--amount",
            "2",
        ],
        "",
    );
    // `node run --seal --key-file` was accepted and then asked for --key: now it seals.
    env.ok(
        &[
            "node",
            "run",
            "--chain",
            "v",
            "--seal",
            "--key-file",
            &sealer,
            "--until-idle",
            "-q",
        ],
        "",
    );
    let balance = one_json(&env.ok(&["ledger", "balance", "--chain", "v", &bob, "--json"], ""));
    assert_eq!(balance["balance"], 7, "{balance}");
    let balance = one_json(&env.ok(
        &[
            "ledger",
            "balance",
            "--chain",
            "v",
            &alice_address,
            "--json",
        ],
        "",
    ));
    assert_eq!(balance["balance"], 93, "{balance}");
    // Sealing with no key says which flag to pass.
    env.error(
        &["node", "run", "--chain", "v", "--seal", "--until-idle"],
        "pass --key-file FILE",
    );
    // `ledger verify --json` is one line like every other --json.
    let report = one_json(&env.ok(&["ledger", "verify", "--chain", "v", "--json"], ""));
    assert_eq!(report["ok"], true, "{report}");
}

// Point 9: -o is an offset (kcat) in consume and inspect; output files are --output, with
// -o kept as a hidden old name; produce's file is --file, with -f kept.
#[test]
fn output_files_and_input_files_have_long_names_and_old_short_ones() {
    let env = Env::new();
    topic(&env, "t", "1", 0);
    let file = path(&env, "lines.txt");
    std::fs::write(&file, "a\nb\nc\n").unwrap();
    env.ok(&["produce", "t", "--file", &file, "--no-checkpoints"], "");
    env.ok(&["produce", "t", "-f", &file], "");
    let consumed = env.ok(&["consume", "t", "-e", "-o", "4"], "");
    assert_eq!(consumed, "b\nc\n");
    let (new, old) = (path(&env, "new.json"), path(&env, "old.json"));
    env.ok(&["prove", "t", "--offset", "4", "--output", &new], "");
    env.ok(&["prove", "t", "--offset", "4", "-o", &old], "");
    assert!(std::fs::metadata(&new).is_ok() && std::fs::metadata(&old).is_ok());
    for (cmd, hidden) in [
        (vec!["produce", "--help"], "-f,"),
        (vec!["wallet", "new", "--help"], "--out"),
        (vec!["tx", "transfer", "--help"], "--from-key"),
        (vec!["node", "run", "--help"], "--key <"),
        (vec!["prove", "--help"], "-o,"),
    ] {
        let help = env.ok(&cmd, "");
        assert!(
            !help.contains(hidden),
            "{cmd:?} shows the old {hidden}: {help}"
        );
    }
}

// Point 11: --json on produce, keygen, wallet, trust, prove, checkpoint publish: one object
// per line.
#[test]
fn machine_output_is_one_json_object_per_line() {
    let env = Env::new();
    let keygen = one_json(&env.ok(&["keygen", "--name", "w", "--json"], ""));
    assert_eq!(keygen["name"], "w");
    assert_eq!(keygen["public_key"].as_str().unwrap().len(), 64, "{keygen}");
    assert!(keygen["trusted_in"].is_string(), "{keygen}");
    env.ok(&["topic", "create", "t", "--partitions", "2"], "");
    let produced = one_json(&env.ok(&["produce", "t", "-K", ":", "--json"], "a:1\nb:2\nc:3\n"));
    assert_eq!(produced["appended"], 3, "{produced}");
    assert!(produced["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["tip_hash"].is_string()));
    let wallet = one_json(&env.ok(
        &[
            "wallet",
            "new",
            "--key-file",
            &path(&env, "w.key"),
            "--json",
        ],
        "",
    ));
    assert_eq!(wallet["address"].as_str().unwrap().len(), 40, "{wallet}");
    let address = one_json(&env.ok(
        &[
            "wallet",
            "address",
            "--key-file",
            &path(&env, "w.key"),
            "--json",
        ],
        "",
    ));
    assert_eq!(address["address"], wallet["address"]);
    let pubkey = env.ok(&["pubkey"], "");
    let trusted = one_json(&env.ok(&["trust", "add", "other", pubkey.trim(), "--json"], ""));
    assert_eq!(trusted["trusted"], "writer", "{trusted}");
    let shown = one_json(&env.ok(&["trust", "show", "--json"], ""));
    assert!(shown["writer"].is_array(), "{shown}");
    let proof = one_json(&env.ok(
        &[
            "prove",
            "t",
            "--offset",
            "0",
            "--output",
            &path(&env, "p.json"),
            "--json",
        ],
        "",
    ));
    assert_eq!(proof["proof"], "inclusion", "{proof}");
    let to_stdout = one_json(&env.ok(
        &["prove", "t", "--offset", "0", "--output", "-", "--json"],
        "",
    ));
    assert!(to_stdout["format"].is_string(), "{to_stdout}");
    let pinned = one_json(&env.ok(&["trust", "pin", "t", "--json"], ""));
    assert_eq!(pinned["partition_count"], 2, "{pinned}");
}

// Point 12: `checkpoint publish TOPIC` covers every partition, not only 0.
#[test]
fn checkpoint_publish_covers_every_partition() {
    let env = Env::new();
    topic(&env, "t", "3", 30);
    let lines = json_lines(&env.ok(&["checkpoint", "publish", "t", "--json"], ""));
    let parts: Vec<_> = lines
        .iter()
        .map(|l| l["partition"].as_u64().unwrap())
        .collect();
    assert_eq!(parts, [0, 1, 2]);
    assert!(
        lines.iter().all(|l| l["status"] == "published"),
        "{lines:?}"
    );
    let again = json_lines(&env.ok(&["checkpoint", "publish", "t", "--json"], ""));
    assert!(again.iter().all(|l| l["status"] == "already"), "{again:?}");
    let one = env.ok(&["checkpoint", "publish", "t", "-p", "1"], "");
    assert!(one.starts_with("already published\n"), "{one}");
}

// Point 12: witnesses and a policy are added by command, and verify then holds checkpoints
// to them.
#[test]
fn trust_add_witness_and_policy_instead_of_hand_editing() {
    let env = Env::new();
    topic(&env, "t", "1", 5);
    env.ok(&["checkpoint", "publish", "t"], "");
    let wkey = path(&env, "w.key");
    let out = env.ok(
        &[
            "witness",
            "keygen",
            "--name",
            "w.example/w1",
            "--key-file",
            &wkey,
        ],
        "",
    );
    let vkey = out
        .lines()
        .find_map(|l| l.strip_prefix("verifier key "))
        .unwrap()
        .to_owned();
    let added = one_json(&env.ok(&["trust", "add-witness", &vkey, "--json"], ""));
    assert_eq!(added["witnesses"], 1, "{added}");
    let again = env.ok(&["trust", "add-witness", &vkey], "");
    assert!(again.contains("already trusted"), "{again}");
    let policy = one_json(&env.ok(&["trust", "policy", "--witnesses", "1", "--json"], ""));
    assert_eq!(policy["witnesses"], 1, "{policy}");
    let shown = one_json(&env.ok(&["trust", "show", "--json"], ""));
    assert_eq!(shown["witness"][0]["key"], vkey.as_str(), "{shown}");
    assert_eq!(shown["policy"]["witnesses"], 1, "{shown}");
    // The writer key is still trusted after the edits.
    assert_eq!(shown["writer"].as_array().unwrap().len(), 1, "{shown}");
    // The policy is in force: no witness has cosigned, so no checkpoint meets it.
    let before = env.run(&["verify", "t", "--json"], "");
    let report = one_json(&String::from_utf8(before.stdout).unwrap());
    assert_eq!(
        report["checkpoints"]["partitions"][0]["newest"],
        Value::Null,
        "{report}"
    );
    // The witness cosigns; now the checkpoint meets the policy.
    env.ok(
        &[
            "witness",
            "run",
            "t",
            "--key-file",
            &wkey,
            "--state",
            &path(&env, "ws"),
            "--until-idle",
        ],
        "",
    );
    let report = one_json(&env.ok(&["verify", "t", "--json"], ""));
    assert_eq!(report["checkpoints"]["ok"], true, "{report}");
    env.error(&["trust", "add-witness", "not-a-key"], "witness key");
}

// Point 12: `key shred` asks first; without a terminal it refuses unless --yes.
#[test]
fn key_shred_needs_a_yes() {
    let env = Env::new();
    let out = env.ok(&["key", "new"], "");
    let id = out.split_whitespace().nth(3).unwrap().to_owned();
    env.error(&["key", "shred", &id], "pass --yes");
    let list = env.ok(&["key", "list"], "");
    assert!(!list.contains("shredded"), "refused means kept: {list}");
    let out = env.ok(&["key", "shred", "-y", &id], "");
    assert!(out.starts_with(&format!("shredded data key {id}")), "{out}");
}

// Points 11 and 12: global options apart in help, one default for --threads, -q and -v,
// completions, man page and version.
#[test]
fn help_version_completions_and_man_page() {
    let env = Env::new();
    let help = env.ok(&["produce", "--help"], "");
    let (own, global) = help
        .split_once("Global options:")
        .expect("a Global options heading");
    assert!(
        !own.contains("--data-dir") && global.contains("--data-dir"),
        "{help}"
    );
    assert!(
        global.contains("-q, --quiet") && global.contains("-v, --verbose"),
        "{help}"
    );
    let verify = env.ok(&["verify", "--help"], "");
    let threads = verify.lines().find(|l| l.contains("--threads")).unwrap();
    assert_eq!(threads.matches("[default").count(), 1, "{threads}");
    let version = env.ok(&["--version"], "");
    assert!(
        version.contains("(commit ") && version.contains("features:"),
        "{version}"
    );
    #[cfg(feature = "kafka")]
    assert!(version.contains("kafka"), "{version}");
    let bash = env.ok(&["completions", "bash"], "");
    assert!(
        bash.contains("kchain") && bash.contains("add-witness"),
        "completion script"
    );
    let man = env.ok(&["man"], "");
    assert!(
        man.contains(".TH kchain"),
        "a roff man page: {}",
        &man[..man.len().min(200)]
    );
    // Every command names the log it opened, -v its identity too; -q keeps notes, progress
    // and that line off stderr.
    env.ok(&["topic", "create", "t"], "");
    let out = env.run(&["-v", "topic", "list"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kchain: embedded log ") && err.contains("kchain: log identity embedded:"),
        "{err}"
    );
    let out = env.run(&["-q", "topic", "list"], "");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Every subcommand's definitions hold together (no flag name or short letter used twice,
// global options included): clap checks this only for the command line it parses.
#[test]
fn the_command_line_definitions_hold_together() {
    use clap::CommandFactory;
    kchain_cli::Cli::command().debug_assert();
}

// Point 11: -q leaves the bare value a script needs: the verifier key of a new writer or
// witness key, ready for `trust add` and `trust add-witness`.
#[test]
fn quiet_keygen_prints_the_bare_verifier_key() {
    let env = Env::new();
    let writer = env.ok(&["-q", "keygen", "--name", "acme"], "");
    assert_eq!(writer.lines().count(), 1, "{writer}");
    assert_eq!(writer, env.ok(&["pubkey"], ""));
    assert!(writer.starts_with("acme+"), "{writer}");

    let w1 = path(&env, "w1.key");
    let witness = env.ok(
        &[
            "-q",
            "witness",
            "keygen",
            "--name",
            "w1.example",
            "--key-file",
            &w1,
        ],
        "",
    );
    assert_eq!(witness.lines().count(), 1, "{witness}");
    let auditor = path(&env, "auditor.toml");
    env.ok(
        &["--trust", &auditor, "trust", "add", "acme", writer.trim()],
        "",
    );
    env.ok(
        &["--trust", &auditor, "trust", "add-witness", witness.trim()],
        "",
    );
    env.ok(
        &["--trust", &auditor, "trust", "policy", "--witnesses", "1"],
        "",
    );
    let text = std::fs::read_to_string(&auditor).unwrap();
    assert!(text.contains("w1.example"), "{text}");
}
