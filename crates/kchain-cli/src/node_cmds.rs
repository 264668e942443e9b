//! The ledger's running parts: `tx` (submit signed transactions) and `node` (follow the
//! chain; with `--seal`, seal blocks). The logic lives in kchain-ledger; this module parses
//! arguments and prints.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kchain_core::{to_hex, DEFAULT_ORIGIN_NAMESPACE};
use kchain_ledger::{
    next_nonce, open_chain, replay, state_dir, submit, submit_raw, Address, CheckpointOptions,
    Event, Genesis, LedgerError, Node, NodeOptions, SealEvent, SealOptions, Transaction,
};
use kchain_log::Log;
use kchain_topic::read_key_file;
use serde_json::json;

use crate::args::Global;
use crate::ledger_cmds::{parse_address, read_genesis, LedgerOpts};
use crate::{open_log, Outcome};

#[derive(Subcommand, Debug)]
pub enum TxCmd {
    /// Submit a signed transfer.
    Transfer {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// The sender's wallet key file.
        #[arg(long)]
        from_key: PathBuf,
        /// Recipient address (40 hex digits).
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount: u64,
        /// [default: one more than the sender's last, sealed or pending]
        #[arg(long)]
        nonce: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Submit a signed data record (an opaque JSON payload).
    Data {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// The submitter's wallet key file.
        #[arg(long)]
        key: PathBuf,
        /// The payload, as JSON text.
        #[arg(long, conflicts_with = "payload_file")]
        payload: Option<String>,
        /// Read the payload from this file.
        #[arg(long)]
        payload_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Append raw lines to the transactions topic, as any producer could (for trying what
    /// nodes make of bad input).
    Raw {
        #[command(flatten)]
        ledger: LedgerOpts,
        #[arg(long, default_value_t = 0)]
        partition: u32,
        /// Read lines from this file instead of standard input.
        #[arg(long, short)]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Run a ledger node: follow the blocks topic, and with --seal seal blocks.
    Run(NodeArgs),
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    #[command(flatten)]
    pub ledger: LedgerOpts,
    /// Seal blocks with the sealer key given by --key.
    #[arg(long, requires = "key")]
    pub seal: bool,
    /// The sealer's key file.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Cut a block at this many transactions.
    #[arg(long, default_value_t = 1000)]
    pub block_txs: usize,
    /// Or when the oldest waiting transaction has waited this long.
    #[arg(long, default_value_t = 200)]
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
    /// Print only the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn tx(g: &Global, cmd: TxCmd) -> Result<Outcome> {
    match cmd {
        TxCmd::Transfer {
            ledger,
            from_key,
            to,
            amount,
            nonce,
            json,
        } => {
            let key = read_key_file(&from_key)?;
            let to = parse_address(&to)?;
            let log = open_log(g, false)?;
            let blocks = ledger.blocks();
            let nonce = match nonce {
                Some(n) => n,
                None => {
                    let r = replay(
                        log.as_ref(),
                        &blocks,
                        Some(&state_dir(&g.data_dir, &blocks)),
                    )?;
                    next_nonce(log.as_ref(), &r.chain, &Address::of(&key))?
                }
            };
            let chain = open_chain(log.as_ref(), &blocks, None)?;
            let t = Transaction::transfer(&key, chain.chain_id(), to, amount, nonce);
            send(log.as_ref(), chain.genesis(), t, json)
        }
        TxCmd::Data {
            ledger,
            key,
            payload,
            payload_file,
            json,
        } => {
            let key = read_key_file(&key)?;
            let text = match (payload, payload_file) {
                (Some(p), _) => p,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
                (None, None) => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s
                }
            };
            let payload: serde_json::Value =
                serde_json::from_str(&text).context("the payload is not JSON")?;
            let log = open_log(g, false)?;
            let chain = open_chain(log.as_ref(), &ledger.blocks(), None)?;
            let t = Transaction::data(&key, chain.chain_id(), payload);
            send(log.as_ref(), chain.genesis(), t, json)
        }
        TxCmd::Raw {
            ledger,
            partition,
            file,
        } => {
            let log = open_log(g, false)?;
            let chain = open_chain(log.as_ref(), &ledger.blocks(), None)?;
            let input: Box<dyn BufRead> = match &file {
                Some(f) => Box::new(std::io::BufReader::new(
                    std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?,
                )),
                None => Box::new(std::io::stdin().lock()),
            };
            let lines: Vec<Vec<u8>> = input
                .split(b'\n')
                .collect::<std::io::Result<Vec<_>>>()?
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect();
            let offsets = submit_raw(log.as_ref(), chain.genesis(), partition, &lines)?;
            println!(
                "appended {} record(s) to {}/{partition}",
                offsets.len(),
                chain.genesis().topics.transactions
            );
            Ok(Outcome::Clean)
        }
    }
}

fn send(log: &dyn Log, genesis: &Genesis, t: Transaction, json: bool) -> Result<Outcome> {
    let (partition, offset) = submit(log, genesis, std::slice::from_ref(&t))?[0];
    let id = to_hex(t.id());
    if json {
        println!(
            "{}",
            json!({"id": id, "partition": partition, "offset": offset, "tx": t.to_json_value()})
        );
    } else {
        let what = match t.body() {
            kchain_ledger::TxBody::Transfer { nonce, .. } => format!("transfer (nonce {nonce})"),
            kchain_ledger::TxBody::Data { .. } => "data record".to_owned(),
        };
        println!(
            "submitted {what} {id} to {}/{partition} at offset {offset}",
            genesis.topics.transactions
        );
    }
    Ok(Outcome::Clean)
}

pub fn node(g: &Global, cmd: NodeCmd) -> Result<Outcome> {
    let NodeCmd::Run(a) = cmd;
    let log = open_log(g, false)?;
    let blocks = a.ledger.blocks();
    let mut opts = NodeOptions::new(&blocks);
    opts.state_dir = Some(
        a.state_dir
            .clone()
            .unwrap_or_else(|| state_dir(&g.data_dir, &blocks)),
    );
    opts.snapshot_every = a.snapshot_every;
    opts.checkpoints = (!a.no_checkpoints).then(|| CheckpointOptions {
        every_blocks: a.checkpoint_every,
        every: std::time::Duration::from_secs(a.checkpoint_secs),
        namespace: a.namespace.clone(),
        store: a.key.as_deref().map(crate::checkpoint_cmds::signer_store),
        backend: crate::checkpoint_cmds::backend_identity(g),
    });
    if let Some(path) = &a.genesis {
        let (gen, ts) = read_genesis(path)?;
        opts.expected_genesis = Some(gen.block(ts).hash());
    }
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
    let quiet = a.quiet;
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
        Err(LedgerError::Tampered(f)) => {
            eprintln!(
                "kchain: TAMPERING FOUND in {blocks}: {f}\nkchain: the node will not run on it"
            );
            return Ok(Outcome::Findings);
        }
        Err(e @ LedgerError::CheckpointRefused { .. }) => {
            eprintln!(
                "kchain: TAMPERING FOUND in {blocks}: {e}\nkchain: the node will not seal on it"
            );
            return Ok(Outcome::Findings);
        }
        Err(e) => return Err(e.into()),
    };
    let stop = AtomicBool::new(false);
    match node.run(a.until_idle, &stop, &mut |e| print(e)) {
        Ok(()) => {}
        Err(LedgerError::Tampered(f)) => {
            eprintln!("kchain: TAMPERING FOUND in {blocks}: {f}\nkchain: the node stopped");
            return Ok(Outcome::Findings);
        }
        Err(e @ LedgerError::CheckpointRefused { .. }) => {
            eprintln!("kchain: TAMPERING FOUND in {blocks}: {e}\nkchain: the node stopped");
            return Ok(Outcome::Findings);
        }
        Err(e) => return Err(e.into()),
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
