//! The ledger commands: `wallet` and `ledger` (`tx` and `node` are in `node_cmds.rs`). The
//! logic lives in kchain-ledger; this module parses arguments and prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kchain_core::{
    from_hex, to_hex, CheckpointTrust, PublicKey, WriterKey, DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_ledger::{
    canonical_blocks, init, prove_tx, replay, state_dir, tx_status, verify_ledger, verify_tx_proof,
    Address, Genesis, SealerInfo, TrustedLedger, TrustedSealers, TxProof, TxProofError,
    TxProofTrust, TxStatus, VerifyOptions,
};
use kchain_log::Log;
use kchain_topic::{read_key_file, write_key_file};
use serde_json::json;

use crate::args::Global;
use crate::checkpoint_cmds::{proof_outcome, read_checkpoint_trust};
use crate::{open_log, Outcome};

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

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Generate a wallet key (an Ed25519 key file, mode 0600) and print its address.
    New {
        /// Where to write the key [default: <data-dir>/wallets/<name>.key].
        #[arg(long)]
        out: Option<PathBuf>,
        /// A name for the key.
        #[arg(long, default_value = "wallet")]
        name: String,
    },
    /// Print the address and public key of a wallet key file.
    Address {
        #[arg(long)]
        key: PathBuf,
    },
}

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
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        anchors: crate::checkpoint_cmds::AnchorArgs,
    },
    /// Print an address's balance and nonce.
    Balance {
        #[command(flatten)]
        ledger: LedgerOpts,
        address: String,
        #[arg(long)]
        json: bool,
    },
    /// Tell where a transaction was sealed, why it was rejected, or that it is pending.
    Tx {
        #[command(flatten)]
        ledger: LedgerOpts,
        /// Transaction id (64 hex digits).
        id: String,
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
    /// An initial balance: ADDRESS=AMOUNT (repeatable).
    #[arg(long = "fund", value_name = "ADDRESS=AMOUNT")]
    pub funds: Vec<String>,
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    #[arg(long, default_value_t = 1)]
    pub reward: u64,
    /// Proof of work: leading zero bits of every block hash (0 disables it).
    #[arg(long, default_value_t = 0)]
    pub difficulty: u8,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn wallet(g: &Global, cmd: WalletCmd) -> Result<Outcome> {
    match cmd {
        WalletCmd::New { out, name } => {
            let path =
                out.unwrap_or_else(|| g.data_dir.join("wallets").join(format!("{name}.key")));
            if path.exists() {
                bail!(
                    "{} already exists; pass --out for a new file",
                    path.display()
                );
            }
            let key = WriterKey::generate(&name);
            write_key_file(&path, &key)?;
            println!(
                "wrote wallet key '{name}' to {} (mode 0600)",
                path.display()
            );
            println!("address    {}", Address::of(&key));
            println!("public key {}", key.public().to_hex());
        }
        WalletCmd::Address { key } => {
            let key = read_key_file(&key)?;
            println!("address    {}", Address::of(&key));
            println!("public key {}", key.public().to_hex());
        }
    }
    Ok(Outcome::Clean)
}

pub(crate) fn read_genesis(path: &Path) -> Result<(Genesis, i64)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading genesis file {}", path.display()))?;
    Genesis::from_file_text(&text).with_context(|| format!("genesis file {}", path.display()))
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
        LedgerCmd::Verify {
            ledger,
            genesis,
            pins,
            no_snapshot,
            json,
            anchors,
        } => {
            let anchors = crate::checkpoint_cmds::ledger_anchors(g, &anchors)?;
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
            .split_once('=')
            .with_context(|| format!("--fund {f}: expected ADDRESS=AMOUNT"))?;
        let addr = Address::from_hex(addr).with_context(|| format!("--fund {f}: bad address"))?;
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
    match &a.out {
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

/// Opens the log and replays the ledger (from the local snapshot when it matches).
fn replayed(g: &Global, l: &LedgerOpts) -> Result<(Box<dyn Log>, kchain_ledger::Replayed)> {
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

fn outcome(r: &kchain_ledger::Replayed) -> Outcome {
    if r.finding.is_some() {
        Outcome::Findings
    } else {
        Outcome::Clean
    }
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
    for (offset, b) in canonical_blocks(log.as_ref(), &r.chain, from, count)? {
        let h = &b.header;
        if json {
            println!(
                "{}",
                json!({
                    "height": h.height,
                    "offset": offset,
                    "hash": to_hex(&b.hash),
                    "prev": to_hex(&h.prev),
                    "timestamp": h.timestamp_ms,
                    "tx_count": h.tx_count,
                    "sealer": h.sealer.to_string(),
                    "reward": h.reward,
                    "difficulty": h.difficulty,
                    "nonce": h.nonce,
                    "sources": h.sources,
                })
            );
        } else {
            println!(
                "height {:>6}  offset {:>6}  {}  {:>5} txs  sealer {}  {}",
                h.height,
                offset,
                &to_hex(&b.hash)[..16],
                h.tx_count,
                h.sealer,
                h.timestamp_ms
            );
        }
    }
    Ok(outcome(&r))
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
        let file = kchain_ledger::snapshot_file(&state_dir(&g.data_dir, &blocks));
        opts.snapshot = file.exists().then_some(file);
    }
    opts.checkpoints = Some(checkpoint_trust(g)?);
    let progress = crate::progress::Progress::new("verifying blocks", log.end_offset(&blocks, 0)?);
    let report = verify_ledger(log.as_ref(), &blocks, &opts, &|_| progress.add(1))?;
    progress.finish();
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.ok() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
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

fn write_tx_proof(
    g: &Global,
    l: &LedgerOpts,
    id: &str,
    path: &Path,
    namespace: &str,
) -> Result<Outcome> {
    let id = from_hex(id).with_context(|| format!("'{id}' is not a transaction id"))?;
    let (log, r) = replayed(g, l)?;
    if r.finding.is_some() {
        bail!("the ledger shows tampering; no proof is written from it");
    }
    let proof = prove_tx(log.as_ref(), &r.chain, &l.blocks(), &id, namespace)?;
    std::fs::write(path, proof.to_json()).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "wrote {}: transaction at height {}, in a checkpoint signed by the sealers",
        path.display(),
        proof.height
    );
    Ok(Outcome::Clean)
}

fn verify_proof(g: &Global, file: &Path, genesis: Option<&Path>, json: bool) -> Result<Outcome> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading proof file {}", file.display()))?;
    let proof =
        TxProof::from_json(&text).with_context(|| format!("proof file {}", file.display()))?;
    // The trust file: --trust, else the default one if it exists (optional with --genesis).
    let trust_path = g.trust_path();
    let (trust_text, checkpoints) = match (&g.trust, trust_path.exists()) {
        (Some(_), _) | (None, true) => {
            let (text, ct) = read_checkpoint_trust(&trust_path)?;
            (Some(text), ct.unwrap_or_default())
        }
        (None, false) => (None, CheckpointTrust::default()),
    };
    // The ledger the proof must be of: the genesis file, else the trust file's [[ledger]]
    // entries. A [[writer]] key is never a ledger's sealer.
    let sealers = match (genesis, &trust_text) {
        (Some(path), _) => TrustedSealers::Genesis(Box::new(read_genesis(path)?.0)),
        (None, Some(t)) => {
            let ledgers = TrustedLedger::from_trust_toml(t)
                .map_err(|e| anyhow::anyhow!("trust file {}: {e}", trust_path.display()))?;
            if ledgers.is_empty() {
                bail!(
                    "trust file {} names no ledger: pass --genesis FILE, or add a [[ledger]]                      entry (chain, genesis or chain_id, sealers) to it; a [[writer]] key is                      never a ledger's sealer",
                    trust_path.display()
                );
            }
            TrustedSealers::Ledgers(ledgers)
        }
        (None, None) => bail!(
            "no keys to trust: pass --genesis FILE (the ledger's genesis), or --trust FILE              with a [[ledger]] entry naming the ledger's genesis or chain_id and its sealers"
        ),
    };
    let trust = TxProofTrust {
        sealers,
        checkpoints,
    };
    let verdict = match verify_tx_proof(&proof, &trust) {
        Ok(v) => Ok(format!(
            "included: transaction {} is at position {} of block {} (height {}) of chain \
             {}, in checkpoint {} of size {} signed by {} (cosigned by {} witness(es))",
            to_hex(v.tx.id()),
            proof.index,
            to_hex(&v.block_hash),
            v.height,
            v.chain,
            v.checkpoint.checkpoint.origin(),
            v.checkpoint.checkpoint.size(),
            v.checkpoint.writers.join(", "),
            v.checkpoint.cosigners.len()
        )),
        Err(e @ (TxProofError::UnsupportedFormat { .. } | TxProofError::UnknownLedger { .. })) => {
            return Err(e).with_context(|| format!("proof file {}", file.display()))
        }
        Err(e) => Err(e.to_string()),
    };
    Ok(proof_outcome(file, json, verdict))
}

pub(crate) fn parse_address(s: &str) -> Result<Address> {
    Address::from_hex(s).with_context(|| format!("'{s}' is not an address (40 hex digits)"))
}

fn balance(g: &Global, l: &LedgerOpts, address: &str, json: bool) -> Result<Outcome> {
    let addr = parse_address(address)?;
    let (_log, r) = replayed(g, l)?;
    let state = r.chain.state();
    let (balance, nonce, height) = (
        state.balance(&addr),
        state.nonce(&addr),
        r.chain.tip().height,
    );
    if json {
        println!(
            "{}",
            json!({"address": addr.to_hex(), "balance": balance, "nonce": nonce, "height": height})
        );
    } else {
        println!("{addr}: balance {balance}, nonce {nonce} (at height {height})");
    }
    Ok(outcome(&r))
}

fn tx_info(g: &Global, l: &LedgerOpts, id: &str, json: bool) -> Result<Outcome> {
    let id =
        from_hex(id).with_context(|| format!("'{id}' is not a transaction id (64 hex digits)"))?;
    let (log, r) = replayed(g, l)?;
    let status = tx_status(log.as_ref(), &r.chain, &id)?;
    let (text, value) =
        match &status {
            TxStatus::Sealed {
                height,
                block,
                block_offset,
                index,
                partition,
                offset,
                tx,
            } => (
                format!(
                    "sealed in block {height} ({}) at offset {block_offset}, position {index}; \
                 read from partition {partition} offset {offset}\n{}",
                    to_hex(block),
                    String::from_utf8_lossy(&tx.to_json())
                ),
                json!({"status": "sealed", "height": height, "block": to_hex(block),
                   "block_offset": block_offset, "index": index, "partition": partition,
                   "offset": offset, "tx": tx.to_json_value()}),
            ),
            TxStatus::Rejected(rec) => {
                (
                    format!(
                "rejected: {}: {} (decided by block {} at height {}, sealer {}); it was at \
                 partition {} offset {}",
                rec.reason, rec.detail, rec.block, rec.height, rec.sealer, rec.partition, rec.offset
            ),
                    json!({"status": "rejected", "rejection": rec}),
                )
            }
            TxStatus::Pending {
                partition,
                offset,
                void,
            } => (
                format!(
                "pending at partition {partition} offset {offset} (not yet decided by a canonical \
                 block{})",
                if void.is_empty() {
                    String::new()
                } else {
                    format!("; {} rejection(s) by blocks that lost a race do not count", void.len())
                }
            ),
                json!({"status": "pending", "partition": partition, "offset": offset}),
            ),
            TxStatus::Unknown => bail!("transaction {} is not in this ledger", to_hex(&id)),
        };
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(outcome(&r))
}
