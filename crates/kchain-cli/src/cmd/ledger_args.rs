//! What the ledger commands share: which ledger (`--chain`, `--blocks-topic`), its genesis
//! file, addresses, and the replayed chain.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use kchain_ledger::{replay, state_dir, Address, Genesis};
use kchain_log::Log;

use crate::global::{open_log, Global};
use crate::outcome::Outcome;

/// Which ledger a command works on.
#[derive(Args, Debug, Clone)]
pub struct LedgerOpts {
    /// Name of the ledger (its topics are <chain>.transactions, .blocks and .rejected).
    #[arg(long, env = "KCHAIN_LEDGER", default_value = "ledger")]
    pub chain: String,
    /// The ledger's blocks topic, when its genesis names its topics otherwise
    /// [default: <chain>.blocks].
    #[arg(long)]
    pub blocks_topic: Option<String>,
}

impl LedgerOpts {
    pub(crate) fn blocks(&self) -> String {
        self.blocks_topic
            .clone()
            .unwrap_or_else(|| format!("{}.blocks", self.chain))
    }
}

pub(crate) fn read_genesis(path: &Path) -> Result<(Genesis, i64)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading genesis file {}", path.display()))?;
    Genesis::from_file_text(&text).with_context(|| format!("genesis file {}", path.display()))
}

/// An address: 40 hex digits, or a wallet key file (whose address it is), so that scripts
/// can pass the files `wallet new` wrote.
pub(crate) fn parse_address(s: &str) -> Result<Address> {
    if let Some(a) = Address::from_hex(s) {
        return Ok(a);
    }
    let path = Path::new(s);
    if path.is_file() {
        let key = kchain_topic::files::read_key_file(path)
            .with_context(|| format!("'{s}' is neither an address nor a wallet key file"))?;
        return Ok(Address::of(&key));
    }
    anyhow::bail!("'{s}' is not an address (40 hex digits) nor a wallet key file")
}

/// Opens the log and replays the ledger (from the local snapshot when it matches).
pub(crate) fn replayed(
    g: &Global,
    l: &LedgerOpts,
) -> Result<(Box<dyn Log>, kchain_ledger::Replayed)> {
    let log = open_log(g, false)?;
    let blocks = l.blocks();
    let dir = state_dir(&g.data_dir, &blocks);
    let r = replay(log.as_ref(), &blocks, Some(&dir))?;
    if let Some(f) = &r.finding {
        eprintln!(
            "kchain: TAMPERING FOUND in {blocks}: {f}\nkchain: the answer below is as of height {}, \
             before it; run `kchain ledger verify`",
            r.chain.tip().height
        );
    }
    Ok((log, r))
}

pub(crate) fn outcome(r: &kchain_ledger::Replayed) -> Outcome {
    if r.finding.is_some() {
        Outcome::Findings
    } else {
        Outcome::Clean
    }
}
