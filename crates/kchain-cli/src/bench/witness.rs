//! `kchain bench witness`: the HTTP witness's add-checkpoint rate on loopback, beside what
//! bounds it (Ed25519 cosigning, and the durable write of an origin's state).
//!
//! ```text
//!  prepare: M logs, each a chain of signed checkpoints, each with its proof from the last
//!  each repetition: a fresh state directory and server ──► N client threads, keep-alive,
//!    each takes a free origin (its next checkpoint, in order) ──► POST /add-checkpoint
//!  report: median and spread of the repetitions; cosign/s on one thread; state writes/s
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kchain_core::checkpoint::witness_wire::AddCheckpoint;
use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{Checkpoint, Cosigner, NoteSigner};
use kchain_http::{Client, ClientOptions, ServerOptions};
use kchain_witness::{KnownLogs, StateStore, WitnessService};

/// `kchain bench witness`'s arguments.
#[derive(clap::Args, Debug)]
pub struct WitnessBenchArgs {
    /// Client threads (each with its own keep-alive connection).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Logs (origins) the requests are spread over.
    #[arg(long, default_value_t = 8)]
    origins: usize,
    /// Add-checkpoint requests per repetition.
    #[arg(long, default_value_t = 4000)]
    requests: u64,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Server worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
}

/// What a bench witness command does.
#[derive(clap::Subcommand, Debug)]
pub enum BenchWhat {
    /// The HTTP witness: add-checkpoint requests per second over keep-alive on loopback,
    /// beside the Ed25519 cosigning rate and the durable state write rate.
    Witness(WitnessBenchArgs),
}

/// One log's checkpoints, as request bodies in order (the first from size 0).
type Bodies = Vec<Vec<u8>>;

pub fn run(what: &BenchWhat) -> Result<()> {
    let BenchWhat::Witness(a) = what;
    if a.threads == 0 || a.origins == 0 || a.requests == 0 || a.reps == 0 {
        bail!("--threads, --origins, --requests and --reps must be positive");
    }
    // Threads take free origins in turn: about an even share each, twice that prepared.
    let per_origin = a.requests.div_ceil(a.origins as u64) as usize * 2 + 16;
    let (logs, bodies) = prepare(a.origins, per_origin)?;
    let mut rates = Vec::new();
    for rep in 0..a.reps {
        let rate =
            repetition(a, &logs, &bodies).with_context(|| format!("repetition {}", rep + 1))?;
        eprintln!("  repetition {}: {rate:.0} requests/s", rep + 1);
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let (lo, hi) = (rates[0], rates[rates.len() - 1]);
    println!(
        "witness add-checkpoint over HTTP keep-alive on loopback: {median:.0} requests/s median \
         (min {lo:.0}, max {hi:.0}; {} repetitions of {} requests, {} client threads, {} \
         origins, {} server threads)",
        a.reps, a.requests, a.threads, a.origins, a.server_threads
    );
    println!(
        "Ed25519 cosignatures on one thread: {:.0}/s",
        cosign_rate()?
    );
    println!(
        "durable state writes on one thread (write, fsync, rename, fsync dir): {:.0}/s",
        write_rate()?
    );
    Ok(())
}

/// `origins` logs with `steps` checkpoints each (1 to 3 new leaves a step).
fn prepare(origins: usize, steps: usize) -> Result<(KnownLogs, Vec<Bodies>)> {
    let mut known = KnownLogs::new();
    let mut all = Vec::new();
    for o in 0..origins {
        let origin = format!("bench.example/log{o}");
        let signer = NoteSigner::generate(&origin)?;
        known.add(&origin, signer.verifier());
        let mut tree = TreeBuilder::new();
        let mut bodies = Vec::with_capacity(steps);
        for step in 0..steps {
            let old = tree.clone();
            let appended: Vec<merkle::Hash> = (0..1 + step % 3)
                .map(|i| merkle::leaf_hash(format!("{o} {} {i}", tree.size()).as_bytes()))
                .collect();
            appended.iter().for_each(|l| tree.push(l));
            let proof = if old.size() == 0 {
                Vec::new()
            } else {
                merkle::consistency_proof_extending(&old, &appended)?
            };
            let note = Checkpoint::new(&origin, tree.size(), tree.root())?.sign(&signer);
            bodies.push(
                AddCheckpoint {
                    old_size: old.size(),
                    proof,
                    checkpoint: note,
                }
                .to_body(),
            );
        }
        all.push(bodies);
    }
    Ok((known, all))
}

/// One repetition on a fresh state directory and server: requests per second.
fn repetition(a: &WitnessBenchArgs, logs: &KnownLogs, bodies: &[Bodies]) -> Result<f64> {
    let dir = scratch("state");
    let store = StateStore::open(&dir)?;
    let cosigner = Cosigner::generate("bench.example/witness")?;
    let service = Arc::new(WitnessService::new(cosigner, logs.clone(), store));
    let mut options = ServerOptions::new("127.0.0.1:0");
    options.threads = a.server_threads.max(1);
    let server = kchain_witness::serve(&options, service)?;
    let url = format!("{}/add-checkpoint", server.url());
    // The next step of each origin; a thread holds an origin while its request is out.
    let next: Arc<Vec<Mutex<usize>>> = Arc::new(bodies.iter().map(|_| Mutex::new(0)).collect());
    let left = Arc::new(AtomicU64::new(a.requests));
    let start = Instant::now();
    let threads: Vec<_> = (0..a.threads)
        .map(|t| {
            let (next, left, url) = (next.clone(), left.clone(), url.clone());
            let bodies = bodies.to_vec();
            std::thread::spawn(move || client_thread(t, &url, &bodies, &next, &left))
        })
        .collect();
    for t in threads {
        t.join().expect("a bench thread")?;
    }
    let elapsed = start.elapsed();
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(a.requests as f64 / elapsed.as_secs_f64().max(1e-9))
}

/// Sends requests until `left` runs out, each the next checkpoint of a free origin.
fn client_thread(
    t: usize,
    url: &str,
    bodies: &[Bodies],
    next: &[Mutex<usize>],
    left: &AtomicU64,
) -> Result<()> {
    let client = Client::new(&ClientOptions {
        timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    })?;
    let mut o = t;
    while left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let (mut step, i) = next_origin(&mut o, bodies, next)?;
        let body = &bodies[i][*step];
        let r = client.post(url, "text/plain", body)?;
        if r.status != 200 {
            bail!("status {}: {}", r.status, r.text());
        }
        *step += 1;
    }
    Ok(())
}

/// A free origin that has checkpoints left, locked, with its index.
fn next_origin<'n>(
    o: &mut usize,
    bodies: &[Bodies],
    next: &'n [Mutex<usize>],
) -> Result<(std::sync::MutexGuard<'n, usize>, usize)> {
    for _ in 0..1_000_000 {
        *o = (*o + 1) % bodies.len();
        if let Ok(step) = next[*o].try_lock() {
            if *step < bodies[*o].len() {
                return Ok((step, *o));
            }
        }
        std::thread::yield_now();
    }
    bail!("more requests than prepared checkpoints")
}

/// Ed25519 cosignatures per second on one thread, over one second.
fn cosign_rate() -> Result<f64> {
    let cosigner = Cosigner::generate("bench.example/witness")?;
    let text = "bench.example/log\n12345\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs(1) {
        std::hint::black_box(cosigner.cosign(text, n));
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Durable replacements of a small state file per second on one thread, over one second.
fn write_rate() -> Result<f64> {
    let dir = scratch("writes");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("state.note");
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs(1) {
        kchain_topic::checkpoints::witness_state::write_file(&path, &[b'x'; 300])?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}

/// A fresh directory under the system's temporary directory.
fn scratch(what: &str) -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!(
        "kchain-bench-witness-{}-{what}-{n}",
        std::process::id()
    ))
}
