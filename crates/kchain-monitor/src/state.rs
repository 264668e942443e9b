//! The monitor's state on disk: where each partition's verification stands, its chain tree,
//! the checkpoints it has seen, and the alerts it has raised. Written whole after every
//! pass that changed it, durably (temporary file, fsync, rename, fsync of the directory), so
//! that a restart resumes exactly where the last saved pass ended: nothing read twice,
//! nothing counted twice, no alert raised again.
//!
//! ```text
//!  DIR/monitor-state.json  { "version": 1,
//!                            "partitions": { "orders/0": { tip, entries, tree, roots,
//!                                                          checkpoints, ... } },
//!                            "checkpoint_offsets": { "orders.checkpoints/0": 17 },
//!                            (a ledger: "pay.blocks/0": { ledger: {genesis, tip}, ... }
//!                             beside ledgers/pay.blocks/snapshot.json)
//!                            "alerts": [ "tamper:orders:0:12", ... ] }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use kchain_core::{from_hex, to_hex, Hash, Link};
use serde::{Deserialize, Serialize};

use crate::error::MonitorError;

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "monitor-state.json";

const VERSION: u32 = 1;

/// Everything the monitor keeps between passes and restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    pub version: u32,
    /// Per chain partition, keyed `"<topic>/<partition>"`.
    pub partitions: BTreeMap<String, PartitionState>,
    /// The next offset to read per checkpoints-topic partition, keyed like `partitions`.
    pub checkpoint_offsets: BTreeMap<String, u64>,
    /// The keys of the alerts raised (see [`crate::Alert`]).
    pub alerts: BTreeSet<String>,
}

/// Where one partition's verification stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The last verified record (covered by a valid writer signature); none before genesis.
    pub tip: Option<TipState>,
    /// Entries verified so far, over every run of the monitor.
    pub entries: u64,
    /// The chain tree's frontier: its size and its peaks (hex), as `TreeBuilder` holds them.
    pub tree_size: u64,
    pub peaks: Vec<String>,
    /// Roots of the chain tree at recent batch ends (size, root hex), oldest first, bounded:
    /// what a checkpoint that arrives after the tree passed its size is held against.
    pub roots: Vec<(u64, String)>,
    /// Checkpoints seen (size, root hex), newest sizes kept, bounded.
    pub checkpoints: Vec<(u64, String)>,
    /// Checkpoints for sizes the tree has not reached yet (size, root hex), bounded.
    pub waiting: Vec<(u64, String)>,
    /// The largest checkpoint size seen, and when a new checkpoint last arrived (ms since
    /// the epoch).
    pub newest_checkpoint: u64,
    pub checkpoint_at_ms: i64,
    /// A finding that stopped verification of this partition (final).
    pub stopped: Option<String>,
    /// The newest checkpoint the trust policy accepted (the signed note's text), for the
    /// freshness rule; none without `max_age`.
    #[serde(default)]
    pub accepted: Option<String>,
    /// For a ledger's blocks chain: the tip the snapshot beside the state holds.
    #[serde(default)]
    pub ledger: Option<LedgerTip>,
}

/// Where a ledger's verification stands. The replayed chain itself (canonical blocks,
/// balances, sealed transactions) is in a snapshot of kchain-ledger's format under
/// `ledgers/<blocks topic>/` in the state directory, written before the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTip {
    /// The genesis block's hash (hex): a restart finds the same genesis, or alerts.
    pub genesis: String,
    pub height: u64,
    /// The canonical tip's hash (hex) and offset in the blocks topic.
    pub hash: String,
    pub offset: u64,
}

/// The last verified record, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipState {
    pub offset: u64,
    pub height: u64,
    pub hash: String,
    pub prev: String,
}

impl TipState {
    pub fn from_link(l: &Link) -> TipState {
        TipState {
            offset: l.offset,
            height: l.height,
            hash: to_hex(&l.hash),
            prev: to_hex(&l.prev),
        }
    }

    /// The link, or `None` when the file's hashes are not hex of 32 bytes.
    pub fn to_link(&self) -> Option<Link> {
        Some(Link {
            offset: self.offset,
            height: self.height,
            hash: from_hex(&self.hash)?,
            prev: from_hex(&self.prev)?,
            signed: true,
        })
    }
}

/// Decodes a list of hex hashes.
pub fn hashes(hex: &[String]) -> Option<Vec<Hash>> {
    hex.iter().map(|h| from_hex(h)).collect()
}

impl MonitorState {
    /// The state in `dir`, or a fresh one when there is none yet.
    pub fn load(dir: &Path) -> Result<MonitorState, MonitorError> {
        let path = dir.join(STATE_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(MonitorState {
                    version: VERSION,
                    ..MonitorState::default()
                })
            }
            Err(e) => return Err(MonitorError::io(&path, e)),
        };
        let state: MonitorState = serde_json::from_str(&text).map_err(|e| MonitorError::State {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if state.version != VERSION {
            return Err(MonitorError::State {
                path,
                detail: format!("version {} (this monitor reads {VERSION})", state.version),
            });
        }
        Ok(state)
    }

    /// Writes the state to `dir` durably: a temporary file, fsync, rename over the old one,
    /// fsync of the directory.
    pub fn save(&self, dir: &Path) -> Result<(), MonitorError> {
        fs::create_dir_all(dir).map_err(|e| MonitorError::io(dir, e))?;
        let path = dir.join(STATE_FILE);
        let tmp: PathBuf = dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).expect("the state always serializes");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| MonitorError::io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = MonitorState::load(dir.path()).unwrap();
        s.alerts.insert("tamper:orders:0:12".into());
        s.partitions.insert(
            "orders/0".into(),
            PartitionState {
                tip: Some(TipState::from_link(&Link {
                    offset: 9,
                    height: 9,
                    hash: [7; 32],
                    prev: [6; 32],
                    signed: true,
                })),
                entries: 10,
                ..PartitionState::default()
            },
        );
        s.save(dir.path()).unwrap();
        assert_eq!(MonitorState::load(dir.path()).unwrap(), s);
    }

    #[test]
    fn a_state_of_another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(STATE_FILE),
            r#"{"version":9,"partitions":{},"checkpoint_offsets":{},"alerts":[]}"#,
        )
        .unwrap();
        assert!(MonitorState::load(dir.path()).is_err());
    }
}
