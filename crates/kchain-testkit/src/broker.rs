//! A private Kafka-API broker (tansu on loopback) for tests, started and stopped through
//! `scripts/broker.sh`.
//!
//! Tests never use a broker that someone else started: each [`Broker`] has its own state
//! directory, port and storage, and the script's watchdog stops it when the test process
//! exits, even when a test aborts. [`Broker::shared`] gives every test of one test binary
//! the same broker (topic names are random, so tests do not see one another);
//! [`Broker::start`] gives a test a broker of its own (for restarts, or another engine).
//!
//! The shared broker uses tansu's `sqlite://` engine unless `KCHAIN_TEST_STORAGE=memory`:
//! tansu 0.6's memory engine answers ListOffsets(latest) with the base offset of the last
//! batch plus one, so end offsets are wrong after any batch of more than one record (see
//! `docs/kafka.md`).
//!
//! tansu must be installed (`scripts/broker.sh install`, cached in
//! `~/.cache/kchain/tools`); `KCHAIN_TANSU` names another binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A tansu process on 127.0.0.1, stopped on drop.
pub struct Broker {
    /// The bootstrap address, `127.0.0.1:PORT`.
    pub brokers: String,
    storage: String,
    port: u16,
    state: State,
}

/// Where the script keeps the broker's pid, port, log and (for `sqlite`) database.
enum State {
    /// Removed when the broker is dropped.
    Temporary(tempfile::TempDir),
    /// The shared broker's, removed by a later run (see [`remove_stale_states`]).
    Kept(PathBuf),
}

impl State {
    fn path(&self) -> &Path {
        match self {
            State::Temporary(dir) => dir.path(),
            State::Kept(path) => path,
        }
    }
}

const SHARED_PREFIX: &str = "kchain-shared-broker-";

/// Removes the state directories of shared brokers whose test process has exited.
fn remove_stale_states(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SHARED_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Broker {
    /// The broker shared by the tests of this test binary, started on first use: the
    /// engine that `KCHAIN_TEST_STORAGE` names (`memory` or `sqlite`; default `sqlite`, see
    /// `docs/kafka.md` for why). It is stopped by the script's watchdog when the test
    /// process exits.
    pub fn shared() -> &'static Broker {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(|| {
            // A static is never dropped: its state directory (and database) lives under
            // target/tmp, named by pid, and a later run removes those of finished runs.
            let parent = target_tmp();
            let parent = parent.as_path();
            remove_stale_states(parent);
            let state = parent.join(format!("{SHARED_PREFIX}{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&state);
            std::fs::create_dir_all(&state).expect("state directory for the shared broker");
            let storage = match std::env::var("KCHAIN_TEST_STORAGE").as_deref() {
                Ok("memory") => "memory://",
                Ok("sqlite") | Err(_) => "sqlite",
                Ok(other) => panic!("KCHAIN_TEST_STORAGE={other}: use memory or sqlite"),
            };
            Broker::start_in(State::Kept(state), storage)
        })
    }

    /// Starts a broker of this test's own on a free port with `storage`: `memory://`,
    /// `sqlite://PATH`, or `sqlite` for a database file in the broker's own state
    /// directory (kept across [`restart`](Self::restart), removed on drop). Panics, with
    /// the script's output, when it does not come up.
    pub fn start(storage: &str) -> Broker {
        let state = tempfile::Builder::new()
            .prefix("kchain-broker-")
            .tempdir()
            .expect("state directory for the broker");
        Broker::start_in(State::Temporary(state), storage)
    }

    fn start_in(state: State, storage: &str) -> Broker {
        let storage = match storage {
            "sqlite" => format!("sqlite://{}", state.path().join("broker.db").display()),
            other => other.to_string(),
        };
        let address = run(state.path(), &["start", "--storage", &storage]);
        let port = address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("broker.sh start printed {address:?}, not host:port"));
        Broker {
            brokers: address,
            storage,
            port,
            state,
        }
    }

    /// Stops the broker and starts it again on the same port with the same storage (a
    /// `sqlite://` broker keeps its records; a `memory://` one starts empty).
    pub fn restart(&mut self) {
        run(self.state.path(), &["stop"]);
        let port = self.port.to_string();
        let address = run(
            self.state.path(),
            &["start", "--port", &port, "--storage", &self.storage],
        );
        assert_eq!(address, self.brokers, "restarted on another address");
    }

    /// Stops the broker (also done on drop).
    pub fn stop(&self) {
        run(self.state.path(), &["stop"]);
    }

    /// The broker's log file (tansu's output), for messages of failing tests.
    pub fn log_path(&self) -> PathBuf {
        self.state.path().join("tansu.log")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg("--state-dir")
            .arg(self.state.path())
            .output();
    }
}

/// `target/tmp` of the build that made this test binary (`target/debug/deps/<test>`): what
/// Cargo calls `CARGO_TARGET_TMPDIR`, which only integration tests themselves are given.
/// Falls back to the system's temporary directory for a binary run from elsewhere.
fn target_tmp() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let target = exe
        .as_deref()
        .and_then(Path::parent)
        .filter(|deps| deps.ends_with("deps"))
        .and_then(Path::parent)
        .and_then(Path::parent);
    match target {
        Some(target) => target.join("tmp"),
        None => std::env::temp_dir(),
    }
}

/// `scripts/broker.sh` of this checkout.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/broker.sh")
}

/// Runs `broker.sh <args> --state-dir <state>`; returns the last line of its stdout.
fn run(state: &Path, args: &[&str]) -> String {
    let mut command = Command::new(script());
    command.args(args).arg("--state-dir").arg(state);
    if args.first() == Some(&"start") {
        command
            .arg("--watch-pid")
            .arg(std::process::id().to_string());
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script().display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/broker.sh {} failed ({}):\n{stdout}{stderr}\n\
         (install tansu with: scripts/broker.sh install)",
        args.join(" "),
        out.status
    );
    stdout.lines().last().unwrap_or_default().trim().to_string()
}
