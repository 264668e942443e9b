//! The `kchain` binary end to end on the embedded backend: commands, exit codes (0 verified,
//! 3 findings, 1 errors), `--json` output, and one clear line for bad input.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

mod support;

use support::Env;

fn setup(env: &Env, lines: usize) {
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders", "--partitions", "2"], "");
    let input: String = (0..lines)
        .map(|i| format!("order-{}\t{{\"n\":{i}}}\n", i % 5))
        .collect();
    let out = env.ok(&["produce", "orders", "-K", "\t", "--batch", "16"], &input);
    assert!(out.contains("appended"), "{out}");
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with("appender.lock") {
                out.push((p.display().to_string(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn produce_consume_verify_inspect_round_trip() {
    let env = Env::new();
    setup(&env, 100);
    let listed = env.ok(&["topic", "list"], "");
    assert!(listed.contains("orders\t2 partition(s)"), "{listed}");

    let out = env.ok(&["verify", "orders", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["topic"], "orders");
    assert_eq!(v["ok"], true);
    let parts = v["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let total: u64 = parts.iter().map(|p| p["entries"].as_u64().unwrap()).sum();
    assert_eq!(total, 100);
    for p in parts {
        assert!(p["finding"].is_null());
        assert_eq!(p["tip_hash"].as_str().unwrap().len(), 64);
        assert_eq!(
            p["tip_height"].as_u64().unwrap() + 1,
            p["entries"].as_u64().unwrap()
        );
    }

    // Keys are spread as Kafka's partitioner would, so all of one key is in one partition.
    let consumed = env.ok(&["consume", "orders", "-e", "--json"], "");
    let recs: Vec<serde_json::Value> = consumed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 100);
    for r in &recs {
        let key = r["key"].as_str().unwrap();
        let expect = kchain_topic::partition_for_key(key.as_bytes(), 2);
        assert_eq!(r["partition"].as_u64().unwrap(), u64::from(expect));
    }
    let plain = env.ok(
        &[
            "consume", "orders", "-e", "-p", "0", "--from", "3", "--count", "2",
        ],
        "",
    );
    assert_eq!(plain.lines().count(), 2);

    let inspected = env.ok(&["inspect", "orders", "-p", "0", "--count", "20"], "");
    assert!(
        inspected.lines().nth(1).unwrap().contains(" ok "),
        "{inspected}"
    );
    let j = env.ok(
        &["inspect", "orders", "-p", "1", "--json", "--count", "3"],
        "",
    );
    let first: serde_json::Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
    assert_eq!(first["height"], 0);
    assert_eq!(first["link_ok"], true);
}

#[test]
fn keygen_writes_a_private_key_and_a_trust_file() {
    let env = Env::new();
    env.ok(&["keygen", "--name", "acme"], "");
    let key = env.config().join("writer.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        env.error(&["pubkey"], "readable by others");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let public = env.ok(&["pubkey", "--hex"], "");
    let trust = fs::read_to_string(env.config().join("trust.toml")).unwrap();
    assert!(trust.contains(public.trim()));
    // The secret never appears in anything the tool prints.
    let secret = fs::read_to_string(&key).unwrap();
    let secret_hex = secret
        .lines()
        .find_map(|l| l.strip_prefix("secret = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    for args in [&["pubkey"][..], &["trust", "show"][..]] {
        let out = env.run(args, "");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret_hex));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(&secret_hex));
    }
    env.error(&["keygen"], "already exists");
}

#[test]
fn findings_exit_3_and_pinning_catches_truncation() {
    let env = Env::new();
    setup(&env, 40);
    env.ok(&["trust", "pin", "orders"], "");
    env.ok(&["verify", "orders"], "");
    // A second key writes to the partition under its own name: not trusted.
    let other = env.dir.path().join("other.key");
    let o = other.to_str().unwrap();
    env.ok(&["keygen", "--key-file", o, "--no-trust"], "");
    // The writer resumes only chains it signed itself.
    let out = env.run(&["produce", "orders", "-p", "0", "--key-file", o], "x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not by this writer's key"));

    // Simulate truncation: the data directory replaced, at the same place (the same log,
    // by the pins' reckoning), by a shorter chain under the same trust.
    // The writer key is copied away from its memory of what it signed, as a thief would.
    fs::remove_dir_all(env.data()).unwrap();
    let stolen = env.dir.path().join("stolen.key");
    fs::copy(env.config().join("writer.key"), &stolen).unwrap();
    let copy = &env;
    copy.ok(&["topic", "create", "orders", "--partitions", "2"], "");
    let input: String = (0..10)
        .map(|i| format!("order-{}\t{{\"n\":{i}}}\n", i % 5))
        .collect();
    let key = stolen.to_str().unwrap();
    copy.ok(
        &["produce", "orders", "-K", "\t", "--key-file", key],
        &input,
    );
    let out = copy.run(&["verify", "orders", "--json"], "");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let kinds: Vec<&str> = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["finding"]["kind"].as_str())
        .collect();
    assert!(!kinds.is_empty());
    assert!(
        kinds
            .iter()
            .all(|k| ["truncated", "tip_mismatch", "genesis_mismatch"].contains(k)),
        "{kinds:?}"
    );
    let text = copy.run(&["verify", "orders"], "");
    assert_eq!(text.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&text.stdout).contains("FINDING"));
    let consumed = copy.run(&["consume", "orders", "-e", "-p", "0"], "");
    assert_eq!(consumed.status.code(), Some(3));
}

#[test]
fn bad_input_gets_one_clear_line_and_changes_nothing() {
    let env = Env::new();
    setup(&env, 30);
    let before = snapshot(&env.data());
    env.error(&["verify", "nope"], "topic 'nope' does not exist");
    env.error(
        &["consume", "orders", "-e", "-p", "7"],
        "partition 7 does not exist in topic 'orders'",
    );
    env.error(
        &["verify", "orders", "-p", "2"],
        "partition 2 does not exist",
    );
    env.error(&["produce", "nope"], "topic 'nope' does not exist");
    env.error(
        &["verify", "orders", "--data-dir", "/nonexistent/kchain"],
        "/nonexistent/kchain",
    );
    let bad_trust = env.dir.path().join("bad.toml");
    fs::write(&bad_trust, "[[writer]]\nname = 1\n").unwrap();
    env.error(
        &["verify", "orders", "--trust", bad_trust.to_str().unwrap()],
        "line 2",
    );
    env.error(
        &["verify", "orders", "--trust", "/nonexistent/trust.toml"],
        "trust file /nonexistent/trust.toml does not exist",
    );
    assert_eq!(
        snapshot(&env.data()),
        before,
        "bad input changed stored data"
    );

    // A corrupt segment: one flipped byte in the middle of a batch.
    let seg = env
        .data()
        .join("topics/orders/0")
        .join(format!("{:020}.log", 0));
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x40;
    fs::write(&seg, &bytes).unwrap();
    let corrupted = snapshot(&env.data());
    // For verify, stored bytes that do not check are a finding at their batch (exit 3).
    let out = env.run(&["verify", "orders"], "");
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("corrupt") && text.contains("corruption in"),
        "{text}"
    );
    env.error(&["consume", "orders", "-e", "-p", "0"], "corruption in");
    assert_eq!(
        snapshot(&env.data()),
        corrupted,
        "reading a corrupt segment changed it"
    );
}

#[test]
fn verify_runs_while_another_process_produces() {
    let env = Env::new();
    setup(&env, 10);
    let mut producer = env
        .command(&["produce", "orders", "-p", "1", "--batch", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = producer.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..20_000 {
            writeln!(stdin, "event {i}").unwrap();
        }
    });
    for _ in 0..5 {
        let out = env.run(&["verify", "orders", "--json"], "");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    feeder.join().unwrap();
    assert!(producer.wait().unwrap().success());
    let out = env.ok(&["verify", "orders", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let total: u64 = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 10 + 20_000);
}
