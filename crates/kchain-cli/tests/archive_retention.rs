//! Retention applied once archived, and `verify --archive` over the archive and the log as
//! one chain from genesis, through the binary on the embedded log and a `file://` archive.

mod support;

use std::fs;
use std::path::PathBuf;

use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
use support::{json, Env};

/// A test's log, keys and trust file (checkpoints need no witnesses), and archive dirs.
struct Fixture {
    env: Env,
}

impl Fixture {
    fn new() -> Fixture {
        let env = Env::new();
        env.ok(&["keygen", "--name", "acme"], "");
        let trust = env.config().join("trust.toml");
        let mut text = fs::read_to_string(&trust).unwrap();
        text.push_str("\n[policy]\nwitnesses = 0\n");
        fs::write(&trust, text).unwrap();
        Fixture { env }
    }

    /// Appends records `from..to` (values `{"<field>":i}`) to `orders`, creating it when
    /// `from` is 0; publishes a checkpoint when `checkpoint`.
    fn produce(&self, field: &str, from: usize, to: usize, checkpoint: bool) {
        if from == 0 {
            self.env.ok(&["topic", "create", "orders"], "");
        }
        let input: String = (from..to)
            .map(|i| format!("{{\"{field}\":{i}}}\n"))
            .collect();
        self.env.ok(
            &["produce", "orders", "--batch", "100", "--no-checkpoints"],
            &input,
        );
        if checkpoint {
            self.env.ok(&["checkpoint", "publish", "orders"], "");
        }
    }

    fn log(&self) -> EmbeddedLog {
        let opts = EmbeddedOptions {
            segment_bytes: 8 << 10,
            ..EmbeddedOptions::default()
        };
        EmbeddedLog::open(self.env.data(), opts).unwrap()
    }

    /// Rewrites `orders` record for record (same offsets, same chain) as a topic with a
    /// retention of 1 ms and small segments: a log retention can act on.
    fn resegment(&self) {
        let records = kchain_topic::tamper::read_all(&self.log(), "orders", 0).unwrap();
        fs::remove_dir_all(self.env.data().join("topics/orders")).unwrap();
        let log = self.log();
        let config = TopicConfig {
            partitions: 1,
            retention_ms: Some(1),
        };
        log.create_topic("orders", &config).unwrap();
        let mut a = log.appender("orders", 0).unwrap();
        for batch in records.chunks(25) {
            a.append(batch).unwrap();
        }
        a.flush().unwrap();
        assert!(self.segments() > 4);
    }

    fn segments(&self) -> usize {
        fs::read_dir(self.env.data().join("topics/orders/0"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
            .count()
    }

    fn url(&self, name: &str) -> String {
        format!("file://{}", self.dir(name).display())
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }

    /// `archive orders --to <name> [--apply-retention] --json`.
    fn archive(&self, name: &str, retention: bool) -> serde_json::Value {
        let url = self.url(name);
        let mut args = vec!["archive", "orders", "--to", &url, "--json"];
        if retention {
            args.push("--apply-retention");
        }
        json(&self.env.ok(&args, ""))
    }

    /// `verify orders --archive <name> --state <state> --json`: exit code and output.
    fn verify(&self, name: &str, state: &str) -> (i32, serde_json::Value) {
        let state = self.dir(state).display().to_string();
        let url = self.url(name);
        let args = [
            "verify",
            "orders",
            "--archive",
            &url,
            "--state",
            &state,
            "--json",
        ];
        let out = self.env.run(&args, "");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = out.status.code().unwrap();
        assert!(
            code == 0 || code == 3,
            "{code}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (code, json(&stdout))
    }
}

#[test]
fn retention_deletes_only_what_is_archived_and_verify_reads_archive_then_log() {
    let f = Fixture::new();
    f.produce("n", 0, 600, true);
    f.produce("n", 600, 700, false);
    f.resegment();
    let before = f.segments();

    // Without --apply-retention nothing leaves the log.
    let v = f.archive("a", false);
    assert_eq!(v["chains"][0]["size"], 600, "{v}");
    assert_eq!(v["retention"], serde_json::json!([]), "{v}");
    assert_eq!(f.segments(), before);

    // With it, the archived records (heights < 600) go, whole segments at a time.
    let v = f.archive("a", true);
    let r = &v["retention"][0];
    assert_eq!(r["start_before"], 0, "{v}");
    assert_eq!(r["cut"], 600, "{v}");
    assert_eq!(r["start_after"], 600, "{v}");
    assert!(f.segments() < before);
    assert_eq!(f.log().start_offset("orders", 0).unwrap(), 600);

    // The archive (0..600) and the log (600..700) verify as one chain from genesis.
    let (code, v) = f.verify("a", "state");
    assert_eq!(code, 0, "{v}");
    let l = &v["log"][0];
    assert_eq!(l["start_offset"], 600, "{v}");
    assert_eq!(l["resumed_after"], 599, "{v}");
    assert_eq!(l["entries"], 700, "{v}");
    assert_eq!(l["ok"], true, "{v}");

    // Text output says so too.
    let out = f.env.ok(
        &[
            "verify",
            "orders",
            "--archive",
            &f.url("a"),
            "--state",
            &f.dir("state").display().to_string(),
        ],
        "",
    );
    assert!(
        out.contains("orders/0: OK, the log from offset 600 after archived height 599"),
        "{out}"
    );

    // Without the archive, the log alone is reported as before: it does not start at
    // genesis.
    let out = f.env.run(&["verify", "orders", "--json"], "");
    assert_eq!(out.status.code(), Some(3));
    let v = json(&String::from_utf8_lossy(&out.stdout));
    let finding = &v["partitions"][0]["finding"];
    assert_eq!(
        (finding["kind"].as_str(), finding["offset"].as_u64()),
        (Some("missing"), Some(600)),
        "{v}"
    );

    // A rerun deletes nothing more: the rest is not archived.
    let v = f.archive("a", true);
    assert_eq!(v["retention"][0]["start_after"], 600, "{v}");
}

#[test]
fn a_gap_between_archive_and_log_is_a_finding_at_its_offset() {
    let f = Fixture::new();
    f.produce("n", 0, 600, true);
    f.produce("n", 600, 800, false);
    f.resegment();
    f.archive("a", true);
    // Records 600..700, never archived, deleted all the same (a broker's own retention).
    let start = f.log().delete_records_before("orders", 0, 700).unwrap();
    assert!(start > 600, "{start}");
    let (code, v) = f.verify("a", "state");
    assert_eq!(code, 3, "{v}");
    let finding = &v["log"][0]["finding"];
    assert_eq!(finding["kind"], "missing", "{v}");
    assert_eq!(finding["offset"], start, "{v}");
    // The archive itself is intact.
    assert_eq!(v["chains"][0]["ok"], true, "{v}");
}

#[test]
fn a_log_that_does_not_continue_the_archive_is_a_finding_at_the_seam() {
    let f = Fixture::new();
    f.produce("n", 0, 600, true);
    f.archive("old", false);
    // Another chain under the same name and keys, its own archive, retention applied.
    for t in ["orders", "orders.checkpoints"] {
        fs::remove_dir_all(f.env.data().join("topics").join(t)).unwrap();
    }
    // The writer's memory of what it signed, too: it would refuse to sign another history.
    fs::remove_dir_all(f.env.config().join("writer.key.checkpoints")).unwrap();
    f.produce("m", 0, 600, true);
    f.produce("m", 600, 700, false);
    f.resegment();
    let v = f.archive("new", true);
    assert_eq!(v["retention"][0]["start_after"], 600, "{v}");
    assert_eq!(f.verify("new", "state-new").0, 0);
    // Held against the first chain's archive, the log's first record does not link.
    let (code, v) = f.verify("old", "state-old");
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["chains"][0]["ok"], true, "{v}");
    let finding = &v["log"][0]["finding"];
    assert_eq!(finding["offset"], 600, "{v}");
    assert_eq!(finding["height"], 600, "{v}");
}

#[test]
fn a_topic_that_keeps_its_records_forever_loses_nothing() {
    let f = Fixture::new();
    f.produce("n", 0, 300, true);
    let v = f.archive("a", true);
    let r = &v["retention"][0];
    assert_eq!(r["start_after"], 0, "{v}");
    assert!(
        r["skipped"].as_str().unwrap().contains("retention.ms=-1"),
        "{v}"
    );
    let (code, v) = f.verify("a", "state");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["log"][0]["resumed_after"], serde_json::Value::Null, "{v}");
    assert_eq!(v["log"][0]["entries"], 300, "{v}");
}

#[test]
fn restore_rebuilds_the_chain_entry_for_entry_and_refuses_a_non_empty_topic() {
    let f = Fixture::new();
    f.produce("n", 0, 600, true);
    f.archive("a", false);
    let original = kchain_topic::tamper::read_all(&f.log(), "orders", 0).unwrap();
    let url = f.url("a");

    // Into a topic that holds records: refused, nothing stored altered.
    f.env.error(
        &["archive", "restore", &url, "--to", "orders"],
        "partition 0 is not empty",
    );
    assert_eq!(f.log().end_offset("orders", 0).unwrap(), 600);
    // Under another name: restored, the same records (tests/archive_names.rs verifies it).
    let out = f.env.ok(
        &[
            "archive", "restore", &url, "--from", "orders", "--to", "copy",
        ],
        "",
    );
    assert!(out.contains("copy/0: restored 600 records"), "{out}");

    // The topic lost (its checkpoints kept): restored, identical, and it verifies against
    // the original checkpoints.
    fs::remove_dir_all(f.env.data().join("topics/orders")).unwrap();
    let out = f
        .env
        .ok(&["archive", "restore", &url, "--to", "orders"], "");
    assert!(out.contains("orders/0: restored 600 records"), "{out}");
    let restored = kchain_topic::tamper::read_all(&f.log(), "orders", 0).unwrap();
    assert_eq!(restored, original);
    let v = json(&f.env.ok(&["verify", "orders", "--json"], ""));
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checkpoints"].is_object(), "{v}");
}

/// Kafka: an embedded topic's archive restored into a broker of its own (a cluster that
/// never had the topic), verified there against the archive's checkpoint and the archive.
#[cfg(feature = "kafka")]
#[test]
fn restore_into_kafka_verifies_against_the_original_checkpoint() {
    use kchain_testkit::Broker;
    let f = Fixture::new();
    f.produce("n", 0, 300, true);
    f.archive("a", false);
    let url = f.url("a");
    let broker = Broker::start("sqlite");
    let k = Env::kafka(&broker.brokers);
    fs::create_dir_all(k.config()).unwrap();
    fs::copy(
        f.env.config().join("trust.toml"),
        k.config().join("trust.toml"),
    )
    .unwrap();
    let out = k.ok(&["archive", "restore", &url, "--to", "orders"], "");
    assert!(out.contains("orders/0: restored 300 records"), "{out}");
    let checkpoint = f.dir("a").join("orders/0/checkpoint");
    let checkpoint = checkpoint.display().to_string();
    let out = k.run(&["verify", "orders", "--checkpoint", &checkpoint], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The archive and the broker's log, one chain.
    let state = f.dir("state-kafka").display().to_string();
    let out = k.ok(
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
    let v = json(&out);
    assert_eq!(v["log"][0]["entries"], 300, "{v}");
    assert_eq!(v["log"][0]["ok"], true, "{v}");
    // A second restore finds the topic filled.
    k.error(
        &["archive", "restore", &url, "--to", "orders"],
        "partition 0 is not empty",
    );
}

#[test]
fn the_archiver_goes_on_from_its_own_entries_once_the_log_lost_them() {
    let f = Fixture::new();
    f.produce("n", 0, 600, true);
    f.produce("n", 600, 700, false);
    f.resegment();
    f.archive("a", false);
    // A checkpoint of size 700 (published while the log still starts at genesis), then the
    // archived records leave the log.
    f.env.ok(&["checkpoint", "publish", "orders"], "");
    assert_eq!(
        f.log().delete_records_before("orders", 0, 600).unwrap(),
        600
    );
    // The archiver takes heights 0..600 from the archive and the rest from the log.
    let v = f.archive("a", false);
    assert_eq!(v["chains"][0]["before"], 600, "{v}");
    assert_eq!(v["chains"][0]["size"], 700, "{v}");
    let (code, v) = f.verify("a", "state");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["chains"][0]["size"], 700, "{v}");
    assert_eq!(v["log"][0]["entries"], 700, "{v}");
}

#[test]
fn prove_serves_an_archived_record_once_the_log_lost_it() {
    let f = Fixture::new();
    f.produce("n", 0, 600, true);
    f.produce("n", 600, 700, false);
    f.resegment();
    f.archive("a", true);
    let url = f.url("a");
    let proof = f.dir("proof.json").display().to_string();
    // The log no longer holds offset 10.
    let out = f
        .env
        .run(&["prove", "orders", "--offset", "10", "-o", &proof], "");
    assert_ne!(out.status.code(), Some(0));
    // The archive does: a proof file that verify-proof accepts offline.
    let prove = |offset: &'static str| {
        [
            "prove",
            "orders",
            "--offset",
            offset,
            "--archive",
            url.as_str(),
            "-o",
            proof.as_str(),
        ]
    };
    let proved = |args: &[&str]| {
        f.env.ok(args, "");
        let v = json(&f.env.ok(&["verify-proof", &proof, "--json"], ""));
        assert_eq!(v["ok"], true, "{v}");
    };
    let prove10 = prove("10");
    proved(&prove10);
    // Beyond the archive's checkpoint: refused.
    f.env.error(&prove("650"), "covers offsets 0..600");
    // The proof reads the bundles of its entry and the tiles on its path, not every
    // bundle: with the entries of heights 256..511 gone it is still made.
    let chain = f.dir("a").join("orders/0");
    fs::remove_file(chain.join("tile/entries/001")).unwrap();
    proved(&prove10);
    // A tile on the path that lies (the subtree of heights 256..511): refused.
    let tile = chain.join("tile/1/000.p/2");
    let good = fs::read(&tile).unwrap();
    let mut lie = good.clone();
    lie[40] ^= 1;
    fs::write(&tile, &lie).unwrap();
    f.env.error(&prove10, "do not have the checkpoint's root");
    fs::write(&tile, &good).unwrap();
    // A record changed in the archive: refused, no proof of it.
    let bundle = f.dir("a").join("orders/0/kchain/records/000");
    let bytes = fs::read(&bundle).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == b"{\"n\":10}")
        .expect("the record's value");
    let mut bad = bytes.clone();
    bad[at + 5..at + 7].copy_from_slice(b"99");
    fs::write(&bundle, bad).unwrap();
    f.env.error(&prove10, "is not its entry");
}

#[test]
fn consistency_is_proved_from_the_archive_once_the_log_lost_the_prefix() {
    let f = Fixture::new();
    let note = |name: &str| {
        let path = f.dir(name).display().to_string();
        f.env
            .ok(&["checkpoint", "export", "orders", "-o", &path], "");
        path
    };
    f.produce("n", 0, 300, true);
    let old = note("old.note");
    f.produce("n", 300, 600, true);
    let new = note("new.note");
    f.produce("n", 600, 700, false);
    f.resegment();
    f.archive("a", true);
    let url = f.url("a");
    let proof = f.dir("c.json").display().to_string();
    // The log no longer holds the prefix, so it cannot prove the old tree is one.
    f.env
        .error(&["prove", "--consistency", &old, &new, "-o", &proof], "");
    let args = [
        "prove",
        "--consistency",
        &old,
        &new,
        "--archive",
        &url,
        "-o",
        &proof,
    ];
    f.env.ok(&args, "");
    let out = f.env.ok(&["verify-proof", &proof], "");
    assert!(out.contains("size 300 is a prefix of size 600"), "{out}");
    // Swapped, or with a tile on the path that lies, there is no proof.
    let swapped = [
        "prove",
        "--consistency",
        &new,
        &old,
        "--archive",
        &url,
        "-o",
        &proof,
    ];
    f.env.error(&swapped, "not an old and a new checkpoint");
    let tile = f.dir("a").join("orders/0/tile/0/001");
    let mut bytes = fs::read(&tile).unwrap();
    bytes[0] ^= 1;
    fs::write(&tile, bytes).unwrap();
    f.env
        .error(&args, "do not lead from the old checkpoint's root");
}
