//! `kchain bench peer -b BROKERS`: kchain's ledger beside the Python "blockchain on Kafka"
//! node of the tutorial kchain grew from (peer/tutorial_node.py, run with kafka-python), on
//! the same broker in the same run: transactions sealed per second by each, and the ratio.
//!
//! ```text
//!  python tutorial_node.py -b B --prefix P --transactions N   (a block per 3 tx, 4-hex-zero PoW)
//!      └─► {"tx_per_s", "blocks", "seconds", "pow_seconds"}
//!  kchain_ledger::bench(log, M signed transfers)               (sealed end to end)
//!      └─► sealed_per_sec
//! ```

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;
use kchain_log::Log;
use serde_json::{json, Value};

/// The peer node, embedded so that the bench runs from any directory.
const TUTORIAL_NODE: &str = include_str!("peer/tutorial_node.py");

#[derive(Args, Debug)]
pub struct PeerArgs {
    /// Transactions for the Python node (a multiple of 3: it makes a block every three).
    #[arg(long, default_value_t = 300)]
    pub transactions: usize,
    /// Signed transfers for kchain's ledger.
    #[arg(long, default_value_t = 20_000)]
    pub kchain_transactions: usize,
    /// The Python with kafka-python [default: $KCHAIN_PYTHON, else python3;
    /// `scripts/py-env.sh` prints one that has it].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Print the result as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Runs both on `log` (Kafka at `brokers`).
pub fn run(log: &dyn Log, brokers: &str, a: &PeerArgs) -> Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let peer = python_node(brokers, a, &format!("kchain-bench-peer-{stamp}"))?;
    let opts = kchain_ledger::BenchOptions {
        chain: format!("kchain-bench-peer-ledger-{stamp}"),
        transactions: a.kchain_transactions.max(1),
        ..kchain_ledger::BenchOptions::default()
    };
    let ours = kchain_ledger::bench(log, &opts)?;
    let peer_rate = peer["tx_per_s"]
        .as_f64()
        .context("the peer printed no tx_per_s")?;
    let ratio = ours.sealed_per_sec / peer_rate.max(1e-9);
    if a.json {
        println!(
            "{}",
            json!({
                "brokers": brokers,
                "tutorial_node": peer,
                "kchain": {
                    "transactions": ours.transactions,
                    "blocks": ours.blocks,
                    "seconds": ours.seconds,
                    "tx_per_s": ours.sealed_per_sec,
                },
                "kchain_over_tutorial_node": ratio,
            })
        );
    } else {
        println!("kchain bench peer: the same broker ({brokers}), one run");
        println!(
            "{:<58} {:>10.0} tx/s  ({} tx in {} blocks, {:.2} s; proof of work {:.2} s)",
            "tutorial's Python node (kafka-python, PoW 4 hex zeros)",
            peer_rate,
            peer["transactions"],
            peer["blocks"],
            peer["seconds"].as_f64().unwrap_or(0.0),
            peer["pow_seconds"].as_f64().unwrap_or(0.0),
        );
        println!(
            "{:<58} {:>10.0} tx/s  ({} signed transfers in {} blocks, {:.2} s)",
            "kchain ledger (signed, validated, sealed end to end)",
            ours.sealed_per_sec,
            ours.transactions,
            ours.blocks,
            ours.seconds
        );
        println!("{:<58} {ratio:>10.1}", "kchain / tutorial node");
    }
    Ok(())
}

/// Runs the tutorial's node and returns its JSON line.
fn python_node(brokers: &str, a: &PeerArgs, prefix: &str) -> Result<Value> {
    let python = (a.python.clone())
        .or_else(|| std::env::var_os("KCHAIN_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let dir = tempfile_dir()?;
    let script = dir.join("tutorial_node.py");
    std::fs::write(&script, TUTORIAL_NODE)?;
    let out = Command::new(&python)
        .arg(&script)
        .args(["-b", brokers, "--prefix", prefix])
        .args(["--transactions", &a.transactions.to_string()])
        .output()
        .with_context(|| format!("running {} (needs kafka-python)", python.display()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        bail!(
            "the tutorial's node failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("the tutorial's node printed {line:?}"))
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kchain-bench-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
