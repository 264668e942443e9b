//! The ledger benchmark on the embedded backend (ignored by default; run with
//! `cargo test --release -p kchain-ledger --test bench -- --ignored --nocapture`), and a small
//! run that checks it works.

mod support;

use kchain_ledger::{bench, BenchOptions};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy};

fn run(transactions: usize, fsync: FsyncPolicy) -> kchain_ledger::BenchReport {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::create(
        dir.path(),
        EmbeddedOptions {
            fsync,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap();
    let report = bench(
        &log,
        &BenchOptions {
            transactions,
            ..BenchOptions::default()
        },
    )
    .unwrap();
    eprintln!(
        "{} transfers in {} blocks, {:.2} s: {:.0} sealed/s; Ed25519 batch verify {:.0}/s \
         (dalek), {:.0}/s (cofactored); ratio {:.2}; signing {:.0}/s",
        report.transactions,
        report.blocks,
        report.seconds,
        report.sealed_per_sec,
        report.dalek_batch_verify_per_sec,
        report.batch_verify_per_sec,
        report.ratio(),
        report.sign_per_sec
    );
    eprintln!(
        "  CPU: sealing {:.2} s (node thread {:.2} s, submitter {:.2} s), verifying {} \
         signatures {:.2} s; ratio per CPU-second {:.2}; {:.0} signatures a batch",
        report.sealing_cpu_seconds,
        report.node_cpu_seconds,
        report.submit_cpu_seconds,
        report.verified,
        report.batch_verify_cpu_seconds,
        report.cpu_ratio(),
        report.mean_batch
    );
    for (stage, secs) in &report.stages {
        eprintln!("  {:<8} {secs:.3} s", stage.name());
    }
    report
}

#[test]
fn a_small_benchmark_seals_everything() {
    let r = run(3000, FsyncPolicy::Never);
    assert_eq!(r.transactions, 3000);
    assert!(r.blocks >= 2);
}

#[test]
#[ignore]
fn benchmark() {
    let n = std::env::var("KCHAIN_BENCH_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    run(n, FsyncPolicy::EveryBatch);
}
