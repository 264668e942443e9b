//! Proofs an auditor can use (issue 15, point 2): the auditor has only a proof file and the
//! writer's `kchain pubkey` output, trusts the key under a name of their own, and
//! `verify-proof` says what was proven, in text and as JSON.

mod support;

use support::Env;

fn one_json(out: &str) -> serde_json::Value {
    assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
    serde_json::from_str(out).unwrap()
}

/// A writer (key named `writer`) with three records and an encrypted fourth on `orders`,
/// a published checkpoint, and proofs of offsets 1 and 3.
fn writer() -> Env {
    let env = Env::new();
    env.ok(&["keygen", "--name", "writer"], "");
    env.ok(&["key", "new"], "");
    env.ok(&["topic", "create", "orders"], "");
    env.ok(&["produce", "orders"], "apple\nbanana\ncherry\n");
    env.ok(&["produce", "orders", "--encrypt"], "secret order\n");
    env.ok(&["checkpoint", "publish", "orders"], "");
    for offset in ["1", "3"] {
        let file = env.dir.path().join(format!("p{offset}.json"));
        env.ok(
            &[
                "prove",
                "orders",
                "--offset",
                offset,
                "-o",
                file.to_str().unwrap(),
            ],
            "",
        );
    }
    env
}

fn path(env: &Env, name: &str) -> String {
    env.dir.path().join(name).display().to_string()
}

#[test]
fn an_auditor_trusts_the_writer_key_under_a_name_of_their_own() {
    let env = writer();
    let pubkey = env.ok(&["pubkey"], "");
    let pubkey = pubkey.trim();
    assert!(
        pubkey.starts_with("writer+"),
        "a C2SP verifier key: {pubkey}"
    );
    let auditor = path(&env, "auditor.toml");
    env.ok(
        &["--trust", &auditor, "trust", "add", "shop-inc", pubkey],
        "",
    );

    let out = env.ok(
        &["--trust", &auditor, "verify-proof", &path(&env, "p1.json")],
        "",
    );
    assert!(out.starts_with("included: entry "), "{out}");
    assert!(out.contains("signed by shop-inc"), "{out}");
    assert!(out.contains("orders/0 offset 1 (height 1)"), "{out}");
    assert!(out.contains("value      banana"), "{out}");
    assert!(out.contains("timestamp  20"), "{out}");

    let v = one_json(&env.ok(
        &[
            "--trust",
            &auditor,
            "verify-proof",
            &path(&env, "p1.json"),
            "--json",
        ],
        "",
    ));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["topic"], "orders", "{v}");
    assert_eq!(v["partition"], 0, "{v}");
    assert_eq!(v["offset"], 1, "{v}");
    assert_eq!(v["value"], "banana", "{v}");
    assert!(v["timestamp"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(v["checkpoint"]["size"], 4, "{v}");
    assert_eq!(v["checkpoint"]["origin"], "kchain/orders/0", "{v}");
    assert_eq!(v["checkpoint"]["signed_by"][0], "shop-inc", "{v}");
    assert!(v["checkpoint"]["cosigned_by"].is_array(), "{v}");
}

#[test]
fn the_hex_key_works_too_and_a_stranger_key_does_not() {
    let env = writer();
    let hex = env.ok(&["pubkey", "--hex"], "");
    assert_eq!(hex.trim().len(), 64, "{hex}");
    let keys = one_json(&env.ok(&["pubkey", "--json"], ""));
    assert_eq!(keys["public_key"], hex.trim(), "{keys}");
    assert!(keys["verifier_key"]
        .as_str()
        .unwrap()
        .starts_with("writer+"));
    let auditor = path(&env, "auditor.toml");
    env.ok(
        &["--trust", &auditor, "trust", "add", "acme", hex.trim()],
        "",
    );
    let out = env.ok(
        &["--trust", &auditor, "verify-proof", &path(&env, "p1.json")],
        "",
    );
    assert!(out.contains("signed by acme"), "{out}");

    // Another key under the writer's own name proves nothing (exit 3).
    let stranger = kchain_core::WriterKey::from_seed("writer", [9; 32]);
    let other = path(&env, "other.toml");
    env.ok(
        &[
            "--trust",
            &other,
            "trust",
            "add",
            "writer",
            &stranger.public().to_hex(),
        ],
        "",
    );
    let out = env.run(
        &["--trust", &other, "verify-proof", &path(&env, "p1.json")],
        "",
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PROOF INVALID"));
}

#[test]
fn an_encrypted_value_is_shown_decrypted_only_with_the_keyring() {
    let env = writer();
    let pubkey = env.ok(&["pubkey"], "");
    let auditor = path(&env, "auditor.toml");
    env.ok(
        &[
            "--trust",
            &auditor,
            "trust",
            "add",
            "shop-inc",
            pubkey.trim(),
        ],
        "",
    );
    let p3 = path(&env, "p3.json");
    let out = env.ok(&["--trust", &auditor, "verify-proof", &p3], "");
    assert!(out.contains("is not in the keyring"), "{out}");
    assert!(!out.contains("secret order"), "{out}");
    let keyring = env.config().join("keyring.toml").display().to_string();
    let v = one_json(&env.ok(
        &[
            "--trust",
            &auditor,
            "--keyring",
            &keyring,
            "verify-proof",
            &p3,
            "--json",
        ],
        "",
    ));
    assert_eq!(v["value"], "secret order", "{v}");
    assert_eq!(v["encryption"], "decrypted", "{v}");
}
