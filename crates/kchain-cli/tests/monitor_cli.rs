//! `kchain monitor` through the binary on the embedded log: `--once` exits 0 on a clean
//! chain and 3 on a forged record, prints the alert as one JSON line, resumes from its
//! state without reading again or repeating the alert; run live, it alerts within 5 s of
//! the forgery, serves /metrics, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

mod support;

use support::Env;

/// A record that links but carries no signature, appended to `t`/0.
fn forge(env: &Env, t: &str) {
    support::forge_on_embedded(env, t, 0, None);
}

fn setup(env: &Env, n: usize) {
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders"], "");
    let input: String = (0..n).map(|i| format!("order {i}\n")).collect();
    env.ok(&["produce", "orders", "--batch", "16"], &input);
}

#[test]
fn once_is_clean_then_alerts_once_and_resumes_without_reading_again() {
    let env = Env::new();
    setup(&env, 100);
    let state = env.dir.path().join("monitor");
    let s = state.to_str().unwrap();
    let out = env.run(&["monitor", "orders", "--state", s, "--once"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("100 entries verified (100 records read"),
        "{err}"
    );
    forge(&env, "orders");
    let out = env.run(&["monitor", "orders", "--state", s, "--once"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = String::from_utf8(out.stdout).unwrap();
    let alert = support::json(line.trim());
    assert_eq!(alert["kind"], "tamper");
    assert_eq!(
        (alert["chain"].as_str(), alert["offset"].as_u64()),
        (Some("orders"), Some(100))
    );
    // Only the forged record was read; the alert is not raised again on the next run.
    assert!(
        err.contains("100 entries verified (1 records read"),
        "{err}"
    );
    let out = env.run(&["monitor", "orders", "--state", s, "--once"], "");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn live_it_alerts_within_five_seconds_serves_metrics_and_stops_on_sigterm() {
    let env = Env::new();
    setup(&env, 50);
    let state = env.dir.path().join("monitor");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{port}");
    let mut child = env
        .command(&[
            "monitor",
            "orders",
            "--state",
            state.to_str().unwrap(),
            "--metrics",
            &bind,
            "--interval-ms",
            "100",
        ])
        .spawn()
        .unwrap();
    let client = kchain_http::Client::new(&Default::default()).unwrap();
    let url = format!("http://{bind}/metrics");
    let verified = "kchain_monitor_entries_verified_total{topic=\"orders\",partition=\"0\"} 50";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = client.get(&url).map(|r| r.text()).unwrap_or_default();
        if page.lines().any(|l| l == verified) {
            break;
        }
        assert!(Instant::now() < deadline, "{page}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let act = Instant::now();
    forge(&env, "orders");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let took = act.elapsed();
    assert!(took < Duration::from_secs(5), "alert after {took:?}");
    assert_eq!(support::json(line.trim())["kind"], "tamper");
    // SAFETY: a plain kill(2) of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "a finding was raised");
}

#[test]
fn with_max_age_entries_past_the_newest_checkpoint_no_witness_vouches_for_are_stale() {
    let env = Env::new();
    setup(&env, 20);
    // `produce` published a checkpoint of the 20 entries on exit.
    env.ok(&["trust", "policy", "--max-age", "3600"], "");
    let state = env.dir.path().join("monitor");
    let s = state.to_str().unwrap();
    let out = env.run(&["monitor", "orders", "--state", s, "--once"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a chain its checkpoint covers: {err}"
    );
    let input: String = (20..30).map(|i| format!("order {i}\n")).collect();
    let args = ["produce", "orders", "--batch", "16", "--no-checkpoints"];
    env.ok(&args, &input);
    // A restarted monitor remembers the checkpoint it accepted.
    let out = env.run(&["monitor", "orders", "--state", s, "--once"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = String::from_utf8(out.stdout).unwrap();
    let alert = support::json(line.trim());
    assert_eq!(alert["kind"], "stale", "{alert}");
    assert_eq!(alert["offset"].as_u64(), Some(20), "{alert}");
}
