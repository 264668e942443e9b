//! The streaming chain verifier.
//!
//! Verification has two halves. [`observe`] turns one stored record into an [`Observation`]:
//! it parses the `kchain.*` headers, recomputes the item leaf hash and the entry hash, and
//! checks the signature if the record ends a batch. Observations are independent of each
//! other, so callers compute them in parallel. [`ChainVerifier`] then takes observations in
//! log order and checks what is sequential: genesis, height continuity, links, and that every
//! record is covered by a valid signature of a trusted writer.
//!
//! ```text
//!  records ──► observe (parallel) ──► ChainVerifier::push (in order) ──► Summary
//!                                         │ window of 3 observations:
//!                                         │ a record is judged with the next two in view
//! ```
//!
//! The verifier holds O(1) memory: the current tip, the last signed record and a window of
//! three observations. The small look-ahead is what lets it name the *first* bad record and
//! say what happened to it: when record `i` no longer links to record `i-1`, either `i-1` was
//! changed (and `i+1` still links to `i`) or `i`'s link was changed (and `i+1` does not).
//!
//! **Which record a finding names.** A record is vouched for by a valid signature over its
//! hash, or by a successor that links to it. A finding names the earliest record that could
//! have changed given that evidence, never a later one: when `i` links neither to `i-1` nor
//! from `i+1`, it names `i-1` unless a signature vouches for `i-1` (either `i`'s link alone was
//! changed, or both records were); when a signature does not verify, it names the signed
//! record itself if the records before it still link to it. An attacker who edits a record
//! and recomputes the links after it up to the next signature moves the break to that
//! signature; only the signature can catch that, and it cannot say which of its records
//! changed.
//!
//! **Pending records.** Records at the end of what was read that no signature covers yet are
//! *pending*: a reader can see part of a batch before the record that signs it (a Kafka
//! producer splits one batch over several requests). [`ChainVerifier::finish_pending`]
//! reports them as pending, [`ChainVerifier::finish`] as `unsigned`; the caller decides which
//! after waiting a grace of its own clock (see `docs/pending.md`). A run of unsigned records
//! longer than any writer's batch ([`PendingLimits`]) is `unsigned` at once.

use std::collections::VecDeque;
use std::fmt;

use crate::chain::{is_chain_header, record_entry_header, ChainMeta, MetaError};
use crate::entry::ChainId;
use crate::hash::{Hash, ZERO_HASH};
use crate::hex::to_hex;
use crate::item::ItemRef;
use crate::keys::KeyId;
use crate::trust::{KeyStanding, Trust};

/// What the verifier found wrong with a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// A record's content (key, value, application headers, timestamp) was changed.
    PayloadChanged,
    /// A `kchain.*` header field (height) was changed.
    HeaderChanged,
    /// A record's link to its predecessor was changed.
    LinkBroken,
    /// Records were deleted: heights are missing.
    Missing,
    /// A record that does not belong to the chain was inserted.
    Inserted,
    /// Records appear out of height order.
    Reordered,
    /// A record appears twice.
    Duplicate,
    /// A signature does not verify (forged, or the signed record was changed).
    BadSignature,
    /// Records that no writer signature covers: forged at the tip, or an unfinished batch.
    Unsigned,
    /// Records signed by a key the trust file does not list.
    UnknownKey,
    /// Records from another writer: not a kchain record, or a key not trusted for this topic.
    ForeignWriter,
    /// `kchain.*` headers that do not parse.
    Malformed,
    /// The genesis record differs from the trusted or linked one.
    GenesisMismatch,
    /// The chain ends below a trusted tip.
    Truncated,
    /// The entry at a trusted tip's height differs from the trusted hash (rewritten history).
    TipMismatch,
    /// An encrypted record's data key is not in the keyring (only when verifying with one).
    KeyMissing,
    /// An encrypted record does not decrypt with its keyring key: wrong key under that id,
    /// a ciphertext moved to another place, truncated, or a malformed `kchain.enc` header.
    DecryptFailed,
    /// A stored batch of records fails its integrity check (CRC, framing, offsets): the
    /// bytes at this offset were changed on disk or by the broker.
    Corrupt,
    /// A partition that a pin or a remembered checkpoint names is missing from the log.
    PartitionMissing,
}

impl FindingKind {
    /// The stable machine name of this kind (used in `--json` output).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::PayloadChanged => "payload_changed",
            FindingKind::HeaderChanged => "header_changed",
            FindingKind::LinkBroken => "link_broken",
            FindingKind::Missing => "missing",
            FindingKind::Inserted => "inserted",
            FindingKind::Reordered => "reordered",
            FindingKind::Duplicate => "duplicate",
            FindingKind::BadSignature => "bad_signature",
            FindingKind::Unsigned => "unsigned",
            FindingKind::UnknownKey => "unknown_key",
            FindingKind::ForeignWriter => "foreign_writer",
            FindingKind::Malformed => "malformed",
            FindingKind::GenesisMismatch => "genesis_mismatch",
            FindingKind::Truncated => "truncated",
            FindingKind::TipMismatch => "tip_mismatch",
            FindingKind::KeyMissing => "key_missing",
            FindingKind::DecryptFailed => "decrypt_failed",
            FindingKind::Corrupt => "corrupt",
            FindingKind::PartitionMissing => "partition_missing",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first bad record of a chain: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub offset: u64,
    pub height: u64,
    pub kind: FindingKind,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {} (height {}): {}",
            self.kind, self.offset, self.height, self.detail
        )
    }
}

/// How a record's signature (if it carries one) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigCheck {
    /// No signature: a record inside a batch.
    None,
    /// Valid, by a key trusted for this topic.
    Valid(KeyId),
    /// Signed by a trusted key, but the signature does not verify over the record's hash.
    Invalid(KeyId),
    /// Signed by a key the trust file does not list.
    Unknown(KeyId),
    /// Signed (validly or not) by a key trusted only for other topics.
    OtherTopics(KeyId),
}

/// One record's recomputed chain fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    pub offset: u64,
    pub height: u64,
    pub prev: Hash,
    /// The entry hash recomputed from the record's content.
    pub hash: Hash,
    pub sig: SigCheck,
}

/// What [`observe`] makes of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    Entry(Observed),
    Malformed { offset: u64, error: MetaError },
}

impl Observation {
    pub fn offset(&self) -> u64 {
        match self {
            Observation::Entry(o) => o.offset,
            Observation::Malformed { offset, .. } => *offset,
        }
    }

    fn entry(&self) -> Option<&Observed> {
        match self {
            Observation::Entry(o) => Some(o),
            Observation::Malformed { .. } => None,
        }
    }
}

/// What [`observe`] needs to know about the chain a record belongs to.
#[derive(Clone, Copy, Debug)]
pub struct ChainContext<'t> {
    pub topic: &'t str,
    pub chain: ChainId,
    pub trust: &'t Trust,
}

/// Recomputes one record's entry hash and checks its signature. `headers` are all the
/// record's headers (kchain's and the application's) in order; `scratch` is reused space.
pub fn observe<'a, H>(
    ctx: &ChainContext<'_>,
    offset: u64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: H,
    timestamp_ms: i64,
    scratch: &mut Vec<u8>,
) -> Observation
where
    H: Iterator<Item = (&'a str, &'a [u8])> + Clone,
{
    let meta = match ChainMeta::parse(headers.clone()) {
        Ok(m) => m,
        Err(error) => return Observation::Malformed { offset, error },
    };
    let item = ItemRef {
        key,
        value,
        headers: headers.filter(|(n, _)| !is_chain_header(n)),
        timestamp_ms,
    };
    let hash = record_entry_header(ctx.chain, meta.height, meta.prev, &item, scratch).hash();
    let sig = match meta.signature {
        None => SigCheck::None,
        Some((id, sig)) => match ctx.trust.standing(id, ctx.topic) {
            KeyStanding::Allowed(k) if k.verify_entry(&hash, &sig) => SigCheck::Valid(id),
            KeyStanding::Allowed(_) => SigCheck::Invalid(id),
            KeyStanding::OtherTopics(_) => SigCheck::OtherTopics(id),
            KeyStanding::Unknown => SigCheck::Unknown(id),
        },
    };
    Observation::Entry(Observed {
        offset,
        height: meta.height,
        prev: meta.prev,
        hash,
        sig,
    })
}

/// Anchors a verifier holds from outside the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    /// The trusted entry hash of the genesis record.
    pub genesis: Option<Hash>,
    /// A trusted (height, entry hash): the chain must reach it and agree with it.
    pub tip: Option<(u64, Hash)>,
}

/// A record the verifier has accepted into the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub offset: u64,
    pub height: u64,
    pub hash: Hash,
    pub prev: Hash,
    /// The record carries a valid signature of a trusted writer.
    pub signed: bool,
}

/// The result of verifying a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Records verified: linked from genesis and covered by a valid writer signature.
    pub entries: u64,
    /// The last verified record.
    pub tip: Option<Link>,
    /// Records after `tip` that linked correctly but that no signature covers.
    pub pending: u64,
    /// The offset of the first of those records, when there are any.
    pub pending_from: Option<u64>,
    /// The first problem, if any.
    pub finding: Option<Finding>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.finding.is_none()
    }
}

const WINDOW: usize = 3;

/// How long a run of records without a signature may be before the run itself is a finding.
///
/// kchain's writer signs the last record of every batch, and a batch holds at most
/// `WriterOptions::max_batch_records` records (8,192 by default) and, when it holds more than
/// one record, at most `max_batch_bytes` of them (4 MiB). A longer run is not a batch in
/// progress: it is `unsigned`. The defaults leave room above the writer's defaults; a writer
/// configured for larger batches needs readers configured alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    /// The most records one run may hold before its signature.
    pub records: u64,
    /// The most bytes (keys, values, header names and values) a run of two or more records
    /// may hold; a single record is bounded by the log's own record size limit. The verifier
    /// does not see record sizes: a reader that holds records checks this one.
    pub bytes: u64,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            records: 8192,
            bytes: 8 << 20,
        }
    }
}

/// Checks the observations of one chain, in log order, and stops at the first finding.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    expect: Expectations,
    limits: PendingLimits,
    window: VecDeque<Observation>,
    tip: Option<Link>,
    signed_tip: Option<Link>,
    first_unsigned: Option<Link>,
    accepted: u64,
    signed: u64,
    next_offset: u64,
    finding: Option<Finding>,
}

impl ChainVerifier {
    /// A verifier for a chain whose first stored record is its genesis.
    pub fn new(expect: Expectations) -> Self {
        Self::with_limits(expect, PendingLimits::default())
    }

    /// A verifier that reports a run of unsigned records beyond `limits` as `unsigned`.
    pub fn with_limits(expect: Expectations, limits: PendingLimits) -> Self {
        ChainVerifier {
            expect,
            limits,
            window: VecDeque::with_capacity(WINDOW),
            tip: None,
            signed_tip: None,
            first_unsigned: None,
            accepted: 0,
            signed: 0,
            next_offset: 0,
            finding: None,
        }
    }

    /// Feeds the next observation. Requires observations in increasing offset order.
    pub fn push(&mut self, obs: Observation) {
        if self.finding.is_some() {
            return;
        }
        self.next_offset = obs.offset() + 1;
        self.window.push_back(obs);
        while self.window.len() >= WINDOW && self.finding.is_none() {
            self.decide_front();
        }
    }

    /// The first finding so far.
    pub fn finding(&self) -> Option<&Finding> {
        self.finding.as_ref()
    }

    /// The offset of the last record that is verified (covered by a valid signature).
    pub fn verified_through(&self) -> Option<u64> {
        self.signed_tip.map(|l| l.offset)
    }

    /// The offset after the last observation pushed (where reading continues).
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The run of accepted records that no signature covers yet, as (offset and height of its
    /// first record, number of records); `None` when every accepted record is covered.
    pub fn pending_run(&self) -> Option<(u64, u64, u64)> {
        self.first_unsigned
            .map(|f| (f.offset, f.height, self.accepted - self.signed))
    }

    /// Ends the run of unsigned records with an `unsigned` finding at its first record, for
    /// a caller that has seen the run pass a limit the verifier cannot see (its bytes).
    /// Does nothing when there is no such run or already a finding.
    pub fn fail_pending(&mut self, why: &str) {
        if let Some((offset, height, n)) = self.pending_run() {
            self.fail(
                offset,
                height,
                FindingKind::Unsigned,
                format!(
                    "{n} record(s) from offset {offset} are not covered by a writer signature \
                     and {why}: longer than any writer's batch"
                ),
            );
        }
    }

    /// Ends the stream like [`finish`](Self::finish), except that records no signature
    /// covers yet at the end are reported as pending ([`Summary::pending`]) rather than
    /// `unsigned`: for a reader that stopped while a batch was still being written.
    pub fn finish_pending(mut self) -> Summary {
        self.drain_window();
        self.summary(false)
    }

    /// Ends the stream: judges the records still in view and reports unsigned tails and
    /// trusted tips the chain did not reach.
    pub fn finish(mut self) -> Summary {
        self.drain_window();
        self.summary(true)
    }

    fn drain_window(&mut self) {
        while !self.window.is_empty() && self.finding.is_none() {
            self.decide_front();
        }
    }

    fn summary(mut self, tail_is_final: bool) -> Summary {
        if self.finding.is_none() {
            if let Some(first) = self.first_unsigned.filter(|_| tail_is_final) {
                let n = self.accepted - self.signed;
                self.fail(
                    first.offset,
                    first.height,
                    FindingKind::Unsigned,
                    format!(
                        "{n} record(s) from offset {} to the end are not covered by a writer \
                         signature (forged records, or a batch its writer never finished)",
                        first.offset
                    ),
                );
            } else if let Some((h, _)) = self.expect.tip {
                // A pending tail may still reach the trusted tip once it is signed.
                let reached = self
                    .signed_tip
                    .map(|t| t.height)
                    .max(self.tip.map(|t| t.height).filter(|_| !tail_is_final));
                if reached.is_none_or(|r| r < h) {
                    let next = reached.map_or(0, |r| r + 1);
                    let ends = match reached {
                        Some(r) => format!("ends at height {r}"),
                        None => "is empty".to_owned(),
                    };
                    self.fail(
                        self.next_offset,
                        next,
                        FindingKind::Truncated,
                        format!("the trusted tip is at height {h} but the chain {ends}"),
                    );
                }
            }
        }
        Summary {
            entries: self.signed,
            tip: self.signed_tip,
            pending: self.accepted - self.signed,
            pending_from: self.first_unsigned.map(|l| l.offset),
            finding: self.finding,
        }
    }

    fn fail(&mut self, offset: u64, height: u64, kind: FindingKind, detail: String) {
        if self.finding.is_none() {
            self.finding = Some(Finding {
                offset,
                height,
                kind,
                detail,
            });
        }
    }

    fn decide_front(&mut self) {
        let Some(front) = self.window.pop_front() else {
            return;
        };
        let n1 = self.window.front().and_then(Observation::entry).copied();
        let n2 = self.window.get(1).and_then(Observation::entry).copied();
        let expected = self.tip.map_or(0, |t| t.height + 1);
        let r = match front {
            Observation::Entry(r) => r,
            Observation::Malformed { offset, error } => {
                let kind = match error {
                    MetaError::NotChained => FindingKind::ForeignWriter,
                    _ => FindingKind::Malformed,
                };
                return self.fail(offset, expected, kind, error.to_string());
            }
        };
        let Some(t) = self.tip else {
            return self.decide_genesis(r, n1, n2);
        };
        if extends_link(&t, &r) {
            if sibling_inserted(&r, n1.as_ref(), n2.as_ref()) {
                return self.inserted(r, n1.map(|n| n.offset));
            }
            return self.accept(r, n1);
        }
        if r.hash == t.hash {
            return self.fail(
                r.offset,
                r.height,
                FindingKind::Duplicate,
                format!(
                    "an exact copy of the record at offset {} (height {})",
                    t.offset, t.height
                ),
            );
        }
        if r.height == expected {
            self.decide_broken_link(t, r, n1)
        } else if r.height > expected {
            self.decide_gap(t, r, n1)
        } else if r.height == t.height && r.prev == t.prev {
            let kind = match r.sig {
                SigCheck::Valid(_) | SigCheck::OtherTopics(_) => FindingKind::ForeignWriter,
                _ => FindingKind::Inserted,
            };
            self.fail(
                r.offset,
                r.height,
                kind,
                format!(
                    "a second record for height {} (the first is at offset {}): inserted, or \
                     appended by a second writer",
                    r.height, t.offset
                ),
            );
        } else if n1.is_some_and(|n| extends(&r, &n)) {
            // A run of linked records restarting below the tip: another chain interleaved.
            self.fail(
                r.offset,
                expected,
                FindingKind::ForeignWriter,
                format!(
                    "a run of linked records restarts at height {} after height {}: a second \
                     writer appending from a stale tip, or replayed records",
                    r.height, t.height
                ),
            );
        } else {
            self.fail(
                r.offset,
                expected,
                FindingKind::Reordered,
                format!(
                    "height {} appears after height {} (moved, replayed or duplicated)",
                    r.height, t.height
                ),
            );
        }
    }

    fn decide_genesis(&mut self, r: Observed, n1: Option<Observed>, n2: Option<Observed>) {
        if r.height == 0 && r.prev == ZERO_HASH {
            if sibling_inserted(&r, n1.as_ref(), n2.as_ref()) {
                return self.inserted(r, n1.map(|n| n.offset));
            }
            if let Some(g) = self.expect.genesis {
                if g != r.hash {
                    return self.fail(
                        r.offset,
                        0,
                        FindingKind::GenesisMismatch,
                        format!(
                            "genesis hash is {} but the trusted genesis is {}",
                            to_hex(&r.hash),
                            to_hex(&g)
                        ),
                    );
                }
            }
            self.accept(r, n1)
        } else if r.height == 0 {
            self.fail(
                r.offset,
                0,
                FindingKind::LinkBroken,
                "the genesis record's previous hash is not zero".into(),
            )
        } else {
            self.fail(
                r.offset,
                0,
                FindingKind::Missing,
                format!(
                    "the chain does not start at genesis: its first record has height {}, so \
                     heights 0..={} are missing",
                    r.height,
                    r.height - 1
                ),
            )
        }
    }

    /// `r` claims the next height but does not link to the tip `t`.
    fn decide_broken_link(&mut self, t: Link, r: Observed, n1: Option<Observed>) {
        if n1.is_some_and(|n| extends_link(&t, &n)) {
            // The record after `r` links to the tip: `r` does not belong here.
            return self.inserted(r, n1.map(|n| n.offset));
        }
        // Is `r`'s hash vouched for: by its successor's link, or (at the end) a signature?
        let r_is_intact = match n1 {
            Some(n) => extends(&r, &n),
            None => matches!(r.sig, SigCheck::Valid(_)),
        };
        if t.signed {
            // A signature vouches for the tip, so `r` is what changed (its link, or all of it).
            return self.fail(
                r.offset,
                r.height,
                FindingKind::LinkBroken,
                format!(
                    "previous hash is {} but the signed record at offset {} (height {}) \
                     hashes to {}",
                    to_hex(&r.prev),
                    t.offset,
                    t.height,
                    to_hex(&t.hash)
                ),
            );
        }
        if r_is_intact {
            // `r` and its successor agree with each other, so `r` is original and the tip it
            // should link to is the record that changed.
            let (kind, what) = if t.height == 0 {
                (
                    FindingKind::GenesisMismatch,
                    "the genesis record was replaced or changed",
                )
            } else {
                (
                    FindingKind::PayloadChanged,
                    "the record's content was changed",
                )
            };
            return self.fail(
                t.offset,
                t.height,
                kind,
                format!(
                    "{what}: its hash is {} but the next record (offset {}) links to {}",
                    to_hex(&t.hash),
                    r.offset,
                    to_hex(&r.prev)
                ),
            );
        }
        // Nothing vouches for `r` nor for the tip: either `r`'s link alone was changed, or
        // both records were. The tip is the earliest record that could have changed.
        let after = match n1 {
            Some(n) => format!("the next record (offset {}) does not link to it", n.offset),
            None => "no signature covers it".to_owned(),
        };
        self.fail(
            t.offset,
            t.height,
            FindingKind::LinkBroken,
            format!(
                "offsets {}..={} changed: the record at offset {} links to {} but this record \
                 hashes to {}, and {after} (its link was changed, or both records were)",
                t.offset,
                r.offset,
                r.offset,
                to_hex(&r.prev),
                to_hex(&t.hash)
            ),
        )
    }

    /// `r` claims a height above the next one.
    fn decide_gap(&mut self, t: Link, r: Observed, n1: Option<Observed>) {
        let expected = t.height + 1;
        if n1.is_some_and(|n| n.height == expected) {
            return self.fail(
                r.offset,
                expected,
                FindingKind::Reordered,
                format!(
                    "height {} appears before height {} (offset {})",
                    r.height,
                    expected,
                    n1.map_or(0, |n| n.offset)
                ),
            );
        }
        if r.prev == t.hash {
            return self.fail(
                r.offset,
                expected,
                FindingKind::HeaderChanged,
                format!(
                    "the record links to height {} (offset {}) but its kchain.height says {}",
                    t.height, t.offset, r.height
                ),
            );
        }
        self.fail(
            r.offset,
            expected,
            FindingKind::Missing,
            format!(
                "heights {}..={} are missing between offset {} and this record (height {})",
                expected,
                r.height - 1,
                t.offset,
                r.height
            ),
        )
    }

    fn inserted(&mut self, r: Observed, next: Option<u64>) {
        let next = next.map_or(String::new(), |o| {
            format!(" (the record at offset {o} continues the chain instead)")
        });
        let kind = match r.sig {
            SigCheck::OtherTopics(_) => FindingKind::ForeignWriter,
            _ => FindingKind::Inserted,
        };
        self.fail(
            r.offset,
            r.height,
            kind,
            format!("a record that is not part of the chain was inserted{next}"),
        )
    }

    fn accept(&mut self, r: Observed, n1: Option<Observed>) {
        if let Some((h, pinned)) = self.expect.tip {
            if r.height == h && r.hash != pinned {
                return self.fail(
                    r.offset,
                    r.height,
                    FindingKind::TipMismatch,
                    format!(
                        "the trusted tip at height {h} is {} but the chain has {}: history was \
                         rewritten",
                        to_hex(&pinned),
                        to_hex(&r.hash)
                    ),
                );
            }
        }
        let link = Link {
            offset: r.offset,
            height: r.height,
            hash: r.hash,
            prev: r.prev,
            signed: matches!(r.sig, SigCheck::Valid(_)),
        };
        let first = *self.first_unsigned.get_or_insert(link);
        let covered = || format!("offsets {}..={}", first.offset, r.offset);
        match r.sig {
            SigCheck::None if self.accepted + 1 - self.signed > self.limits.records => {
                let n = self.accepted + 1 - self.signed;
                return self.fail(
                    first.offset,
                    first.height,
                    FindingKind::Unsigned,
                    format!(
                        "{n} records from offset {} are not covered by a writer signature, \
                         more than any writer's batch ({} records)",
                        first.offset, self.limits.records
                    ),
                );
            }
            SigCheck::None => {}
            SigCheck::Valid(_) => {
                self.first_unsigned = None;
                self.signed = self.accepted + 1;
                self.signed_tip = Some(link);
            }
            SigCheck::Invalid(id) => {
                // The records before `r` link to it, so (edited in place) none of them can
                // have changed without breaking a link: `r` is the earliest suspect.
                let successor = n1.filter(|n| n.height == r.height + 1);
                let (kind, what) = match successor {
                    Some(n) if n.prev != r.hash => (
                        FindingKind::PayloadChanged,
                        format!(
                            "the record's content was changed: it matches neither its \
                             signature (key {id}) nor the link in the next record (offset {})",
                            n.offset
                        ),
                    ),
                    Some(n) => (
                        FindingKind::BadSignature,
                        format!(
                            "the next record (offset {}) links to this record's hash, but its \
                             signature (key {id}) does not verify: the signature was changed \
                             or forged",
                            n.offset
                        ),
                    ),
                    None => (
                        FindingKind::BadSignature,
                        format!(
                            "the signature (key {id}) does not verify: this record's content \
                             or its signature was changed"
                        ),
                    ),
                };
                let range = if first.offset < r.offset {
                    format!(
                        " (or an earlier one with the links after it recomputed: {} lose \
                         their cover)",
                        covered()
                    )
                } else {
                    String::new()
                };
                return self.fail(r.offset, r.height, kind, format!("{what}{range}"));
            }
            SigCheck::Unknown(id) => {
                return self.fail(
                    first.offset,
                    first.height,
                    FindingKind::UnknownKey,
                    format!(
                        "{} are signed by key {id}, which the trust file does not list",
                        covered()
                    ),
                )
            }
            SigCheck::OtherTopics(id) => {
                return self.fail(
                    first.offset,
                    first.height,
                    FindingKind::ForeignWriter,
                    format!(
                        "{} are signed by key {id}, which is not trusted for this topic",
                        covered()
                    ),
                )
            }
        }
        self.accepted += 1;
        self.tip = Some(link);
    }
}

fn extends(a: &Observed, b: &Observed) -> bool {
    b.height == a.height + 1 && b.prev == a.hash
}

fn extends_link(a: &Link, b: &Observed) -> bool {
    b.height == a.height + 1 && b.prev == a.hash
}

/// `r` fits where it is, but the next record claims the same place and the chain continues
/// from that one: `r` is the intruder.
fn sibling_inserted(r: &Observed, n1: Option<&Observed>, n2: Option<&Observed>) -> bool {
    let Some(n) = n1 else { return false };
    let sibling = n.height == r.height && n.prev == r.prev && n.hash != r.hash;
    sibling
        && match n2 {
            Some(m) => extends(n, m),
            None => matches!(n.sig, SigCheck::Valid(_)),
        }
}
