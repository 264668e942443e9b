//! Streaming through the binary (issue 15, points 1, 5 and 10): `produce` signs a slow
//! source line by line and stops cleanly on real signals; `consume` reports per partition,
//! shows unverified records when asked, follows like `kcat -C` and speaks kcat's flags;
//! `ledger rejected` and `ledger blocks` list what the ledger holds.

use std::io::Write;
use std::process::{Child, ChildStdin, Command};
use std::time::{Duration, Instant};

mod support;

use support::Env;

/// The binary started in `env` with piped standard streams.
fn spawn(env: &Env, args: &[&str]) -> Child {
    env.command(args).spawn().unwrap()
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

/// A topic `t` of two partitions with `n` records in each (keys `a`/`b`, as the partitioner
/// places them), written by writer `w`.
fn two_partitions(env: &Env, n: usize) {
    env.ok(&["keygen", "--name", "w"], "");
    env.ok(&["topic", "create", "t", "--partitions", "2"], "");
    for p in ["0", "1"] {
        let input: String = (0..n).map(|i| format!("p{p}-{i}\n")).collect();
        env.ok(&["produce", "t", "-p", p, "--no-checkpoints"], &input);
    }
}

/// Appends one plain record (no chain headers) to partition `p` of `t`, as any Kafka
/// producer could.
fn stray_record(env: &Env, p: u32, value: &str) {
    let log = kchain_log::EmbeddedLog::open(env.data(), Default::default()).unwrap();
    let mut app = kchain_log::Log::appender(&log, "t", p).unwrap();
    let rec = kchain_log::Record {
        key: Some(b"stray".to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: vec![],
        timestamp_ms: 1,
    };
    app.append(std::slice::from_ref(&rec)).unwrap();
    app.flush().unwrap();
}

// Point 5: a stray record in partition 0 is a finding of partition 0; partition 1 is still
// shown; --allow-unverified shows the stray record marked; exit 3 either way.
#[test]
fn consume_reports_findings_per_partition_and_shows_unverified_when_asked() {
    let env = Env::new();
    two_partitions(&env, 3);
    stray_record(&env, 0, "forged");
    let out = env.run(&["consume", "t", "-e"], "");
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(text, "p0-0\np0-1\np0-2\np1-0\np1-1\np1-2\n", "{err}");
    assert!(err.contains("t/0: finding"), "{err}");
    assert!(!text.contains("forged"));

    let out = env.run(&["consume", "t", "-e", "--allow-unverified"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text,
        "p0-0\np0-1\np0-2\n[UNVERIFIED] forged\np1-0\np1-1\np1-2\n"
    );

    let out = env.run(&["consume", "t", "-e", "--allow-unverified", "--json"], "");
    assert_eq!(out.status.code(), Some(3));
    let recs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 7);
    let stray = &recs[3];
    assert_eq!(stray["verified"], false, "{stray}");
    assert_eq!(stray["value"], "forged");
    assert!(stray["finding"].is_string(), "{stray}");
    assert!(recs.iter().filter(|r| r["verified"] == true).count() == 6);
}

// Point 10: kcat's -o forms, -K, -f, and -c.
#[test]
fn consume_speaks_kcat() {
    let env = Env::new();
    env.ok(&["keygen", "--name", "w"], "");
    env.ok(&["topic", "create", "t", "--partitions", "1"], "");
    env.ok(
        &[
            "produce",
            "t",
            "-K",
            ":",
            "-H",
            "src=test",
            "--no-checkpoints",
        ],
        "k0:v0\nk1:v1\nk2:v2\nk3:v3\n",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["consume", "t", "-e"];
        all.extend_from_slice(args);
        env.ok(&all, "")
    };
    assert_eq!(run(&[]), "v0\nv1\nv2\nv3\n");
    assert_eq!(run(&["-o", "beginning", "-c", "1"]), "v0\n");
    assert_eq!(run(&["-o", "end"]), "");
    assert_eq!(run(&["-o", "-2"]), "v2\nv3\n");
    assert_eq!(run(&["-o", "1", "-c", "2"]), "v1\nv2\n");
    assert_eq!(run(&["--from", "3"]), "v3\n");
    assert_eq!(run(&["-o", "@0"]), "v0\nv1\nv2\nv3\n");
    assert_eq!(run(&["-o", "@99999999999999"]), "");
    assert_eq!(run(&["-K", "=", "-c", "2"]), "k0=v0\nk1=v1\n");
    assert_eq!(
        run(&["-f", r"%p/%o %k=%s (%K,%S) [%h]\n", "-o", "-1"]),
        "0/3 k3=v3 (2,2) [src=test]\n"
    );
    let ts: i64 = run(&["-f", "%T", "-o", "-1"]).parse().unwrap();
    assert!(ts > 1_600_000_000_000);
    let out = env.run(&["consume", "t", "-e", "-o", "bogus"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("beginning, end, -N"));
}

// Point 10: without -e, consume follows as kcat -C does: records produced later are shown,
// and SIGINT ends it cleanly (exit 0).
#[test]
fn consume_follows_until_sigint() {
    let env = Env::new();
    env.ok(&["keygen", "--name", "w"], "");
    env.ok(&["topic", "create", "t", "--partitions", "2"], "");
    env.ok(&["produce", "t", "-p", "0"], "first\n");
    let mut consumer = spawn(&env, &["consume", "t"]);
    std::thread::sleep(Duration::from_millis(800));
    env.ok(&["produce", "t", "-p", "1"], "second\n");
    env.ok(&["produce", "t", "-p", "0"], "third\n");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(consumer.try_wait().unwrap().is_none(), "consume exited");
    kill(&consumer, "INT");
    let deadline = Instant::now() + Duration::from_secs(5);
    while consumer.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "consume did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = consumer.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let mut lines: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines[0], "first");
    lines.sort();
    assert_eq!(lines, ["first", "second", "third"]);
    assert!(err.contains("SIGINT"), "{err}");
}

// Point 5 and 10 for the ledger: `ledger rejected` lists the rejected topic (reason, tx id,
// offset; text with a header and --json), and `ledger blocks` has column headers and the
// sealer's name from the genesis.
#[test]
fn ledger_lists_rejections_and_blocks_with_sealer_names() {
    let k = Env::new();
    let keys = tempfile::tempdir().unwrap();
    let key = |name: &str| {
        let path = keys.path().join(format!("{name}.key"));
        let path = path.to_str().unwrap().to_owned();
        k.ok(&["wallet", "new", "--out", &path, "--name", name], "");
        path
    };
    let (alice, bob, sealer) = (key("alice"), key("bob"), key("dock-sealer"));
    let genesis = keys.path().join("genesis.toml");
    let genesis = genesis.to_str().unwrap();
    let fund = format!("{alice}=1000");
    k.ok(
        &[
            "ledger",
            "genesis",
            "--chain",
            "demo",
            "--sealer",
            &sealer,
            "--fund",
            &fund,
            "--partitions",
            "1",
            "--out",
            genesis,
        ],
        "",
    );
    k.ok(&["ledger", "init", "--genesis", genesis], "");
    let tx = |args: &[&str]| {
        let mut all = vec!["tx"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--chain", "demo", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&k.ok(&all, "")).unwrap();
        v["id"].as_str().unwrap().to_owned()
    };
    tx(&[
        "transfer",
        "--from-key",
        &alice,
        "--to",
        &bob,
        "--amount",
        "10",
    ]);
    let overdraft = tx(&[
        "transfer",
        "--from-key",
        &bob,
        "--to",
        &alice,
        "--amount",
        "5000",
    ]);
    k.ok(
        &["tx", "raw", "--chain", "demo", "--partition", "0"],
        "not json\n",
    );
    k.ok(
        &[
            "node",
            "run",
            "--chain",
            "demo",
            "--seal",
            "--key",
            &sealer,
            "--until-idle",
            "-q",
        ],
        "",
    );

    let lines: Vec<serde_json::Value> = k
        .ok(&["ledger", "rejected", "--chain", "demo", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let od = lines
        .iter()
        .find(|l| l["tx_id"] == overdraft.as_str())
        .unwrap();
    assert_eq!(od["reason"], "overdraft", "{od}");
    assert_eq!(od["status"], "rejected");
    assert_eq!(od["partition"], 0);
    assert!(
        od["offset"].is_u64() && od["rejected_offset"].is_u64(),
        "{od}"
    );
    assert!(lines
        .iter()
        .any(|l| l["tx_id"].is_null() && l["status"] == "rejected"));

    let text = k.ok(&["ledger", "rejected", "--chain", "demo"], "");
    let mut rows = text.lines();
    let header = rows.next().unwrap();
    for column in ["OFFSET", "STATUS", "REASON", "TX", "FROM", "DETAIL"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        text.contains("overdraft") && text.contains(&overdraft[..16]),
        "{text}"
    );

    let blocks = k.ok(&["ledger", "blocks", "--chain", "demo"], "");
    let header = blocks.lines().next().unwrap();
    for column in ["HEIGHT", "OFFSET", "HASH", "TXS", "SEALER", "TIME"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        blocks.lines().nth(1).unwrap().contains("genesis"),
        "{blocks}"
    );
    assert!(
        blocks.lines().nth(2).unwrap().contains("dock-sealer"),
        "{blocks}"
    );
    let json: serde_json::Value = serde_json::from_str(
        k.ok(&["ledger", "blocks", "--chain", "demo", "--json"], "")
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["sealer_name"], "dock-sealer");
}
