//! What a sealer's work per transaction costs, piece by piece, on one thread: parsing a
//! transfer's JSON, writing it, the items root, and Ed25519 batch verification at several
//! batch sizes (ed25519-dalek's `verify_batch` and kchain's cofactored [`Verifier`]).
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p kchain-ledger --example ledger_costs [N]`
//! (N transfers, default 50,000). Figures are nanoseconds per transaction: the best of 3,
//! and for verification the best of 5 rounds that take every size in turn.

use std::time::Instant;

use kchain_core::{ChainId, WriterKey};
use kchain_ledger::{items_root, Address, SealedTx, Transaction, Verifier};

fn best_of_3(n: usize, mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000);
    let chain = ChainId([3; 16]);
    let senders: Vec<WriterKey> = (0..1000u64)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            WriterKey::from_seed("sender", seed)
        })
        .collect();
    let txs: Vec<Transaction> = (0..n)
        .map(|i| {
            let k = &senders[i % senders.len()];
            Transaction::transfer(k, chain, Address([0xee; 20]), 1, (i / 1000) as u64 + 1)
        })
        .collect();
    let jsons: Vec<Vec<u8>> = txs.iter().map(Transaction::to_json).collect();

    // Another spelling (a space at the end) takes serde_json's general path.
    let spaced: Vec<Vec<u8>> = jsons.iter().map(|j| [&j[..], b" "].concat()).collect();
    let parse_all = |docs: &[Vec<u8>]| {
        for j in docs {
            std::hint::black_box(Transaction::from_json(j).unwrap());
        }
    };
    let parse = best_of_3(n, || parse_all(&jsons));
    let parse_general = best_of_3(n, || parse_all(&spaced));
    let write = best_of_3(n, || {
        let mut out = Vec::with_capacity(512);
        for t in &txs {
            out.clear();
            t.write_json(&mut out);
            std::hint::black_box(&out);
        }
    });
    let sealed: Vec<SealedTx> = txs
        .iter()
        .enumerate()
        .map(|(i, t)| SealedTx {
            tx: t.clone(),
            partition: 0,
            offset: i as u64,
        })
        .collect();
    let root = best_of_3(n, || {
        for block in sealed.chunks(2000) {
            std::hint::black_box(items_root(block));
        }
    });
    println!(
        "per transaction, ns: parse {parse:.0} (another spelling {parse_general:.0}), write JSON {write:.0}, items root {root:.0}"
    );

    let messages: Vec<[u8; 48]> = txs.iter().map(Transaction::signed_message).collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = txs
        .iter()
        .map(|t| ed25519_dalek::VerifyingKey::from_bytes(t.public_key()).unwrap())
        .collect();
    let sigs: Vec<ed25519_dalek::Signature> = txs
        .iter()
        .map(|t| ed25519_dalek::Signature::from_bytes(t.signature()))
        .collect();
    // Rounds over the sizes, the best of each size kept: the machine's load moves between
    // rounds, not within one.
    let sizes = [64, 128, 256, 512, 1024];
    let mut best = [f64::INFINITY; 5];
    for _ in 0..5 {
        for (b, &batch) in best.iter_mut().zip(&sizes) {
            let t = Instant::now();
            for i in (0..n).step_by(batch) {
                let j = (i + batch).min(n);
                let m: Vec<&[u8]> = messages[i..j].iter().map(|m| &m[..]).collect();
                ed25519_dalek::verify_batch(&m, &sigs[i..j], &keys[i..j]).unwrap();
            }
            *b = b.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    for (b, batch) in best.iter().zip(sizes) {
        println!("dalek verify_batch, batches of {batch}: {b:.0} ns a signature");
    }
    // kchain's Verifier, handed 128 or 1,024 signatures at a time (one thread: batches of
    // 128 or 512), interleaved the same way; a fresh verifier each time, so that nothing is
    // remembered from the round before (its keys are decoded again, alike in both).
    let refs: Vec<&Transaction> = txs.iter().collect();
    let mut ours = [f64::INFINITY; 2];
    for _ in 0..5 {
        for (b, chunk) in ours.iter_mut().zip([128, 1024]) {
            let v = Verifier::new();
            let t = Instant::now();
            for c in refs.chunks(chunk) {
                assert!(v.check(c).iter().all(Result::is_ok));
            }
            *b = b.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    println!(
        "kchain Verifier::check, 128 at a time: {:.0} ns a signature; 1,024 at a time: {:.0}",
        ours[0], ours[1]
    );
}
