//! kchain's own client (`HttpWitness`) against the server, state that survives a restart,
//! and the race of the spec: concurrent requests never roll an origin back.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kchain_core::{merkle, Policy, RemoteWitness, RemoteWitnessError};
use kchain_http::{Client, ClientOptions};
use kchain_witness::{checkpoint_path, HttpWitness};
use support::{size_answer, Log, TestWitness};

/// Pushes `log`'s checkpoint at its size through `client`, the proof from whatever size
/// the witness asks for.
fn push(client: &HttpWitness, log: &Log) -> Result<u64, RemoteWitnessError> {
    let mut note = log.note();
    let proof_from =
        |old: u64| -> Result<Vec<merkle::Hash>, String> { Ok(log.proof(old, log.size())) };
    let lines = client.add_checkpoint(&note, &proof_from)?;
    for l in lines {
        note.add_signature(l);
    }
    let policy = Policy::new(
        vec![log.signer.verifier()],
        vec![support::cosigner().verifier()],
        1,
    )
    .unwrap();
    Ok(policy.check(&note).expect("cosigned").checkpoint.size())
}

#[test]
fn the_http_witness_client_follows_conflicts_growth_and_resubmission() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("log.example/client", 1);
    log.grow(4);
    let w = TestWitness::start(dir.path(), &[&log]);
    let http = || HttpWitness::new(&w.url(), Client::new(&ClientOptions::default()).unwrap());

    let first = http();
    assert_eq!(push(&first, &log).unwrap(), 4);
    log.grow(6);
    assert_eq!(push(&first, &log).unwrap(), 10);
    // The same checkpoint again: cosigned again.
    assert_eq!(push(&first, &log).unwrap(), 10);

    // A client that knows nothing sends old 0, gets 409 with 10, and resends from 10.
    log.grow(1);
    let fresh = http();
    assert_eq!(push(&fresh, &log).unwrap(), 11);

    // The newest cosigned checkpoint, as verifiers fetch it.
    let latest = fresh.latest("log.example/client").unwrap().unwrap();
    assert_eq!(latest.text(), log.note_at(11).text());
    assert!(fresh.latest("log.example/other").unwrap().is_none());

    // An older checkpoint than the witness holds is refused.
    let old = Log {
        origin: log.origin.clone(),
        signer: log.signer.clone(),
        leaves: log.leaves[..5].to_vec(),
    };
    let err = push(&http(), &old).unwrap_err();
    assert!(
        matches!(err, RemoteWitnessError::Refused { status: 409, .. }),
        "{err}"
    );
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("log.example/durable", 1);
    log.grow(7);
    {
        let w = TestWitness::start(dir.path(), &[&log]);
        assert_eq!(w.post(&log.body(0, 7)).status, 200);
    }
    let w = TestWitness::start(dir.path(), &[&log]);
    assert_eq!(size_answer(&w.post(&log.body(0, 7))), 7);
    let r = w.get(&checkpoint_path("log.example/durable"));
    assert_eq!(r.status, 200);
    log.grow(1);
    assert_eq!(w.post(&log.body(7, 8)).status, 200);
    assert_eq!(w.get("/origins").text(), "log.example/durable 8\n");
}

#[test]
fn concurrent_requests_never_roll_an_origin_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Log::new("log.example/race-a", 1);
    let mut b = Log::new("log.example/race-b", 2);
    a.grow(64);
    b.grow(64);
    let w = Arc::new(TestWitness::start(dir.path(), &[&a, &b]));
    let logs = Arc::new([a, b]);
    let best = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let seen = Arc::new(Mutex::new(Vec::new()));

    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (w, logs, best, seen) = (w.clone(), logs.clone(), best.clone(), seen.clone());
            std::thread::spawn(move || {
                let (i, log) = (t % 2, &logs[t % 2]);
                let mut old = 0;
                for n in 0..40u64 {
                    // Sizes that go up and down: stale requests race fresh ones.
                    let size = 1 + (n * 7 + t as u64 * 13) % 64;
                    if size < old {
                        continue;
                    }
                    let r = w.post(&log.body(old, size));
                    match r.status {
                        200 => {
                            best[i].fetch_max(size, Ordering::SeqCst);
                            old = size;
                        }
                        409 => old = size_answer(&r),
                        s => panic!("status {s}: {}", r.text()),
                    }
                    // What the witness serves never goes back.
                    let latest = w.get(&checkpoint_path(&log.origin));
                    let held = String::from_utf8_lossy(&latest.body)
                        .lines()
                        .nth(1)
                        .unwrap()
                        .parse::<u64>()
                        .unwrap();
                    seen.lock().unwrap().push((t, held));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    // Each thread saw its origin's size only grow.
    let seen = seen.lock().unwrap();
    for t in 0..8 {
        let held: Vec<u64> = seen
            .iter()
            .filter(|(s, _)| *s == t)
            .map(|(_, h)| *h)
            .collect();
        assert!(
            held.windows(2).all(|w| w[0] <= w[1]),
            "thread {t}: {held:?}"
        );
    }
    for (i, log) in logs.iter().enumerate() {
        let latest = w.get(&checkpoint_path(&log.origin)).text();
        let size: u64 = latest.lines().nth(1).unwrap().parse().unwrap();
        assert_eq!(size, best[i].load(Ordering::SeqCst), "{}", log.origin);
    }
}
