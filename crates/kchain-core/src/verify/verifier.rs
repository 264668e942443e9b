//! The sequential half of verifying: [`ChainVerifier`] takes observations in log order and
//! holds the chain's state (its tip, its last signed record, a window of three), and what it
//! reports at the end ([`Summary`]). The decisions on the front of the window are in
//! `decide`.

use std::collections::VecDeque;

use super::finding::{Finding, FindingKind};
use super::observe::Observation;
use crate::hash::Hash;

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

/// Observations in view: a record is judged with the next two.
pub(super) const WINDOW: usize = 3;

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
    pub(super) expect: Expectations,
    pub(super) limits: PendingLimits,
    pub(super) window: VecDeque<Observation>,
    pub(super) tip: Option<Link>,
    pub(super) signed_tip: Option<Link>,
    pub(super) first_unsigned: Option<Link>,
    pub(super) accepted: u64,
    pub(super) signed: u64,
    pub(super) next_offset: u64,
    pub(super) finding: Option<Finding>,
}

impl ChainVerifier {
    /// A verifier for a chain whose first stored record is its genesis.
    pub fn new(expect: Expectations) -> Self {
        Self::with_limits(expect, PendingLimits::default())
    }

    /// A verifier for a chain whose stored records begin after `before`, an entry verified
    /// elsewhere (the last one an archive holds below the log's start): the first record
    /// must link to it, as to a signed tip, and the summary counts entries from genesis.
    /// A record that does not follow it (a gap, another chain) is a finding at its offset.
    pub fn resume(expect: Expectations, before: Link) -> Self {
        let mut v = Self::new(expect);
        let link = Link {
            signed: true,
            ..before
        };
        v.tip = Some(link);
        v.signed_tip = Some(link);
        v.accepted = before.height + 1;
        v.signed = before.height + 1;
        v.next_offset = before.offset + 1;
        v
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

    /// A verifier that goes on after `tip`, a record an earlier verification of the same
    /// chain accepted and that a valid signature covered: the next observation pushed must
    /// be the record at `tip.offset + 1`, which must link to `tip.hash`. This is how a
    /// long-running auditor resumes after a restart without reading from genesis again; it
    /// should first check that the record at `tip.offset` still hashes to `tip.hash` (a
    /// rewritten resume point is a rollback the links after it cannot show).
    ///
    /// Requires `tip.signed`. Counts ([`Summary::entries`]) start again from zero.
    pub fn resume_after(expect: Expectations, limits: PendingLimits, tip: Link) -> Self {
        let mut v = Self::with_limits(expect, limits);
        v.tip = Some(tip);
        v.signed_tip = Some(tip);
        v.next_offset = tip.offset + 1;
        v
    }

    /// Feeds the next observation. Requires observations in increasing offset order.
    #[inline]
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

    pub(super) fn fail(&mut self, offset: u64, height: u64, kind: FindingKind, detail: String) {
        if self.finding.is_none() {
            self.finding = Some(Finding {
                offset,
                height,
                kind,
                detail,
            });
        }
    }
}
