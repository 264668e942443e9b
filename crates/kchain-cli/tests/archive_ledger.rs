//! `kchain archive --ledger` and `kchain ledger verify --archive` through the binary, on a
//! `file://` archive: a sealed ledger archived and verified from the archive alone, a rerun
//! that archives only the new blocks, and each tamper in the archive (a block header, a
//! transaction in a block, a tile, a rolled-back checkpoint) a finding with exit 3, and an
//! archiver killed at random points.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{json, run, Env};

/// A ledger `pr` with a sealer that signs a checkpoint every block, and its genesis file.
struct Ledger {
    env: Env,
    chain: String,
    keys: tempfile::TempDir,
    alice: String,
    bob: String,
    sealer: String,
    genesis: String,
}

impl Ledger {
    fn new() -> Ledger {
        Ledger::on(Env::new(), "pr")
    }

    /// A ledger named `chain` on `env`'s log.
    fn on(env: Env, chain: &str) -> Ledger {
        let keys = tempfile::tempdir().unwrap();
        let alice_wallet = env.wallet(keys.path(), "alice");
        let alice = alice_wallet.path;
        let bob = env.wallet(keys.path(), "bob").address;
        let sealer = env.wallet(keys.path(), "sealer").path;
        let genesis = keys.path().join("genesis.toml").display().to_string();
        let funds = format!("{}=1000", alice_wallet.address);
        env.ok(
            &[
                "ledger",
                "genesis",
                "--chain",
                chain,
                "--sealer",
                &sealer,
                "--fund",
                &funds,
                "--partitions",
                "1",
                "--out",
                &genesis,
            ],
            "",
        );
        env.ok(&["ledger", "init", "--genesis", &genesis], "");
        Ledger {
            env,
            chain: chain.into(),
            keys,
            alice,
            bob,
            sealer,
            genesis,
        }
    }

    /// Submits transfers of `amounts` and seals them, one transaction per block.
    fn seal(&self, amounts: &[u64]) {
        for a in amounts {
            self.env.ok(
                &[
                    "tx",
                    "transfer",
                    "--chain",
                    &self.chain,
                    "--from-key",
                    &self.alice,
                    "--to",
                    &self.bob,
                    "--amount",
                    &a.to_string(),
                ],
                "",
            );
        }
        let out = self.env.ok(
            &[
                "node",
                "run",
                "--chain",
                &self.chain,
                "--seal",
                "--key",
                &self.sealer,
                "--block-txs",
                "1",
                "--checkpoint-every",
                "1",
                "--until-idle",
            ],
            "",
        );
        assert!(out.contains("signed checkpoint"), "{out}");
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.keys.path().join(name)
    }

    fn url(&self, name: &str) -> String {
        format!("file://{}", self.dir(name).display())
    }

    /// `archive --ledger CHAIN --to <name> --json`, parsed.
    fn archive(&self, name: &str) -> Value {
        let args = [
            "archive",
            "--ledger",
            &self.chain,
            "--to",
            &self.url(name),
            "--json",
        ];
        json(&self.env.ok(&args, ""))
    }

    /// `ledger verify --chain CHAIN --archive <name> --genesis G --json`: exit code and report.
    fn verify(&self, name: &str) -> (Option<i32>, Value) {
        let url = self.url(name);
        let args = [
            "ledger",
            "verify",
            "--chain",
            &self.chain,
            "--archive",
            &url,
            "--genesis",
            &self.genesis,
            "--json",
        ];
        let (code, out, err) = run(&self.env, &args);
        assert!(!out.is_empty(), "no report: {err}");
        (code, json(&out))
    }

    /// Where archive `name` holds the ledger's blocks chain.
    fn blocks(&self, name: &str) -> PathBuf {
        self.dir(name).join(format!("{}.blocks", self.chain))
    }

    /// Copies archive `from` to `to` (a tamper works on its own copy).
    fn copy(&self, from: &str, to: &str) {
        copy_tree(&self.dir(from), &self.dir(to));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The one object under `dir` (the partial tile of a small tree).
fn only_file(dir: &Path) -> PathBuf {
    let mut files: Vec<_> = walk(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files.remove(0)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Replaces the first `from` in `file` by `to` (same length: record lengths stay right).
fn replace_in(file: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let bytes = fs::read(file).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from} not in {}", file.display()));
    let mut changed = bytes;
    changed[at..at + to.len()].copy_from_slice(to.as_bytes());
    fs::write(file, changed).unwrap();
}

fn kinds(report: &Value) -> Vec<String> {
    report["chains"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_sealed_ledger_is_archived_verified_from_the_archive_and_rerun_incrementally() {
    round_trip(&Ledger::new());
}

/// The same on Kafka (the test broker shared by the tests).
#[cfg(feature = "kafka")]
#[test]
fn a_sealed_ledger_on_kafka_is_archived_and_verified_from_the_archive() {
    let brokers = kchain_testkit::Broker::shared().brokers.clone();
    let chain = kchain_testkit::unique_name("archived-ledger");
    round_trip(&Ledger::on(Env::kafka(&brokers), &chain));
}

/// Seals, archives, verifies, reruns with nothing new and with a new block, and rolls the
/// checkpoint back.
fn round_trip(l: &Ledger) {
    l.seal(&[10, 20]);
    let first = l.archive("a");
    assert_eq!(first["before"], 0, "{first}");
    let size = first["size"].as_u64().unwrap();
    assert_eq!(size, 3, "genesis and two blocks: {first}");
    let blocks = l.blocks("a");
    assert!(blocks.join("checkpoint").is_file());
    assert!(blocks.join("tile/entries/000.p/3").is_file());
    assert!(blocks.join("kchain/records/000.p/3").is_file());
    let (code, report) = l.verify("a");
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["chains"][0]["size"], 3, "{report}");
    let old_checkpoint = fs::read(blocks.join("checkpoint")).unwrap();

    // Nothing new: nothing written.
    let again = l.archive("a");
    assert_eq!(
        (again["before"].as_u64(), again["objects"].as_u64()),
        (Some(3), Some(0))
    );

    // New blocks: only the partial tile and its bundles again, then the checkpoint.
    l.seal(&[30]);
    let next = l.archive("a");
    assert_eq!(next["before"], 3, "{next}");
    assert_eq!(next["size"], 4, "{next}");
    assert_eq!(
        next["objects"], 4,
        "tile, entries, records, checkpoint: {next}"
    );
    let (code, report) = l.verify("a");
    assert_eq!(code, Some(0), "{report}");

    // The checkpoint rolled back to the older one: the verifier remembers size 4.
    l.copy("a", "rollback");
    fs::write(l.blocks("rollback").join("checkpoint"), &old_checkpoint).unwrap();
    let (code, report) = l.verify("rollback");
    assert_eq!(code, Some(3), "{report}");
    assert!(
        kinds(&report).contains(&"archive_checkpoint_rollback".into()),
        "{report}"
    );
}

#[test]
fn each_tamper_in_a_ledgers_archive_is_a_finding() {
    let l = Ledger::new();
    l.seal(&[10, 20, 30]);
    l.archive("a");
    assert_eq!(l.verify("a").0, Some(0));

    // A block header changed (its timestamp): the block hash is not the entry's.
    l.copy("a", "header");
    let records = only_file(&l.dir("header/pr.blocks/kchain/records"));
    replace_in(&records, "\"height\":2", "\"height\":7");
    let (code, report) = l.verify("header");
    assert_eq!(code, Some(3), "{report}");
    let k = kinds(&report);
    assert!(
        k.contains(&"archive_record_changed".into()) || k.contains(&"archive_link_broken".into()),
        "{report}"
    );

    // A transaction in a block changed: the header (and so the tree) still holds, the replay
    // by the ledger's rules does not (the items root).
    l.copy("a", "tx");
    let records = only_file(&l.dir("tx/pr.blocks/kchain/records"));
    replace_in(&records, "\"amount\":20", "\"amount\":29");
    let (code, report) = l.verify("tx");
    assert_eq!(code, Some(3), "{report}");
    assert_eq!(kinds(&report), ["archive_block_invalid"], "{report}");

    // A tile hash changed.
    l.copy("a", "tile");
    let tile = only_file(&l.dir("tile/pr.blocks/tile/0"));
    let mut bytes = fs::read(&tile).unwrap();
    bytes[40] ^= 1;
    fs::write(&tile, bytes).unwrap();
    let (code, report) = l.verify("tile");
    assert_eq!(code, Some(3), "{report}");
    assert!(
        kinds(&report).contains(&"archive_tile_changed".into()),
        "{report}"
    );

    // Another genesis than the trusted one: none of its sealers is trusted.
    let other = Ledger::new();
    let url = l.url("a");
    let args = [
        "ledger",
        "verify",
        "--chain",
        "pr",
        "--archive",
        &url,
        "--genesis",
        &other.genesis,
        "--json",
    ];
    let (code, out, _) = run(&l.env, &args);
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(kinds(&json(&out)), ["archive_block_invalid"], "{out}");
}

#[test]
fn the_trust_files_ledger_entry_anchors_the_archive_and_no_anchor_is_an_error() {
    let l = Ledger::new();
    l.seal(&[10]);
    l.archive("a");
    let url = l.url("a");
    let verify = [
        "ledger",
        "verify",
        "--chain",
        "pr",
        "--archive",
        &url,
        "--json",
    ];
    let (code, out, err) = run(&l.env, &verify);
    assert_eq!(code, Some(1), "no genesis to trust: {out}{err}");
    assert!(err.contains("--genesis"), "{err}");

    let report = json(
        &l.env
            .ok(&["ledger", "verify", "--chain", "pr", "--json"], ""),
    );
    let genesis_hash = report["genesis"].as_str().unwrap().to_owned();
    let trust = l.dir("trust.toml");
    let sealer = l
        .env
        .ok(&["wallet", "address", "--key", &l.sealer], "")
        .lines()
        .find_map(|x| x.strip_prefix("public key"))
        .unwrap()
        .trim()
        .to_owned();
    let entry = |hash: &str| {
        format!(
            "[[ledger]]\nchain = \"pr\"\ngenesis = \"{hash}\"\n\
             sealers = [{{ name = \"sealer\", public_key = \"{sealer}\" }}]\n"
        )
    };
    fs::write(&trust, entry(&genesis_hash)).unwrap();
    let trust = trust.display().to_string();
    let with_trust: Vec<&str> = ["--trust", &trust].into_iter().chain(verify).collect();
    let (code, out, err) = run(&l.env, &with_trust);
    assert_eq!(code, Some(0), "{out}{err}");

    // A [[ledger]] naming another genesis: the archive's is not the trusted one.
    let other = format!(
        "{}{}",
        &genesis_hash[..63],
        if genesis_hash.ends_with('0') {
            "1"
        } else {
            "0"
        }
    );
    fs::write(&trust, entry(&other)).unwrap();
    let (code, out, err) = run(&l.env, &with_trust);
    assert_eq!(code, Some(3), "{out}{err}");
    assert_eq!(kinds(&json(&out)), ["archive_block_invalid"], "{out}");
}

/// `archive --ledger` killed (SIGKILL) at random points while blocks keep being sealed: after
/// each kill the archive verifies from the archive alone, its checkpoint is one a run
/// completed and never older than the last seen, and a final run completes it.
#[test]
fn a_ledger_archiver_killed_anywhere_leaves_a_verifiable_archive() {
    let l = Ledger::new();
    l.seal(&[1, 1, 1]);
    let started = std::time::Instant::now();
    l.archive("a");
    let run_ms = started.elapsed().as_millis() as u64 * 3 / 2 + 1;
    let mut rng = kchain_testkit::Rng::from_clock();
    let (mut size, mut last_seen, mut interrupted) = (4u64, 4u64, 0);
    for round in 0..12 {
        l.seal(&[1, 1]);
        size += 2;
        let url = l.url("a");
        let args = ["archive", "--ledger", &l.chain, "--to", &url];
        let mut child = l.env.command(&args).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.below(run_ms)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let (code, v) = l.verify("a");
        assert_eq!(code, Some(0), "round {round}: {v}");
        let seen = v["chains"][0]["size"].as_u64().unwrap();
        assert!(
            seen >= last_seen && seen <= size && seen % 2 == 0,
            "round {round}: {v}"
        );
        eprintln!("round {round}: archive at {seen} of {size}");
        interrupted += usize::from(seen < size);
        last_seen = seen;
    }
    assert!(
        interrupted > 0,
        "no kill interrupted a run: the test proves nothing"
    );
    let v = l.archive("a");
    assert_eq!(v["size"], size, "{v}");
    let (code, v) = l.verify("a");
    assert_eq!(
        (code, v["chains"][0]["size"].as_u64()),
        (Some(0), Some(size)),
        "{v}"
    );
}
