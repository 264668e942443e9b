//! Errors as a user reads them (issue 15, point 8): one line on stderr, exit 1, the cause
//! once, the path it concerns, and a fix that fits the case.

mod support;

use support::Env;

/// Runs a failing command; returns its one stderr line (exit 1 checked).
fn error(env: &Env, args: &[&str]) -> String {
    let out = env.run(args, "");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "kchain {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "kchain {args:?}: one line: {err}");
    assert!(err.starts_with("kchain: error: "), "{err}");
    err
}

fn once(err: &str, needle: &str) {
    assert_eq!(err.matches(needle).count(), 1, "'{needle}' once in: {err}");
}

fn file(env: &Env, name: &str, text: &str) -> String {
    let path = env.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_missing_file_is_named_with_its_cause_once() {
    let env = Env::new();
    let missing = env.dir.path().join("missing.json").display().to_string();
    let trust = file(&env, "t.toml", "");
    let err = error(&env, &["--trust", &trust, "verify-proof", &missing]);
    once(&err, "No such file or directory");
    assert!(err.contains(&missing), "{err}");
    let err = error(&env, &["--key-file", &missing, "pubkey"]);
    once(&err, "No such file or directory");
    assert!(err.contains(&missing), "{err}");
}

#[test]
fn a_toml_error_is_one_line_said_once() {
    let env = Env::new();
    let bad = file(&env, "bad.toml", "bad = [\n");
    for args in [
        &["--trust", &bad, "trust", "policy", "--witnesses", "0"][..],
        &["--trust", &bad, "trust", "show"][..],
    ] {
        let err = error(&env, args);
        once(&err, "invalid array");
        once(&err, "expected `]`");
        once(&err, "bad.toml");
    }
}

#[test]
fn a_bad_public_key_says_what_is_wrong_with_it_once() {
    let env = Env::new();
    // 64 hex digits that are not an Ed25519 point.
    let not_a_point = format!("02{}", "00".repeat(31));
    let err = error(&env, &["trust", "add", "x", &not_a_point]);
    once(&err, &not_a_point);
    assert!(
        err.contains("64 hex digits, but not an Ed25519 public key"),
        "{err}"
    );
    let err = error(&env, &["trust", "add", "x", "abc"]);
    assert!(err.contains("got 3 characters"), "{err}");

    let trust = file(
        &env,
        "t.toml",
        &format!("[[writer]]\nname = \"a\"\npublic_key = \"{not_a_point}\"\n"),
    );
    let err = error(&env, &["--trust", &trust, "trust", "show"]);
    once(&err, "trust file");
    once(&err, &not_a_point);
    assert!(
        err.contains("64 hex digits, but not an Ed25519 public key"),
        "{err}"
    );
    assert!(!err.contains("expected 64 hex digits"), "{err}");
}

#[test]
fn a_missing_trust_file_gets_advice_that_fits() {
    let env = Env::new();
    env.ok(&["topic", "create", "orders"], "");
    let named = env.dir.path().join("auditor.toml").display().to_string();
    let err = error(&env, &["--trust", &named, "verify", "orders"]);
    assert!(
        err.contains(&format!("trust file {named} does not exist")),
        "{err}"
    );
    assert!(
        !err.contains("keygen"),
        "no key advice for a verifier: {err}"
    );
    // The default trust file: how to create it.
    let err = error(&env, &["verify", "orders"]);
    assert!(err.contains("no trust file at"), "{err}");
    assert!(err.contains("kchain keygen"), "{err}");
}

#[test]
fn an_unknown_topic_suggests_the_closest() {
    let env = Env::new();
    env.ok(&["keygen"], "");
    env.ok(&["topic", "create", "orders"], "");
    env.ok(&["topic", "create", "payments"], "");
    let err = error(&env, &["verify", "ordrs"]);
    assert!(err.contains("topic 'ordrs' does not exist"), "{err}");
    assert!(err.contains("did you mean 'orders'?"), "{err}");
    assert!(!err.contains("topic create"), "{err}");
    let err = error(&env, &["consume", "paymens"]);
    assert!(err.contains("did you mean 'payments'?"), "{err}");
    // Nothing close: how to create it.
    let err = error(&env, &["verify", "zzzzzzzz"]);
    assert!(!err.contains("did you mean"), "{err}");
    assert!(err.contains("kchain topic create zzzzzzzz"), "{err}");
}
