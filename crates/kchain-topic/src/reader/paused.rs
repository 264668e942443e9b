//! A verifying reader put aside, to go on later from where it stood instead of verifying the
//! partition from genesis again: what a server paging through a long partition needs, one
//! request per page.
//!
//! ```text
//!  open(from 0) ─► page 1 ─► pause() ─► PausedReader { verifier, held, position, trust }
//!                                           │   (kept in the process's memory)
//!  resume(log, paused, trust, from) ◄───────┘ ─► page 2: reads on at `position`
//! ```
//!
//! The paused state is the verifier as it stood after the records read so far, and the records
//! read but not yet delivered (verified ones, and an unsigned run waiting for its signature).
//! It lives in the memory of the process that verified those records, so it is an anchor held
//! outside the log: records read on resuming must link to it, as they would to the records
//! before them, and a change of the log at or after `position` is found just as a reader
//! from genesis finds it. A change *before* `position` made after the pause is not read
//! again: it is what a remembered checkpoint lets a client skip, and a full `verify` finds it.

use std::collections::VecDeque;

use kchain_core::{ChainId, ChainVerifier, PairObserver, PendingLimits, Trust};
use kchain_log::Log;

use super::{Held, VerifyingReader};
use crate::error::TopicError;

/// A [`VerifyingReader`] put aside by [`VerifyingReader::pause`], to be taken up again by
/// [`VerifyingReader::resume`]. A clone goes on independently of the original.
#[derive(Clone)]
pub struct PausedReader {
    topic: String,
    partition: u32,
    /// The trust the records so far were verified under: resuming under another is refused.
    trust: Trust,
    /// Where reading goes on in the log.
    position: u64,
    /// The first offset resuming can deliver: everything before it was delivered already, or
    /// was before the `from` asked for.
    next: u64,
    /// The verifier mid-stream, or, when the reader had reached its end with no finding, the
    /// state to follow on from (as [`VerifyingReader::follow`] does).
    verifier: ChainVerifier,
    limits: PendingLimits,
    grace: std::time::Duration,
    held: VecDeque<Held>,
    unverified_at: usize,
    unverified_bytes: u64,
    held_bytes: u64,
    largest: u64,
    poll_cap: usize,
}

impl PausedReader {
    /// The partition it reads.
    pub fn partition(&self) -> (&str, u32) {
        (&self.topic, self.partition)
    }

    /// The first offset resuming can deliver.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// The bytes of the records it holds (read, not yet delivered): what keeping it costs.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Whether [`VerifyingReader::resume`] can go on from here to deliver records from `from`
    /// under `trust`: the same partition, the same trust, and `from` not before [`next`].
    ///
    /// [`next`]: PausedReader::next
    pub fn can_serve(&self, topic: &str, partition: u32, trust: &Trust, from: u64) -> bool {
        self.topic == topic
            && self.partition == partition
            && from >= self.next
            && *trust == self.trust
    }
}

impl<'t> VerifyingReader<'t> {
    /// Puts this reader aside after it has delivered some records (or all of them). `None`
    /// when there is nothing to go on from: it stopped at a finding (which is final) or at an
    /// error.
    pub fn pause(mut self) -> Option<PausedReader> {
        self.going_on_from()?;
        let verifier = self.verifier.take().or_else(|| self.resume.take())?;
        let held = std::mem::take(&mut self.held);
        Some(self.paused_with(verifier, held))
    }

    /// A copy of this reader's state to go on from later, as [`pause`](Self::pause) gives,
    /// while this reader goes on. It copies the records held (at most a poll's worth beside an
    /// unsigned run). Call [`ready`](Self::ready) first for a copy that delivers from the
    /// record this reader delivers next.
    pub fn snapshot(&self) -> Option<PausedReader> {
        let verifier = self.going_on_from()?.clone();
        Some(self.paused_with(verifier, self.held.clone()))
    }

    /// The verifier a paused reader would go on from: the one mid-stream, or the state the
    /// end left when reading ended with no finding. `None` after a finding or an error.
    fn going_on_from(&self) -> Option<&ChainVerifier> {
        if self.finding().is_some() {
            return None;
        }
        match (&self.verifier, &self.resume) {
            (Some(v), _) => Some(v),
            (None, Some(v)) if self.summary.is_some() => Some(v),
            _ => None,
        }
    }

    /// This reader's place with `verifier` and the records `held` (this reader's or a copy).
    fn paused_with(&self, verifier: ChainVerifier, held: VecDeque<Held>) -> PausedReader {
        let position = self.reader.position();
        let next = (held.front())
            .map_or(position, |h| h.record.offset)
            .max(self.from);
        PausedReader {
            topic: self.topic.clone(),
            partition: self.partition,
            trust: self.trust.clone(),
            position,
            next,
            verifier,
            limits: self.limits,
            grace: self.grace,
            held,
            unverified_at: self.unverified_at,
            unverified_bytes: self.unverified_bytes,
            held_bytes: self.held_bytes,
            largest: self.largest,
            poll_cap: self.poll_cap,
        }
    }

    /// Reads and verifies on until the next record to deliver is verified, or reading has
    /// ended, without delivering it: a [`snapshot`](Self::snapshot) taken then delivers from
    /// exactly that record.
    pub fn ready(&mut self) -> Result<(), TopicError> {
        while !self.front_ready() && self.summary.is_none() {
            if let Err(e) = self.read_more() {
                self.fail();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Goes on from `paused`, delivering records at offsets `>= from` up to (at least) the
    /// partition's end offset now. Nothing before the paused position is read or hashed
    /// again. Refused (`Err` with `paused` handed back) when [`PausedReader::can_serve`]
    /// says no.
    pub fn resume(
        log: &dyn Log,
        paused: PausedReader,
        trust: &'t Trust,
        from: u64,
    ) -> Result<Result<Self, PausedReader>, TopicError> {
        if !paused.can_serve(&paused.topic, paused.partition, trust, from) {
            return Ok(Err(paused));
        }
        let p = paused;
        let end = log.end_offset(&p.topic, p.partition)?;
        let reader = log.reader(&p.topic, p.partition, p.position)?;
        let chain = ChainId::for_partition(&p.topic, p.partition);
        Ok(Ok(VerifyingReader {
            reader,
            end,
            verifier: Some(p.verifier),
            topic: p.topic,
            partition: p.partition,
            chain,
            trust,
            keyring: None,
            from,
            limits: p.limits,
            grace: p.grace,
            held: p.held,
            unverified_at: p.unverified_at,
            unverified_bytes: p.unverified_bytes,
            held_bytes: p.held_bytes,
            peak_bytes: p.held_bytes,
            largest: p.largest,
            poll_cap: p.poll_cap,
            waiting: None,
            summary: None,
            resume: None,
            pairs: PairObserver::new(),
        }))
    }
}
