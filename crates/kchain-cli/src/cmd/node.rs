//! `node run`: follow a ledger's chain; with `--seal`, seal blocks.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use clap::{Args, Subcommand};
use kchain_core::{to_hex, DEFAULT_ORIGIN_NAMESPACE};
use kchain_ledger::{
    state_dir, CheckpointOptions, Event, LedgerError, Node, NodeOptions, SealEvent, SealOptions,
};
use kchain_topic::files::read_key_file;

use crate::cmd::checkpoint::push_options;
use crate::cmd::ledger_args::{read_genesis, LedgerOpts};
use crate::global::{backend_identity, open_log, signer_store, Global};
use crate::outcome::Outcome;

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Run a ledger node: follow the blocks topic, and with --seal seal blocks.
    Run(NodeArgs),
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    #[command(flatten)]
    pub ledger: LedgerOpts,
    /// Seal blocks, signed with the sealer's key file (--key-file FILE).
    #[arg(long)]
    pub seal: bool,
    /// Old name of --key-file here (still accepted).
    #[arg(long, hide = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Cut a block at this many transactions.
    #[arg(long, default_value_t = 1000)]
    pub block_txs: usize,
    /// Or when the oldest waiting transaction has waited this many milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub block_ms: u64,
    /// Stop once caught up (every block read; when sealing, every transaction decided).
    #[arg(long)]
    pub until_idle: bool,
    /// Where snapshots go [default: <data-dir>/ledger/<blocks topic>].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Canonical blocks between snapshots.
    #[arg(long, default_value_t = 100)]
    pub snapshot_every: u64,
    /// The genesis file the ledger must have been created from.
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// When sealing, publish a signed checkpoint once this many canonical blocks are
    /// uncovered (0: not by count); and always when the node stops.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: u64,
    /// Or once this many seconds passed since the last and the chain grew (0: not by time).
    #[arg(long, default_value_t = 10)]
    pub checkpoint_secs: u64,
    /// Publish no checkpoints at all.
    #[arg(long)]
    pub no_checkpoints: bool,
    /// Origin namespace of the checkpoints.
    #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
    pub namespace: String,
    /// When sealing, do not push checkpoints to the trust file's witnesses that have a url.
    #[arg(long)]
    pub no_push: bool,
}

pub fn node(g: &Global, cmd: NodeCmd) -> Result<Outcome> {
    let NodeCmd::Run(mut a) = cmd;
    if a.seal {
        a.key = Some(g.key_file_for(a.key.as_deref(), "node run --seal needs the sealer's key")?);
    }
    let log = open_log(g, false)?;
    let blocks = a.ledger.blocks();
    let opts = node_options(g, &a, &blocks)?;
    let seal = match (&a.key, a.seal) {
        (Some(path), true) => Some((
            read_key_file(path)?,
            SealOptions {
                block_txs: a.block_txs.max(1),
                block_ms: a.block_ms,
                ..SealOptions::default()
            },
        )),
        _ => None,
    };
    let quiet = g.quiet;
    let print = |e: &Event| {
        if !quiet {
            if let Some(line) = describe(e) {
                println!("{line}");
            }
        }
    };
    let mut events = Vec::new();
    let opened = Node::open(log.as_ref(), opts, seal, &mut events);
    events.iter().for_each(print);
    let mut node = match opened {
        Ok(n) => n,
        Err(e) => return tampered(&blocks, e, "will not run on it", "will not seal on it"),
    };
    let stop = AtomicBool::new(false);
    if let Err(e) = node.run(a.until_idle, &stop, &mut |e| print(e)) {
        return tampered(&blocks, e, "stopped", "stopped");
    }
    let tip = node.chain().tip();
    let s = node.stats();
    println!(
        "node caught up at height {} (tip {}); {} transactions sealed in the chain; this node \
         won {} block(s), lost {} race(s)",
        tip.height,
        &to_hex(&tip.hash)[..16],
        node.chain().state().sealed_count(),
        s.won,
        s.lost
    );
    Ok(Outcome::Clean)
}

/// The node's options from the command line: snapshots, checkpoints, the expected genesis.
fn node_options(g: &Global, a: &NodeArgs, blocks: &str) -> Result<NodeOptions> {
    let mut opts = NodeOptions::new(blocks);
    opts.state_dir = Some(
        a.state_dir
            .clone()
            .unwrap_or_else(|| state_dir(&g.data_dir, blocks)),
    );
    opts.snapshot_every = a.snapshot_every;
    // Only a sealer signs checkpoints, so only a sealer pushes them.
    let push = match a.seal && !a.no_checkpoints {
        true => push_options(g, a.no_push)?,
        false => None,
    };
    opts.checkpoints = (!a.no_checkpoints).then(|| CheckpointOptions {
        every_blocks: a.checkpoint_every,
        every: std::time::Duration::from_secs(a.checkpoint_secs),
        namespace: a.namespace.clone(),
        store: a.key.as_deref().map(signer_store),
        backend: backend_identity(g),
        push,
    });
    if let Some(path) = &a.genesis {
        let (gen, ts) = read_genesis(path)?;
        opts.expected_genesis = Some(gen.block(ts).hash());
    }
    Ok(opts)
}

/// A node error: tampering (a finding, exit 3, said on standard error with what the node
/// does about it: `on_tamper` for a changed chain, `on_refused` for a refused checkpoint),
/// or any other error.
fn tampered(blocks: &str, e: LedgerError, on_tamper: &str, on_refused: &str) -> Result<Outcome> {
    match e {
        LedgerError::Tampered(f) => {
            eprintln!("kchain: TAMPERING FOUND in {blocks}: {f}\nkchain: the node {on_tamper}");
            Ok(Outcome::Findings)
        }
        e @ LedgerError::CheckpointRefused { .. } => {
            eprintln!("kchain: TAMPERING FOUND in {blocks}: {e}\nkchain: the node {on_refused}");
            Ok(Outcome::Findings)
        }
        e => Err(e.into()),
    }
}

fn describe(e: &Event) -> Option<String> {
    Some(match e {
        Event::Resumed { height } => format!("resumed from the snapshot at height {height}"),
        Event::SnapshotDiscarded(why) => format!("snapshot discarded: {why}"),
        Event::Canonical {
            offset,
            height,
            hash,
            txs,
            sealer,
        } => format!(
            "block {height} canonical at offset {offset}: {txs} txs, sealer {sealer}, {}",
            &to_hex(hash)[..16]
        ),
        Event::Ignored {
            offset,
            height,
            reason,
        } => format!(
            "ignored offset {offset} (height {}): {reason}",
            height.map_or("-".into(), |h| h.to_string())
        ),
        Event::Checkpoint { size, offset, .. } => {
            format!("signed checkpoint of {size} blocks, published at offset {offset}")
        }
        Event::Seal(SealEvent::Appended { height, offset }) => {
            format!("sealed block {height}, appended at offset {offset}")
        }
        Event::Seal(SealEvent::Confirmed {
            height, won: false, ..
        }) => format!("lost the race at height {height}; sealing what is left again"),
        Event::Seal(SealEvent::Abandoned { height }) => {
            format!("another block took height {height} first; sealing again")
        }
        _ => return None,
    })
}
