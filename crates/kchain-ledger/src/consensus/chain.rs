//! Consensus by log order: replaying the blocks topic into the canonical chain, and telling a
//! block that is merely stale or invalid (normal life, ignored) from one that was changed,
//! removed or reordered after it was stored (tampering, a finding).
//!
//! ```text
//! record at offset o
//!   │ not a block header ───────────────────────────────────────────────> ignored
//!   │ other chain / height 0 / sealer not allowed ──────────────────────> ignored
//!   │ does not hold together: the sealer's signature does not verify,
//!   │ the `hash` field is not the hash, the transactions do not match
//!   │ the signed items root and count ──────────────────────────────────> ignored (broken)
//!   │ parent = tip ──> validate ──> valid: CANONICAL (new tip) │ invalid: ignored
//!   │ parent = a canonical block, not the tip ──────────────────────────> ignored (stale)
//!   │ parent = a broken block (by the hash its header has, first seen broken)
//!   │        ──────> FINDING bad_signature / hash_mismatch / body_mismatch
//!   │                at the broken block's offset
//!   │ parent = a block seen earlier that never was canonical ───────────> FINDING parent_not_canonical
//!   └ parent appears nowhere earlier in the log ────────────────────────> FINDING missing_parent
//! ```
//!
//! A block that does not hold together is ignored when it is appended, like any other invalid
//! block: a sealer with a bug, or anyone who can write to the topic, may append one, and every
//! node must then go on identically. It becomes a finding as soon as a later block builds on
//! it, because honest sealers sign what they append and build only on a block they have seen
//! become canonical: a child of a broken block shows that the block was canonical when the
//! child was sealed and was changed since. The finding is reported at the broken block's
//! offset. The same holds for a parent that is nowhere earlier in the log (a block removed, or
//! changed so that its hash moved; the log reordered, child before parent) and for a parent
//! that was seen but never canonical (blocks reordered so that another block won the race, or
//! an allowed sealer misbehaved, which a log alone cannot tell from tampering). None of these
//! may be read as "an invalid block, ignored": that would silently shorten the chain.
//!
//! Only what an allowed sealer's valid signature vouches for is evidence: every finding above
//! is raised by a block that holds together (signed by a sealer of this ledger, for its chain
//! id), and names a parent no honest sealer would have built on. A block anyone could have
//! written (another chain id, a key the genesis does not allow, a second genesis, a broken
//! block) is ignored, wherever its parent is: otherwise one forged record would stop every
//! node. For the same reason a broken block is remembered by the hash its header really has,
//! and only if that hash was not seen before: its `hash` field, or a broken copy of a
//! canonical block, must not turn a replay of that block's genuine child into a finding.
//!
//! What a log alone cannot show: the removal, replacement or breaking of the last canonical
//! blocks (nothing after them refers to them). Anchors catch that: a node's snapshot, a
//! pinned (height, hash), and later signed checkpoints (see `ledger verify`); an anchor
//! that names a block now ignored as broken reports that block at its offset.

use std::collections::HashMap;

use kchain_core::{ChainId, Hash};

use crate::consensus::block::{items_root, BlockHeader, StoredBlock, BLOCK_SIG_TAG};
use crate::consensus::encoding::{hex_lower, parse_hex};
use crate::consensus::error::ConsensusError;
use crate::consensus::finding::{Finding, FindingKind, IgnoreReason, Observed, Verdict};
use crate::consensus::genesis::{Genesis, SealerInfo};
use crate::consensus::state::{Delta, State};
use crate::consensus::validate::{validate, validate_own, Tip, Verifier};

/// A block this node's sealer built, signed and appended, in the form it built it: what
/// [`Chain::observe_own`] takes instead of parsing the record back.
pub(crate) struct OwnBlock {
    pub block: StoredBlock,
    /// The hash of the tip it was built on.
    pub built_on: Hash,
    /// The state changes its transactions and reward make, as the sealer computed them
    /// while deciding them against the state at that tip (`None`: the reward overflowed).
    pub delta: Option<Delta>,
}

/// A block seen in the log (any record that parsed as a block header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Known {
    pub height: u64,
    pub offset: u64,
    pub canonical: bool,
}

/// A block ignored because it does not hold together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Broken {
    pub offset: u64,
    pub height: u64,
    pub prev: Hash,
    pub kind: FindingKind,
    pub detail: String,
}

impl Broken {
    /// The finding this block becomes once `why` shows it was canonical.
    fn finding(&self, why: String) -> Finding {
        Finding {
            offset: self.offset,
            height: Some(self.height),
            kind: self.kind,
            detail: format!("{}; {why}: it was changed after it was stored", self.detail),
        }
    }
}

/// The canonical chain replayed from the blocks topic, with its state.
#[derive(Clone, Debug)]
pub struct Chain {
    pub(crate) genesis: Genesis,
    pub(crate) chain_id: ChainId,
    pub(crate) state: State,
    pub(crate) tip: Tip,
    /// Hash and offset of each canonical block, by height.
    pub(crate) canonical: Vec<(Hash, u64)>,
    pub(crate) known: HashMap<Hash, Known>,
    /// Blocks ignored because they do not hold together, by the hash their header has (never
    /// the one their `hash` field states), and the last of them.
    pub(crate) broken: HashMap<Hash, Broken>,
    pub(crate) last_broken: Option<Broken>,
    /// The next offset of the blocks topic to observe.
    pub(crate) next_offset: u64,
}

impl Chain {
    /// Starts a chain from the record at the blocks topic's first offset, which must be a
    /// genesis block.
    pub fn from_genesis(
        topic: &str,
        offset: u64,
        value: Option<&[u8]>,
    ) -> Result<Chain, ConsensusError> {
        let no = |detail: String| ConsensusError::NoGenesis {
            topic: topic.to_owned(),
            offset,
            detail,
        };
        let stored = StoredBlock::parse(value.ok_or_else(|| no("the record is empty".into()))?)
            .map_err(|e| no(format!("not a block: {e}")))?;
        let genesis =
            Genesis::from_stored(&stored).map_err(|e| no(format!("not a genesis block: {e}")))?;
        let mut known = HashMap::new();
        known.insert(
            stored.hash,
            Known {
                height: 0,
                offset,
                canonical: true,
            },
        );
        Ok(Chain {
            chain_id: genesis.chain_id(),
            state: State::genesis(&genesis),
            tip: Tip {
                height: 0,
                hash: stored.hash,
                offset,
                timestamp_ms: stored.header.timestamp_ms,
                sources: stored.header.sources.clone(),
            },
            genesis,
            canonical: vec![(stored.hash, offset)],
            known,
            broken: HashMap::new(),
            last_broken: None,
            next_offset: offset + 1,
        })
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    pub fn genesis_hash(&self) -> Hash {
        self.canonical[0].0
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn tip(&self) -> &Tip {
        &self.tip
    }

    /// The next offset of the blocks topic this chain has not observed.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Hash and offset of the canonical block at `height`.
    pub fn block_at(&self, height: u64) -> Option<(Hash, u64)> {
        self.canonical.get(usize::try_from(height).ok()?).copied()
    }

    /// Height of the canonical block with this hash.
    pub fn height_of(&self, hash: &Hash) -> Option<u64> {
        self.known
            .get(hash)
            .filter(|k| k.canonical)
            .map(|k| k.height)
    }

    /// The finding for a block whose header hashes to `hash` that was ignored because it does
    /// not hold together, when `why` shows it was canonical (an anchor names it).
    pub fn broken_finding(&self, hash: &Hash, why: String) -> Option<Finding> {
        self.broken.get(hash).map(|b| b.finding(why))
    }

    /// The finding when the block `hash` an anchor saw at `height` is not the canonical block
    /// there: it was changed (ignored as broken, reported at its offset), replaced
    /// (`anchor_mismatch`) or cut off the end (`truncated`, at `end`, the topic's end offset).
    pub(crate) fn anchor_finding(&self, height: u64, hash: &Hash, end: u64) -> Option<Finding> {
        let canonical = self.block_at(height);
        if canonical.is_some_and(|(h, _)| h == *hash) {
            return None;
        }
        if let Some(f) = self.broken_finding(
            hash,
            format!("an anchor says it is the canonical block at height {height}"),
        ) {
            return Some(f);
        }
        Some(match canonical {
            Some((h, offset)) => Finding {
                offset,
                height: Some(height),
                kind: FindingKind::AnchorMismatch,
                detail: format!(
                    "the canonical block at height {height} is {}, but the anchor says {}",
                    hex_lower(&h),
                    hex_lower(hash)
                ),
            },
            None => Finding {
                offset: end,
                height: Some(height),
                kind: FindingKind::Truncated,
                detail: format!(
                    "the canonical chain ends at height {}, but the anchor saw block {} at \
                     height {height}: blocks at the end were removed or replaced",
                    self.tip().height,
                    hex_lower(hash)
                ),
            },
        })
    }

    /// Judges the record at `offset` (which must be at least [`Chain::next_offset`]) and, when
    /// it is a valid block extending the tip, makes it the tip. On a finding nothing changes.
    pub fn observe(&mut self, offset: u64, value: Option<&[u8]>, verifier: &Verifier) -> Observed {
        let stored = match value.map(StoredBlock::parse) {
            None => Err("the record is empty".to_owned()),
            Some(r) => r,
        };
        self.observe_parsed(offset, stored, verifier)
    }

    /// [`Chain::observe`] for a record already parsed with [`StoredBlock::parse`] (a sealer
    /// reading back the block it just wrote).
    pub fn observe_parsed(
        &mut self,
        offset: u64,
        stored: Result<StoredBlock, String>,
        verifier: &Verifier,
    ) -> Observed {
        let (verdict, header, hash) = match stored {
            Ok(b) => (
                self.judge(offset, &b, verifier),
                Some(b.header),
                Some(b.hash),
            ),
            Err(e) => (Verdict::Ignored(IgnoreReason::Malformed(e)), None, None),
        };
        if !matches!(verdict, Verdict::Finding(_)) {
            self.next_offset = self.next_offset.max(offset + 1);
        }
        Observed {
            offset,
            verdict,
            header,
            hash,
        }
    }

    /// [`Chain::observe_parsed`] for the block this node's sealer appended at `offset`.
    /// When it extends the tip it was built on, it is not judged again from scratch: its
    /// items root, count, hash and signature are its sealer's own by construction, its
    /// transactions were checked (shape, chain, signature) when they were ingested and
    /// decided against the state at this very tip, so the state changes computed then are
    /// the ones validating it would compute. The header and source rules are still checked.
    /// Whether the log holds these bytes is checked when the reader reaches them.
    pub(crate) fn observe_own(
        &mut self,
        offset: u64,
        own: OwnBlock,
        verifier: &Verifier,
    ) -> Observed {
        let b = own.block;
        let h = &b.header;
        let fast = own.built_on == self.tip.hash
            && h.prev == self.tip.hash
            && h.chain == self.chain_id
            && self.genesis.sealer(&h.sealer).is_some();
        let delta = match own.delta {
            Some(d) if fast && d.height == h.height => d,
            _ => return self.observe_parsed(offset, Ok(b), verifier),
        };
        let txs = b.body.as_ref().map(Vec::as_slice).unwrap_or_default();
        let verdict = match validate_own(&self.genesis, &self.tip, h, txs) {
            Ok(()) => self.accept(offset, &b, delta, verifier),
            Err(why) => {
                self.remember(&b, offset);
                Verdict::Ignored(IgnoreReason::Invalid(why))
            }
        };
        self.next_offset = self.next_offset.max(offset + 1);
        Observed {
            offset,
            verdict,
            header: Some(b.header),
            hash: Some(b.hash),
        }
    }

    /// The verdict on a parsed block: foreign or broken blocks are ignored, a block on the tip
    /// is validated, any other is judged by its parent.
    fn judge(&mut self, offset: u64, b: &StoredBlock, verifier: &Verifier) -> Verdict {
        let h = &b.header;
        let sealer = self.genesis.sealer(&h.sealer).cloned();
        let foreign = if h.chain != self.chain_id {
            Some(IgnoreReason::OtherChain)
        } else if h.height == 0 {
            Some(IgnoreReason::ExtraGenesis)
        } else if sealer.is_none() {
            Some(IgnoreReason::UnknownSealer)
        } else {
            None
        };
        if let Some(reason) = foreign {
            // Not ours to judge, wherever its parent is: no honest sealer of this ledger can
            // have built on it, and anyone who can write the topic can append it (a block of
            // another ledger, or one forged under a key of its own). A replaced genesis turns
            // every real block into one of these; that is for an anchor to catch (the
            // genesis hash, a pin, the node's snapshot, the sealers' checkpoints).
            self.remember(b, offset);
            return Verdict::Ignored(reason);
        }
        let sealer = sealer.expect("checked above");
        if let Some((kind, detail)) = holds_together(b, &sealer) {
            return self.ignore_broken(offset, b, kind, detail);
        }
        if h.prev == self.tip.hash {
            return self.extend(offset, b, verifier);
        }
        self.judge_off_tip(offset, b)
    }

    /// Ignores a block that does not hold together, remembering it for the child that would
    /// show it was changed.
    fn ignore_broken(
        &mut self,
        offset: u64,
        b: &StoredBlock,
        kind: FindingKind,
        detail: String,
    ) -> Verdict {
        let broken = Broken {
            offset,
            height: b.header.height,
            prev: b.header.prev,
            kind,
            detail: detail.clone(),
        };
        // Remembered by the hash its header really has, never by the one its `hash` field
        // states (anyone can state any hash), and only when no block with that hash was
        // seen before: a broken copy of a block already in the log (its signature zeroed,
        // its transactions changed) says nothing about the block it copies.
        if !self.known.contains_key(&b.hash) {
            self.broken.insert(b.hash, broken.clone());
        }
        self.remember(b, offset);
        self.last_broken = Some(broken);
        Verdict::Ignored(IgnoreReason::Broken { kind, detail })
    }

    /// Validates a block that holds together and builds on the tip; a valid one becomes the
    /// tip. Requires `b.header.prev` to be the tip's hash and `b.body` to be `Ok`.
    fn extend(&mut self, offset: u64, b: &StoredBlock, verifier: &Verifier) -> Verdict {
        let h = &b.header;
        let txs = b.body.as_ref().expect("checked by holds_together");
        let judged = validate(
            &self.genesis,
            self.chain_id,
            &self.tip,
            &self.state,
            h,
            txs,
            verifier,
        );
        match judged {
            Ok(delta) => self.accept(offset, b, delta, verifier),
            Err(why) => {
                self.remember(b, offset);
                Verdict::Ignored(IgnoreReason::Invalid(why))
            }
        }
    }

    /// Makes a valid block on the tip (with the state changes it makes) the new tip.
    fn accept(
        &mut self,
        offset: u64,
        b: &StoredBlock,
        delta: Delta,
        verifier: &Verifier,
    ) -> Verdict {
        let h = &b.header;
        let txs = b.body.as_deref().unwrap_or_default();
        self.state.apply(delta);
        verifier.forget(txs.iter().map(|t| *t.tx.id()));
        self.tip = Tip {
            height: h.height,
            hash: b.hash,
            offset,
            timestamp_ms: h.timestamp_ms,
            sources: h.sources.clone(),
        };
        self.canonical.push((b.hash, offset));
        self.broken.remove(&b.hash);
        self.known.insert(
            b.hash,
            Known {
                height: h.height,
                offset,
                canonical: true,
            },
        );
        Verdict::Canonical
    }

    /// Judges a block that holds together but does not build on the tip: stale when its
    /// parent is canonical, else a finding (its parent broken, never canonical, or missing).
    fn judge_off_tip(&mut self, offset: u64, b: &StoredBlock) -> Verdict {
        let h = &b.header;
        let child = format!(
            "the block at offset {offset} (height {}) builds on it",
            h.height
        );
        // A canonical parent first: a block whose parent is canonical is stale, whatever
        // broken copies of that parent were appended since.
        let parent = self.known.get(&h.prev).copied();
        if !parent.is_some_and(|p| p.canonical) {
            if let Some(broken) = self.broken.get(&h.prev) {
                return Verdict::Finding(broken.finding(child));
            }
        }
        match parent {
            Some(parent) if parent.canonical => {
                self.remember(b, offset);
                Verdict::Ignored(IgnoreReason::Stale {
                    parent_height: parent.height,
                })
            }
            Some(parent) => Verdict::Finding(Finding {
                offset,
                height: Some(h.height),
                kind: FindingKind::ParentNotCanonical,
                detail: format!(
                    "it builds on the block at offset {} (height {}), which was never \
                     canonical: the blocks were reordered, or a sealer built on an ignored block",
                    parent.offset, parent.height
                ),
            }),
            None => Verdict::Finding(self.missing_parent(offset, h, child)),
        }
    }

    /// The finding for a block whose parent appears nowhere earlier in the log.
    fn missing_parent(&self, offset: u64, h: &BlockHeader, child: String) -> Finding {
        // A broken block that would have extended the tip where this one's parent belongs
        // is, most likely, that parent with its header changed (so its hash moved) and its
        // `hash` field dropped.
        if let Some(broken) = self.last_broken.as_ref().filter(|lb| {
            lb.height + 1 == h.height
                && lb.prev == self.tip.hash
                && self.tip.height + 1 == lb.height
        }) {
            return broken.finding(format!(
                "{child}, naming a parent {} that appears nowhere, where this block would \
                 have been the tip",
                hex_lower(&h.prev)
            ));
        }
        let gap = if h.height > self.tip.height + 1 {
            format!(
                "; the canonical chain ends at height {}, so heights {}..{} are missing",
                self.tip.height,
                self.tip.height + 1,
                h.height - 1
            )
        } else {
            String::new()
        };
        Finding {
            offset,
            height: Some(h.height),
            kind: FindingKind::MissingParent,
            detail: format!(
                "its parent {} appears nowhere earlier in the log: a block was removed or \
                 changed, or the log was reordered{gap}",
                hex_lower(&h.prev)
            ),
        }
    }

    fn remember(&mut self, b: &StoredBlock, offset: u64) {
        self.known.entry(b.hash).or_insert(Known {
            height: b.header.height,
            offset,
            canonical: false,
        });
    }
}

/// Whether a block of an allowed sealer holds together: its signature verifies over its
/// recomputed hash, its `hash` field states that hash, and its transactions match the items
/// root and count the sealer signed. `None` when it does; else the finding kind it becomes
/// once something builds on it, and why.
fn holds_together(b: &StoredBlock, sealer: &SealerInfo) -> Option<(FindingKind, String)> {
    let h = &b.header;
    if let Some(detail) = unsigned(b, sealer) {
        return Some((FindingKind::BadSignature, detail));
    }
    if !b.stated_hash_matches() {
        return Some((
            FindingKind::HashMismatch,
            format!(
                "its hash field is {}, but the signed block hashes to {}",
                b.stated_hash.as_deref().unwrap_or(""),
                hex_lower(&b.hash)
            ),
        ));
    }
    let body = |detail: String| Some((FindingKind::BodyMismatch, detail));
    let txs = match &b.body {
        Err(e) => return body(format!("its transactions do not parse ({e})")),
        Ok(txs) => txs,
    };
    if txs.len() != h.tx_count as usize {
        return body(format!(
            "it holds {} transactions, but its sealer signed a count of {}",
            txs.len(),
            h.tx_count
        ));
    }
    let root = items_root(txs);
    if root != h.items_root {
        return body(format!(
            "its transactions hash to items root {}, but its sealer signed {}",
            hex_lower(&root),
            hex_lower(&h.items_root)
        ));
    }
    if b.genesis.is_some() {
        return body("a sealed block carries a genesis field, which no sealer writes".into());
    }
    None
}

/// Why the block is not signed by `sealer`, if it is not: the signature covers the hash its
/// `hash` field states (the header was changed after signing), or does not verify at all.
fn unsigned(b: &StoredBlock, sealer: &SealerInfo) -> Option<String> {
    let signed = b
        .signature
        .as_ref()
        .is_some_and(|s| sealer.key.verify_tagged(BLOCK_SIG_TAG, &b.hash, s));
    if signed {
        return None;
    }
    let covers_stated = match (&b.stated_hash, &b.signature) {
        (Some(stated), Some(sig)) => parse_hex::<32>(stated)
            .is_some_and(|sh| sealer.key.verify_tagged(BLOCK_SIG_TAG, &sh, sig)),
        _ => false,
    };
    Some(if covers_stated {
        format!(
            "sealer '{}' signed hash {}, but the block's header now hashes to {}",
            sealer.name,
            b.stated_hash.as_deref().unwrap_or(""),
            hex_lower(&b.hash)
        )
    } else {
        format!(
            "the signature of sealer '{}' does not verify over the block's hash {}",
            sealer.name,
            hex_lower(&b.hash)
        )
    })
}
