//! The witness server killed with SIGKILL at random moments under load, in a child process:
//! after each restart every cosignature a client received is covered by the state (never a
//! rollback below an answered size), and the state files always parse.
//!
//! ```text
//!  parent: spawn child ──► wait for its URL ──► client threads (two per origin, racing)
//!          sleep a random while ──► SIGKILL ──► join ──► check the state files ──► again
//!  child:  a witness server over the state directory, until killed
//! ```

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kchain_http::{Client, ClientOptions};
use support::{Log, TestWitness};

/// Set (to the state directory) in the child's environment.
const CHILD_ENV: &str = "KCHAIN_WITNESS_CRASH_CHILD";
const ORIGINS: usize = 4;
const LEAVES: usize = 4000;

fn logs() -> Vec<Log> {
    (0..ORIGINS)
        .map(|i| {
            let mut log = Log::new(&format!("log.example/crash{i}"), i as u8 + 1);
            log.grow(LEAVES);
            log
        })
        .collect()
}

fn url_file(state: &Path) -> PathBuf {
    state.with_extension("url")
}

#[test]
fn child_witness_process() {
    let Some(state) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let state = PathBuf::from(state);
    let logs = logs();
    let w = TestWitness::start(&state, &logs.iter().collect::<Vec<_>>());
    let tmp = state.with_extension("url.tmp");
    std::fs::write(&tmp, w.url()).unwrap();
    std::fs::rename(&tmp, url_file(&state)).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A small xorshift generator: the test's randomness, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the clients know of one origin: the size to send as old, and the largest size a
/// cosignature was answered for.
#[derive(Default)]
struct Known {
    old: u64,
    answered: u64,
}

/// Posts checkpoints of `log` until the server goes away or the log is fully cosigned.
fn client(url: &str, log: &Log, known: &Mutex<Known>, seed: u64) -> u64 {
    let client = Client::new(&ClientOptions::default()).unwrap();
    let mut rng = Rng(seed | 1);
    let mut answers = 0;
    loop {
        let old = known.lock().unwrap().old;
        let new = (old + 1 + rng.below(3)).min(LEAVES as u64);
        if old == new {
            return answers;
        }
        let url = format!("{url}/add-checkpoint");
        let Ok(r) = client.post(&url, "text/plain", &log.body(old, new)) else {
            return answers; // killed
        };
        let mut k = known.lock().unwrap();
        match r.status {
            200 => {
                answers += 1;
                k.answered = k.answered.max(new);
                k.old = k.old.max(new);
            }
            409 => k.old = support::size_answer(&r),
            s => panic!("status {s}: {}", r.text()),
        }
    }
}

/// Starts the child witness over `state` and returns it with its URL (the caller kills and
/// waits for it).
#[allow(clippy::zombie_processes)]
fn spawn_child(state: &Path) -> (std::process::Child, String) {
    let _ = std::fs::remove_file(url_file(state));
    let child = kchain_testkit::test_in_child("child_witness_process")
        .env(CHILD_ENV, state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Ok(url) = std::fs::read_to_string(url_file(state)) {
            return (child, url);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no child witness"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every state file and the journal parse (as `witness export` reads them: the journal's
/// newer states over the files), and each origin's state covers the largest size answered.
fn check_state(state: &Path, logs: &[Log], known: &[Arc<Mutex<Known>>]) -> u64 {
    let notes = kchain_topic::checkpoints::witness_export(state).expect("the state parses");
    assert!(notes.len() <= logs.len());
    let state_of = |origin: &str| {
        notes.iter().find_map(|n| {
            let c = kchain_core::Checkpoint::parse(n.text()).unwrap();
            (c.origin() == origin).then(|| (n.clone(), c))
        })
    };
    let mut total = 0;
    for (log, known) in logs.iter().zip(known) {
        let answered = known.lock().unwrap().answered;
        let stored = state_of(&log.origin).map_or(0, |(_, c)| c.size());
        assert!(
            stored >= answered,
            "{}: a cosignature of size {answered} was answered, the state holds {stored}",
            log.origin
        );
        // The state holds the log's own checkpoint at that size.
        if stored > 0 {
            let (note, _) = state_of(&log.origin).unwrap();
            assert_eq!(note.text(), log.note_at(stored).text());
        }
        total += stored;
    }
    total
}

#[test]
fn a_witness_killed_with_sigkill_under_load_never_loses_an_answered_cosignature() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let logs = Arc::new(logs());
    let known: Vec<Arc<Mutex<Known>>> = (0..ORIGINS).map(|_| Arc::default()).collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut rng = Rng(seed | 1);
    let mut answers = HashMap::new();
    for round in 0..10 {
        let (mut child, url) = spawn_child(&state);
        let threads: Vec<_> = (0..ORIGINS * 2)
            .map(|t| {
                let (url, logs, known) = (url.clone(), logs.clone(), known[t % ORIGINS].clone());
                let seed = rng.below(u64::MAX);
                std::thread::spawn(move || client(&url, &logs[t % ORIGINS], &known, seed))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let n: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        answers.insert(round, n);
        let total = check_state(&state, &logs, &known);
        eprintln!("round {round}: {n} cosignatures answered, state sizes sum {total}");
    }
    assert!(
        answers.values().sum::<u64>() > 20,
        "too few answers to test anything: {answers:?}"
    );
}
