//! `tx`: signed transactions submitted to a ledger's transactions topic.

use std::io::{BufRead, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use kchain_core::to_hex;
use kchain_ledger::{
    next_nonce, open_chain, replay, state_dir, submit, submit_raw, Address, Genesis, Transaction,
};
use kchain_log::Log;
use kchain_topic::files::read_key_file;
use serde_json::json;

use crate::cmd::ledger_args::{parse_address, LedgerOpts};
use crate::global::{open_log, Global};
use crate::outcome::Outcome;

#[derive(Subcommand, Debug)]
pub enum TxCmd {
    /// Submit a transfer signed with the sender's wallet key (--key-file FILE).
    Transfer {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// Old name of --key-file (the sender's wallet key) here (still accepted).
        #[arg(long, hide = true, value_name = "FILE")]
        from_key: Option<PathBuf>,
        /// Recipient address (40 hex digits), or the recipient's wallet key file.
        #[arg(long, value_name = "ADDRESS")]
        to: String,
        /// How much to transfer (a positive whole number).
        #[arg(long)]
        amount: u64,
        /// The transfer's nonce [default: one more than the sender's last, sealed or pending].
        #[arg(long)]
        nonce: Option<u64>,
        /// Print the submitted transaction as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Submit a data record (an opaque JSON payload) signed with the submitter's wallet key
    /// (--key-file FILE).
    Data {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// Old name of --key-file (the submitter's wallet key) here (still accepted).
        #[arg(long, hide = true, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The payload, as JSON text.
        #[arg(long, conflicts_with = "payload_file")]
        payload: Option<String>,
        /// Read the payload from this file [default: standard input, without --payload].
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// Print the submitted transaction as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Append raw lines to the transactions topic, as any producer could (for trying what
    /// nodes make of bad input).
    Raw {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// The partition of the transactions topic to append to.
        #[arg(long, short, default_value_t = 0)]
        partition: u32,
        /// Read lines from this file instead of standard input.
        #[arg(long, short_alias = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
    },
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
        } => transfer(g, &ledger, from_key, &to, amount, nonce, json),
        TxCmd::Data {
            ledger,
            key,
            payload,
            payload_file,
            json,
        } => data(g, &ledger, key, payload, payload_file, json),
        TxCmd::Raw {
            ledger,
            partition,
            file,
        } => raw(g, &ledger, partition, file),
    }
}

/// `tx transfer`: the nonce is the sender's next unless given.
fn transfer(
    g: &Global,
    ledger: &LedgerOpts,
    from_key: Option<PathBuf>,
    to: &str,
    amount: u64,
    nonce: Option<u64>,
    json: bool,
) -> Result<Outcome> {
    let from_key = g.key_file_for(from_key.as_deref(), "the sender's wallet key")?;
    let key = read_key_file(&from_key)?;
    let to = parse_address(to)?;
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

/// `tx data`: the payload from --payload, --payload-file or standard input.
fn data(
    g: &Global,
    ledger: &LedgerOpts,
    key: Option<PathBuf>,
    payload: Option<String>,
    payload_file: Option<PathBuf>,
    json: bool,
) -> Result<Outcome> {
    let key = g.key_file_for(key.as_deref(), "the submitter's wallet key")?;
    let key = read_key_file(&key)?;
    let text = match (payload, payload_file) {
        (Some(p), _) => p,
        (None, Some(f)) => {
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?
        }
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

/// `tx raw`: lines appended as they are, as any producer could.
fn raw(g: &Global, ledger: &LedgerOpts, partition: u32, file: Option<PathBuf>) -> Result<Outcome> {
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

fn send(log: &dyn Log, genesis: &Genesis, t: Transaction, json: bool) -> Result<Outcome> {
    let (partition, offset) = submit(log, genesis, std::slice::from_ref(&t))?[0];
    let id = to_hex(t.id());
    if json {
        println!("{}", submitted_json(&t, partition, offset));
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

/// A transaction appended at `partition`/`offset` of the transactions topic, as `tx ... --json`
/// prints it (and `kchain serve` answers a submission).
pub(crate) fn submitted_json(t: &Transaction, partition: u32, offset: u64) -> serde_json::Value {
    json!({"id": to_hex(t.id()), "partition": partition, "offset": offset, "tx": t.to_json_value()})
}
