//! Errors as a user reads them (issue 15, point 8): one line on stderr, exit 1, the cause
//! once, the path it concerns, and a fix that fits the case.

mod support;

use support::Env;

/// Runs a failing command; returns its one error line (exit 1 checked), leaving out the line
/// naming the backend that every command which opened a log prints first.
fn error(env: &Env, args: &[&str]) -> String {
    let out = env.run(args, "");
    let all = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "kchain {args:?}: {all}");
    let backend =
        |l: &str| l.starts_with("kchain: embedded log ") || l.starts_with("kchain: kafka brokers ");
    let err: String = all
        .lines()
        .filter(|l| !backend(l))
        .map(|l| format!("{l}\n"))
        .collect();
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
    let dir = env.dir.path().join("no-such-dir").display().to_string();
    let err = error(
        &env,
        &["--data-dir", &dir, "--trust", &trust, "verify", "orders"],
    );
    once(&err, &dir);
    once(&err, "No such file or directory");
    assert!(err.contains("kchain topic create"), "{err}");
}

#[test]
fn keygen_with_an_unreadable_trust_file_writes_no_key() {
    let env = Env::new();
    let bad = file(&env, "bad.toml", "bad = [\n");
    let key = env.dir.path().join("new.key");
    error(
        &env,
        &[
            "--trust",
            &bad,
            "--key-file",
            key.to_str().unwrap(),
            "keygen",
        ],
    );
    assert!(
        !key.exists(),
        "a key was written though it could not be trusted"
    );
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

/// A broker that cannot be reached is reported within `--timeout`, on one line.
#[cfg(feature = "kafka")]
#[test]
fn a_down_broker_is_reported_within_the_timeout() {
    let env = Env::kafka("127.0.0.1:1");
    let started = std::time::Instant::now();
    let err = error(&env, &["--timeout", "2", "topic", "list"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}: {err}",
        started.elapsed()
    );
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

/// A private tansu broker with the sqlite engine (the project's test broker), started
/// through `scripts/broker.sh` and stopped on drop (or by the script's watchdog when the
/// test process exits).
#[cfg(feature = "kafka")]
struct SqliteBroker {
    state: tempfile::TempDir,
    address: String,
}

#[cfg(feature = "kafka")]
impl SqliteBroker {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/broker.sh")
    }

    fn start() -> SqliteBroker {
        let state = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", state.path().join("broker.db").display());
        let out = std::process::Command::new(Self::script())
            .args(["start", "--storage", &db, "--watch-pid"])
            .arg(std::process::id().to_string())
            .arg("--state-dir")
            .arg(state.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "broker.sh start (scripts/broker.sh install first): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let address = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        SqliteBroker { state, address }
    }
}

#[cfg(feature = "kafka")]
impl Drop for SqliteBroker {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script())
            .arg("stop")
            .arg("--state-dir")
            .arg(self.state.path())
            .output();
    }
}

/// The README's `kchain -b BROKER demo` completes on the project's test broker (tansu with
/// sqlite), which fetches large partitions too slowly for the embedded log's 100,000 events.
#[cfg(feature = "kafka")]
#[test]
fn the_demo_completes_on_the_sqlite_test_broker() {
    let broker = SqliteBroker::start();
    let env = Env::kafka(&broker.address);
    let out = env.run(&["demo"], "");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Wrote 2000 supply-chain events"),
        "{stdout}"
    );
    assert!(
        stdout.contains("4 of 4 attacks caught at their exact offsets"),
        "{stdout}"
    );
}
