//! The ledger part of `kchain demo`: a few wallets, a burst of signed transfers and data
//! records, two sealers racing for the next block, one of them crashing and restarting from
//! its snapshot, the final balances, and the verification of the whole chain.
//!
//! ```text
//!  client ──submit──▶ <chain>.transactions (4 partitions)
//!                          │            │
//!                     sealer north  sealer south  (threads; south crashes once)
//!                          └─────┬──────┘
//!                                ▼
//!                      <chain>.blocks: first valid block at each height wins,
//!                                      the loser's block is stale and ignored
//! ```
//!
//! Uses only kchain-ledger's library API, so it runs on either backend.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kchain_core::{KeyId, WriterKey};
use kchain_ledger::{
    canonical_blocks, init, replay, submit, verify_ledger, Address, Event, Genesis, IgnoreReason,
    Node, NodeOptions, NodeStats, Replayed, SealOptions, SealerInfo, Transaction, VerifyOptions,
};
use kchain_log::Log;

const WALLETS: &[&str] = &["alice", "bob", "carol", "dave", "erin"];
const SEALERS: &[&str] = &["north", "south"];
/// Transfers per wallet (5 wallets: 3,000 transfers).
const ROUNDS: u64 = 600;
/// Data records (shipment scans and lab results).
const RECORDS: u64 = 300;
const START_BALANCE: u64 = 100_000;
/// Blocks won after which sealer `south` crashes (dropped: no snapshot, no cleanup); past
/// the first snapshot (every 5 canonical blocks), so that its restart resumes from one.
const CRASH_AFTER_WINS: u64 = 7;

/// The ledger's keys and genesis: wallets with a starting balance, two sealers.
struct Cast {
    wallets: Vec<WriterKey>,
    sealers: Vec<WriterKey>,
    genesis: Genesis,
}

/// The transactions the client submits: the good ones, then two bad ones.
struct Burst {
    txs: Vec<Transaction>,
    bad: [Transaction; 2],
}

/// Runs the ledger tour on `log` in a fresh ledger named `chain`, keeping node snapshots
/// under `dir`. Prints the story; returns true when every step behaved as expected.
pub fn tour(log: &dyn Log, dir: &Path, chain: &str) -> Result<bool> {
    println!("\nThe ledger: signed transactions in, sealed blocks out, consensus by log order\n");
    let cast = set_up(log, chain)?;
    let burst = sign(&cast);
    let r = race(log, dir, chain, &cast, &burst)?;
    let mut ok = balances(&r, &cast, &burst);
    ok &= verify(log, &cast.genesis.topics.blocks, &r, ok)?;
    Ok(ok)
}

/// L1: wallets, sealers and the genesis block.
fn set_up(log: &dyn Log, chain: &str) -> Result<Cast> {
    let wallets: Vec<WriterKey> = WALLETS.iter().map(|n| demo_key(chain, n)).collect();
    let sealers: Vec<WriterKey> = SEALERS.iter().map(|n| demo_key(chain, n)).collect();
    let mut genesis = Genesis::new(
        chain,
        sealers
            .iter()
            .map(|k| SealerInfo {
                name: k.name().to_owned(),
                key: k.public(),
            })
            .collect(),
        wallets
            .iter()
            .map(|w| (Address::of(w), START_BALANCE))
            .collect(),
    );
    genesis.transaction_partitions = 4;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    init(log, &genesis, now)?;
    println!(
        "L1. Ledger '{chain}' (chain id {}): {} wallets with {START_BALANCE} each, \
         sealers {}, reward {} a block",
        genesis.chain_id(),
        WALLETS.len(),
        SEALERS.join(" and "),
        genesis.reward
    );
    Ok(Cast {
        wallets,
        sealers,
        genesis,
    })
}

/// L2: the burst, signed up front.
fn sign(cast: &Cast) -> Burst {
    let (wallets, chain_id) = (&cast.wallets, cast.genesis.chain_id());
    let started = Instant::now();
    let mut txs: Vec<Transaction> = Vec::new();
    for nonce in 1..=ROUNDS {
        for (w, key) in wallets.iter().enumerate() {
            let to = Address::of(&wallets[(w + 1 + nonce as usize % 4) % wallets.len()]);
            let amount = 1 + (nonce * (w as u64 + 2)) % 13;
            txs.push(Transaction::transfer(key, chain_id, to, amount, nonce));
        }
    }
    for i in 0..RECORDS {
        let key = &wallets[i as usize % wallets.len()];
        let payload = if i % 3 == 0 {
            serde_json::json!({"lab": format!("sample-{i}"), "result": "negative"})
        } else {
            serde_json::json!({"scan": format!("parcel-{i}"), "site": format!("dock-{}", i % 7)})
        };
        txs.push(Transaction::data(key, chain_id, payload));
    }
    // Two bad ones, to be rejected with their reasons while sealing goes on.
    let bad = [
        Transaction::transfer(
            &wallets[0],
            chain_id,
            Address::of(&wallets[1]),
            0,
            ROUNDS + 1,
        ),
        Transaction::transfer(
            &wallets[1],
            chain_id,
            Address::of(&wallets[2]),
            START_BALANCE * 10,
            ROUNDS + 1,
        ),
    ];
    let transfers = ROUNDS * wallets.len() as u64;
    println!(
        "L2. Signed {transfers} transfers and {RECORDS} data records in {:.2} s, plus 2 bad \
         ones (amount 0, an overdraft)",
        started.elapsed().as_secs_f64()
    );
    Burst { txs, bad }
}

/// L3: two sealers race while the client submits; south crashes once and restarts. Returns
/// the chain as replayed afterwards.
fn race(log: &dyn Log, dir: &Path, chain: &str, cast: &Cast, burst: &Burst) -> Result<Replayed> {
    let started = Instant::now();
    let blocks = cast.genesis.topics.blocks.clone();
    let results = run_sealers(log, dir, chain, cast, burst, &blocks);
    let secs = started.elapsed().as_secs_f64();
    let mut stats = Vec::new();
    let mut restarts = Vec::new();
    for (name, r) in SEALERS.iter().zip(results) {
        let (st, restart) = r?;
        if let Some(restart) = restart {
            restarts.push(format!("    {name}: {restart}"));
        }
        stats.push(st);
    }
    // Who sealed what, as the chain tells it (a block appended just before a crash is won
    // by a node that no longer exists to count it).
    let r = replay(log, &blocks, None)?;
    if let Some(f) = &r.finding {
        bail!("the fresh ledger shows tampering: {f:?}");
    }
    let mut per_sealer: BTreeMap<KeyId, (u64, u64)> = BTreeMap::new();
    for (_, b) in canonical_blocks(log, &r.chain, 1, usize::MAX)? {
        let e = per_sealer.entry(b.header.sealer).or_default();
        e.0 += 1;
        e.1 += u64::from(b.header.tx_count);
    }
    println!(
        "L3. Two sealers raced for {secs:.2} s while the client submitted: {}",
        cast.sealers
            .iter()
            .zip(&stats)
            .map(|(k, s)| {
                let (blocks, txs) = per_sealer.get(&k.id()).copied().unwrap_or_default();
                format!(
                    "{} sealed {blocks} blocks ({txs} txs), lost {} races, dropped {} \
                     candidates overtaken",
                    k.name(),
                    s.lost,
                    s.abandoned
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    );
    println!(
        "    a block that loses a race is stale: every node ignores it; a candidate \
         overtaken before it is appended is dropped; either way its transactions are \
         sealed in a later block"
    );
    for line in restarts {
        println!("{line}");
    }
    Ok(r)
}

/// The sealers' threads beside the client's submissions; each sealer's result, then the
/// client's error if it had one.
fn run_sealers(
    log: &dyn Log,
    dir: &Path,
    chain: &str,
    cast: &Cast,
    burst: &Burst,
    blocks: &str,
) -> Vec<Result<(NodeStats, Option<String>)>> {
    let submitted = AtomicBool::new(false);
    std::thread::scope(|s| {
        let handles: Vec<_> = cast
            .sealers
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let submitted = &submitted;
                let opts = NodeOptions {
                    state_dir: Some(dir.join(format!("sealer-{}", key.name()))),
                    snapshot_every: 5,
                    ..NodeOptions::new(blocks)
                };
                let seal = SealOptions {
                    // Both cut at the same size, so that they often race for a height.
                    block_txs: 100,
                    block_ms: 5,
                    // Both sealers share one log handle, which on Kafka allows one appender
                    // per partition: take turns instead of holding it.
                    hold_appenders: Some(false),
                    ..SealOptions::default()
                };
                let crash = (i == 1).then_some(CRASH_AFTER_WINS);
                let name = key.name();
                s.spawn(move || run_sealer(log, opts, chain, name, seal, crash, submitted))
            })
            .collect();
        let outcome = (|| -> Result<()> {
            // A steady stream rather than one lump, so that the sealers race for many
            // heights.
            for chunk in burst.txs.chunks(110) {
                submit(log, &cast.genesis, chunk)?;
                std::thread::sleep(Duration::from_millis(10));
            }
            submit(log, &cast.genesis, &burst.bad)?;
            Ok(())
        })();
        submitted.store(true, Ordering::SeqCst);
        let mut results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("a sealer panicked")))
            .collect();
        if let Err(e) = outcome {
            results.push(Err(e));
        }
        results
    })
}

/// L4: final balances, from the replay; true when money and transactions add up.
fn balances(r: &Replayed, cast: &Cast, burst: &Burst) -> bool {
    let (wallets, sealers) = (&cast.wallets, &cast.sealers);
    let state = r.chain.state();
    let names: BTreeMap<Address, &str> = wallets
        .iter()
        .chain(sealers)
        .map(|k| (Address::of(k), k.name()))
        .collect();
    println!("L4. Final balances at height {}:", r.chain.tip().height);
    println!(
        "    {:<7} {:<42} {:>9} {:>6}",
        "wallet", "address", "balance", "nonce"
    );
    for (addr, name) in wallets
        .iter()
        .chain(sealers)
        .map(|k| (Address::of(k), names[&Address::of(k)]))
    {
        println!(
            "    {name:<7} {addr:<42} {:>9} {:>6}",
            state.balance(&addr),
            state.nonce(&addr)
        );
    }
    let start_total = u128::from(START_BALANCE) * wallets.len() as u128;
    let rewards = u128::from(r.chain.tip().height * cast.genesis.reward);
    let expected_txs = burst.txs.len();
    let sealed = |txs: &[Transaction]| {
        txs.iter()
            .filter(|t| state.sealed_at(t.id()).is_some())
            .count()
    };
    let (sealed_good, sealed_bad) = (sealed(&burst.txs), sealed(&burst.bad));
    println!(
        "    total {} = {start_total} at genesis + {rewards} in block rewards; \
         {sealed_good}/{expected_txs} transactions sealed, each once; \
         {} bad ones rejected",
        state.total(),
        burst.bad.len() - sealed_bad
    );
    state.total() == start_total + rewards
        && sealed_good == expected_txs
        && state.sealed_count() == expected_txs
        && sealed_bad == 0
        && wallets
            .iter()
            .all(|w| state.nonce(&Address::of(w)) == ROUNDS)
}

/// L5: the whole chain verified; `ok` is what the earlier steps concluded.
fn verify(log: &dyn Log, blocks: &str, r: &Replayed, ok: bool) -> Result<bool> {
    let started = Instant::now();
    let report = verify_ledger(log, blocks, &VerifyOptions::default(), &|_| {})?;
    let stale = report
        .ignored
        .iter()
        .filter(|i| matches!(i.reason, IgnoreReason::Stale { .. }))
        .count() as u64;
    println!(
        "L5. ledger verify: {} records, canonical height {}, {} transactions, {} stale blocks \
         ignored, {} findings ({:.2} s)",
        report.records,
        report.height,
        report.transactions,
        stale,
        usize::from(report.finding.is_some()),
        started.elapsed().as_secs_f64()
    );
    let ok = ok
        && report.ok()
        && report.finding.is_none()
        && report.height == r.chain.tip().height
        && report.ignored.len() as u64 == stale;
    println!(
        "    {}",
        if ok {
            "every valid transaction sealed exactly once, one chain, nothing lost in the crash"
        } else {
            "UNEXPECTED: the ledger did not behave as it should (see above)"
        }
    );
    Ok(ok)
}

/// One sealer node until the client is done and the node caught up. With `crash`, the node
/// is dropped once after winning that many blocks and reopened from its snapshot; returns its
/// counters (summed over both lives) and what the restart found.
fn run_sealer(
    log: &dyn Log,
    opts: NodeOptions,
    chain: &str,
    name: &str,
    seal: SealOptions,
    mut crash: Option<u64>,
    submitted: &AtomicBool,
) -> Result<(NodeStats, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut total = NodeStats::default();
    let mut restart: Option<String> = None;
    loop {
        let mut events = Vec::new();
        let mut node = Node::open(
            log,
            opts.clone(),
            Some((demo_key(chain, name), seal.clone())),
            &mut events,
        )?;
        if let Some(r) = &mut restart {
            let from = events
                .iter()
                .find_map(|e| match e {
                    Event::Resumed { height } => Some(format!("its snapshot at height {height}")),
                    _ => None,
                })
                .unwrap_or_else(|| "genesis (no snapshot yet)".to_owned());
            r.push_str(&format!(
                "; restarted from {from}, resumed at the sources of the tip"
            ));
        }
        let mut steps = 0;
        let crashed = loop {
            if Instant::now() > deadline {
                bail!("sealer {name} did not finish in 120 s");
            }
            events.clear();
            if !node.step(&mut events)? {
                if submitted.load(Ordering::SeqCst) && node.caught_up()? {
                    break false;
                }
                node.follow(Duration::from_millis(2), &mut events)?;
            }
            steps += 1;
            if crash.is_some_and(|wins| total.won + node.stats().won >= wins) {
                break true;
            }
        };
        add(&mut total, node.stats());
        if !crashed {
            return Ok((total, restart));
        }
        crash = None;
        restart = Some(format!(
            "crashed after {steps} steps ({} blocks won so far), no clean shutdown",
            total.won
        ));
        drop(node);
    }
}

fn add(total: &mut NodeStats, s: &NodeStats) {
    total.canonical += s.canonical;
    total.ignored += s.ignored;
    total.won += s.won;
    total.lost += s.lost;
    total.abandoned += s.abandoned;
    total.sealed_txs += s.sealed_txs;
}

/// The demo's key for `name` on ledger `chain`: derived, so that each thread can hold its own
/// copy (demo keys guard nothing; real wallets come from `kchain wallet new`).
fn demo_key(chain: &str, name: &str) -> WriterKey {
    use sha2::{Digest, Sha256};
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"kchain demo key\0")
        .chain_update(chain.as_bytes())
        .chain_update([0])
        .chain_update(name.as_bytes())
        .finalize()
        .into();
    WriterKey::from_seed(name, seed)
}
