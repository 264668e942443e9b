//! Three organisations on three "hosts", every party its own process, HTTPS between them
//! with a CA made at test time:
//!
//! ```text
//!  A (writer): produce ──records + checkpoints──▶ A's log (the operator's directory)
//!              └─ pushes every checkpoint ──HTTPS──▶ B: witness serve ─┐
//!                                         ──HTTPS──▶ C: witness serve ─┤ cosigned checkpoints
//!  auditor:  monitor (reads A's log) ◀──────HTTPS──────────────────────┤
//!  outsider: verify --checkpoints-from witnesses ◀──HTTPS──────────────┘
//!            (A's checkpoints topic deleted: it never reads it)
//! ```
//!
//! An honest run is clean for both. Then the operator, on a copy of A's log each time,
//! truncates, rewrites with A's key (every hash and signature recomputed) and suppresses
//! checkpoints (keeps appending, none reaches the witnesses); each is caught by the running
//! monitor (an alert line within 5 s of the act; a stall once `--stall-after` has passed) and
//! by the outsider's verify (exit 3 and the right finding).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use kchain_http::TestPki;
use support::orgs::{copy_dir, copy_tree, delete_checkpoints_topic, serve};
use support::{json, run, Env};

/// Entries A writes honestly; a signed batch and a checkpoint every `BATCH`.
const HONEST: usize = 40;
const BATCH: &str = "10";
/// The auditor's `--stall-after` and the outsider's `max_age`, seconds.
const STALL: u64 = 3;
/// How soon an alert must follow the act.
const DEADLINE: Duration = Duration::from_secs(5);

fn lines(from: usize, to: usize, salt: &str) -> String {
    (from..to)
        .map(|i| format!("{{\"n\":{i},\"s\":\"{salt}\"}}\n"))
        .collect()
}

/// `kchain args` in `env`, on the log in `data`, trusting the test CA; must exit 0.
fn ok_on(env: &Env, data: &Path, ca: &Path, args: &[&str], stdin: &str) -> String {
    let mut all = vec!["--data-dir", data.to_str().unwrap()];
    all.extend(["--ca-file", ca.to_str().unwrap()]);
    all.extend_from_slice(args);
    let out = env.run(&all, stdin);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "kchain {args:?}: {err}");
    assert!(!err.contains("warning"), "kchain {args:?}: {err}");
    String::from_utf8(out.stdout).unwrap()
}

/// A running `kchain monitor`, killed when dropped; its alert lines arrive on `alerts`.
struct Monitor {
    child: Child,
    alerts: Receiver<String>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn monitor_args<'a>(data: &'a Path, ca: &'a Path, state: &'a Path) -> Vec<&'a str> {
    vec![
        "--data-dir",
        data.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
        "monitor",
        "orders",
        "--state",
        state.to_str().unwrap(),
        "--interval-ms",
        "100",
        "--stall-after",
        "3",
    ]
}

/// The auditor's monitor on the operator's log `data`: first `--once` (must be clean: no
/// false alarm on the honest log), then live from the state it left.
fn watch(auditor: &Env, data: &Path, ca: &Path, state: &Path) -> Monitor {
    let mut once = monitor_args(data, ca, state);
    once.push("--once");
    let out = auditor.run(&once, "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "honest --once: {err}");
    assert!(out.stdout.is_empty(), "honest --once alerted: {out:?}");
    let mut child = auditor
        .command(&monitor_args(data, ca, state))
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, alerts) = channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Its first pass (resuming from the state) before the operator acts.
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        alerts.try_recv().is_err(),
        "a live monitor alerted on the honest log"
    );
    Monitor { child, alerts }
}

impl Monitor {
    /// The first alert within `within` of now, as JSON.
    fn alert(&self, within: Duration) -> serde_json::Value {
        let line = self
            .alerts
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("no alert within {within:?}: {e}"));
        json(line.trim())
    }
}

/// The outsider's `verify orders --checkpoints-from witnesses --json` on `data` with its
/// checkpoints topic deleted first: exit code, JSON and the finding's kind.
fn outsider_verify(outsider: &Env, data: &Path, ca: &Path) -> (Option<i32>, serde_json::Value) {
    delete_checkpoints_topic(data);
    let state = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        outsider,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--ca-file",
            ca.to_str().unwrap(),
            "verify",
            "orders",
            "--checkpoints-from",
            "witnesses",
            "--state",
            state.path().to_str().unwrap(),
            "--json",
        ],
    );
    assert!(code == Some(0) || code == Some(3), "{code:?} {out} {err}");
    (code, json(&out))
}

fn kind(v: &serde_json::Value) -> &str {
    v["checkpoints"]["partitions"][0]["finding"]["kind"]
        .as_str()
        .unwrap_or("none")
}

/// Replaces topic `orders` of the embedded log in `data` by the one in `other`.
fn replace_topic(data: &Path, other: &Path) {
    let (mine, theirs) = (topic_dir(data), topic_dir(other));
    let tmp = data.join("orders.replaced");
    copy_tree(&theirs, &tmp);
    std::fs::remove_dir_all(&mine).unwrap();
    std::fs::rename(&tmp, &mine).unwrap();
}

/// Appends the checkpoints (signed with A's key) of the log in `other` to those in `data`.
fn publish_checkpoints(data: &Path, other: &Path) {
    use kchain_log::{EmbeddedLog, Log};
    let topic = "orders.checkpoints";
    let from = EmbeddedLog::open(other, Default::default()).unwrap();
    let notes = kchain_topic::tamper::read_all(&from, topic, 0).unwrap();
    let log = EmbeddedLog::open(data, Default::default()).unwrap();
    let mut app = log.appender(topic, 0).unwrap();
    app.append(&notes).unwrap();
    app.flush().unwrap();
}

/// Where the embedded log in `data` keeps topic `orders`.
fn topic_dir(data: &Path) -> PathBuf {
    data.join("topics").join("orders")
}

#[test]
fn a_monitor_and_an_outsider_catch_the_operator_over_https() {
    let started = Instant::now();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(pki_dir.path()).unwrap();
    let ca = &pki.ca;

    // A: the writer's key and topic; B and C: witnesses holding A's trust file.
    let a = Env::new();
    a.ok(&["keygen", "--name", "acme"], "");
    a.ok(&["topic", "create", "orders"], "");
    let trust = a.config().join("trust.toml");
    let (_b_env, b) = serve("b.example", &pki, &trust);
    let (_c_env, c) = serve("c.example", &pki, &trust);
    for w in [&b, &c] {
        a.ok(&["trust", "add-witness", &w.vkey, "--url", &w.url], "");
    }
    // The auditor (and outsider): A's public key, B and C at their URLs, 2 cosignatures.
    let auditor = Env::new();
    copy_dir(&a.config(), &auditor.config());
    for e in std::fs::read_dir(auditor.config()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "key") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let max_age = STALL.to_string();
    let policy = ["trust", "policy", "--witnesses", "2", "--max-age", &max_age];
    auditor.ok(&policy, "");

    // Honest: A produces, pushing each checkpoint to B and C over HTTPS.
    let produce = [
        "produce",
        "orders",
        "--batch",
        BATCH,
        "--checkpoint-every",
        BATCH,
    ];
    ok_on(&a, &a.data(), ca, &produce, &lines(0, HONEST, "a"));
    let honest = tempfile::tempdir().unwrap();
    copy_tree(&a.data(), honest.path());
    let (code, v) = outsider_verify(&auditor, honest.path(), ca);
    assert_eq!(code, Some(0), "honest: {v}");
    assert_eq!(v["checkpoints"]["partitions"][0]["newest"]["size"], HONEST);

    // Each act on a copy of A's log, under a monitor of its own.
    let operator = |name: &str| {
        let dir = a.dir.path().join(format!("operator-{name}"));
        copy_tree(&a.data(), &dir);
        dir
    };
    let states = tempfile::tempdir().unwrap();

    // Truncation: the last signed batch dropped (the chain alone still verifies).
    let cut = operator("cut");
    let shorter = tempfile::tempdir().unwrap();
    {
        let src = kchain_log::EmbeddedLog::open(&cut, Default::default()).unwrap();
        let dst = kchain_log::EmbeddedLog::create(shorter.path(), Default::default()).unwrap();
        kchain_topic::tamper::copy_topic_with(&src, &dst, "orders", |_, r| r.truncate(30)).unwrap();
    }
    let m = watch(&auditor, &cut, ca, &states.path().join("cut"));
    let act = Instant::now();
    replace_topic(&cut, shorter.path());
    let alert = m.alert(DEADLINE);
    assert!(act.elapsed() < DEADLINE, "{:?}", act.elapsed());
    assert_eq!(alert["kind"], "rollback", "{alert}");
    drop(m);
    let (code, v) = outsider_verify(&auditor, &cut, ca);
    assert_eq!((code, kind(&v)), (Some(3), "checkpoint_truncated"), "{v}");

    // Rewrite with A's key: another history of 45 entries, every hash and signature
    // recomputed, and its checkpoints (signed with A's key) published after the honest ones,
    // but kept from the witnesses (they would refuse them).
    let rewritten = operator("rewrite");
    let forger = Env::new();
    copy_dir(&a.config(), &forger.config());
    forger.ok(&["topic", "create", "orders"], "");
    let forge = [
        "produce",
        "orders",
        "--batch",
        BATCH,
        "--checkpoint-every",
        BATCH,
        "--no-push",
    ];
    forger.ok(&forge, &lines(0, 45, "b"));
    let m = watch(&auditor, &rewritten, ca, &states.path().join("rewrite"));
    let act = Instant::now();
    replace_topic(&rewritten, &forger.data());
    publish_checkpoints(&rewritten, &forger.data());
    let alert = m.alert(DEADLINE);
    assert!(act.elapsed() < DEADLINE, "{:?}", act.elapsed());
    // Its checkpoint of size 10 contradicts the one the monitor holds.
    assert_eq!(alert["kind"], "fork", "{alert}");
    drop(m);
    let (code, v) = outsider_verify(&auditor, &rewritten, ca);
    assert_eq!((code, kind(&v)), (Some(3), "checkpoint_rewritten"), "{v}");

    // Suppression: A's operator keeps appending, with no checkpoint reaching anyone.
    let quiet = operator("quiet");
    let m = watch(&auditor, &quiet, ca, &states.path().join("quiet"));
    let act = Instant::now();
    let appended = ["produce", "orders", "--batch", BATCH, "--no-checkpoints"];
    ok_on(&a, &quiet, ca, &appended, &lines(HONEST, HONEST + 10, "a"));
    let alert = m.alert(Duration::from_secs(STALL) + DEADLINE);
    assert!(act.elapsed() < Duration::from_secs(STALL) + DEADLINE);
    // Either rule may speak first: no new checkpoint for --stall-after (`stall`), or entries
    // past a checkpoint no witness cosigned within the policy's max_age (`stale`).
    assert!(
        alert["kind"] == "stall" || alert["kind"] == "stale",
        "{alert}"
    );
    drop(m);
    let (code, v) = outsider_verify(&auditor, &quiet, ca);
    assert_eq!((code, kind(&v)), (Some(3), "checkpoint_stale"), "{v}");
    drop((b, c));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_demos_three_hosts_part_catches_every_act_with_real_processes() {
    let dir = tempfile::tempdir().unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_kchain"));
    assert!(kchain_cli::demo::hosts_tour(exe, dir.path()).unwrap());
}
