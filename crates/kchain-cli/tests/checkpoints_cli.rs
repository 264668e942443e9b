//! `kchain checkpoint`, `prove`, `verify-proof` and `verify --trust` with a checkpoint policy,
//! end to end on the embedded backend: exit 0 when a proof holds, 3 when it does not, 1 when
//! the input is unusable; a truncation below a signed checkpoint is a finding; and no key
//! material in any output.

use std::cell::RefCell;
use std::fs;
use std::path::Path;
use std::process::Output;

mod support;

use support::Env;

/// Runs commands and keeps everything they print, to look for secrets afterwards.
struct Runner<'e> {
    env: &'e Env,
    printed: RefCell<String>,
}

impl Runner<'_> {
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let out = self.env.run(args, stdin);
        let mut printed = self.printed.borrow_mut();
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Runs a command that must exit with `code`; returns its standard output.
    fn code(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert_eq!(
            out.status.code(),
            Some(code),
            "kchain {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn produce(r: &Runner, from: usize, to: usize) {
    let input: String = (from..to).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    // Checkpoints are published by hand in these tests (`checkpoint publish`).
    let out = r.run(
        &["produce", "orders", "--batch", "10", "--no-checkpoints"],
        &input,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

fn setup(r: &Runner) {
    r.code(0, &["keygen", "--name", "acme"]);
    r.code(0, &["topic", "create", "orders"]);
    produce(r, 0, 30);
    let out = r.code(0, &["checkpoint", "publish", "orders"]);
    assert!(out.contains("published") && out.contains("\n30\n"), "{out}");
}

/// Turns checkpoint checking on in the trust file (no witnesses needed).
fn enable_policy(env: &Env) {
    let path = env.config().join("trust.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("\n[policy]\nwitnesses = 0\n");
    fs::write(&path, text).unwrap();
}

fn secret_of(key_file: &Path) -> String {
    let text = fs::read_to_string(key_file).unwrap();
    let line = text.lines().find(|l| l.starts_with("secret")).unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

#[test]
fn checkpoints_proofs_and_offline_verification() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    setup(&r);
    let dir = env.dir.path();
    let p = |name: &str| dir.join(name).display().to_string();

    r.code(0, &["checkpoint", "export", "orders", "-o", &p("old.note")]);
    produce(&r, 30, 35);
    r.code(0, &["checkpoint", "publish", "orders"]);
    r.code(0, &["checkpoint", "export", "orders", "-o", &p("new.note")]);
    let note = fs::read_to_string(p("new.note")).unwrap();
    assert!(note.starts_with("kchain/orders/0\n35\n"), "{note}");
    assert!(note.contains("\n\n\u{2014} acme "), "{note}");

    // verify --trust: without a policy nothing changes; with one the checkpoint is checked.
    let out = r.code(0, &["verify", "orders"]);
    assert!(!out.contains("checkpoints:"), "{out}");
    enable_policy(&env);
    let out = r.code(0, &["verify", "orders"]);
    assert!(out.contains("newest trusted size 35"), "{out}");
    let out = r.code(0, &["verify", "orders", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["checkpoints"]["ok"], true, "{v}");

    // An inclusion proof of one record, checked with nothing but the trust file.
    r.code(
        0,
        &["prove", "orders", "--offset", "3", "-o", &p("inc.json")],
    );
    let out = r.code(0, &["verify-proof", &p("inc.json")]);
    assert!(out.starts_with("included: entry "), "{out}");
    let file: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(p("inc.json")).unwrap()).unwrap();
    assert_eq!(file["index"], 3);
    assert!(file["entry"]["item"]["encoded"].is_string());

    // One flipped digit in the entry hash: not proven (3).
    let mut bad = file.clone();
    let h = bad["entry_hash"].as_str().unwrap().to_owned();
    let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
    bad["entry_hash"] = flipped.into();
    fs::write(p("bad.json"), bad.to_string()).unwrap();
    let out = r.code(3, &["verify-proof", &p("bad.json")]);
    assert!(out.contains("PROOF INVALID"), "{out}");

    // Consistency of the two exported checkpoints; swapped, it fails.
    r.code(
        0,
        &[
            "prove",
            "--consistency",
            &p("old.note"),
            &p("new.note"),
            "-o",
            &p("c.json"),
        ],
    );
    let out = r.code(0, &["verify-proof", &p("c.json")]);
    assert!(out.contains("size 30 is a prefix of size 35"), "{out}");
    let mut swapped: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(p("c.json")).unwrap()).unwrap();
    let old = swapped["old"].take();
    swapped["old"] = swapped["new"].take();
    swapped["new"] = old;
    fs::write(p("swapped.json"), swapped.to_string()).unwrap();
    r.code(3, &["verify-proof", &p("swapped.json")]);

    // Against a trust file that does not know the writer: not proven.
    let other = dir.join("other.toml");
    fs::write(
        &other,
        format!(
            "[[writer]]\nname = \"acme\"\npublic_key = \"{}\"\n",
            kchain_core::WriterKey::from_seed("acme", [7; 32])
                .public()
                .to_hex()
        ),
    )
    .unwrap();
    let out = r.code(
        3,
        &[
            "verify-proof",
            &p("inc.json"),
            "--trust",
            &other.display().to_string(),
        ],
    );
    assert!(out.contains("trusted writer"), "{out}");

    // Unusable input is an error (1), not a finding.
    r.code(1, &["verify-proof", &p("missing.json")]);
    fs::write(p("garbage.json"), "not json").unwrap();
    r.code(1, &["verify-proof", &p("garbage.json")]);

    // The key file is private, and its secret never printed.
    let key_file = env.config().join("writer.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let secret = secret_of(&key_file);
    assert_eq!(secret.len(), 64);
    let printed = r.printed.borrow();
    assert!(!printed.contains(&secret), "the secret key was printed");
    assert!(
        !printed.to_lowercase().contains("private+key"),
        "a signer key was printed"
    );
}

#[test]
fn verify_reports_truncation_below_a_signed_checkpoint() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    setup(&r);
    enable_policy(&env);

    // The broker's operator drops the last 10 records (a whole signed batch, so the chain
    // alone still verifies) but cannot unsign the checkpoint.
    let copy = Env::new();
    {
        let opts = kchain_log::EmbeddedOptions::default();
        let src = kchain_log::EmbeddedLog::open(env.data(), opts.clone()).unwrap();
        let dst = kchain_log::EmbeddedLog::create(copy.data(), opts).unwrap();
        kchain_topic::tamper::copy_topic_with(&src, &dst, "orders", |_, recs| recs.truncate(20))
            .unwrap();
        kchain_topic::tamper::copy_topic_with(&src, &dst, "orders.checkpoints", |_, _| {}).unwrap();
    }
    let trust = env.config().join("trust.toml").display().to_string();
    let rc = Runner {
        env: &copy,
        printed: RefCell::new(String::new()),
    };
    let out = rc.code(3, &["verify", "orders", "--trust", &trust]);
    assert!(out.contains("checkpoint_truncated"), "{out}");
    assert!(out.contains("kchain/orders/0"), "evidence is shown: {out}");
    let out = rc.code(3, &["verify", "orders", "--trust", &trust, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let finding = &v["checkpoints"]["partitions"][0]["finding"];
    assert_eq!(finding["kind"], "checkpoint_truncated", "{v}");
    assert_eq!(v["ok"], true, "the chain alone verifies: {v}");
}

#[test]
fn two_witnesses_cosign_through_the_topic_and_meet_the_policy() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    setup(&r);
    let dir = env.dir.path();
    let mut vkeys = Vec::new();
    for w in ["w1", "w2"] {
        let key = dir.join(format!("{w}.key"));
        let out = r.code(
            0,
            &[
                "witness",
                "keygen",
                "--name",
                &format!("{w}.example"),
                "--key",
                &key.display().to_string(),
            ],
        );
        let vkey = out
            .lines()
            .find_map(|l| l.strip_prefix("verifier key "))
            .unwrap()
            .to_owned();
        vkeys.push(vkey);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
    let path = env.config().join("trust.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    for v in &vkeys {
        text.push_str(&format!("\n[[witness]]\nkey = \"{v}\"\n"));
    }
    text.push_str("\n[policy]\nwitnesses = 2\n");
    fs::write(&path, text).unwrap();

    // Before the witnesses run, no checkpoint meets the policy: a finding, not silence.
    let out = r.code(3, &["verify", "orders"]);
    assert!(out.contains("newest trusted none"), "{out}");
    assert!(out.contains("no_trusted_checkpoint"), "{out}");
    for w in ["w1", "w2"] {
        let key = dir.join(format!("{w}.key")).display().to_string();
        let state = dir.join(format!("{w}-state")).display().to_string();
        let args = [
            "witness",
            "run",
            "orders",
            "--key",
            &key,
            "--state",
            &state,
            "--until-idle",
        ];
        let out = r.code(0, &args);
        assert!(out.contains("cosigned kchain/orders/0 size 30"), "{out}");
        let out = r.code(0, &args);
        assert!(!out.contains("cosigned"), "idle: {out}");
    }
    let out = r.code(0, &["verify", "orders"]);
    assert!(
        out.contains("newest trusted size 30 cosigned by 2"),
        "{out}"
    );

    // The exported checkpoint carries both cosignatures; a proof from it meets the policy.
    r.code(
        0,
        &[
            "prove",
            "orders",
            "--offset",
            "29",
            "-o",
            &dir.join("p.json").display().to_string(),
        ],
    );
    let out = r.code(
        0,
        &["verify-proof", &dir.join("p.json").display().to_string()],
    );
    assert!(out.contains("cosigned by 2"), "{out}");

    let printed = r.printed.borrow();
    assert!(
        !printed.contains("PRIVATE+KEY"),
        "a witness key was printed"
    );
    for w in ["w1", "w2"] {
        let skey = fs::read_to_string(dir.join(format!("{w}.key"))).unwrap();
        // PRIVATE+KEY+<name>+<key id>+<base64 of the key>: the base64 may hold '+' too.
        let secret = skey.trim().splitn(5, '+').nth(4).unwrap();
        assert!(secret.len() >= 40, "{secret}");
        assert!(
            !printed.contains(secret),
            "a witness secret was printed: {secret} in\n{printed}"
        );
    }
}

#[test]
fn the_whole_demo_runs_and_its_organisations_catch_the_operator() {
    let env = Env::new();
    let dir = env.data().join("demo");
    let out = env.ok(
        &["demo", "--records", "2000", "--dir", dir.to_str().unwrap()],
        "",
    );
    for step in [
        "4 of 4 attacks caught at their exact offsets",
        "every valid transaction sealed exactly once",
        "cosigned by witness.beta.example and witness.gamma.example",
        "the same proof with one hash changed: rejected",
        "truncation: the chain alone verifies; against the cosigned checkpoints: checkpoint_truncated",
        "rewrite: the chain alone verifies; against the cosigned checkpoints: checkpoint_rewritten",
        "suppression: the chain alone verifies; against the cosigned checkpoints: nothing found",
        "suppression, judged by the outsider who remembers: the chain alone verifies; against \
         the cosigned checkpoints: checkpoint_rollback",
    ] {
        assert!(out.contains(step), "missing {step:?} in:\n{out}");
    }
    // The outsider's files are what the demo says they are.
    let trust = fs::read_to_string(dir.join("orgs/outsider/trust.toml")).unwrap();
    assert!(trust.contains("[policy]\nwitnesses = 2"), "{trust}");
    let proof: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("orgs/outsider/proof.json")).unwrap())
            .unwrap();
    assert_eq!(proof["index"], 1234);
}

#[test]
fn produce_publishes_checkpoints_every_n_entries_and_on_exit() {
    let env = Env::new();
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders"], "");
    let input: String = (0..25).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = env.ok(
        &[
            "produce",
            "orders",
            "-p",
            "0",
            "--batch",
            "5",
            "--checkpoint-every",
            "10",
        ],
        &input,
    );
    assert!(
        out.contains("signed checkpoint kchain/orders/0 size 25 to orders.checkpoints"),
        "{out}"
    );
    // 10 and 20 on count, 25 on exit: three checkpoints on the topic, the newest covering all.
    enable_policy(&env);
    let report: serde_json::Value =
        serde_json::from_str(&env.ok(&["verify", "orders", "--json"], "")).unwrap();
    let p0 = &report["checkpoints"]["partitions"][0];
    assert_eq!(p0["seen"], 3, "{report}");
    assert_eq!(p0["newest"]["size"], 25, "{report}");
    // Without checkpoints: nothing is published.
    env.ok(&["topic", "create", "quiet"], "");
    let out = env.ok(&["produce", "quiet", "--no-checkpoints"], "a\nb\n");
    assert!(!out.contains("checkpoint"), "{out}");
    env.error(
        &["checkpoint", "export", "quiet", "-o", "-"],
        "no checkpoint",
    );
}

// ---------------------------------------------------------------------------------------
// Rollback protection: anchors outside the log.

/// Rewrites `topic` of `env`'s data directory in place, as an attacker with disk access
/// would: its records copied through `mutate` into a fresh topic (batch CRCs computed anew)
/// that replaces the old one under the same path.
fn rewrite_in_place(env: &Env, topic: &str, mutate: impl FnMut(u32, &mut Vec<kchain_log::Record>)) {
    let scratch = env.dir.path().join("scratch");
    let _ = fs::remove_dir_all(&scratch);
    {
        let opts = kchain_log::EmbeddedOptions::default();
        let src = kchain_log::EmbeddedLog::open(env.data(), opts.clone()).unwrap();
        let dst = kchain_log::EmbeddedLog::create(&scratch, opts).unwrap();
        kchain_topic::tamper::copy_topic_with(&src, &dst, topic, mutate).unwrap();
    }
    let live = env.data().join("topics").join(topic);
    fs::remove_dir_all(&live).unwrap();
    fs::rename(scratch.join("topics").join(topic), &live).unwrap();
    fs::remove_dir_all(&scratch).unwrap();
}

/// `env`'s file `name` (trust.toml, writer.key): in its configuration directory where kchain
/// keeps them apart from the data, else (older layouts) in the data directory.
fn config_file(env: &Env, name: &str) -> std::path::PathBuf {
    let apart = env.dir.path().join("config").join(name);
    if apart.exists() {
        apart
    } else {
        env.data().join(name)
    }
}

/// Deletes a topic of `env`'s data directory, as an attacker with disk access would.
fn delete_topic(env: &Env, topic: &str) {
    fs::remove_dir_all(env.data().join("topics").join(topic)).unwrap();
}

/// Whether a checkpoints-topic record holds a checkpoint of `size`.
fn is_checkpoint_of(r: &kchain_log::Record, size: u64) -> bool {
    let text = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
    text.lines().nth(1) == Some(size.to_string().as_str())
}

/// Two witnesses, w1 and w2, in the trust file with a 2-of-2 policy; returns their key and
/// state paths.
fn two_witnesses(r: &Runner, env: &Env) -> Vec<(String, String)> {
    let dir = env.dir.path();
    let mut out = Vec::new();
    let path = config_file(env, "trust.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    for w in ["w1", "w2"] {
        let key = dir.join(format!("{w}.key")).display().to_string();
        let name = format!("{w}.example");
        let printed = r.code(0, &["witness", "keygen", "--name", &name, "--key", &key]);
        let vkey = printed
            .lines()
            .find_map(|l| l.strip_prefix("verifier key "))
            .unwrap();
        text.push_str(&format!("\n[[witness]]\nkey = \"{vkey}\"\n"));
        out.push((key, dir.join(format!("{w}-state")).display().to_string()));
    }
    text.push_str("\n[policy]\nwitnesses = 2\n");
    fs::write(&path, text).unwrap();
    out
}

fn run_witness(r: &Runner, code: i32, topic: &str, (key, state): &(String, String)) -> String {
    r.code(
        code,
        &[
            "witness",
            "run",
            topic,
            "--key",
            key,
            "--state",
            state,
            "--until-idle",
            "--interval-ms",
            "10",
        ],
    )
}

/// 20 entries cosigned by both witnesses, then 10 more cosigned too; a verifier run in
/// between remembers size 30.
fn cosigned_twice(r: &Runner, env: &Env) -> Vec<(String, String)> {
    r.code(0, &["keygen", "--name", "acme"]);
    r.code(0, &["topic", "create", "orders"]);
    let witnesses = two_witnesses(r, env);
    for (from, to) in [(0, 20), (20, 30)] {
        produce(r, from, to);
        r.code(0, &["checkpoint", "publish", "orders"]);
        for w in &witnesses {
            let out = run_witness(r, 0, "orders", w);
            assert!(
                out.contains(&format!("cosigned kchain/orders/0 size {to}")),
                "{out}"
            );
        }
    }
    let out = r.code(0, &["verify", "orders"]);
    assert!(
        out.contains("newest trusted size 30 cosigned by 2"),
        "{out}"
    );
    witnesses
}

fn finding_of(out: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    v["checkpoints"]["partitions"][0]["finding"].clone()
}

#[test]
fn truncation_with_its_checkpoints_deleted_is_caught_by_the_remembered_checkpoint() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    cosigned_twice(&r, &env);
    // The attack: orders/0 cut from 30 to 20 entries (a whole signed batch, so the chain
    // alone verifies) and the size-30 checkpoint records deleted. The log alone is clean.
    rewrite_in_place(&env, "orders", |_, recs| recs.truncate(20));
    rewrite_in_place(&env, "orders.checkpoints", |_, recs| {
        recs.retain(|r| !is_checkpoint_of(r, 30))
    });
    let fresh = env.dir.path().join("fresh-state").display().to_string();
    let out = r.code(0, &["verify", "orders", "--state", &fresh]);
    assert!(
        out.contains("newest trusted size 20"),
        "alone it looks clean: {out}"
    );
    // The verifier that saw size 30 before says so: exit 3, at offset 20.
    let out = r.code(3, &["verify", "orders", "--json"]);
    let f = finding_of(&out);
    assert_eq!(f["kind"], "checkpoint_rollback", "{out}");
    assert_eq!(f["offset"], 20, "{out}");
    let out = r.code(3, &["verify", "orders"]);
    assert!(out.contains("checkpoint_rollback at offset 20"), "{out}");
    assert!(out.contains("size 30"), "{out}");
    // Remembered checkpoints kept inside the data directory they protect are worth a warning.
    let inside = config_file(&env, "trust.toml").starts_with(env.data());
    assert_eq!(
        out.contains("lie inside the data directory they protect"),
        inside,
        "{out}"
    );
    let elsewhere = env.dir.path().join("elsewhere").display().to_string();
    let out = r.code(0, &["verify", "orders", "--state", &elsewhere]);
    assert!(!out.contains("lie inside the data directory"), "{out}");
}

#[test]
fn an_emptied_partition_and_deleted_checkpoints_topic_are_caught_by_the_remembered_checkpoint() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    cosigned_twice(&r, &env);
    rewrite_in_place(&env, "orders", |_, recs| recs.clear());
    delete_topic(&env, "orders.checkpoints");
    let out = r.code(3, &["verify", "orders", "--json"]);
    let f = finding_of(&out);
    assert_eq!(f["kind"], "checkpoint_rollback", "{out}");
    assert_eq!(f["offset"], 0, "{out}");

    // Then a new history of 40 entries, signed (records and checkpoints) with the writer key
    // stolen from where it is kept (a copy: the writer's own memory is not consulted).
    let stolen = env.dir.path().join("stolen.key");
    fs::copy(config_file(&env, "writer.key"), &stolen).unwrap();
    let stolen = stolen.display().to_string();
    let input: String = (100..140).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = r.run(&["--key-file", &stolen, "produce", "orders"], &input);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = r.code(3, &["verify", "orders", "--json"]);
    let f = finding_of(&out);
    assert_eq!(f["kind"], "checkpoint_rollback", "{out}");
    assert_eq!(
        f["offset"], 0,
        "no entry of the first 30 is what it was: {out}"
    );
}

#[test]
fn a_witness_export_catches_the_suppression_on_a_first_run() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    let witnesses = cosigned_twice(&r, &env);
    let mut exports = Vec::new();
    for (i, (_, state)) in witnesses.iter().enumerate() {
        let file = env
            .dir
            .path()
            .join(format!("w{i}.json"))
            .display()
            .to_string();
        r.code(0, &["witness", "export", "--state", state, "-o", &file]);
        exports.push(file);
    }
    rewrite_in_place(&env, "orders", |_, recs| recs.truncate(20));
    rewrite_in_place(&env, "orders.checkpoints", |_, recs| {
        recs.retain(|r| !is_checkpoint_of(r, 30))
    });
    // An auditor who never ran before (empty state) but holds both witnesses' exports.
    let fresh = env.dir.path().join("auditor-state").display().to_string();
    let mut args = vec!["verify", "orders", "--state", &fresh, "--json"];
    for f in &exports {
        args.extend(["--checkpoint", f.as_str()]);
    }
    let out = r.code(3, &args);
    let f = finding_of(&out);
    assert_eq!(f["kind"], "checkpoint_truncated", "{out}");
    assert_eq!(f["offset"], 20, "{out}");
    // One witness's export alone does not meet the 2-of-2 policy: it vouches for nothing.
    let fresh2 = env.dir.path().join("auditor2-state").display().to_string();
    let out = r.code(
        0,
        &[
            "verify",
            "orders",
            "--state",
            &fresh2,
            "--checkpoint",
            &exports[0],
        ],
    );
    assert!(out.contains("newest trusted size 20"), "{out}");
}

#[test]
fn a_policy_with_no_trusted_checkpoint_is_a_finding() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    r.code(0, &["keygen", "--name", "acme"]);
    r.code(0, &["topic", "create", "orders"]);
    two_witnesses(&r, &env);
    produce(&r, 0, 10);
    r.code(0, &["checkpoint", "publish", "orders"]);
    let out = r.code(3, &["verify", "orders", "--json"]);
    assert_eq!(finding_of(&out)["kind"], "no_trusted_checkpoint", "{out}");
}

#[test]
fn a_writer_refuses_to_sign_after_a_truncation_below_its_last_checkpoint() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    r.code(0, &["keygen", "--name", "acme"]);
    r.code(0, &["topic", "create", "orders"]);
    let input: String = (0..9).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = r.run(&["produce", "orders", "--batch", "3"], &input);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("size 9"),
        "{out:?}"
    );
    // Cut to 3 entries, and the checkpoints topic (the writer's only memory until now) gone.
    rewrite_in_place(&env, "orders", |_, recs| recs.truncate(3));
    delete_topic(&env, "orders.checkpoints");
    let out = r.run(&["produce", "orders", "--batch", "3"], "x\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refusing to sign"), "{err}");
    assert!(err.contains("signed size 9"), "names what it signed: {err}");
    assert!(err.contains("3 entries"), "names what the log shows: {err}");
    assert!(
        !env.data().join("topics/orders.checkpoints").exists()
            || !r
                .run(&["checkpoint", "export", "orders", "-o", "-"], "")
                .stdout
                .starts_with(b"kchain/orders/0\n3\n"),
        "no shorter checkpoint was signed"
    );
}

#[test]
fn a_witness_writes_evidence_when_the_log_is_truncated_or_rewritten_below_it() {
    for rewrite in [false, true] {
        let env = Env::new();
        let r = Runner {
            env: &env,
            printed: RefCell::new(String::new()),
        };
        r.code(0, &["keygen", "--name", "acme"]);
        r.code(0, &["topic", "create", "orders"]);
        let witnesses = two_witnesses(&r, &env);
        produce(&r, 0, 9);
        r.code(0, &["checkpoint", "publish", "orders"]);
        let w = &witnesses[0];
        let out = run_witness(&r, 0, "orders", w);
        assert!(out.contains("cosigned kchain/orders/0 size 9"), "{out}");
        if rewrite {
            // Another history of 12 entries, signed with the writer key stolen from the data
            // directory (copied, so the writer's own memory beside it is not consulted).
            let stolen = env.dir.path().join("stolen.key");
            fs::copy(config_file(&env, "writer.key"), &stolen).unwrap();
            delete_topic(&env, "orders");
            delete_topic(&env, "orders.checkpoints");
            r.code(0, &["topic", "create", "orders"]);
            let input: String = (100..112).map(|i| format!("{{\"n\":{i}}}\n")).collect();
            let stolen = stolen.display().to_string();
            let out = r.run(&["--key-file", &stolen, "produce", "orders"], &input);
            assert_eq!(out.status.code(), Some(0), "{out:?}");
        } else {
            rewrite_in_place(&env, "orders", |_, recs| recs.truncate(3));
        }
        let out = run_witness(&r, 3, "orders", w);
        assert!(
            out.contains("ALERT kchain/orders/0 cosigned size 9"),
            "{out}"
        );
        let kind = if rewrite { "rewritten" } else { "truncated" };
        assert!(out.contains(kind), "{out}");
        let evidence = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("evidence: "))
            .unwrap_or_else(|| panic!("no evidence file: {out}"));
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(evidence).unwrap()).unwrap();
        assert_eq!(v["kind"], kind, "{v}");
        assert!(v["cosigned"]
            .as_str()
            .unwrap()
            .starts_with("kchain/orders/0\n9\n"));
        // The witness never cosigns for this chain again, and keeps saying why.
        let out = run_witness(&r, 3, "orders", w);
        assert!(!out.contains("cosigned kchain"), "{out}");
    }
}

/// A wallet key made with `wallet new`; returns (path, address).
fn wallet(r: &Runner, env: &Env, name: &str) -> (String, String) {
    let path = env
        .dir
        .path()
        .join(format!("{name}.key"))
        .display()
        .to_string();
    let out = r.code(0, &["wallet", "new", "--out", &path, "--name", name]);
    let address = out
        .lines()
        .find_map(|l| l.strip_prefix("address"))
        .unwrap()
        .trim()
        .to_owned();
    (path, address)
}

#[test]
fn ledger_a_dropped_last_block_with_its_checkpoint_and_snapshot_is_caught_on_the_second_run() {
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    let (alice_key, alice) = wallet(&r, &env, "alice");
    let (_, bob) = wallet(&r, &env, "bob");
    let (sealer_key, _) = wallet(&r, &env, "sealer");
    let genesis = env.dir.path().join("genesis.toml").display().to_string();
    let fund = format!("{alice}=1000");
    r.code(
        0,
        &[
            "ledger",
            "genesis",
            "--chain",
            "rb",
            "--sealer",
            &sealer_key,
            "--fund",
            &fund,
            "--partitions",
            "1",
            "--out",
            &genesis,
        ],
    );
    r.code(0, &["ledger", "init", "--genesis", &genesis]);
    for amount in ["10", "20", "30"] {
        r.code(
            0,
            &[
                "tx",
                "transfer",
                "--chain",
                "rb",
                "--from-key",
                &alice_key,
                "--to",
                &bob,
                "--amount",
                amount,
            ],
        );
    }
    r.code(
        0,
        &[
            "node",
            "run",
            "--chain",
            "rb",
            "--seal",
            "--key",
            &sealer_key,
            "--block-txs",
            "1",
            "--checkpoint-every",
            "1",
            "--until-idle",
        ],
    );
    // The auditor's trust file: checkpoints signed by the genesis's sealers are required.
    let trust = env.dir.path().join("auditor").join("trust.toml");
    fs::create_dir_all(trust.parent().unwrap()).unwrap();
    fs::write(&trust, "[policy]\nwitnesses = 0\n").unwrap();
    let trust = trust.display().to_string();
    let out = r.code(
        0,
        &[
            "--trust", &trust, "ledger", "verify", "--chain", "rb", "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let size = v["checkpoints"]["newest"]["size"].as_u64().unwrap();
    assert_eq!(size, v["height"].as_u64().unwrap() + 1, "{v}");

    // The attack: the last block dropped, the checkpoints covering it deleted, and the node's
    // snapshot (which would pin the tip) removed.
    rewrite_in_place(&env, "rb.blocks", |_, recs| {
        recs.pop();
    });
    rewrite_in_place(&env, "rb.blocks.checkpoints", |_, recs| {
        recs.retain(|r| (1..size).any(|s| is_checkpoint_of(r, s)))
    });
    fs::remove_file(env.data().join("ledger/rb.blocks/snapshot.json")).unwrap();
    let fresh = env.dir.path().join("fresh").display().to_string();
    let args = [
        "ledger", "verify", "--chain", "rb", "--json", "--state", &fresh,
    ];
    let out = r.code(0, &[&["--trust", &trust][..], &args].concat());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["ok"],
        true
    );
    // The auditor who verified before remembers the dropped block's checkpoint.
    let out = r.code(
        3,
        &[
            "--trust", &trust, "ledger", "verify", "--chain", "rb", "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["checkpoint_finding"]["kind"], "checkpoint_rollback",
        "{v}"
    );
    assert_eq!(v["checkpoint_finding"]["height"], size - 1, "{v}");
}

#[test]
fn verifies_during_live_writing_with_frequent_checkpoints_are_never_false_alarms() {
    use std::io::Write;
    let env = Env::new();
    let r = Runner {
        env: &env,
        printed: RefCell::new(String::new()),
    };
    setup(&r);
    enable_policy(&env);
    let mut producer = env
        .command(&[
            "produce",
            "orders",
            "--batch",
            "20",
            "--checkpoint-every",
            "20",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = producer.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for chunk in 0..200 {
            for i in 0..100 {
                writeln!(stdin, "{{\"n\":{}}}", chunk * 100 + i).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    // Checkpoints are read before the chain: one published meanwhile never covers more
    // than the chain read, so no verify says `checkpoint_truncated` on an honest writer.
    for _ in 0..12 {
        let out = r.run(&["verify", "orders", "--json"], "");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    feeder.join().unwrap();
    assert!(producer.wait().unwrap().success());
    r.code(0, &["verify", "orders"]);
}
