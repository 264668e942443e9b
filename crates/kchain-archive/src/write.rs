//! The archiver: a chained topic's partitions copied to an archive, incrementally, the
//! checkpoint last.
//!
//! ```text
//!  checkpoints topic ──► newest note the trust policy accepts (size n, root r)
//!  the log, heights 0..n ──► entry hashes recomputed, links checked ──► tree root == r?
//!                                  │                                        │ yes
//!                                  ▼                                        ▼
//!  tiles, entry bundles, record bundles from the first tile the      put them all, then
//!  archive's own checkpoint does not cover in full                   put the checkpoint
//! ```
//!
//! A reader goes by the checkpoint, so it never sees one whose tiles are missing: every tile
//! and bundle a checkpoint needs is written before it. Writes are whole-object and a rerun
//! writes the same bytes again, so a run killed anywhere leaves the old checkpoint with all
//! it needs, and the next run completes the new one.

use kchain_core::{
    chain_leaf, merkle, ChainId, Checkpoint, Hash, MetaError, SignedNote, TrustFile,
};
use kchain_log::{Log, RecordView};
use kchain_topic::checkpoints::partition_checkpoints;

use crate::bundle::{
    decode_entries, decode_records, encode_entries, encode_record, encode_view, view_entry,
    RecordEntry,
};
use crate::error::ArchiveError;
use crate::path::{
    chain_prefix, entries_path, records_path, tile_path, tiles_at, CHECKPOINT_PATH, TILE_WIDTH,
};
use crate::store::Store;
use crate::tiles::TreeTiles;

/// What one run did to one chain of the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainArchived {
    pub partition: u32,
    /// The archive's tree size before this run (0 when it held nothing).
    pub before: u64,
    /// The archive's tree size after it (its checkpoint's size).
    pub size: u64,
    /// Objects written, the checkpoint included.
    pub objects: usize,
    /// Why nothing was archived, when nothing could be (no trusted checkpoint yet).
    pub skipped: Option<String>,
}

/// What one run of the archiver did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveReport {
    pub topic: String,
    pub chains: Vec<ChainArchived>,
}

/// Archives every partition of `topic` on `log` into `store`, up to the newest checkpoint of
/// each that `trust`'s checkpoint policy accepts. Refuses (an error) a partition whose log
/// does not match that checkpoint: `kchain verify` says what is wrong with it.
pub fn archive_topic(
    log: &dyn Log,
    topic: &str,
    trust: &TrustFile,
    store: &Store,
) -> Result<ArchiveReport, ArchiveError> {
    let partitions = log.topic(topic)?.partitions;
    let namespace = trust.checkpoints_or_default().namespace;
    let mut chains = Vec::new();
    for p in 0..partitions {
        let policy = trust.policy(topic, p)?;
        let newest = partition_checkpoints(log, topic, p, &namespace)?
            .into_iter()
            .filter(|(note, _)| policy.check(note).is_ok())
            .max_by_key(|(n, c)| (c.size(), n.signatures().len()));
        let prefix = chain_prefix(topic, p);
        let before = archived_size(store, &prefix)?;
        let Some((note, cp)) = newest else {
            chains.push(ChainArchived {
                partition: p,
                before,
                size: before,
                objects: 0,
                skipped: Some("no checkpoint meets the trust policy yet".into()),
            });
            continue;
        };
        chains.push(archive_chain(log, topic, p, &note, &cp, store, before)?);
    }
    Ok(ArchiveReport {
        topic: topic.into(),
        chains,
    })
}

/// The tree size of the checkpoint archived under `prefix` (0 when there is none or it does
/// not parse: then everything is written again, which is always safe).
pub(crate) fn archived_size(store: &Store, prefix: &str) -> Result<u64, ArchiveError> {
    let Some(bytes) = store.get(&format!("{prefix}/{CHECKPOINT_PATH}"))? else {
        return Ok(0);
    };
    Ok(SignedNote::parse(&bytes)
        .ok()
        .and_then(|n| Checkpoint::parse(n.text()).ok())
        .map_or(0, |c| c.size()))
}

fn archive_chain(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    note: &SignedNote,
    cp: &Checkpoint,
    store: &Store,
    before: u64,
) -> Result<ChainArchived, ArchiveError> {
    let prefix = chain_prefix(topic, partition);
    let checkpoint_path = format!("{prefix}/{CHECKPOINT_PATH}");
    let note_bytes = note.to_string().into_bytes();
    if before > cp.size() || store.get(&checkpoint_path)?.as_deref() == Some(&note_bytes[..]) {
        return Ok(ChainArchived {
            partition,
            before,
            size: before,
            objects: 0,
            skipped: None,
        });
    }
    let seed = archived_prefix(store, &prefix, before)?;
    let (hashes, records) = read_chain(log, topic, partition, cp.size(), seed)?;
    let tiles = TreeTiles::new(hashes.iter().map(chain_leaf).collect());
    if merkle::root(tiles.leaves()) != *cp.root() {
        return Err(ArchiveError::Chain {
            chain: format!("{topic}/{partition}"),
            detail: format!(
                "the log's first {} entries do not have the root of the trusted checkpoint; \
                 run `kchain verify {topic}`",
                cp.size()
            ),
        });
    }
    let count = write_tree(store, &prefix, before, &tiles, &hashes, &records, note)?;
    Ok(ChainArchived {
        partition,
        before,
        size: cp.size(),
        objects: count,
        skipped: None,
    })
}

/// Writes the tiles, entry bundles and record bundles of `tiles` from the first level-0
/// tile a tree of `before` entries does not fill, then `note` last (only then does a reader
/// see the new size, and everything it needs is there). `hashes` are the entry hashes from
/// genesis; `records` the encoded records from that first tile on. Returns the objects
/// written, the checkpoint included. Shared by topics' partitions and ledgers.
pub(crate) fn write_tree(
    store: &Store,
    prefix: &str,
    before: u64,
    tiles: &TreeTiles,
    hashes: &[Hash],
    records: &[Vec<u8>],
    note: &SignedNote,
) -> Result<usize, ArchiveError> {
    let first_tile = before / TILE_WIDTH;
    let mut objects = Vec::new();
    for t in tiles.tiles_from(first_tile) {
        objects.push((
            format!("{prefix}/{}", tile_path(t.level, t.index, t.width)),
            tiles.tile(t),
        ));
        if t.level == 0 {
            let start = (t.index * TILE_WIDTH) as usize;
            let end = start + t.width as usize;
            objects.push((
                format!("{prefix}/{}", entries_path(t.index, t.width)),
                encode_entries(&hashes[start..end]),
            ));
            let skip = (first_tile * TILE_WIDTH) as usize;
            let bundle = records[start - skip..end - skip].concat();
            objects.push((
                format!("{prefix}/{}", records_path(t.index, t.width)),
                bundle,
            ));
        }
    }
    let count = objects.len() + 1;
    store.put_all(objects)?;
    store.put(
        &format!("{prefix}/{CHECKPOINT_PATH}"),
        note.to_string().into_bytes(),
    )?;
    Ok(count)
}

/// What the archive already holds of a chain of `before` entries: the entry hashes of
/// heights 0..before, and the records of its partial last tile (the ones a run rewrites).
/// Empty when an object is missing or malformed: the log is then read from genesis alone.
/// The log may no longer hold these records (retention deleted them once archived); the
/// new checkpoint's root, checked over all the hashes, vouches for them.
fn archived_prefix(store: &Store, prefix: &str, before: u64) -> Result<Seed, ArchiveError> {
    let empty = Seed {
        hashes: Vec::new(),
        records: Vec::new(),
        keep_from: before / TILE_WIDTH * TILE_WIDTH,
    };
    let tiles = tiles_at(0, before, 0);
    let paths: Vec<String> = tiles
        .iter()
        .map(|t| format!("{prefix}/{}", entries_path(t.index, t.width)))
        .collect();
    let mut hashes = Vec::with_capacity(before as usize);
    for got in store.get_all(&paths)? {
        match got.as_deref().map(decode_entries) {
            Some(Ok(h)) => hashes.extend(h),
            _ => return Ok(empty),
        }
    }
    let mut records = Vec::new();
    if let Some(t) = tiles.last().filter(|t| t.width < TILE_WIDTH) {
        let path = format!("{prefix}/{}", records_path(t.index, t.width));
        match store.get(&path)?.as_deref().map(decode_records) {
            Some(Ok(r)) if r.len() as u64 == t.width => {
                records = r
                    .iter()
                    .map(|r| {
                        let mut b = Vec::new();
                        encode_record(r, &mut b);
                        b
                    })
                    .collect();
            }
            _ => return Ok(empty),
        }
    }
    if hashes.len() as u64 != before {
        return Ok(empty);
    }
    Ok(Seed {
        hashes,
        records,
        keep_from: empty.keep_from,
    })
}

/// A chain's start as the archive holds it: entry hashes from genesis, and the records
/// from height `keep_from` on (each encoded as in a record bundle).
struct Seed {
    hashes: Vec<Hash>,
    records: Vec<Vec<u8>>,
    keep_from: u64,
}

/// Offsets a reader takes at once while the archiver reads a log.
const CHUNK: u64 = 1 << 14;

/// What the archiver makes of one record of the log, on a reader's thread: its offset, its
/// chain headers and entry hash, and the record encoded for its bundle when the run
/// writes it (height `keep_from` and up).
type Read = (u64, Result<RecordEntry, MetaError>, Option<Vec<u8>>);

/// The entry hashes of heights 0..size of a partition, recomputed from its records (links
/// checked), and the records from height `seed.keep_from` on, encoded for their bundles.
/// The log's records below the seed's size must have the seed's hashes; the log may start
/// anywhere up to it. Records are read and hashed on every core where the log's readers
/// are cheap (the embedded log), and linked in order.
fn read_chain(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    size: u64,
    seed: Seed,
) -> Result<(Vec<Hash>, Vec<Vec<u8>>), ArchiveError> {
    let keep_from = seed.keep_from;
    let chain = ChainId::for_partition(topic, partition);
    let each = |v: &RecordView<'_>, scratch: &mut Vec<u8>| -> Read {
        let e = view_entry(chain, v, scratch);
        let keep = matches!(&e, Ok(e) if e.meta.height >= keep_from);
        let bytes = keep.then(|| {
            let mut b = Vec::new();
            encode_view(v, &mut b);
            b
        });
        (v.offset, e, bytes)
    };
    let mut links = Links {
        topic,
        partition,
        size,
        seeded: seed.hashes.len() as u64,
        hashes: seed.hashes,
        records: seed.records,
        failed: None,
    };
    links
        .hashes
        .reserve(size.saturating_sub(links.seeded) as usize);
    let workers = if log.cheap_readers() {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    };
    let range = (
        log.start_offset(topic, partition)?,
        log.end_offset(topic, partition)?,
    );
    let corrupt = kchain_topic::map_parallel(
        log,
        topic,
        partition,
        range,
        CHUNK,
        workers,
        &each,
        &mut |chunk| links.take(chunk),
    )?;
    if let Some(e) = links.failed.take() {
        return Err(e);
    }
    if (links.hashes.len() as u64) < size {
        return Err(links.bad(match corrupt {
            Some((offset, e)) => format!("offset {offset}: {e}"),
            None => format!(
                "the log holds {} entries, fewer than the checkpoint's {size}",
                links.hashes.len()
            ),
        }));
    }
    Ok((links.hashes, links.records))
}

/// The archiver's walk along the log in offset order: links checked, hashes and records
/// kept, until the checkpoint's size.
struct Links<'a> {
    topic: &'a str,
    partition: u32,
    size: u64,
    seeded: u64,
    hashes: Vec<Hash>,
    records: Vec<Vec<u8>>,
    failed: Option<ArchiveError>,
}

impl Links<'_> {
    fn bad(&self, detail: String) -> ArchiveError {
        ArchiveError::Chain {
            chain: format!("{}/{}", self.topic, self.partition),
            detail,
        }
    }

    /// Takes one chunk of what the readers made; false once done (or failed).
    fn take(&mut self, chunk: Vec<Read>) -> bool {
        let topic = self.topic;
        for (offset, e, bytes) in chunk {
            let height = self.hashes.len() as u64;
            if height == self.size {
                return false;
            }
            let e = match e {
                Ok(e) => e,
                Err(e) => {
                    self.failed = Some(self.bad(format!("offset {offset}: {e}")));
                    return false;
                }
            };
            if e.meta.height < self.seeded && height == self.seeded {
                if self.hashes[e.meta.height as usize] != e.entry_hash {
                    self.failed = Some(self.bad(format!(
                        "offset {offset}: the log's entry at height {} is not the archive's; \
                         run `kchain verify {topic}` and `kchain verify {topic} --archive URL`",
                        e.meta.height
                    )));
                    return false;
                }
                continue;
            }
            let prev = self
                .hashes
                .last()
                .copied()
                .unwrap_or(kchain_core::ZERO_HASH);
            if e.meta.height != height || e.meta.prev != prev {
                self.failed = Some(self.bad(format!(
                    "offset {offset}: height {} does not link to the entry before it; run \
                     `kchain verify {topic}`",
                    e.meta.height
                )));
                return false;
            }
            self.hashes.push(e.entry_hash);
            if let Some(b) = bytes {
                self.records.push(b);
            }
        }
        (self.hashes.len() as u64) < self.size
    }
}
