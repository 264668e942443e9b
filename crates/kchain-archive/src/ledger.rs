//! A ledger's blocks chain archived and verified like a topic's partition: the same tiles,
//! bundles, checkpoint-last writes and verifier ([`write_tree`], [`verify_tree`]); what
//! differs is where the entries come from (the canonical blocks, entry hash = block hash),
//! where the checkpoint comes from (the sealers' notes on `<blocks>.checkpoints`) and which
//! keys sign it (the genesis's sealers, `kchain_ledger::ledger_policy`).
//!
//! ```text
//! <url>/<blocks topic>/checkpoint, tile/..., kchain/records/...   (origin <ns>/<blocks topic>)
//!
//!  archive: replay the blocks topic ──► canonical blocks 0..n ──► tree root == sealer
//!           checkpoint's? ──► write_tree (tiles, bundles of the block records, note last)
//!  verify:  record 0 = genesis ── == trusted genesis? ──► its sealers ──► ledger_policy
//!           verify_tree(entry = block hash, link = header height/prev) ──► findings
//!           clean? replay the archived blocks by the ledger's rules ──► block_invalid
//! ```

use kchain_core::{chain_leaf, merkle, ChainId, Checkpoint, CheckpointTrust, Hash, SignedNote};
use kchain_ledger::{ledger_policy, replay, Chain, StoredBlock, Verdict, Verifier};
use kchain_log::{Log, Record};
use kchain_topic::files::CheckpointStore;

use crate::bundle::{decode_records, encode_record};
use crate::check::{verify_tree, Linked};
use crate::error::ArchiveError;
use crate::finding::{ArchiveFindingKind as Kind, ChainVerified};
use crate::path::{records_path, tiles_at, CHECKPOINT_PATH, TILE_WIDTH};
use crate::store::Store;
use crate::tiles::TreeTiles;
use crate::write::{archived_size, write_tree, ChainArchived};

/// Archives the canonical blocks of the ledger whose blocks topic is `blocks_topic` into
/// `store` under `<blocks_topic>/`, up to the newest sealer checkpoint that meets `trust`
/// (the genesis's sealers, `trust`'s witnesses and threshold). Incremental and kill-safe as
/// for a topic. Refuses (an error) a ledger that does not replay cleanly or whose canonical
/// chain does not have that checkpoint's root: `kchain ledger verify` says why.
pub fn archive_ledger(
    log: &dyn Log,
    blocks_topic: &str,
    trust: &CheckpointTrust,
    store: &Store,
) -> Result<ChainArchived, ArchiveError> {
    let bad = |detail: String| ArchiveError::Chain {
        chain: blocks_topic.into(),
        detail,
    };
    let replayed = replay(log, blocks_topic, None)?;
    if let Some(f) = replayed.finding {
        return Err(bad(format!("{f}; run `kchain ledger verify`")));
    }
    let chain = replayed.chain;
    let len = chain.tip().height + 1;
    let before = archived_size(store, blocks_topic)?;
    let skipped = |why: &str| ChainArchived {
        partition: 0,
        before,
        size: before,
        objects: 0,
        skipped: (!why.is_empty()).then(|| why.into()),
    };
    let Some((note, cp)) = newest_checkpoint(log, blocks_topic, &chain, trust, len)? else {
        return Ok(skipped("no sealer checkpoint meets the trust policy yet"));
    };
    let current = store.get(&format!("{blocks_topic}/{CHECKPOINT_PATH}"))?;
    if before > cp.size() || current.as_deref() == Some(note.to_string().as_bytes()) {
        return Ok(skipped(""));
    }
    let hashes: Vec<Hash> = (0..cp.size())
        .map(|h| chain.block_at(h).expect("height within the chain").0)
        .collect();
    let tiles = TreeTiles::new(hashes.iter().map(chain_leaf).collect());
    if merkle::root(tiles.leaves()) != *cp.root() {
        return Err(bad(format!(
            "the canonical blocks 0..{} do not have the root of the sealers' checkpoint; run \
             `kchain ledger verify`",
            cp.size()
        )));
    }
    let keep_from = before / TILE_WIDTH * TILE_WIDTH;
    let offsets: Vec<u64> = (keep_from..cp.size())
        .map(|h| chain.block_at(h).expect("height within the chain").1)
        .collect();
    let records = read_records(log, blocks_topic, &offsets).map_err(|e| match e {
        ArchiveError::Chain { detail, .. } => bad(detail),
        e => e,
    })?;
    let objects = write_tree(
        store,
        blocks_topic,
        before,
        &tiles,
        &hashes,
        &records,
        &note,
    )?;
    Ok(ChainArchived {
        partition: 0,
        before,
        size: cp.size(),
        objects,
        skipped: None,
    })
}

/// The newest checkpoint of the ledger on its checkpoints topic that meets the policy and
/// covers no more than the `len` canonical blocks, the signatures of its copies merged.
fn newest_checkpoint(
    log: &dyn Log,
    blocks_topic: &str,
    chain: &Chain,
    trust: &CheckpointTrust,
    len: u64,
) -> Result<Option<(SignedNote, Checkpoint)>, ArchiveError> {
    let policy = ledger_policy(chain.genesis(), blocks_topic, trust, None)?;
    let records = kchain_topic::checkpoints::read_checkpoints(log, blocks_topic)?;
    let known: Vec<_> = policy
        .writers()
        .iter()
        .chain(policy.witnesses())
        .cloned()
        .collect();
    let notes = records
        .iter()
        .filter(|r| r.chain_partition == 0)
        .map(|r| &r.note);
    Ok(kchain_core::merge_verified(notes, &known)
        .notes
        .into_iter()
        .filter_map(|n| {
            let cp = policy.check(&n).ok()?.checkpoint;
            (cp.size() <= len).then_some((n, cp))
        })
        .max_by_key(|(n, c)| (c.size(), n.signatures().len())))
}

/// The records of the blocks topic at `offsets` (ascending), each encoded for a record
/// bundle.
fn read_records(
    log: &dyn Log,
    blocks_topic: &str,
    offsets: &[u64],
) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let Some(&first) = offsets.first() else {
        return Ok(Vec::new());
    };
    let mut reader = log.reader(blocks_topic, 0, first)?;
    let mut out = Vec::with_capacity(offsets.len());
    let mut idle = 0;
    while out.len() < offsets.len() && idle < 50 {
        let got = reader.poll(4096, std::time::Duration::from_millis(200))?;
        idle = if got.is_empty() { idle + 1 } else { 0 };
        for r in got {
            if offsets.get(out.len()) == Some(&r.offset) {
                let mut b = Vec::new();
                encode_record(&r.record, &mut b);
                out.push(b);
            }
        }
    }
    if out.len() < offsets.len() {
        return Err(ArchiveError::Chain {
            chain: blocks_topic.into(),
            detail: format!(
                "the block at offset {} could not be read",
                offsets[out.len()]
            ),
        });
    }
    Ok(out)
}

/// The genesis a verifier trusts for a ledger: its block hash or its chain id (the `--genesis`
/// file, or the trust file's `[[ledger]]`). Its sealers are the keys a checkpoint must be
/// signed by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenesisAnchor {
    pub hash: Option<Hash>,
    pub chain_id: Option<ChainId>,
}

/// Verifies the ledger archived under `<blocks_topic>/` in `store`: its genesis (the first
/// archived record) against `anchor`, its checkpoint against the genesis's sealers and
/// `trust`'s witnesses, every block hash, tile and the root as for a topic's partition, and,
/// when all that is clean, the archived blocks replayed by the ledger's rules from genesis.
/// An empty `anchor` trusts the archive's own genesis (the CLI always gives one).
pub fn verify_ledger_archive(
    store: &Store,
    blocks_topic: &str,
    trust: &CheckpointTrust,
    anchor: &GenesisAnchor,
    remembered: Option<&CheckpointStore>,
) -> Result<ChainVerified, ArchiveError> {
    let mut v = ChainVerified::new(0);
    let Some(genesis) = archived_genesis(store, blocks_topic, anchor, &mut v)? else {
        return Ok(v);
    };
    let policy = ledger_policy(genesis.genesis(), blocks_topic, trust, None)?;
    let entry_of = |r: &Record, _: &mut Vec<u8>| -> Result<Linked, String> {
        let value = r.value.as_deref().ok_or("the record has no value")?;
        let b = StoredBlock::parse(value).map_err(|e| format!("not a block: {e}"))?;
        Ok(Linked {
            height: b.header.height,
            prev: b.header.prev,
            hash: b.hash,
        })
    };
    verify_tree(store, blocks_topic, &policy, &entry_of, remembered, &mut v)?;
    if v.ok() {
        replay_archived(store, blocks_topic, genesis, &mut v)?;
    }
    Ok(v)
}

/// The ledger's genesis as the archive holds it (record 0 of the first record bundle), held
/// against `anchor`; None, with a finding, when it is missing, not a genesis block or not
/// the trusted one.
fn archived_genesis(
    store: &Store,
    blocks_topic: &str,
    anchor: &GenesisAnchor,
    v: &mut ChainVerified,
) -> Result<Option<Chain>, ArchiveError> {
    let size = store
        .get(&format!("{blocks_topic}/{CHECKPOINT_PATH}"))?
        .and_then(|b| SignedNote::parse(&b).ok())
        .and_then(|n| Checkpoint::parse(n.text()).ok())
        .map_or(0, |c| c.size());
    if size == 0 {
        v.find(
            Kind::CheckpointMissing,
            None,
            "the archive has no checkpoint of the ledger".into(),
        );
        return Ok(None);
    }
    let path = format!("{blocks_topic}/{}", records_path(0, size.min(TILE_WIDTH)));
    let Some(bundle) = store.get(&path)? else {
        v.object_problem(&path, 0, true, "record bundle with the genesis");
        return Ok(None);
    };
    let Some(first) = decode_records(&bundle)
        .ok()
        .and_then(|r| r.into_iter().next())
    else {
        v.object_problem(&path, 0, false, "record bundle with the genesis");
        return Ok(None);
    };
    let chain = match Chain::from_genesis(blocks_topic, 0, first.value.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            v.find(Kind::BlockInvalid, Some(0), e.to_string());
            return Ok(None);
        }
    };
    let wrong = anchor.hash.is_some_and(|h| h != chain.genesis_hash())
        || anchor.chain_id.is_some_and(|c| c != chain.chain_id());
    if wrong {
        v.find(
            Kind::BlockInvalid,
            Some(0),
            "the archived genesis is not the trusted one (--genesis, or the trust file's \
             [[ledger]])"
                .into(),
        );
        return Ok(None);
    }
    Ok(Some(chain))
}

/// Replays the archived blocks 1..size on `chain` (started from the archived genesis) by the
/// ledger's rules: each must extend the tip (sealer signature, transactions, state).
fn replay_archived(
    store: &Store,
    blocks_topic: &str,
    mut chain: Chain,
    v: &mut ChainVerified,
) -> Result<(), ArchiveError> {
    let verifier = Verifier::new();
    for window in tiles_at(0, v.size, 0).chunks(32) {
        let paths: Vec<String> = window
            .iter()
            .map(|t| format!("{blocks_topic}/{}", records_path(t.index, t.width)))
            .collect();
        for (t, got) in window.iter().zip(store.get_all(&paths)?) {
            let records = got
                .and_then(|b| decode_records(&b).ok())
                .unwrap_or_default();
            for (k, r) in records.iter().enumerate() {
                let height = t.index * TILE_WIDTH + k as u64;
                if height == 0 {
                    continue;
                }
                let seen = chain.observe(height, r.value.as_deref(), &verifier);
                match seen.verdict {
                    Verdict::Canonical => {}
                    Verdict::Ignored(why) => {
                        v.find(Kind::BlockInvalid, Some(height), format!("{why:?}"));
                        return Ok(());
                    }
                    Verdict::Finding(f) => {
                        v.find(Kind::BlockInvalid, Some(height), f.detail);
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}
