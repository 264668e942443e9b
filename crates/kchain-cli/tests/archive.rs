//! `kchain archive` and `kchain verify --archive` through the binary, on a `file://` archive:
//! the round trip, incremental runs, every tamper a finding at its entry, and kills of the
//! archiver at random points.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{json, Env};

/// A test's log (embedded), keys and trust file, and an archive directory.
struct Fixture {
    env: Env,
}

impl Fixture {
    /// A topic `orders` with `n` records and a published checkpoint, and checkpoint checking
    /// on (no witnesses needed).
    fn new(n: usize) -> Fixture {
        let env = Env::new();
        env.ok(&["keygen", "--name", "acme"], "");
        let trust = env.config().join("trust.toml");
        let mut text = fs::read_to_string(&trust).unwrap();
        text.push_str("\n[policy]\nwitnesses = 0\n");
        fs::write(&trust, text).unwrap();
        let f = Fixture { env };
        f.topic("orders", 0, n);
        f
    }

    /// Creates `topic` (when `from` is 0), appends records `from..to`, publishes a checkpoint.
    fn topic(&self, topic: &str, from: usize, to: usize) {
        if from == 0 {
            self.env.ok(&["topic", "create", topic], "");
        }
        let input: String = (from..to).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        self.env.ok(
            &["produce", topic, "--batch", "100", "--no-checkpoints"],
            &input,
        );
        self.env.ok(&["checkpoint", "publish", topic], "");
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }

    fn url(&self, name: &str) -> String {
        format!("file://{}", self.dir(name).display())
    }

    /// `archive TOPIC --to <name> --json`, its parsed output.
    fn archive(&self, topic: &str, name: &str) -> serde_json::Value {
        json(
            &self
                .env
                .ok(&["archive", topic, "--to", &self.url(name), "--json"], ""),
        )
    }

    /// `verify orders --archive <name> --state <state> --json`: exit code and parsed output.
    fn verify(&self, name: &str, state: &str) -> (i32, serde_json::Value) {
        let state = self.dir(state).display().to_string();
        let url = self.url(name);
        let out = self.env.run(
            &[
                "verify",
                "orders",
                "--archive",
                &url,
                "--state",
                &state,
                "--json",
            ],
            "",
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = out.status.code().unwrap();
        assert!(
            code == 0 || code == 3,
            "{code}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (code, json(&stdout))
    }

    /// Verifies a tampered copy of archive `name`; returns its first finding (kind, entry).
    fn tampered(&self, name: &str, tamper: impl FnOnce(&Path)) -> (String, serde_json::Value) {
        let copy = format!("{name}-tampered");
        copy_dir(&self.dir(name), &self.dir(&copy));
        tamper(&self.dir(&copy).join("orders/0"));
        let (code, v) = self.verify(&copy, &format!("state-{copy}"));
        assert_eq!(code, 3, "{v}");
        let f = &v["chains"][0]["findings"][0];
        (f["kind"].as_str().unwrap().to_owned(), f["entry"].clone())
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(objects(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn round_trip_and_incremental_runs() {
    let f = Fixture::new(600);
    let v = f.archive("orders", "a");
    assert_eq!(v["chains"][0]["size"], 600, "{v}");
    let root = f.dir("a").join("orders/0");
    for path in [
        "checkpoint",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/002.p/88",
        "kchain/records/001",
        "kchain/records/002.p/88",
    ] {
        assert!(
            root.join(path).is_file(),
            "{path} missing: {:?}",
            objects(&root)
        );
    }
    assert!(fs::read_to_string(root.join("checkpoint"))
        .unwrap()
        .starts_with("kchain/orders/0\n600\n"));
    let (code, v) = f.verify("a", "state");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chains"][0]["size"], 600, "{v}");

    // Nothing new: nothing written.
    let v = f.archive("orders", "a");
    assert_eq!(v["chains"][0]["objects"], 0, "{v}");

    // 100 more: only the tiles and bundles from tile 2 on, and the checkpoint.
    f.topic("orders", 600, 700);
    let v = f.archive("orders", "a");
    assert_eq!(
        (
            v["chains"][0]["before"].clone(),
            v["chains"][0]["size"].clone()
        ),
        (600.into(), 700.into()),
        "{v}"
    );
    // tile/0/002.p/188, its entry and record bundles, tile/1/000.p/2, the checkpoint.
    assert_eq!(v["chains"][0]["objects"], 5, "{v}");
    let (code, v) = f.verify("a", "state");
    assert_eq!(
        (code, v["chains"][0]["size"].clone()),
        (0, 700.into()),
        "{v}"
    );

    // The text form says what was verified.
    let url = f.url("a");
    let out = f.env.ok(
        &[
            "verify",
            "orders",
            "--archive",
            &url,
            "--state",
            &f.dir("state").display().to_string(),
        ],
        "",
    );
    assert!(out.contains("orders/0: OK, 700 entries"), "{out}");
}

#[test]
fn every_tamper_is_a_finding_at_its_entry() {
    let f = Fixture::new(600);
    f.archive("orders", "a");
    let old_checkpoint = fs::read(f.dir("a").join("orders/0/checkpoint")).unwrap();
    f.topic("orders", 600, 700);
    f.archive("orders", "a");

    // A changed record: record 5's value.
    let (kind, entry) = f.tampered("a", |c| {
        let p = c.join("kchain/records/000");
        let mut b = fs::read(&p).unwrap();
        let at = b.windows(7).position(|w| w == b"{\"n\":5}").unwrap();
        b[at + 5] = b'7';
        fs::write(p, b).unwrap();
    });
    assert_eq!((kind.as_str(), entry), ("archive_record_changed", 5.into()));

    // A changed hash in a level-0 tile: entry 256 + 3.
    let (kind, entry) = f.tampered("a", |c| {
        let p = c.join("tile/0/001");
        let mut b = fs::read(&p).unwrap();
        b[3 * 32] ^= 1;
        fs::write(p, b).unwrap();
    });
    assert_eq!((kind.as_str(), entry), ("archive_tile_changed", 259.into()));

    // A changed hash in the level-1 tile: the subtree of entries 256..512.
    let (kind, entry) = f.tampered("a", |c| {
        let p = c.join("tile/1/000.p/2");
        let mut b = fs::read(&p).unwrap();
        b[32] ^= 1;
        fs::write(p, b).unwrap();
    });
    assert_eq!((kind.as_str(), entry), ("archive_tile_changed", 256.into()));

    // A deleted tile, a deleted bundle.
    let (kind, entry) = f.tampered("a", |c| fs::remove_file(c.join("tile/0/001")).unwrap());
    assert_eq!(
        (kind.as_str(), entry),
        ("archive_object_missing", 256.into())
    );
    let (kind, entry) = f.tampered("a", |c| {
        fs::remove_file(c.join("kchain/records/002.p/188")).unwrap()
    });
    assert_eq!(
        (kind.as_str(), entry),
        ("archive_object_missing", 512.into())
    );

    // A changed entry bundle (the tlog entries): the record no longer hashes to it.
    let (kind, entry) = f.tampered("a", |c| {
        let p = c.join("tile/entries/001");
        let mut b = fs::read(&p).unwrap();
        b[10 * 34 + 2] ^= 1;
        fs::write(p, b).unwrap();
    });
    assert_eq!(
        (kind.as_str(), entry),
        ("archive_record_changed", 266.into())
    );

    // Bundles, entries and tile copied from another chain, signed by the same writer.
    f.topic("other", 0, 600);
    f.archive("other", "a");
    let (kind, entry) = f.tampered("a", |c| {
        let other = c.parent().unwrap().parent().unwrap().join("other/0");
        for p in ["kchain/records/001", "tile/entries/001", "tile/0/001"] {
            fs::copy(other.join(p), c.join(p)).unwrap();
        }
    });
    assert_eq!((kind.as_str(), entry), ("archive_link_broken", 256.into()));

    // The checkpoint replaced by an older one: only the remembered state can tell.
    let (code, v) = f.verify("a", "state-rollback");
    assert_eq!(code, 0, "{v}");
    fs::write(f.dir("a").join("orders/0/checkpoint"), &old_checkpoint).unwrap();
    let (code, v) = f.verify("a", "state-rollback");
    assert_eq!(code, 3, "{v}");
    assert_eq!(
        v["chains"][0]["findings"][0]["kind"], "archive_checkpoint_rollback",
        "{v}"
    );
    // A verifier that never saw the newer one finds the older archive intact.
    let (code, v) = f.verify("a", "state-fresh");
    assert_eq!(code, 0, "{v}");

    // A whole chain deleted: the partitions the trust file pins must all be there.
    f.env.ok(&["trust", "pin", "orders"], "");
    let (code, v) = f.verify("a", "state-fresh");
    assert_eq!(code, 0, "{v}");
    f.env
        .ok(&["topic", "create", "two", "--partitions", "2"], "");
    let keyed: String = (0..20).map(|i| format!("k{i}:v{i}\n")).collect();
    f.env
        .ok(&["produce", "two", "-K", ":", "--no-checkpoints"], &keyed);
    f.env.ok(&["checkpoint", "publish", "two"], "");
    f.env.ok(&["trust", "pin", "two"], "");
    f.archive("two", "b");
    fs::remove_dir_all(f.dir("b").join("two/1")).unwrap();
    let url = f.url("b");
    let out = f
        .env
        .run(&["verify", "two", "--archive", &url, "--json"], "");
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(3), "{v}");
    assert_eq!(
        v["chains"][1]["findings"][0]["kind"], "archive_checkpoint_missing",
        "{v}"
    );

    // A checkpoint that the trust policy does not accept.
    fs::write(
        f.dir("a").join("orders/0/checkpoint"),
        b"kchain/orders/0\n600\nAAAA\n\n",
    )
    .unwrap();
    let (code, v) = f.verify("a", "state-fresh");
    assert_eq!(code, 3, "{v}");
    assert_eq!(
        v["chains"][0]["findings"][0]["kind"], "archive_checkpoint_untrusted",
        "{v}"
    );
}

#[test]
fn an_archiver_killed_anywhere_leaves_a_verifiable_archive_and_a_rerun_completes_it() {
    let f = Fixture::new(3000);
    // A whole run's time (start-up, reading the log, writing): kills land anywhere in it.
    let started = std::time::Instant::now();
    f.archive("orders", "a");
    let run_ms = started.elapsed().as_millis() as u64 * 3 / 2 + 1;
    let mut rng = kchain_testkit::Rng::from_clock();
    let (mut size, mut last_seen, mut interrupted) = (3000usize, 3000u64, 0);
    for round in 0..12 {
        f.topic("orders", size, size + 1000);
        size += 1000;
        let url = f.url("a");
        let mut child = f
            .env
            .command(&["archive", "orders", "--to", &url])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(run_ms)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let (code, v) = f.verify("a", "state");
        assert_eq!(code, 0, "round {round}: {v}");
        // The archive's checkpoint is one that a run completed, never older than the last seen.
        let seen = v["chains"][0]["size"].as_u64().unwrap();
        assert!(
            seen >= last_seen && seen <= size as u64 && seen % 1000 == 0,
            "round {round}: {v}"
        );
        eprintln!("round {round}: archive at {seen} of {size}");
        interrupted += usize::from(seen < size as u64);
        last_seen = seen;
    }
    assert!(
        interrupted > 0,
        "no kill interrupted a run: the test proves nothing"
    );
    let v = f.archive("orders", "a");
    assert_eq!(v["chains"][0]["size"], size, "{v}");
    let (code, v) = f.verify("a", "state");
    assert_eq!(
        (code, v["chains"][0]["size"].as_u64()),
        (0, Some(size as u64)),
        "{v}"
    );
}

#[test]
fn bench_archive_reports_ratios_to_verify_on_the_log() {
    let env = Env::new();
    // This test's own process stands in for an object store server (its CPU time is read).
    let me = std::process::id().to_string();
    let args = [
        "bench",
        "archive",
        "--records",
        "700",
        "--repeat",
        "2",
        "--server-pid",
        &me,
    ];
    let v = json(&env.ok(&[&args[..], &["--json"]].concat(), ""));
    assert!(v["archive"].as_str().unwrap().starts_with("file://"), "{v}");
    // 700 entries: 3 entry bundles, 3 record bundles, 3 level-0 tiles, 1 level-1, the checkpoint.
    assert_eq!(v["objects"], 11, "{v}");
    let phases = v["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 3, "{v}");
    for p in phases {
        assert_eq!(p["per_s"]["runs"].as_array().unwrap().len(), 2, "{v}");
        assert!(p["ratio"]["median"].as_f64().unwrap() > 0.0, "{v}");
        assert!(p["cpu_s"]["median"].as_f64().unwrap() > 0.0, "{v}");
        assert!(p["server_cpu_s"]["median"].as_f64().unwrap() >= 0.0, "{v}");
    }
    assert_eq!(phases[0]["ratio"]["median"], 1.0, "{v}");
    env.error(&["bench", "archive", "--server-pid", "0"], "/proc/0/stat");
}
