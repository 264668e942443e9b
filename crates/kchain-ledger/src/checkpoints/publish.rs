//! The sealer's side: a chain tree kept as blocks become canonical, and a signed checkpoint
//! every N blocks or T seconds and when the node stops, never one that contradicts a
//! checkpoint the sealer signed before. In push mode the checkpoint goes to the witnesses
//! first and is published with their cosignatures (the writers' `Pusher`, shared).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{Checkpoint, Hash, NoteSigner, SignedNote, WriterKey, DEFAULT_ORIGIN_NAMESPACE};
use kchain_log::Log;
use kchain_topic::{
    checkpoints::{publish_note, read_checkpoints, PushOptions, Pusher},
    files::CheckpointStore,
};

use super::leaves::{
    chain_leaves, chain_leaves_between, chain_len, origin_checkpoints, BLOCKS_PARTITION,
};
use crate::consensus::chain::Chain;
use crate::consensus::encoding::hex_lower;
use crate::consensus::genesis::Genesis;
use crate::consensus::proof::ledger_origin;
use crate::error::LedgerError;

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
    /// Push mode: submit every checkpoint to these witnesses and publish it with their
    /// cosignatures; `None`: publish it as signed.
    pub push: Option<PushOptions>,
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
            push: None,
        }
    }
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
    pusher: Option<Pusher>,
}

/// A checkpoint published to the checkpoints topic, at this offset.
pub(crate) type Published = (Checkpoint, u64);

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
        let records = read_checkpoints(log, blocks_topic)?;
        let refuse = |detail: String| LedgerError::CheckpointRefused {
            origin: origin.clone(),
            detail,
        };
        let remembered = match &options.store {
            Some(store) => store.load(&options.backend, &origin)?,
            None => None,
        };
        let mine = origin_checkpoints(&records, &origin, Some(&[signer.verifier()]));
        let last = newest_signed(mine, remembered.as_ref()).map_err(|size| {
            refuse(format!(
                "sealer '{}' already signed two checkpoints of size {size}; refusing to sign more",
                signer.name(),
            ))
        })?;
        let len = chain_len(chain);
        let (tree, root_at_last) = grow_tree(chain, last.as_ref().map(|(_, c)| c.size()));
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
        let pusher = match &options.push {
            Some(push) => {
                // The witnesses' proofs start at the last signed checkpoint.
                let at = last.as_ref().map_or(0, |(_, c)| c.size());
                let mut p = Pusher::start(push.clone(), sized_tree(chain, at))?;
                p.add_entries(block_hashes(chain, at, len));
                Some(p)
            }
            None => None,
        };
        Ok(Publisher {
            blocks_topic: blocks_topic.to_owned(),
            origin,
            signer,
            options,
            tree,
            last,
            last_time: Instant::now(),
            pusher,
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
    /// covers it; returns the signed note, and adds what it published (with offsets in the
    /// checkpoints topic) to `published`. In push mode the note goes to the witnesses and is
    /// published when they answered ([`Publisher::publish_pushed`], [`Publisher::settle`]).
    /// The tree was checked against the last signed checkpoint when the node opened and only
    /// grows by canonical blocks since (the canonical chain only grows), so the new
    /// checkpoint extends the last.
    pub(crate) fn publish(
        &mut self,
        log: &dyn Log,
        chain: &Chain,
        published: &mut Vec<Published>,
    ) -> Result<Option<SignedNote>, LedgerError> {
        let from = self.tree.size();
        for leaf in chain_leaves_between(chain, from, chain_len(chain)) {
            self.tree.push(&leaf);
        }
        if let Some(p) = &mut self.pusher {
            p.add_entries(block_hashes(chain, from, self.tree.size()));
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
        match &mut self.pusher {
            Some(p) => {
                let prove = |old: u64| {
                    merkle::consistency_proof(&chain_leaves(chain, size), old)
                        .map_err(|e| e.to_string())
                };
                p.submit(note.clone(), size, &prove);
            }
            None => {
                let offset = publish_note(log, &self.blocks_topic, BLOCKS_PARTITION, &note)?;
                published.push((checkpoint.clone(), offset));
            }
        }
        self.publish_pushed(log, published)?;
        self.last = Some((note.clone(), checkpoint));
        self.last_time = Instant::now();
        Ok(Some(note))
    }

    /// Publishes the checkpoints whose pushes to the witnesses are over; never waits.
    pub(crate) fn publish_pushed(
        &mut self,
        log: &dyn Log,
        published: &mut Vec<Published>,
    ) -> Result<(), LedgerError> {
        let ready = self.pusher.as_mut().map(Pusher::ready).unwrap_or_default();
        self.publish_all(log, ready, published)
    }

    /// Waits (at most push mode's wait) for the pushes of the checkpoints signed so far, and
    /// publishes them with the cosignatures that came.
    pub(crate) fn settle(
        &mut self,
        log: &dyn Log,
        chain: &Chain,
        published: &mut Vec<Published>,
    ) -> Result<(), LedgerError> {
        let size = self.signed_size();
        let prove = |old: u64| {
            merkle::consistency_proof(&chain_leaves(chain, size), old).map_err(|e| e.to_string())
        };
        let settled = match &mut self.pusher {
            Some(p) => p.settle(&prove),
            None => Vec::new(),
        };
        self.publish_all(log, settled, published)
    }

    fn publish_all(
        &self,
        log: &dyn Log,
        notes: Vec<SignedNote>,
        published: &mut Vec<Published>,
    ) -> Result<(), LedgerError> {
        for note in notes {
            let offset = publish_note(log, &self.blocks_topic, BLOCKS_PARTITION, &note)?;
            if let Ok(c) = Checkpoint::parse(note.text()) {
                published.push((c, offset));
            }
        }
        Ok(())
    }
}

/// The hashes of the canonical blocks at heights `from..to` (what the pusher hashes into
/// chain leaves).
fn block_hashes(chain: &Chain, from: u64, to: u64) -> Vec<Hash> {
    (from..to)
        .map(|h| chain.block_at(h).expect("height within the chain").0)
        .collect()
}

/// The chain tree of the first `size` canonical blocks.
fn sized_tree(chain: &Chain, size: u64) -> TreeBuilder {
    let mut tree = TreeBuilder::new();
    chain_leaves(chain, size).iter().for_each(|l| tree.push(l));
    tree
}

/// The newest of a sealer's own checkpoints (`mine`, from the log, and the one it
/// `remembered`); `Err(size)` when two of them of one size have different roots.
fn newest_signed(
    mine: Vec<(SignedNote, Checkpoint)>,
    remembered: Option<&SignedNote>,
) -> Result<Option<(SignedNote, Checkpoint)>, u64> {
    let mut by_size: HashMap<u64, Hash> = HashMap::new();
    let mut last: Option<(SignedNote, Checkpoint)> = None;
    let remembered = remembered
        .into_iter()
        .filter_map(|n| Checkpoint::parse(n.text()).ok().map(|c| (n.clone(), c)));
    for (n, c) in mine.into_iter().chain(remembered) {
        if by_size
            .insert(c.size(), *c.root())
            .is_some_and(|r| r != *c.root())
        {
            return Err(c.size());
        }
        if last.as_ref().is_none_or(|(_, l)| c.size() > l.size()) {
            last = Some((n, c));
        }
    }
    Ok(last)
}

/// The chain tree of every canonical block of `chain`, and its root at size `at` when the
/// chain reaches it.
fn grow_tree(chain: &Chain, at: Option<u64>) -> (TreeBuilder, Option<Hash>) {
    let mut tree = TreeBuilder::new();
    let mut root_at = None;
    for leaf in chain_leaves(chain, chain_len(chain)) {
        if at == Some(tree.size()) {
            root_at = Some(tree.root());
        }
        tree.push(&leaf);
    }
    if at == Some(tree.size()) {
        root_at = Some(tree.root());
    }
    (tree, root_at)
}
