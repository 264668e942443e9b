//! Running the `kchain` binary in tests: a data directory of the test's own, and optionally
//! a Kafka broker (`-b`), and the interop tests' Kafka client (`kclient`).
#![allow(dead_code)]

pub mod orgs;
pub mod serve;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use kchain_core::WriterKey;

pub struct Env {
    pub dir: tempfile::TempDir,
    /// Kafka bootstrap address passed as `-b`, or `None` for the embedded log.
    pub brokers: Option<String>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            brokers: None,
        }
    }

    pub fn kafka(brokers: &str) -> Env {
        Env {
            brokers: Some(brokers.to_owned()),
            ..Env::new()
        }
    }

    pub fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The test's configuration directory (keys, trust file, keyring), apart from its data.
    pub fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("config")
    }

    /// The binary with `args` in this test's directories (and `-b` on Kafka), its standard
    /// streams piped and nothing of the caller's kchain environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kchain"));
        if let Some(b) = &self.brokers {
            cmd.args(["-b", b]);
        }
        cmd.args(args)
            .env("KCHAIN_DATA_DIR", self.data())
            .env("KCHAIN_CONFIG_DIR", self.config())
            .env_remove("KCHAIN_KEYRING")
            .env_remove("KCHAIN_TRUST")
            .env_remove("KCHAIN_KEY_FILE")
            .env_remove("KCHAIN_BROKERS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self.command(args).spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert_eq!(
            out.status.code(),
            Some(0),
            "kchain {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Makes a wallet key `<dir>/<name>.key` with `kchain wallet new`.
    pub fn wallet(&self, dir: &std::path::Path, name: &str) -> Wallet {
        let path = dir.join(format!("{name}.key")).to_str().unwrap().to_owned();
        let out = self.ok(&["wallet", "new", "--out", &path, "--name", name], "");
        Wallet {
            path,
            address: field(&out, "address"),
            public: field(&out, "public key"),
        }
    }

    /// Runs a command that must fail with exit 1 and one line on stderr containing `needle`.
    pub fn error(&self, args: &[&str], needle: &str) {
        let out = self.run(args, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "kchain {args:?}: {err}");
        // Besides the line naming the backend, which every command that opens a log prints.
        let backend = |l: &str| {
            l.starts_with("kchain: embedded log ") || l.starts_with("kchain: kafka brokers ")
        };
        let lines = err.lines().filter(|l| !backend(l)).count();
        assert_eq!(lines, 1, "one line: {err}");
        assert!(
            err.contains(needle),
            "kchain {args:?}: expected '{needle}' in: {err}"
        );
    }
}

/// Runs `kchain args` with no input and returns (exit code, stdout, stderr).
pub fn run(k: &Env, args: &[&str]) -> (Option<i32>, String, String) {
    let out = k.run(args, "");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `text` parsed as JSON; panics, showing it, when it is not.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A wallet key file made by [`Env::wallet`], with what `kchain wallet new` printed.
pub struct Wallet {
    pub path: String,
    /// The 40 hex digits of the wallet's address.
    pub address: String,
    pub public: String,
}

/// The rest of the first line of `out` that starts with `prefix`, trimmed (`address  ab12..`
/// gives `ab12..`). Panics, showing `out`, when no line does.
pub fn field(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in: {out}"))
        .trim()
        .to_owned()
}

/// Runs `tests/interop/kclient.py` (a Kafka client kchain did not write: kafka-python or
/// confluent-kafka) with the interop Python; returns what it printed.
pub fn kclient(args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/kclient.py");
    let mut all = vec![script.into_os_string()];
    all.extend(args.iter().map(std::ffi::OsString::from));
    kchain_testkit::run_python(&all)
}

/// Appends to `topic`/`partition` of the embedded log a record that links correctly, signed
/// by `key` (one the trust file does not know) or by none, as an intruder with write access
/// to the log could.
pub fn forge_on_embedded(env: &Env, topic: &str, partition: u32, key: Option<&WriterKey>) {
    let log = kchain_log::EmbeddedLog::open(env.data(), Default::default()).unwrap();
    let last = kchain_topic::tamper::read_all(&log, topic, partition)
        .unwrap()
        .pop()
        .unwrap();
    let item = kchain_core::Item {
        key: None,
        value: Some(b"forged".to_vec()),
        headers: Vec::new(),
        timestamp_ms: 1_700_000_000_000,
    };
    let rec = kchain_topic::tamper::forge_after(topic, partition, &last, item, key).unwrap();
    let mut app = kchain_log::Log::appender(&log, topic, partition).unwrap();
    app.append(std::slice::from_ref(&rec)).unwrap();
    app.flush().unwrap();
}
