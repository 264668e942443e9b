//! Running the `kchain` binary in tests: a data directory of the test's own, and optionally
//! a Kafka broker (`-b`).
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

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

    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kchain"));
        if let Some(b) = &self.brokers {
            cmd.args(["-b", b]);
        }
        let mut child = cmd
            .args(args)
            .env("KCHAIN_DATA_DIR", self.data())
            .env("KCHAIN_CONFIG_DIR", self.config())
            .env_remove("KCHAIN_KEYRING")
            .env_remove("KCHAIN_TRUST")
            .env_remove("KCHAIN_KEY_FILE")
            .env_remove("KCHAIN_BROKERS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
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
