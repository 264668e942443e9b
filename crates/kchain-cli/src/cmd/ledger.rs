//! `ledger`: create a ledger, list and verify its blocks. Queries of one address or
//! transaction are in `ledger_query.rs`. The logic lives in kchain-ledger; this module
//! parses arguments and prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kchain_core::{from_hex, to_hex, CheckpointTrust, PublicKey, DEFAULT_ORIGIN_NAMESPACE};
use kchain_ledger::{
    canonical_blocks, init, state_dir, verify_ledger, Genesis, SealerInfo, StoredBlock,
    VerifyOptions,
};
use kchain_topic::files::read_key_file;
use serde_json::json;

use crate::cmd::anchors::read_checkpoint_trust;
use crate::cmd::ledger_args::{outcome, parse_address, read_genesis, replayed, LedgerOpts};
use crate::cmd::ledger_query::{balance, rejected, tx_info, verify_proof, write_tx_proof};
use crate::global::{open_log, Global};
use crate::outcome::Outcome;
use crate::report::{block_row, blocks_header, sealer_name};

#[derive(Subcommand, Debug)]
pub enum LedgerCmd {
    /// Create a ledger: its topics (unlimited retention) and its genesis block.
    Init {
        /// Genesis file (TOML or JSON; see docs/ledger.md).
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Write a genesis file from sealer keys and initial balances.
    Genesis(GenesisArgs),
    /// List the canonical blocks.
    Blocks {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// First height.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// At most this many blocks.
        #[arg(long, short = 'c', default_value_t = 20)]
        count: usize,
        /// Every record of the blocks topic, with the verdict on it.
        #[arg(long)]
        all: bool,
        /// One JSON object per block.
        #[arg(long)]
        json: bool,
    },
    /// List the ledger's rejected transactions (its `.rejected` topic): the reason, the
    /// transaction id and where it was submitted. `void` marks a rejection by a sealer whose
    /// block lost a race (it does not count).
    Rejected {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// One JSON object per rejection.
        #[arg(long)]
        json: bool,
    },
    /// Verify the ledger from genesis: exit 0 intact, 3 findings (tampering), 1 errors.
    /// Also holds the chain against the sealers' signed checkpoints: with --trust FILE, its
    /// [[witness]] keys and [policy] (k cosignatures, namespace) say which count; the sealer
    /// keys come from the genesis.
    Verify {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// The genesis file the ledger must have been created from.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// A block that must be canonical (repeatable).
        #[arg(long = "pin", value_name = "HEIGHT:HASH")]
        pins: Vec<String>,
        /// Do not use the local node snapshot as an anchor.
        #[arg(long)]
        no_snapshot: bool,
        /// Print the report as one JSON line.
        #[arg(long)]
        json: bool,
        /// Verify the ledger's archive at this URL (`kchain archive --ledger`) instead of the
        /// log: every block hash, tile and the root recomputed, the checkpoint held against
        /// the sealers of the genesis (--genesis, or the trust file's [[ledger]]), the blocks
        /// replayed by the ledger's rules.
        #[arg(long, value_name = "URL")]
        archive: Option<String>,
        #[command(flatten)]
        anchors: crate::cmd::anchors::AnchorArgs,
    },
    /// Print an address's balance and nonce.
    Balance {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// The address (40 hex digits), or a wallet key file.
        address: String,
        /// Print the balance as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Tell where a transaction was sealed, why it was rejected, or that it is pending.
    Tx {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// Transaction id (64 hex digits).
        id: String,
        /// Print the status as one JSON line.
        #[arg(long)]
        json: bool,
        /// Write a proof that the transaction is in its block and the block in the newest
        /// signed checkpoint (`kchain ledger verify-proof` checks it offline).
        #[arg(long, value_name = "FILE")]
        proof: Option<PathBuf>,
        /// Origin namespace of the checkpoints.
        #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
        namespace: String,
    },
    /// Check a transaction proof offline (no log, no broker): exit 0 it holds, 3 it does not,
    /// 1 unusable input. The ledger: --genesis FILE, else the trust file's [[ledger]] entry
    /// for the proof's blocks topic (chain id or genesis hash, and sealers; never [[writer]]
    /// keys); witnesses and threshold: the trust file's [[witness]] and [policy].
    VerifyProof {
        /// The proof file (`kchain ledger tx ID --proof FILE`).
        file: PathBuf,
        /// The ledger's genesis file: its sealers are the keys to trust.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Print the verdict as one JSON line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct GenesisArgs {
    /// Name of the ledger.
    #[arg(long)]
    pub chain: String,
    /// An allowed sealer: a key file, or NAME=PUBLIC_KEY (repeatable).
    #[arg(long = "sealer", required = true)]
    pub sealers: Vec<String>,
    /// An initial balance: ADDRESS=AMOUNT, the address as 40 hex digits or a wallet key file
    /// (repeatable).
    #[arg(long = "fund", value_name = "ADDRESS=AMOUNT")]
    pub funds: Vec<String>,
    /// Partitions of the ledger's transactions topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// What the sealer of a block is paid for it.
    #[arg(long, default_value_t = 1)]
    pub reward: u64,
    /// Proof of work: leading zero bits of every block hash (0 disables it).
    #[arg(long, default_value_t = 0)]
    pub difficulty: u8,
    /// Write the genesis file here instead of standard output.
    #[arg(long, alias = "out", short_alias = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn ledger(g: &Global, cmd: LedgerCmd) -> Result<Outcome> {
    match cmd {
        LedgerCmd::Init { genesis } => ledger_init(g, &genesis),
        LedgerCmd::Genesis(a) => genesis_file(&a),
        LedgerCmd::Blocks {
            ledger,
            from,
            count,
            all,
            json,
        } => blocks(g, &ledger, from, count, all, json),
        LedgerCmd::Rejected { ledger, json } => rejected(g, &ledger, json),
        LedgerCmd::Verify {
            ledger,
            genesis,
            pins,
            no_snapshot,
            json,
            archive,
            anchors,
        } => {
            if let Some(url) = &archive {
                return crate::cmd::archive::verify_ledger(
                    g,
                    &ledger.blocks(),
                    genesis.as_deref(),
                    url,
                    json,
                );
            }
            let anchors = crate::cmd::anchors::ledger_anchors(g, &anchors)?;
            verify(
                g,
                &ledger,
                genesis.as_deref(),
                &pins,
                no_snapshot,
                json,
                anchors,
            )
        }
        LedgerCmd::Balance {
            ledger,
            address,
            json,
        } => balance(g, &ledger, &address, json),
        LedgerCmd::Tx {
            ledger,
            id,
            json,
            proof,
            namespace,
        } => {
            let outcome = tx_info(g, &ledger, &id, json)?;
            match proof {
                Some(path) => write_tx_proof(g, &ledger, &id, &path, &namespace),
                None => Ok(outcome),
            }
        }
        LedgerCmd::VerifyProof {
            file,
            genesis,
            json,
        } => verify_proof(g, &file, genesis.as_deref(), json),
    }
}

fn ledger_init(g: &Global, path: &Path) -> Result<Outcome> {
    let (genesis, timestamp) = read_genesis(path)?;
    let log = open_log(g, true)?;
    let done = init(log.as_ref(), &genesis, timestamp)?;
    let t = &genesis.topics;
    if done.already {
        println!(
            "ledger '{}' already exists with this genesis",
            genesis.chain
        );
    } else {
        println!(
            "ledger '{}': topics {} ({} partitions), {}, {}",
            genesis.chain, t.transactions, genesis.transaction_partitions, t.blocks, t.rejected
        );
    }
    println!("genesis    {}", to_hex(&done.genesis_hash));
    println!("chain id   {}", genesis.chain_id());
    println!(
        "sealers    {}",
        genesis
            .sealers
            .iter()
            .map(|s| format!("{} ({})", s.name, s.key.id()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Outcome::Clean)
}

fn genesis_file(a: &GenesisArgs) -> Result<Outcome> {
    let mut sealers = Vec::new();
    for (i, s) in a.sealers.iter().enumerate() {
        let sealer = match s.split_once('=') {
            Some((name, key)) if !Path::new(s).exists() => SealerInfo {
                name: name.to_owned(),
                key: PublicKey::from_hex(key)?,
            },
            _ => {
                let key = read_key_file(Path::new(s))?;
                let name = if key.name().is_empty() {
                    format!("sealer{i}")
                } else {
                    key.name().to_owned()
                };
                SealerInfo {
                    name,
                    key: key.public(),
                }
            }
        };
        sealers.push(sealer);
    }
    let mut balances = BTreeMap::new();
    for f in &a.funds {
        let (addr, amount) = f
            .rsplit_once('=')
            .with_context(|| format!("--fund {f}: expected ADDRESS=AMOUNT"))?;
        let addr = parse_address(addr).with_context(|| format!("--fund {f}: bad address"))?;
        let amount: u64 = amount
            .parse()
            .with_context(|| format!("--fund {f}: bad amount"))?;
        balances.insert(addr, amount);
    }
    let mut genesis = Genesis::new(&a.chain, sealers, balances);
    genesis.transaction_partitions = a.partitions;
    genesis.reward = a.reward;
    genesis.difficulty = a.difficulty;
    genesis.check().map_err(anyhow::Error::msg)?;
    let text = genesis.to_toml(0);
    match &a.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            println!(
                "wrote genesis of ledger '{}' to {} (genesis hash {})",
                a.chain,
                path.display(),
                to_hex(&genesis.block(0).hash())
            );
        }
        None => print!("{text}"),
    }
    Ok(Outcome::Clean)
}

fn blocks(
    g: &Global,
    l: &LedgerOpts,
    from: u64,
    count: usize,
    all: bool,
    json: bool,
) -> Result<Outcome> {
    if all {
        return all_records(g, l, json);
    }
    let (log, r) = replayed(g, l)?;
    let genesis = r.chain.genesis();
    if !json {
        println!("{}", blocks_header());
    }
    for (offset, b) in canonical_blocks(log.as_ref(), &r.chain, from, count)? {
        if json {
            println!("{}", block_json(genesis, offset, &b));
        } else {
            println!("{}", block_row(genesis, offset, &b));
        }
    }
    Ok(outcome(&r))
}

/// A canonical block's header as `ledger blocks --json` prints it (and `kchain serve`
/// answers it, with the transactions).
pub(crate) fn block_json(genesis: &Genesis, offset: u64, b: &StoredBlock) -> serde_json::Value {
    let h = &b.header;
    json!({
        "height": h.height,
        "offset": offset,
        "hash": to_hex(&b.hash),
        "prev": to_hex(&h.prev),
        "timestamp": h.timestamp_ms,
        "tx_count": h.tx_count,
        "sealer": h.sealer.to_string(),
        "sealer_name": sealer_name(genesis, b),
        "reward": h.reward,
        "difficulty": h.difficulty,
        "nonce": h.nonce,
        "sources": h.sources,
    })
}

/// Every record of the blocks topic with its verdict.
fn all_records(g: &Global, l: &LedgerOpts, json: bool) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let found = kchain_ledger::audit(log.as_ref(), &l.blocks(), |r| print_audited(r, json))?;
    Ok(if found {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

fn print_audited(r: &kchain_ledger::AuditRecord, json: bool) {
    let hash = r.hash.map(|h| to_hex(&h));
    let genesis = matches!(r.verdict, kchain_ledger::AuditVerdict::Genesis);
    match (json, genesis) {
        (true, true) => println!(
            "{}",
            json!({"offset": r.offset, "height": 0, "hash": hash, "verdict": "genesis"})
        ),
        (true, false) => println!(
            "{}",
            json!({"offset": r.offset, "height": r.height,
                   "hash": hash, "verdict": r.label(), "detail": r.detail()})
        ),
        (false, true) => println!(
            "offset {:>6}  height      0  {}  genesis",
            r.offset,
            &hash.unwrap_or_default()[..16]
        ),
        (false, false) => println!(
            "offset {:>6}  height {:>6}  {}  {} {}",
            r.offset,
            r.height.map_or("-".into(), |h| h.to_string()),
            hash.map_or("-".repeat(16), |h| h[..16].to_owned()),
            r.label(),
            r.detail()
        ),
    }
}

fn verify(
    g: &Global,
    l: &LedgerOpts,
    genesis: Option<&Path>,
    pins: &[String],
    no_snapshot: bool,
    json: bool,
    anchors: kchain_ledger::CheckpointAnchors,
) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let blocks = l.blocks();
    let opts = verify_options(g, &blocks, genesis, pins, no_snapshot, anchors)?;
    let progress = crate::progress::Progress::new("verifying blocks", log.end_offset(&blocks, 0)?);
    let report = verify_ledger(log.as_ref(), &blocks, &opts, &|_| progress.add(1))?;
    progress.finish();
    if json {
        println!("{}", serde_json::to_string(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.ok() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

/// What `ledger verify` holds the chain of `blocks` to: the genesis file, pinned blocks
/// (`HEIGHT:HASH`), the local node snapshot unless `no_snapshot`, the checkpoint policy and
/// its anchors. `kchain serve` verifies with the same.
pub(crate) fn verify_options(
    g: &Global,
    blocks: &str,
    genesis: Option<&Path>,
    pins: &[String],
    no_snapshot: bool,
    anchors: kchain_ledger::CheckpointAnchors,
) -> Result<VerifyOptions> {
    let mut opts = VerifyOptions {
        checkpoint_anchors: anchors,
        ..VerifyOptions::default()
    };
    if let Some(path) = genesis {
        let (gen, ts) = read_genesis(path)?;
        opts.expected_genesis = Some(gen.block(ts).hash());
    }
    for p in pins {
        let (h, hash) = p
            .split_once(':')
            .with_context(|| format!("--pin {p}: expected HEIGHT:HASH"))?;
        let h: u64 = h
            .parse()
            .with_context(|| format!("--pin {p}: bad height"))?;
        let hash = from_hex(hash).with_context(|| format!("--pin {p}: bad hash"))?;
        opts.pins.push((h, hash));
    }
    if !no_snapshot {
        let file = kchain_ledger::snapshot_file(&state_dir(&g.data_dir, blocks));
        opts.snapshot = file.exists().then_some(file);
    }
    opts.checkpoints = Some(checkpoint_trust(g)?);
    Ok(opts)
}

/// The checkpoint policy of `ledger verify`: the `[[witness]]` and `[policy]` of `--trust
/// FILE` when given (a default trust file is for chained topics, and its witness threshold
/// need not suit the ledger), else the sealers alone.
fn checkpoint_trust(g: &Global) -> Result<CheckpointTrust> {
    Ok(match &g.trust {
        Some(path) => read_checkpoint_trust(path)?.1.unwrap_or_default(),
        None => CheckpointTrust::default(),
    })
}
