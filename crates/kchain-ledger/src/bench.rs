//! The ledger benchmark: signed transfers sealed end to end (submitted to the transactions
//! topic, read, verified, validated, sealed into blocks, appended, and replayed as canonical)
//! per second, next to the raw Ed25519 batch-verification rate measured in the same run.
//!
//! Signing is the clients' work and is done before the clock starts (its rate is reported
//! too). The transactions are submitted by one thread while one sealer node runs in another.
//! Besides the wall-time rates, the report has the process's CPU time for sealing (and the
//! submitter's share of it) and for batch verification ([`BenchReport::cpu_ratio`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kchain_core::WriterKey;
use kchain_log::Log;
use rayon::prelude::*;

use crate::client::{init, Submitter};
use crate::consensus::genesis::{Genesis, SealerInfo};
use crate::consensus::sig::{self, SigItem};
use crate::consensus::tx::{Address, Transaction};
use crate::error::LedgerError;
use crate::node::sealer::{SealEvent, SealOptions};
use crate::node::{Event, Node, NodeOptions};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Name of the ledger to create (its topics must not exist).
    pub chain: String,
    pub transactions: usize,
    pub senders: usize,
    pub partitions: u32,
    pub block_txs: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            chain: "bench".into(),
            transactions: 100_000,
            senders: 1000,
            partitions: 4,
            block_txs: 2000,
        }
    }
}

/// Rates measured in one run.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub transactions: usize,
    pub blocks: u64,
    pub seconds: f64,
    /// Signed transfers sealed end to end per second.
    pub sealed_per_sec: f64,
    /// ed25519-dalek `verify_batch`, batches of 128 on every core, same signatures (the
    /// baseline of the ledger's ratio until the node verified in larger batches).
    pub dalek_batch_verify_per_sec: f64,
    /// kchain's cofactored batch verification as the node does it (batches of up to
    /// [`crate::consensus::sig::MAX_BATCH`]), same conditions: the baseline of the ledger's
    /// target ratio, what sealing would cost if verifying were all it did.
    pub batch_verify_per_sec: f64,
    /// Signing, on every core.
    pub sign_per_sec: f64,
    /// Where the sealing node's wall time went, in seconds per stage (see [`Stage`]).
    pub stages: Vec<(Stage, f64)>,
    /// CPU time of the whole process (every thread, user and system) over the same
    /// `seconds`: the submitter, the node, the ingest workers and rayon's threads, the log's
    /// threads. 0 where the system does not say (no `/proc`).
    pub sealing_cpu_seconds: f64,
    /// Of that, the submitter thread's: the clients' work of writing the transactions' JSON
    /// records and appending them to the transactions topic.
    pub submit_cpu_seconds: f64,
    /// Of that, the node thread's (reading, building, appending, following: the stages of
    /// [`BenchReport::stages`] but `wait`). The rest is the ingest workers' and rayon's
    /// threads' (parsing, verifying) and the log's.
    pub node_cpu_seconds: f64,
    /// Signatures per batch verified while sealing, on average (the baseline's are
    /// [`crate::consensus::sig::MAX_BATCH`], or fewer when the sample is small).
    pub mean_batch: f64,
    /// CPU time of the process while measuring [`BenchReport::batch_verify_per_sec`] (over
    /// `verified` signatures).
    pub batch_verify_cpu_seconds: f64,
    /// Signatures verified to measure [`BenchReport::batch_verify_per_sec`].
    pub verified: usize,
}

impl BenchReport {
    /// Sealed transfers per second as a share of the rate at which the node's own batch
    /// verification checks their signatures alone (1.0: sealing costs nothing beside it).
    pub fn ratio(&self) -> f64 {
        self.sealed_per_sec / self.batch_verify_per_sec
    }

    /// [`BenchReport::ratio`] per CPU-second rather than per wall-clock second: sealed
    /// transfers per CPU-second of the process (the submitter's included) over signatures
    /// verified per CPU-second. It says what sealing costs beside verification whatever
    /// share of the cores the run got, where the wall-time ratio also says how well the
    /// stages kept both cores busy. 0 when CPU time is not known.
    pub fn cpu_ratio(&self) -> f64 {
        if self.sealing_cpu_seconds <= 0.0 || self.batch_verify_cpu_seconds <= 0.0 {
            return 0.0;
        }
        let sealed = self.transactions as f64 / self.sealing_cpu_seconds;
        let verified = self.verified as f64 / self.batch_verify_cpu_seconds;
        sealed / verified
    }
}

/// Runs the benchmark on `log`.
///
/// ```text
/// genesis (senders funded, one sealer) ─> init ─> sign n transfers (timed, in parallel)
///   ─> batch-verification rates ─> submit on a thread while a node seals them (timed)
/// ```
pub fn bench(log: &dyn Log, opts: &BenchOptions) -> Result<BenchReport, LedgerError> {
    let n = opts.transactions.max(1);
    let (g, senders, sealer) = bench_genesis(opts, n);
    init(log, &g, 0)?;
    let chain = g.chain_id();
    let sink = Address([0xee; 20]);

    let started = Instant::now();
    let txs: Vec<Transaction> = (0..n)
        .into_par_iter()
        .map(|i| {
            let k = &senders[i % senders.len()];
            let nonce = (i / senders.len()) as u64 + 1;
            Transaction::transfer(k, chain, sink, 1, nonce)
        })
        .collect();
    let sign_per_sec = n as f64 / started.elapsed().as_secs_f64();
    let rates = verify_rates(&txs);

    let sealed = seal_all(log, opts, &g, sealer, &txs)?;
    Ok(BenchReport {
        transactions: n,
        blocks: sealed.height,
        seconds: sealed.seconds,
        sealed_per_sec: n as f64 / sealed.seconds,
        dalek_batch_verify_per_sec: rates.dalek,
        batch_verify_per_sec: rates.ours,
        sign_per_sec,
        stages: sealed.stages,
        sealing_cpu_seconds: sealed.cpu,
        submit_cpu_seconds: sealed.submit_cpu,
        node_cpu_seconds: sealed.node_cpu,
        mean_batch: sealed.mean_batch,
        batch_verify_cpu_seconds: rates.ours_cpu,
        verified: rates.verified,
    })
}

/// User + system CPU seconds of this process so far, every thread counted; 0 without `/proc`.
fn process_cpu() -> f64 {
    kchain_log::cpu::process().unwrap_or(0.0)
}

/// User + system CPU seconds of the calling thread so far; 0 without `/proc`.
fn thread_cpu() -> f64 {
    kchain_log::cpu::thread().unwrap_or(0.0)
}

/// The benchmark's ledger: `opts.senders` senders, each funded for its share of `n`
/// transfers of 1, and one sealer; with the senders' and the sealer's keys.
fn bench_genesis(opts: &BenchOptions, n: usize) -> (Genesis, Vec<WriterKey>, WriterKey) {
    let senders: Vec<WriterKey> = (0..opts.senders.max(1))
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            WriterKey::from_seed("sender", seed)
        })
        .collect();
    let sealer = WriterKey::generate("bench-sealer");
    let per_sender = n.div_ceil(senders.len()) as u64;
    let balances: BTreeMap<Address, u64> = senders
        .iter()
        .map(|k| (Address::of(k), per_sender + 1))
        .collect();
    let mut g = Genesis::new(
        &opts.chain,
        vec![SealerInfo {
            name: "bench".into(),
            key: sealer.public(),
        }],
        balances,
    );
    g.transaction_partitions = opts.partitions.max(1);
    g.max_block_txs = opts.block_txs.max(1) as u32;
    (g, senders, sealer)
}

/// A stage of the sealing node's loop, as the bench times it: wall time on the node's
/// thread. Parsing and signature verification run on the pool's ingest workers, beside these;
/// the node's thread waits for them only when it has nothing else to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading transactions and handing them to the ingest workers, queueing what they judged.
    Ingest,
    /// Cutting a block: deciding transactions against the state, the items root, the JSON,
    /// the signature.
    Build,
    /// Appending rejections and the block, and observing the block the node appended.
    Append,
    /// Reading blocks from the log and validating them.
    Follow,
    /// Waiting for the node's block to come back from the log.
    Confirm,
    /// Waiting for transactions to arrive or to be verified.
    Wait,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Build => "build",
            Stage::Append => "append",
            Stage::Follow => "follow",
            Stage::Confirm => "confirm",
            Stage::Wait => "wait",
        }
    }

    const ALL: [Stage; 6] = [
        Stage::Ingest,
        Stage::Build,
        Stage::Append,
        Stage::Follow,
        Stage::Confirm,
        Stage::Wait,
    ];

    /// The stage of a step that reported `events`, when it is timed as a whole.
    fn of(events: &[Event]) -> Option<Stage> {
        events.iter().find_map(|e| match e {
            Event::Seal(SealEvent::Rejected { .. } | SealEvent::Appended { .. }) => {
                Some(Stage::Append)
            }
            Event::Seal(SealEvent::Confirmed { .. }) | Event::Canonical { .. } => {
                Some(Stage::Follow)
            }
            _ => None,
        })
    }
}

/// Seconds of the sealing node's wall time per stage.
type Stages = Vec<(Stage, f64)>;

/// What [`seal_all`] measured.
struct Sealed {
    /// The height reached.
    height: u64,
    /// Wall time once the node was open.
    seconds: f64,
    /// Where the node's thread spent it.
    stages: Stages,
    /// CPU seconds of the process meanwhile.
    cpu: f64,
    /// CPU seconds of the submitter's thread.
    submit_cpu: f64,
    /// CPU seconds of the node's thread (this one).
    node_cpu: f64,
    /// Signatures per verified batch.
    mean_batch: f64,
}

/// Submits `txs` on a thread while a sealing node seals them all. Gives up after ten
/// minutes.
fn seal_all(
    log: &dyn Log,
    opts: &BenchOptions,
    g: &Genesis,
    sealer: WriterKey,
    txs: &[Transaction],
) -> Result<Sealed, LedgerError> {
    let mut events = Vec::new();
    let node_opts = NodeOptions {
        snapshot_every: 0,
        ..NodeOptions::new(&g.topics.blocks)
    };
    let seal = SealOptions {
        block_txs: opts.block_txs.max(1),
        block_ms: 50,
        ..SealOptions::default()
    };
    let mut node = Node::open(log, node_opts, Some((sealer, seal)), &mut events)?;
    // Connecting is the clients' setup, not their work per transaction.
    let mut submitter = Submitter::new(g, true);
    submitter.open(log)?;
    let mut spent = [Duration::ZERO; Stage::ALL.len()];
    let mut confirming = false;
    let started = Instant::now();
    let cpu = process_cpu();
    let node_cpu = thread_cpu();
    let batches = sig::batch_counts();
    let submit_cpu = std::thread::scope(|s| -> Result<f64, LedgerError> {
        let submitter = s.spawn(move || -> Result<f64, LedgerError> {
            let cpu = thread_cpu();
            for chunk in txs.chunks(8192) {
                submitter.submit(log, chunk)?;
            }
            Ok(thread_cpu() - cpu)
        });
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut draining = false;
        while node.chain().state().sealed_count() < txs.len() {
            if Instant::now() > deadline {
                return Err(LedgerError::Timeout("the benchmark did not finish".into()));
            }
            // Every transaction is in the log: the last block need not wait out block_ms.
            if !draining && submitter.is_finished() {
                node.drain();
                draining = true;
            }
            events.clear();
            let t = Instant::now();
            let worked = node.step(&mut events)?;
            if let Some(stage) = Stage::of(&events) {
                spent[stage as usize] += t.elapsed();
            }
            for e in &events {
                match e {
                    Event::Seal(SealEvent::Appended { .. }) => confirming = true,
                    Event::Seal(SealEvent::Confirmed { .. }) => confirming = false,
                    _ => {}
                }
            }
            if !worked {
                let t = Instant::now();
                let read = node.follow(Duration::from_millis(1), &mut events)?;
                match (read, confirming) {
                    (1.., _) => spent[Stage::Follow as usize] += t.elapsed(),
                    (0, true) => spent[Stage::Confirm as usize] += t.elapsed(),
                    (0, false) => {}
                }
            }
        }
        submitter.join().expect("submitter thread")
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu;
    let node_cpu = thread_cpu() - node_cpu;
    let (batches, batched) = {
        let now = sig::batch_counts();
        (now.0 - batches.0, now.1 - batches.1)
    };
    spent[Stage::Ingest as usize] = node.stats().ingest_time;
    spent[Stage::Build as usize] = node.stats().build_time;
    let counted: Duration = spent.iter().sum();
    spent[Stage::Wait as usize] = Duration::from_secs_f64(seconds).saturating_sub(counted);
    let stages = Stage::ALL
        .iter()
        .map(|&s| (s, spent[s as usize].as_secs_f64()))
        .collect();
    Ok(Sealed {
        height: node.chain().tip().height,
        seconds,
        stages,
        cpu,
        submit_cpu,
        node_cpu,
        mean_batch: batched as f64 / batches.max(1) as f64,
    })
}

/// Batch-verification rates measured by [`verify_rates`].
struct VerifyRates {
    /// ed25519-dalek's `verify_batch`, batches of 128.
    dalek: f64,
    /// kchain's, as the node batches.
    ours: f64,
    /// The process's CPU seconds while measuring `ours`.
    ours_cpu: f64,
    /// Signatures each rate verified.
    verified: usize,
}

/// Batch-verification rates over (up to 50,000 of) `txs`: ed25519-dalek's and kchain's.
fn verify_rates(txs: &[Transaction]) -> VerifyRates {
    let sample = &txs[..txs.len().min(50_000)];
    let messages: Vec<[u8; 48]> = sample.iter().map(Transaction::signed_message).collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = sample
        .iter()
        .map(|t| ed25519_dalek::VerifyingKey::from_bytes(t.public_key()).expect("valid key"))
        .collect();
    let sigs: Vec<ed25519_dalek::Signature> = sample
        .iter()
        .map(|t| ed25519_dalek::Signature::from_bytes(t.signature()))
        .collect();
    let started = Instant::now();
    let ok = (0..sample.len())
        .into_par_iter()
        .step_by(sig::BATCH)
        .all(|i| {
            let j = (i + sig::BATCH).min(sample.len());
            let m: Vec<&[u8]> = messages[i..j].iter().map(|m| &m[..]).collect();
            ed25519_dalek::verify_batch(&m, &sigs[i..j], &keys[i..j]).is_ok()
        });
    let dalek = sample.len() as f64 / started.elapsed().as_secs_f64();
    assert!(ok, "benchmark signatures verify");
    let points: Vec<_> = sample
        .iter()
        .map(|t| sig::decode_key(t.public_key()).expect("valid key"))
        .collect();
    let cpu = process_cpu();
    let started = Instant::now();
    let items: Vec<SigItem> = sample
        .iter()
        .enumerate()
        .map(|(i, t)| SigItem {
            key: &points[i],
            key_bytes: t.public_key(),
            message: &messages[i],
            signature: t.signature(),
        })
        .collect();
    let verdicts = sig::verify_many(&items);
    let ours = sample.len() as f64 / started.elapsed().as_secs_f64();
    let ours_cpu = process_cpu() - cpu;
    assert!(verdicts.iter().all(Result::is_ok));
    VerifyRates {
        dalek,
        ours,
        ours_cpu,
        verified: sample.len(),
    }
}
