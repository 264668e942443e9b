//! Streaming through the binary (issue 15, points 1, 5 and 10): `produce` signs a slow
//! source line by line and stops cleanly on real signals; `consume` reports per partition,
//! shows unverified records when asked, follows like `kcat -C` and speaks kcat's flags;
//! `ledger rejected` and `ledger blocks` list what the ledger holds.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::Env;

/// The binary started in `env` with piped standard streams.
fn spawn(env: &Env, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kchain"))
        .args(args)
        .env("KCHAIN_DATA_DIR", env.data())
        .env("KCHAIN_CONFIG_DIR", env.config())
        .env_remove("KCHAIN_KEYRING")
        .env_remove("KCHAIN_TRUST")
        .env_remove("KCHAIN_KEY_FILE")
        .env_remove("KCHAIN_BROKERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` (`INT`, `TERM`) to `child` with kill(1): a real signal, as Ctrl-C sends.
fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The entries `verify` finds in `topic`.
fn verified_entries(env: &Env, topic: &str) -> u64 {
    let out = env.run(&["verify", topic, "--json"], "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["entries"].as_u64()).sum())
        .unwrap_or(0)
}

/// Waits up to `within` until `verify` finds `n` entries; how long it took.
fn wait_verified(env: &Env, topic: &str, n: u64, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = verified_entries(env, topic);
        if got >= n {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{topic}: {got} of {n} entries verified after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn line(stdin: &mut ChildStdin, text: &str) {
    writeln!(stdin, "{text}").unwrap();
    stdin.flush().unwrap();
}

// Point 1: a line a second is verifiable within about a second each, and a signal flushes
// what was read (even the line sent a moment before it), prints a summary and exits 0.
#[test]
fn produce_streams_a_slow_source_and_stops_cleanly_on_signals() {
    for signal in ["INT", "TERM"] {
        let env = Env::new();
        env.ok(&["keygen", "--name", "w"], "");
        env.ok(&["topic", "create", "t", "--partitions", "1"], "");
        let mut producer = spawn(&env, &["produce", "t"]);
        let mut stdin = producer.stdin.take().unwrap();
        for i in 1..=3u64 {
            line(&mut stdin, &format!("line{i}"));
            let took = wait_verified(&env, "t", i, Duration::from_secs(3));
            assert!(took < Duration::from_millis(1500), "line{i} took {took:?}");
            std::thread::sleep(Duration::from_millis(300));
        }
        // Sent, then the signal well within the linger: it must be appended all the same.
        line(&mut stdin, "line4");
        std::thread::sleep(Duration::from_millis(30));
        kill(&producer, signal);
        let out = producer.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "SIG{signal}: {err}");
        assert!(err.contains(&format!("SIG{signal}")), "{err}");
        assert!(err.contains("every line read was appended"), "{err}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("appended 4 records to t/0"), "{text}");
        assert_eq!(verified_entries(&env, "t"), 4);
        let consumed = env.ok(&["consume", "t", "-e"], "");
        assert_eq!(consumed, "line1\nline2\nline3\nline4\n");
        drop(stdin);
    }
}
