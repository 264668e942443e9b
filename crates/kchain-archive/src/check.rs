//! Verifying an archive with nothing but read access to it and a trust file: every record's
//! entry hash recomputed, every tile recomputed, the tree's root held against a checkpoint
//! that meets the trust policy and against the checkpoint this verifier remembers.
//!
//! ```text
//!  checkpoint ──► policy (writer signature, k of n witnesses) ──► remembered state
//!      │ size n, root r                                              (older? rollback)
//!      ▼
//!  per level-0 tile, in order, fetched in windows (the next one downloading while this
//!  one's records are hashed on every core):
//!    record bundle ──► entry hash of each record (its chain headers, our chain id),
//!                      height and link to the entry before ──► link_broken
//!    entry bundle  ──► == recomputed entry hash? ──────────────► record_changed
//!    level-0 tile  ──► == chain_leaf(entry hash)? ─────────────► tile_changed
//!  tiles of levels >= 1 recomputed from the leaves ────────────► tile_changed
//!  RFC 6962 root of the leaves == r? ──────────────────────────► root_mismatch
//! ```
//!
//! A missing object is a finding at the first entry it covers. Tampering is reported, never
//! an error; errors are for a store that cannot be read.

use kchain_core::{chain_leaf, merkle, ChainId, Checkpoint, Hash, Policy, SignedNote, TrustFile};
use kchain_log::Record;
use kchain_topic::files::CheckpointStore;
use rayon::prelude::*;

use crate::bundle::{decode_entries, decode_records, record_entry};
use crate::error::ArchiveError;
use crate::finding::{ArchiveFindingKind as Kind, ArchiveVerifyReport, ChainVerified};
use crate::path::{
    chain_prefix, entries_path, records_path, tile_path, tiles_at, TileRef, CHECKPOINT_PATH,
    TILE_WIDTH,
};
use crate::store::Store;
use crate::tiles::TreeTiles;

/// The name under which archive verifiers remember checkpoints (one memory per origin, for
/// every archive of it: an older copy of an archive is a rollback wherever it is found).
pub const REMEMBERED_BACKEND: &str = "archive";

/// Level-0 tiles fetched at once (three objects each).
const WINDOW: usize = 32;

/// The partitions of `topic` that an archive holds, in order.
pub fn archived_partitions(store: &Store, topic: &str) -> Result<Vec<u32>, ArchiveError> {
    let mut parts: Vec<u32> = store
        .list_dirs(topic)?
        .iter()
        .filter_map(|d| d.parse().ok())
        .collect();
    parts.sort_unstable();
    Ok(parts)
}

/// Verifies every chain of `topic` in the archive (see [`verify_chain`]): those it holds
/// and every partition the trust file pins (a pinned chain deleted from the archive is a
/// missing checkpoint). An archive that holds no chain of the topic is a finding too (a
/// missing checkpoint of partition 0).
pub fn verify_archive(
    store: &Store,
    topic: &str,
    trust: &TrustFile,
    remembered: Option<&CheckpointStore>,
) -> Result<ArchiveVerifyReport, ArchiveError> {
    let mut parts = archived_partitions(store, topic)?;
    let pinned = trust.trust.pinned_partitions(topic).unwrap_or(1);
    parts.extend(
        (0..pinned)
            .filter(|p| !parts.contains(p))
            .collect::<Vec<_>>(),
    );
    parts.sort_unstable();
    let chains = parts
        .into_iter()
        .map(|p| verify_chain(store, topic, p, trust, remembered))
        .collect::<Result<_, _>>()?;
    Ok(ArchiveVerifyReport {
        topic: topic.into(),
        url: store.url().into(),
        chains,
        log: Vec::new(),
    })
}

/// Verifies partition `partition` of `topic` in the archive. With `remembered`, holds its
/// checkpoint against the one remembered there and, when clean, remembers it.
pub fn verify_chain(
    store: &Store,
    topic: &str,
    partition: u32,
    trust: &TrustFile,
    remembered: Option<&CheckpointStore>,
) -> Result<ChainVerified, ArchiveError> {
    let prefix = chain_prefix(topic, partition);
    let policy = trust.policy(topic, partition)?;
    let chain = ChainId::for_partition(topic, partition);
    let entry_of = |r: &Record, scratch: &mut Vec<u8>| {
        record_entry(chain, r, scratch)
            .map(|e| Linked {
                height: e.meta.height,
                prev: e.meta.prev,
                hash: e.entry_hash,
            })
            .map_err(|e| format!("chain headers: {e}"))
    };
    let mut v = ChainVerified::new(partition);
    verify_tree(store, &prefix, &policy, &entry_of, remembered, &mut v)?;
    Ok(v)
}

/// One archived entry as its record gives it: its height, the entry hash it links to and
/// its own entry hash (a chained topic's chain headers and entry hash; a ledger's block
/// header and block hash).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Linked {
    pub height: u64,
    pub prev: Hash,
    pub hash: Hash,
}

/// How a chain's records give its entries: what differs between a topic's partition and a
/// ledger's blocks chain. The buffer is scratch space, one per thread.
pub(crate) type EntryOf<'a> = dyn Fn(&Record, &mut Vec<u8>) -> Result<Linked, String> + Sync + 'a;

/// Verifies the chain archived under `prefix`: its checkpoint against `policy` and the
/// `remembered` one, its records (read by `entry_of`), bundles and tiles against the tree;
/// findings into `v`. With `remembered` and no finding, remembers the checkpoint.
pub(crate) fn verify_tree(
    store: &Store,
    prefix: &str,
    policy: &Policy,
    entry_of: &EntryOf<'_>,
    remembered: Option<&CheckpointStore>,
    v: &mut ChainVerified,
) -> Result<(), ArchiveError> {
    let Some(bytes) = store.get(&format!("{prefix}/{CHECKPOINT_PATH}"))? else {
        v.find(
            Kind::CheckpointMissing,
            None,
            "the archive has no checkpoint".into(),
        );
        return Ok(());
    };
    let note = match SignedNote::parse(&bytes) {
        Ok(n) => n,
        Err(e) => {
            v.find(
                Kind::CheckpointUntrusted,
                None,
                format!("not a signed note: {e}"),
            );
            return Ok(());
        }
    };
    let trusted = match policy.check(&note) {
        Ok(t) => t,
        Err(e) => {
            v.find(Kind::CheckpointUntrusted, None, e.to_string());
            return Ok(());
        }
    };
    let cp = trusted.checkpoint.clone();
    v.size = cp.size();
    v.cosigners = trusted.cosigners.iter().map(|(n, _)| n.clone()).collect();
    let old = match remembered {
        Some(s) => s.load(REMEMBERED_BACKEND, cp.origin())?,
        None => None,
    };
    let old = old.and_then(|n| Checkpoint::parse(n.text()).ok());
    if let Some(old) = &old {
        if old.size() > cp.size() {
            v.find(
                Kind::CheckpointRollback,
                Some(cp.size()),
                format!(
                    "the archive's checkpoint has size {}, but this verifier has seen size {}: \
                     the archive was rolled back",
                    cp.size(),
                    old.size()
                ),
            );
            return Ok(());
        }
    }
    let leaves = check_entries(store, prefix, entry_of, &cp, v)?;
    check_upper_tiles(store, prefix, leaves.clone(), v)?;
    if merkle::root(&leaves) != *cp.root() {
        v.find(
            Kind::RootMismatch,
            None,
            "the archived entries do not have the checkpoint's root".into(),
        );
    }
    if let Some(old) = &old {
        if merkle::root(&leaves[..old.size() as usize]) != *old.root() {
            v.find(
                Kind::CheckpointRollback,
                None,
                format!(
                    "the archive's tree at size {} is not the one this verifier remembers",
                    old.size()
                ),
            );
        }
    }
    if v.findings.is_empty() {
        if let Some(s) = remembered {
            s.save(REMEMBERED_BACKEND, cp.origin(), &note)?;
        }
    }
    Ok(())
}

/// Checks every level-0 tile, entry bundle and record bundle of a tree of `cp.size()`
/// entries; returns the leaves the records give (the archive's claim, checked against the
/// root by the caller). The next window's objects download while this one's records are
/// hashed, on every core.
fn check_entries(
    store: &Store,
    prefix: &str,
    entry_of: &EntryOf<'_>,
    cp: &Checkpoint,
    v: &mut ChainVerified,
) -> Result<Vec<Hash>, ArchiveError> {
    let mut walk = Walk {
        prev: kchain_core::ZERO_HASH,
        leaves: Vec::with_capacity(cp.size() as usize),
    };
    let tiles = tiles_at(0, cp.size(), 0);
    let windows: Vec<&[TileRef]> = tiles.chunks(WINDOW).collect();
    let paths_of = |window: &[TileRef]| -> Vec<String> {
        window
            .iter()
            .flat_map(|t| {
                [
                    format!("{prefix}/{}", records_path(t.index, t.width)),
                    format!("{prefix}/{}", entries_path(t.index, t.width)),
                    format!("{prefix}/{}", tile_path(0, t.index, t.width)),
                ]
            })
            .collect()
    };
    let start = |w: &[TileRef]| {
        let paths = paths_of(w);
        let fetch = store.fetch_all(&paths);
        (paths, fetch)
    };
    // A local directory answers at once: reading ahead there only adds threads that contend
    // with the hashing (measured: docs/archive.md, Benchmark).
    let ahead = !store.is_local();
    let mut next = windows.first().map(|w| start(w));
    for (k, window) in windows.iter().enumerate() {
        let (paths, fetch) = next.take().expect("started");
        if ahead {
            next = windows.get(k + 1).map(|w| start(w));
        }
        let objects = fetch.wait()?;
        if !ahead {
            next = windows.get(k + 1).map(|w| start(w));
        }
        let hashed = hash_records(entry_of, window, |i| objects[3 * i].as_deref());
        for ((i, t), records) in window.iter().enumerate().zip(hashed) {
            let at = |k: usize| (paths[3 * i + k].as_str(), objects[3 * i + k].as_deref());
            let tile = LeafTile::decode(v, t.index * TILE_WIDTH, t.width as usize, records, at);
            walk.tile(v, &tile);
        }
    }
    Ok(walk.leaves)
}

/// What a record bundle gave: each record's chain headers and entry hash (or why not).
enum Records {
    Missing,
    Malformed,
    Hashed(Vec<Result<Linked, String>>),
}

/// Decodes the record bundle of each tile of `window` (`bundle(i)` for the i-th) and
/// recomputes every record's entry hash, the tiles shared among the machine's cores
/// (rayon's pool).
fn hash_records<'a>(
    entry_of: &EntryOf<'_>,
    window: &[TileRef],
    bundle: impl Fn(usize) -> Option<&'a [u8]> + Sync,
) -> Vec<Records> {
    let one = |i: usize| -> Records {
        let Some(bytes) = bundle(i) else {
            return Records::Missing;
        };
        match decode_records(bytes) {
            Ok(r) if r.len() == window[i].width as usize => {
                let mut scratch = Vec::new();
                Records::Hashed(r.iter().map(|r| entry_of(r, &mut scratch)).collect())
            }
            _ => Records::Malformed,
        }
    };
    (0..window.len()).into_par_iter().map(one).collect()
}

/// The three objects of one level-0 tile, each None when missing or malformed (a finding
/// already made).
struct LeafTile<'a> {
    first: u64,
    width: usize,
    records: Option<Vec<Result<Linked, String>>>,
    entries: Option<Vec<Hash>>,
    hashes: Option<&'a [u8]>,
}

impl<'a> LeafTile<'a> {
    fn decode(
        v: &mut ChainVerified,
        first: u64,
        width: usize,
        records: Records,
        at: impl Fn(usize) -> (&'a str, Option<&'a [u8]>),
    ) -> LeafTile<'a> {
        let (path, _) = at(0);
        let records = match records {
            Records::Hashed(r) => Some(r),
            Records::Missing => {
                v.object_problem(path, first, true, "record bundle");
                None
            }
            Records::Malformed => {
                v.object_problem(path, first, false, "record bundle");
                None
            }
        };
        let (path, got) = at(1);
        let entries = match got.map(decode_entries) {
            Some(Ok(e)) if e.len() == width => Some(e),
            got => {
                v.object_problem(path, first, got.is_none(), "entry bundle");
                None
            }
        };
        let (path, got) = at(2);
        let hashes = match got {
            Some(b) if b.len() == width * 32 => Some(b),
            got => {
                v.object_problem(path, first, got.is_none(), "level-0 tile");
                None
            }
        };
        LeafTile {
            first,
            width,
            records,
            entries,
            hashes,
        }
    }
}

/// The walk along a chain's entries in height order.
struct Walk {
    prev: Hash,
    leaves: Vec<Hash>,
}

impl Walk {
    /// Checks the entries of one level-0 tile: link, record against entry, entry against
    /// tile. Where the records are missing the entry bundle's hashes stand in, so that one
    /// missing object is one finding and not a broken link for every entry after it.
    fn tile(&mut self, v: &mut ChainVerified, t: &LeafTile) {
        for k in 0..t.width {
            let height = t.first + k as u64;
            let listed = t.entries.as_ref().map(|e| e[k]);
            let hash = match &t.records {
                Some(r) => self.record(v, height, &r[k], listed),
                None => listed.unwrap_or(kchain_core::ZERO_HASH),
            };
            let leaf = chain_leaf(&hash);
            if t.hashes.is_some_and(|h| h[k * 32..k * 32 + 32] != leaf) {
                v.find(
                    Kind::TileChanged,
                    Some(height),
                    "the level-0 tile's hash is not the entry's leaf hash".into(),
                );
            }
            self.leaves.push(leaf);
            self.prev = hash;
        }
    }

    /// The entry hash of the record at `height` (recomputed); findings when it does not
    /// link to the entry before or is not the entry bundle's `listed` hash.
    fn record(
        &mut self,
        v: &mut ChainVerified,
        height: u64,
        e: &Result<Linked, String>,
        listed: Option<Hash>,
    ) -> Hash {
        let e = match e {
            Ok(e) => e,
            Err(e) => {
                v.find(Kind::RecordChanged, Some(height), e.clone());
                return listed.unwrap_or(kchain_core::ZERO_HASH);
            }
        };
        if e.height != height || e.prev != self.prev {
            v.find(
                Kind::LinkBroken,
                Some(height),
                format!(
                    "the record says height {} after {}, the chain is at height {height} after {}",
                    e.height,
                    short(&e.prev),
                    short(&self.prev)
                ),
            );
        }
        if let Some(listed) = listed.filter(|l| *l != e.hash) {
            v.find(
                Kind::RecordChanged,
                Some(height),
                format!(
                    "the record hashes to {}, the entry bundle holds {}",
                    short(&e.hash),
                    short(&listed)
                ),
            );
        }
        e.hash
    }
}

/// Checks the stored tiles of levels 1 and up against the ones `leaves` give.
fn check_upper_tiles(
    store: &Store,
    prefix: &str,
    leaves: Vec<Hash>,
    v: &mut ChainVerified,
) -> Result<(), ArchiveError> {
    let tiles = TreeTiles::new(leaves);
    let upper: Vec<_> = tiles
        .tiles_from(0)
        .into_iter()
        .filter(|t| t.level > 0)
        .collect();
    let paths: Vec<String> = upper
        .iter()
        .map(|t| format!("{prefix}/{}", tile_path(t.level, t.index, t.width)))
        .collect();
    let objects = store.get_all(&paths)?;
    for ((t, path), got) in upper.iter().zip(&paths).zip(objects) {
        let span = TILE_WIDTH.pow(u32::from(t.level));
        let first = t.index * TILE_WIDTH * span;
        let Some(got) = got else {
            v.object_problem(path, first, true, "tile");
            continue;
        };
        let want = tiles.tile(*t);
        if got.len() != want.len() {
            v.object_problem(path, first, false, "tile");
            continue;
        }
        if let Some(k) =
            (0..t.width as usize).find(|&k| got[k * 32..k * 32 + 32] != want[k * 32..k * 32 + 32])
        {
            v.find(
                Kind::TileChanged,
                Some(first + k as u64 * span),
                format!("{path}: hash {k} is not the root of the tile below"),
            );
        }
    }
    Ok(())
}

fn short(h: &Hash) -> String {
    kchain_core::to_hex(h)[..16].to_owned()
}
