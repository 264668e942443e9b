//! Snapshots of the replayed chain in a node's local directory, so that a restart does not
//! replay from genesis.
//!
//! ```text
//! <state dir>/snapshot.json   (written to a temporary file, synced, renamed over)
//!   format, genesis hash, blocks topic, tip (height, hash, offset), next offset,
//!   canonical block hashes and offsets, seen non-canonical blocks,
//!   balances, nonces, sealed transaction ids, and a SHA-256 checksum of all of it
//! ```
//!
//! A snapshot is used only when it matches the log: its checksum holds, its genesis is the
//! log's genesis, and the record at its tip offset is still the block it names. Otherwise it
//! is discarded (and the chain replayed from genesis), never trusted. The snapshot is the
//! node's own memory, so it also serves `ledger verify` as an anchor: a chain that no longer
//! contains the snapshot's tip was cut or rewritten.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use kchain_core::Hash;
use kchain_log::Log;
use serde::{Deserialize, Serialize};

use crate::consensus::block::{SourceRange, StoredBlock};
use crate::consensus::chain::{Chain, Known};
use crate::consensus::encoding::{hex_lower, parse_hex};
use crate::consensus::state::State;
use crate::consensus::tx::Address;
use crate::consensus::validate::Tip;
use crate::error::LedgerError;
use crate::node::store::read_record;

const FORMAT: u32 = 1;

/// The snapshot file of a ledger under a node's state directory.
pub fn snapshot_file(state_dir: &Path) -> PathBuf {
    state_dir.join("snapshot.json")
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotFile {
    format: u32,
    genesis_hash: String,
    blocks_topic: String,
    height: u64,
    tip_hash: String,
    tip_offset: u64,
    tip_timestamp: i64,
    next_offset: u64,
    sources: Vec<SourceRange>,
    canonical: Vec<(String, u64)>,
    /// Hash, height, offset.
    others: Vec<(String, u64, u64)>,
    balances: Vec<(String, u64)>,
    nonces: Vec<(String, u64)>,
    /// Transaction id, height.
    sealed: Vec<(String, u64)>,
    checksum: String,
}

impl SnapshotFile {
    fn checksum(&self) -> String {
        let mut body = self.clone();
        body.checksum = String::new();
        let mut bytes = serde_json::to_vec(&body).expect("snapshot serializes");
        bytes.extend_from_slice(b"kchain:snapshot:v1");
        hex_lower(&kchain_core::sha256(&bytes))
    }
}

fn sorted<K: Ord + Copy, V: Copy, S>(m: &HashMap<K, V, S>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = m.iter().map(|(k, v)| (*k, *v)).collect();
    v.sort_unstable_by_key(|a| a.0);
    v
}

/// Writes a snapshot of `chain` atomically.
pub fn save(chain: &Chain, path: &Path) -> Result<(), LedgerError> {
    let mut others: Vec<(String, u64, u64)> = chain
        .known
        .iter()
        .filter(|(_, k)| !k.canonical)
        .map(|(h, k)| (hex_lower(h), k.height, k.offset))
        .collect();
    others.sort_unstable_by_key(|o| o.2);
    let mut file = SnapshotFile {
        format: FORMAT,
        genesis_hash: hex_lower(&chain.genesis_hash()),
        blocks_topic: chain.genesis.topics.blocks.clone(),
        height: chain.tip.height,
        tip_hash: hex_lower(&chain.tip.hash),
        tip_offset: chain.tip.offset,
        tip_timestamp: chain.tip.timestamp_ms,
        next_offset: chain.next_offset,
        sources: chain.tip.sources.clone(),
        canonical: chain
            .canonical
            .iter()
            .map(|(h, o)| (hex_lower(h), *o))
            .collect(),
        others,
        balances: sorted(&chain.state.balances)
            .into_iter()
            .map(|(a, v)| (a.to_hex(), v))
            .collect(),
        nonces: sorted(&chain.state.nonces)
            .into_iter()
            .map(|(a, v)| (a.to_hex(), v))
            .collect(),
        sealed: sorted(&chain.state.sealed)
            .into_iter()
            .map(|(id, h)| (hex_lower(&id), h))
            .collect(),
        checksum: String::new(),
    };
    file.checksum = file.checksum();
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .map_err(|e| LedgerError::io(format!("creating {}", dir.display()), e))?;
    // A unique temporary name: several nodes may share a state directory.
    let tmp = dir.join(format!(".snapshot.{}.{}.tmp", std::process::id(), unique()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, &file)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        LedgerError::io(format!("writing snapshot {}", path.display()), e)
    })
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// What became of a snapshot.
#[derive(Debug)]
pub enum Loaded {
    /// The snapshot matched the log; the chain resumes from it.
    Resumed(Box<Chain>),
    /// There is no snapshot.
    Missing,
    /// The snapshot was discarded, for this reason.
    Discarded(String),
}

/// Loads the snapshot at `path` for the chain whose genesis `fresh` was read from `log`, and
/// checks it against the log.
pub fn load(path: &Path, fresh: &Chain, log: &dyn Log) -> Result<Loaded, LedgerError> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(LedgerError::io(format!("reading {}", path.display()), e)),
    };
    match restore(&text, fresh, log)? {
        Ok(chain) => Ok(Loaded::Resumed(Box::new(chain))),
        Err(why) => Ok(Loaded::Discarded(why)),
    }
}

/// The snapshot's anchor (genesis hash, height, tip hash), if the file parses and its
/// checksum holds, without checking it against any log.
pub fn anchor(path: &Path) -> Option<(Hash, u64, Hash)> {
    let text = fs::read(path).ok()?;
    let f: SnapshotFile = serde_json::from_slice(&text).ok()?;
    if f.format != FORMAT || f.checksum != f.checksum() {
        return None;
    }
    Some((
        parse_hex(&f.genesis_hash)?,
        f.height,
        parse_hex(&f.tip_hash)?,
    ))
}

fn restore(
    text: &[u8],
    fresh: &Chain,
    log: &dyn Log,
) -> Result<Result<Chain, String>, LedgerError> {
    let f: SnapshotFile = match serde_json::from_slice(text) {
        Ok(f) => f,
        Err(e) => return Ok(Err(format!("it does not parse: {e}"))),
    };
    if f.format != FORMAT {
        return Ok(Err(format!("format {} is not {FORMAT}", f.format)));
    }
    if f.checksum != f.checksum() {
        return Ok(Err("its checksum does not match its content".into()));
    }
    let topic = &fresh.genesis.topics.blocks;
    if f.genesis_hash != hex_lower(&fresh.genesis_hash()) || &f.blocks_topic != topic {
        return Ok(Err("it belongs to another ledger (genesis differs)".into()));
    }
    let chain = match rebuild(&f, fresh) {
        Some(c) => c,
        None => return Ok(Err("its content is inconsistent".into())),
    };
    let stored = read_record(log, topic, 0, f.tip_offset)?;
    let hash = stored
        .and_then(|r| r.record.value)
        .and_then(|v| StoredBlock::parse(&v).ok())
        .map(|b| (b.hash, b.header.height));
    if hash != Some((chain.tip.hash, chain.tip.height)) {
        return Ok(Err(format!(
            "the log no longer holds its tip (height {}, {}) at offset {}",
            f.height, f.tip_hash, f.tip_offset
        )));
    }
    Ok(Ok(chain))
}

fn rebuild(f: &SnapshotFile, fresh: &Chain) -> Option<Chain> {
    let hash = |s: &str| parse_hex::<32>(s);
    let addr = |s: &str| Address::from_hex(s);
    let canonical: Vec<(Hash, u64)> = f
        .canonical
        .iter()
        .map(|(h, o)| Some((hash(h)?, *o)))
        .collect::<Option<_>>()?;
    let tip_hash = hash(&f.tip_hash)?;
    if canonical.len() as u64 != f.height + 1
        || canonical.last() != Some(&(tip_hash, f.tip_offset))
        || canonical.first().map(|c| c.0) != Some(fresh.genesis_hash())
        || f.sources.len() != fresh.tip.sources.len()
    {
        return None;
    }
    let mut known = HashMap::new();
    for (height, (h, offset)) in canonical.iter().enumerate() {
        known.insert(
            *h,
            Known {
                height: height as u64,
                offset: *offset,
                canonical: true,
            },
        );
    }
    for (h, height, offset) in &f.others {
        known.entry(hash(h)?).or_insert(Known {
            height: *height,
            offset: *offset,
            canonical: false,
        });
    }
    let mut state = State::default();
    for (a, v) in &f.balances {
        state.balances.insert(addr(a)?, *v);
    }
    for (a, v) in &f.nonces {
        state.nonces.insert(addr(a)?, *v);
    }
    for (id, h) in &f.sealed {
        state.sealed.insert(hash(id)?, *h);
    }
    Some(Chain {
        genesis: fresh.genesis.clone(),
        chain_id: fresh.chain_id,
        state,
        tip: Tip {
            height: f.height,
            hash: tip_hash,
            offset: f.tip_offset,
            timestamp_ms: f.tip_timestamp,
            sources: f.sources.clone(),
        },
        canonical,
        known,
        broken: HashMap::new(),
        last_broken: None,
        next_offset: f.next_offset,
    })
}
