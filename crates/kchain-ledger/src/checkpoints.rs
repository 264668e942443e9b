//! Signed checkpoints of a ledger's blocks chain: the sealers' side (a chain tree kept as
//! blocks become canonical, a signed checkpoint every N blocks or T seconds and when the node
//! stops), the verifier's side (the canonical chain against the newest trusted checkpoint),
//! and proofs that a transaction is in a checkpoint.
//!
//! ```text
//! chain tree   leaf h = chain_leaf(hash of the canonical block at height h), h = 0 (genesis) ..
//! checkpoint   origin "<namespace>/<blocks topic>", size n (covers heights 0..n-1), root
//!
//!  Node ── Event::Canonical ──► TreeBuilder ──► every N blocks / T seconds / run() returns:
//!                                               sign (sealer key, note key name = the
//!                                               sealer's name in the genesis)
//!                                                   │
//!  <blocks topic>.checkpoints ◄── record: key "0", value: signed note (witnesses append
//!        │                        the same text with their cosignatures)
//!        ▼
//!  ledger verify: merge the notes of one text, keep those that meet the policy (a genesis
//!  sealer signed it, k listed witnesses cosigned it), hold the canonical chain against them:
//!    chain shorter ──► checkpoint_truncated    root differs ──► checkpoint_rewritten
//! ```
//!
//! The records use the companion-topic layout of chained topics
//! (`kchain_topic::publish_note`, partition 0), so the same readers and witnesses' append
//! path work; only the origin differs (no `/<partition>` suffix: a blocks topic has one).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{
    chain_leaf, ChainCheckpoints, Checkpoint, CheckpointTrust, Hash, NoteSigner, NoteVerifier,
    Policy, SignedNote, TrustedCheckpoint, WriterKey, DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_log::Log;
use kchain_topic::{
    publish_note, read_checkpoints, CheckpointFindingKind, CheckpointRecord, CheckpointStore,
};

use crate::client::{read_block, tx_status, TxStatus};
use crate::consensus::block::Block;
use crate::consensus::chain::Chain;
use crate::consensus::encoding::hex_lower;
use crate::consensus::genesis::{sealer_verifiers, Genesis};
use crate::consensus::proof::{ledger_origin, ProofSealer, TxProof, TX_PROOF_FORMAT};
use crate::consensus::tx::TxId;
use crate::error::LedgerError;

/// The partition of the blocks topic (its only one), which is also the checkpoint records'
/// key.
const BLOCKS_PARTITION: u32 = 0;

/// When a sealer node publishes checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// Publish once this many canonical blocks are not covered by the last checkpoint
    /// (0: not by count).
    pub every_blocks: u64,
    /// Publish once this long has passed since the last checkpoint and the chain grew
    /// (zero: not by time).
    pub every: Duration,
    /// The origin namespace (see [`ledger_origin`]).
    pub namespace: String,
    /// Where the sealer remembers the newest checkpoint it signed, outside the log (by
    /// default beside its key file): a sealer whose blocks topic was truncated or rewritten
    /// below it refuses to sign, even when the checkpoints topic was emptied too.
    pub store: Option<CheckpointStore>,
    /// The identity of the log (see [`CheckpointStore`]).
    pub backend: String,
}

impl Default for CheckpointOptions {
    /// Every 100 blocks or 10 seconds: one small record and one signature per interval.
    fn default() -> Self {
        CheckpointOptions {
            every_blocks: 100,
            every: Duration::from_secs(10),
            namespace: DEFAULT_ORIGIN_NAMESPACE.to_owned(),
            store: None,
            backend: String::new(),
        }
    }
}

/// The chain-tree leaves of the canonical heights `0..size`. Requires `size` <= the chain's
/// length (tip height + 1).
fn chain_leaves(chain: &Chain, size: u64) -> Vec<Hash> {
    chain_leaves_between(chain, 0, size)
}

/// The chain-tree leaves of the canonical heights `from..to` (`to` <= the chain's length).
fn chain_leaves_between(chain: &Chain, from: u64, to: u64) -> Vec<Hash> {
    (from..to)
        .map(|h| chain_leaf(&chain.block_at(h).expect("height within the chain").0))
        .collect()
}

/// The number of canonical blocks, genesis included.
fn chain_len(chain: &Chain) -> u64 {
    chain.tip().height + 1
}

/// The checkpoints of `origin` among `records` (those of the blocks partition), one note per
/// text with the union of its signatures; with `known`, only notes with a verified line by
/// one of them, whose lines claiming one of `known` are kept only if they verify (the lines
/// by other keys, such as witnesses' cosignatures, are kept as they are).
fn origin_checkpoints(
    records: &[CheckpointRecord],
    origin: &str,
    known: Option<&[NoteVerifier]>,
) -> Vec<(SignedNote, Checkpoint)> {
    let notes = records
        .iter()
        .filter(|r| r.chain_partition == BLOCKS_PARTITION)
        .map(|r| &r.note);
    let merged = match known {
        Some(known) => kchain_core::merge_keeping_unknown(notes, known).notes,
        None => kchain_core::merge_unverified(notes),
    };
    merged
        .into_iter()
        .filter_map(|n| {
            let c = Checkpoint::parse(n.text()).ok()?;
            (c.origin() == origin).then_some((n, c))
        })
        .collect()
}

/// The sealer's note signer: its key under its name in the genesis (the name verifiers know
/// it by), whatever name its key file gives it.
fn sealer_signer(genesis: &Genesis, key: &WriterKey) -> Result<NoteSigner, LedgerError> {
    let sealer = genesis.sealer(&key.id()).ok_or_else(|| {
        LedgerError::Invalid(format!(
            "key '{}' ({}) is not a sealer of ledger '{}'",
            key.name(),
            key.id(),
            genesis.chain
        ))
    })?;
    key.note_signer_named(&sealer.name).map_err(|e| {
        LedgerError::Invalid(format!(
            "sealer '{}' cannot sign checkpoints: {e} (a note key name has no white space and \
             no '+'); run the node without checkpoints",
            sealer.name
        ))
    })
}

// ---------------------------------------------------------------------------------------
// The sealer's side.

/// What a sealer node keeps to publish checkpoints: the chain tree (grown from the
/// canonical hashes the [`Chain`] keeps, when a checkpoint is due), its note key and the last
/// checkpoint it signed.
pub(crate) struct Publisher {
    blocks_topic: String,
    origin: String,
    signer: NoteSigner,
    options: CheckpointOptions,
    tree: TreeBuilder,
    last: Option<(SignedNote, Checkpoint)>,
    last_time: Instant,
}

impl Publisher {
    /// Builds the chain tree of `chain` (the canonical hashes it holds, whether replayed or
    /// resumed from a snapshot) and checks it against the newest checkpoint this sealer
    /// signed: a sealer never signs a checkpoint that contradicts one it signed before, so it
    /// refuses when the canonical chain is shorter than that checkpoint (truncated) or has
    /// another root at its size (rewritten), and when it finds two of its own of one size.
    pub(crate) fn open(
        log: &dyn Log,
        chain: &Chain,
        blocks_topic: &str,
        key: &WriterKey,
        options: CheckpointOptions,
    ) -> Result<Publisher, LedgerError> {
        let signer = sealer_signer(chain.genesis(), key)?;
        let origin = ledger_origin(&options.namespace, blocks_topic);
        let own = [signer.verifier()];
        let records = read_checkpoints(log, blocks_topic)?;
        let refuse = |detail: String| LedgerError::CheckpointRefused {
            origin: origin.clone(),
            detail,
        };
        let remembered = match &options.store {
            Some(store) => store.load(&options.backend, &origin)?,
            None => None,
        };
        let mut by_size: HashMap<u64, Hash> = HashMap::new();
        let mut last: Option<(SignedNote, Checkpoint)> = None;
        let mine = origin_checkpoints(&records, &origin, Some(&own));
        for (n, c) in mine.into_iter().chain(
            remembered
                .iter()
                .filter_map(|n| Checkpoint::parse(n.text()).ok().map(|c| (n.clone(), c))),
        ) {
            if by_size
                .insert(c.size(), *c.root())
                .is_some_and(|r| r != *c.root())
            {
                return Err(refuse(format!(
                    "sealer '{}' already signed two checkpoints of size {}; refusing to sign more",
                    signer.name(),
                    c.size()
                )));
            }
            if last.as_ref().is_none_or(|(_, l)| c.size() > l.size()) {
                last = Some((n, c));
            }
        }
        let len = chain_len(chain);
        let mut tree = TreeBuilder::new();
        let mut root_at_last = None;
        for leaf in chain_leaves(chain, len) {
            if last.as_ref().is_some_and(|(_, c)| c.size() == tree.size()) {
                root_at_last = Some(tree.root());
            }
            tree.push(&leaf);
        }
        if last.as_ref().is_some_and(|(_, c)| c.size() == tree.size()) {
            root_at_last = Some(tree.root());
        }
        if let Some((n, c)) = &last {
            let source = match (&options.store, &remembered) {
                (Some(store), Some(r)) if r == n => format!(
                    "remembered in {}",
                    store.path(&options.backend, &origin).display()
                ),
                _ => format!("on {blocks_topic}.checkpoints"),
            };
            if let Some(why) = kchain_core::signer_contradiction(c, len, root_at_last.as_ref()) {
                return Err(refuse(format!(
                    "{why}; sealer '{}' signed a checkpoint of size {} with root {} ({source}) \
                     and will not sign one that contradicts it; run `kchain ledger verify`",
                    signer.name(),
                    c.size(),
                    hex_lower(c.root())
                )));
            }
            if let Some(store) = &options.store {
                if remembered.as_ref() != Some(n) {
                    store.save(&options.backend, &origin, n)?;
                }
            }
        }
        Ok(Publisher {
            blocks_topic: blocks_topic.to_owned(),
            origin,
            signer,
            options,
            tree,
            last,
            last_time: Instant::now(),
        })
    }

    fn signed_size(&self) -> u64 {
        self.last.as_ref().map_or(0, |(_, c)| c.size())
    }

    /// Whether a checkpoint is due: enough blocks, or enough time, since the last.
    pub(crate) fn due(&self, chain: &Chain) -> bool {
        let pending = chain_len(chain).saturating_sub(self.signed_size());
        let o = &self.options;
        pending > 0
            && ((o.every_blocks > 0 && pending >= o.every_blocks)
                || (!o.every.is_zero() && self.last_time.elapsed() >= o.every))
    }

    /// Signs and publishes a checkpoint of `chain` as it is, unless the last one already
    /// covers it; returns it with its offset in the checkpoints topic. The tree was checked
    /// against the last signed checkpoint when the node opened and only grows by canonical
    /// blocks since (the canonical chain only grows), so the new checkpoint extends the last.
    pub(crate) fn publish(
        &mut self,
        log: &dyn Log,
        chain: &Chain,
    ) -> Result<Option<(SignedNote, Checkpoint, u64)>, LedgerError> {
        for leaf in chain_leaves_between(chain, self.tree.size(), chain_len(chain)) {
            self.tree.push(&leaf);
        }
        let (size, root) = (self.tree.size(), self.tree.root());
        if let Some((_, c)) = &self.last {
            if size < c.size() || (size == c.size() && root != *c.root()) {
                return Err(LedgerError::CheckpointRefused {
                    origin: self.origin.clone(),
                    detail: format!(
                        "refusing to sign size {size}: it contradicts the signed size {}",
                        c.size()
                    ),
                });
            }
        }
        if size == self.signed_size() && self.last.is_some() {
            return Ok(None);
        }
        let checkpoint = Checkpoint::new(&self.origin, size, root)
            .map_err(|e| LedgerError::Invalid(format!("{}: {e}", self.origin)))?;
        let note = checkpoint.sign(&self.signer);
        // Remembered before it is published: the sealer's memory is never behind the log.
        if let Some(store) = &self.options.store {
            store.save(&self.options.backend, &self.origin, &note)?;
        }
        let offset = publish_note(log, &self.blocks_topic, BLOCKS_PARTITION, &note)?;
        self.last = Some((note.clone(), checkpoint.clone()));
        self.last_time = Instant::now();
        Ok(Some((note, checkpoint, offset)))
    }
}

// ---------------------------------------------------------------------------------------
// The verifier's side.

/// A contradiction between the canonical chain and a trusted checkpoint, with the signed
/// notes that prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFinding {
    pub kind: CheckpointFindingKind,
    /// Offset in the blocks topic: its end for a truncation, the first canonical block the
    /// checkpoint does not vouch for, for a rewrite.
    pub offset: u64,
    pub height: Option<u64>,
    pub detail: String,
    /// The signed checkpoint notes, whole (two for a fork).
    pub evidence: Vec<SignedNote>,
}

impl std::fmt::Display for CheckpointFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.kind, self.offset)?;
        if let Some(h) = self.height {
            write!(f, " (height {h})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// How the canonical chain stands against its checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStatus {
    pub origin: String,
    /// Distinct checkpoint texts on the topic for the origin.
    pub seen: usize,
    /// Of those, how many did not meet the policy (ignored).
    pub untrusted: usize,
    /// The newest checkpoint that met the policy, and its note.
    pub newest: Option<(SignedNote, TrustedCheckpoint)>,
}

/// The policy for a ledger's checkpoints: signed by one of the genesis's sealers (under its
/// name in the genesis) and cosigned by `trust`'s threshold of its witnesses, for the origin
/// `<namespace>/<blocks topic>`. `threshold` overrides `trust`'s (0: the sealers alone).
pub fn ledger_policy(
    genesis: &Genesis,
    blocks_topic: &str,
    trust: &CheckpointTrust,
    threshold: Option<usize>,
) -> Result<Policy, LedgerError> {
    let threshold = threshold.unwrap_or(trust.threshold);
    Policy::new(
        sealer_verifiers(genesis),
        trust.witnesses.clone(),
        threshold,
    )
    .map(|p| p.for_origin(&ledger_origin(&trust.namespace, blocks_topic)))
    .map_err(|e| LedgerError::Invalid(e.to_string()))
}

/// What `ledger verify` holds the canonical chain against besides the checkpoints topic.
#[derive(Clone, Debug, Default)]
pub struct CheckpointAnchors {
    /// Where this verifier remembers the newest checkpoint that met its policy (`None`: no
    /// memory). Every run must find the chain consistent with it.
    pub store: Option<CheckpointStore>,
    /// The identity of the log (see [`CheckpointStore`]).
    pub backend: String,
    /// Checkpoints handed over outside the log (`--checkpoint FILE`, from a witness): they
    /// count as if read from the checkpoints topic.
    pub handed: Vec<SignedNote>,
    /// Whether a chain with blocks after genesis must have a trusted checkpoint (a trust
    /// file with a checkpoint policy was given).
    pub required: bool,
}

/// Holds a replayed canonical chain against the checkpoints in `records` (read from the
/// checkpoints topic *before* the blocks topic's end was taken, so that none covers a block
/// the replay did not reach), those handed over in `anchors` and the one it remembers, with
/// the one judge ([`kchain_core::judge`]). `end` is the end offset of the blocks topic. With
/// no finding, the newest trusted checkpoint is remembered.
pub(crate) fn check(
    chain: &Chain,
    blocks_topic: &str,
    records: &[CheckpointRecord],
    trust: &CheckpointTrust,
    end: u64,
    anchors: &CheckpointAnchors,
) -> Result<(CheckpointStatus, Option<CheckpointFinding>), LedgerError> {
    let origin = ledger_origin(&trust.namespace, blocks_topic);
    let policy = ledger_policy(chain.genesis(), blocks_topic, trust, None)?;
    let sealers_only = ledger_policy(chain.genesis(), blocks_topic, trust, Some(0))?;
    let known: Vec<NoteVerifier> = policy
        .writers()
        .iter()
        .chain(policy.witnesses())
        .cloned()
        .collect();
    let from_log = records
        .iter()
        .filter(|r| r.chain_partition == BLOCKS_PARTITION)
        .map(|r| &r.note);
    let notes: Vec<SignedNote> =
        kchain_core::merge_verified(from_log.chain(&anchors.handed), &known)
            .notes
            .into_iter()
            .filter(|n| Checkpoint::parse(n.text()).is_ok_and(|c| c.origin() == origin))
            .collect();
    let remembered = match &anchors.store {
        Some(store) => store.load(&anchors.backend, &origin)?,
        None => None,
    };
    let len = chain_len(chain);
    let judgement = kchain_core::judge::<LedgerError>(
        ChainCheckpoints {
            policy: &policy,
            writer_policy: &sealers_only,
            notes: &notes,
            entries: len,
            intact: true,
            remembered: remembered.as_ref(),
            // Genesis alone is not worth a checkpoint.
            required: anchors.required && len > 1,
        },
        &mut |sizes| {
            let max = sizes.last().copied().unwrap_or(0);
            let leaves = chain_leaves(chain, max);
            Ok(sizes
                .iter()
                .map(|&s| merkle::root(&leaves[..s as usize]))
                .collect())
        },
    )?;
    if let (Some(store), Some(note)) = (&anchors.store, &judgement.remember) {
        store.save(&anchors.backend, &origin, note)?;
    }
    let finding = judgement.finding.map(|f| {
        let offset = match (f.kind, f.height) {
            (CheckpointFindingKind::Rewritten, Some(h))
            | (CheckpointFindingKind::Rollback, Some(h))
                if h < len =>
            {
                chain.block_at(h).map_or(end, |(_, o)| o)
            }
            _ => end,
        };
        CheckpointFinding {
            kind: f.kind,
            offset,
            height: f.height,
            detail: f.detail.replace("entries", "blocks"),
            evidence: f.evidence,
        }
    });
    let status = CheckpointStatus {
        origin,
        seen: judgement.seen,
        untrusted: judgement.untrusted,
        newest: judgement.newest,
    };
    Ok((status, finding))
}

// ---------------------------------------------------------------------------------------
// Proofs.

/// A proof that transaction `id` is in its canonical block and the block in the newest
/// checkpoint that covers it, signed by a sealer of the genesis and matching `chain` (the
/// canonical chain replayed from `log`). Fails when the transaction is not sealed, when no
/// checkpoint covers its block yet, or when the chain does not match the checkpoints.
pub fn prove_tx(
    log: &dyn Log,
    chain: &Chain,
    blocks_topic: &str,
    id: &TxId,
    namespace: &str,
) -> Result<TxProof, LedgerError> {
    let (height, block_offset, index) = match tx_status(log, chain, id)? {
        TxStatus::Sealed {
            height,
            block_offset,
            index,
            ..
        } => (height, block_offset, index),
        other => {
            return Err(LedgerError::Invalid(format!(
                "transaction {} is not sealed in the canonical chain ({})",
                hex_lower(id),
                match other {
                    TxStatus::Rejected(_) => "rejected",
                    TxStatus::Pending { .. } => "pending",
                    _ => "unknown",
                }
            )))
        }
    };
    let stored = read_block(log, blocks_topic, block_offset)?;
    let txs = stored.body.clone().map_err(LedgerError::Invalid)?;
    let tx_leaves: Vec<Hash> = txs.iter().map(|s| s.leaf_hash()).collect();
    let tx_path = merkle::inclusion_proof(&tx_leaves, index as u64)
        .map_err(|e| LedgerError::Invalid(e.to_string()))?;

    let origin = ledger_origin(namespace, blocks_topic);
    let sealers = sealer_verifiers(chain.genesis());
    let signed_by_sealer =
        Policy::new(sealers.clone(), vec![], 0).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    let records = read_checkpoints(log, blocks_topic)?;
    let len = chain_len(chain);
    let mut candidates: Vec<(SignedNote, Checkpoint)> =
        origin_checkpoints(&records, &origin, Some(&sealers))
            .into_iter()
            .filter(|(n, c)| {
                c.size() > height && c.size() <= len && signed_by_sealer.check(n).is_ok()
            })
            .collect();
    candidates.sort_by_key(|(n, c)| (c.size(), n.signatures().len()));
    let leaves = chain_leaves(chain, candidates.last().map_or(0, |(_, c)| c.size()));
    let (note, checkpoint) = candidates
        .into_iter()
        .rev()
        .find(|(_, c)| merkle::root(&leaves[..c.size() as usize]) == *c.root())
        .ok_or_else(|| {
            LedgerError::Invalid(format!(
                "{origin}: no checkpoint signed by a sealer covers height {height} and matches \
                 the canonical chain yet (sealers publish one every few blocks or seconds and \
                 when they stop; if one exists, run `kchain ledger verify`)"
            ))
        })?;
    let block_path = merkle::inclusion_proof(&leaves[..checkpoint.size() as usize], height)
        .map_err(|e| LedgerError::Invalid(e.to_string()))?;
    let genesis_path = merkle::inclusion_proof(&leaves[..checkpoint.size() as usize], 0)
        .map_err(|e| LedgerError::Invalid(e.to_string()))?;
    let header_only = Block {
        header: stored.header.clone(),
        signature: stored.signature,
        txs: vec![],
        genesis: None,
    };
    let sealed = &txs[index];
    Ok(TxProof {
        format: TX_PROOF_FORMAT.to_owned(),
        tx: sealed.tx.to_json_value(),
        partition: sealed.partition,
        offset: sealed.offset,
        index: index as u64,
        tx_proof: tx_path.iter().map(|h| hex_lower(h)).collect(),
        block: serde_json::from_slice(&header_only.to_json())
            .map_err(|e| LedgerError::Invalid(e.to_string()))?,
        height,
        block_proof: block_path.iter().map(|h| hex_lower(h)).collect(),
        checkpoint: note.to_text(),
        sealers: chain
            .genesis()
            .sealers
            .iter()
            .map(|s| ProofSealer {
                name: s.name.clone(),
                public_key: s.key.to_hex(),
            })
            .collect(),
        genesis_proof: genesis_path.iter().map(|h| hex_lower(h)).collect(),
    })
}

// ---------------------------------------------------------------------------------------
// A witness of the ledger's checkpoints.

/// One pass of a witness over a ledger's checkpoints (`<blocks>.checkpoints`): replays the
/// blocks topic into the canonical chain and, exactly as for a chained topic
/// ([`kchain_topic::witness_origin`]), cosigns every checkpoint signed by a genesis sealer
/// that extends the last one it cosigned (its leaves: the canonical block hashes), refuses
/// and marks a fork, and publishes its cosignatures to the checkpoints topic. `state_dir`
/// keeps its state per origin. A blocks topic with a finding is an error: a witness does not
/// prove anything from a log that was tampered with.
pub fn witness_ledger_pass(
    log: &dyn Log,
    blocks_topic: &str,
    cosigner: &kchain_core::Cosigner,
    state_dir: &std::path::Path,
    namespace: &str,
    now: u64,
) -> Result<Vec<kchain_topic::WitnessEvent>, LedgerError> {
    let replayed = crate::client::replay(log, blocks_topic, None)?;
    if let Some(f) = replayed.finding {
        return Err(LedgerError::Tampered(Box::new(f)));
    }
    let chain = &replayed.chain;
    let writers = sealer_verifiers(chain.genesis());
    let witness = kchain_core::Witness::new(cosigner.clone(), writers.clone());
    let records = read_checkpoints(log, blocks_topic)?;
    let notes: Vec<&SignedNote> = records
        .iter()
        .filter(|r| r.chain_partition == BLOCKS_PARTITION)
        .map(|r| &r.note)
        .collect();
    let origin = ledger_origin(namespace, blocks_topic);
    let entries = chain_len(chain);
    let mut leaves = |from: u64, to: u64| Ok(chain_leaves_between(chain, from, to.min(entries)));
    let events = kchain_topic::witness_origin(
        kchain_topic::OriginLog {
            origin: &origin,
            notes: &notes,
            writers: &writers,
            entries,
            leaves: &mut leaves,
        },
        &witness,
        state_dir,
        now,
        &mut |note| publish_note(log, blocks_topic, BLOCKS_PARTITION, note).map(drop),
    )?;
    Ok(events)
}
