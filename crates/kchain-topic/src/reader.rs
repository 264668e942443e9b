//! The verifying reader: yields a partition's records only once the chain has verified
//! them, and stops at the first finding.
//!
//! A record is verified when it links back to genesis and a valid writer signature covers it
//! (the signature at the end of its batch). The reader therefore holds back the records of a
//! batch until its signature, and judges each record with the next two in view.
//!
//! ```text
//!  poll (at most `want` records, sized to the byte budget)
//!    └─► observe ─► ChainVerifier::push ─► held: [verified | unsigned run | look-ahead]
//!                                                  │ run > PendingLimits (records or
//!                                                  │ bytes): `unsigned`, stop reading
//!  at the end offset, a run still unsigned is pending: poll on for up to `grace`
//!  (this reader's clock) for its signature, then deliver it, or report `unsigned`
//! ```
//!
//! Memory is bounded whatever the log holds: the unsigned run by [`PendingLimits`], the
//! look-ahead by three records, and one poll by the byte budget over the largest record seen
//! (see `docs/pending.md`).
//!
//! Each verified record also says what became of its value: not encrypted, decrypted with a
//! keyring key ([`VerifyingReader::with_keyring`]), or unreadable (key shredded, key missing,
//! or a ciphertext that does not authenticate). Without a keyring, every encrypted record
//! reads as key missing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kchain_core::{
    decrypt_record, ChainContext, ChainId, ChainVerifier, Decryption, Finding, Hash, Item, Keyring,
    Observation, PairObserver, PendingLimits, RecordPlace, Summary, Trust,
};
use kchain_log::{Log, Reader, RecordView, StoredRecord};

use crate::error::TopicError;
use crate::mapping::{header_pairs, item_of};
use crate::scan::{expectations, observe_records, stall_timeout, stalled};

pub(crate) mod paused;

/// How long a reader waits, by its own clock, for the signature of records it has read
/// without one before it calls them `unsigned` (see `docs/pending.md`). Record timestamps
/// play no part: whoever forges records chooses those.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// The most records one poll asks for.
const MAX_POLL: usize = 4096;

static NO_KEYS: Keyring = Keyring::EMPTY;

/// A record that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRecord {
    pub offset: u64,
    pub height: u64,
    /// The record's entry hash.
    pub hash: Hash,
    /// The application's record as stored (chain headers removed): for an encrypted record,
    /// the value is the ciphertext and the `kchain.enc` header is among the headers.
    pub item: Item,
    /// What became of the value: [`Decryption::Plain`] when it is not encrypted, else the
    /// plaintext or why there is none.
    pub decryption: Decryption,
}

impl VerifiedRecord {
    /// The application's value, decrypted when it was encrypted: `Ok(None)` for a record
    /// without a value; `Err` with the outcome when an encrypted value cannot be read.
    pub fn value(&self) -> Result<Option<&[u8]>, &Decryption> {
        match &self.decryption {
            Decryption::Plain => Ok(self.item.value.as_deref()),
            Decryption::Decrypted { value, .. } => Ok(Some(value)),
            other => Err(other),
        }
    }
}

/// Reads one chained partition, verifying from genesis, and yields verified records from a
/// chosen offset up to (at least) the end offset the partition had when the reader opened:
/// records the reads return past that end are verified too, and a batch in progress at the
/// end is waited for (see [`DEFAULT_GRACE`]).
pub struct VerifyingReader<'t> {
    reader: Box<dyn Reader>,
    /// The end offset when the reader opened.
    end: u64,
    verifier: Option<ChainVerifier>,
    topic: String,
    partition: u32,
    chain: ChainId,
    trust: &'t Trust,
    keyring: Option<&'t Keyring>,
    from: u64,
    limits: PendingLimits,
    grace: Duration,
    held: VecDeque<Held>,
    /// Index in `held` of the first record not yet verified.
    unverified_at: usize,
    /// Bytes of the held records from `unverified_at` on.
    unverified_bytes: u64,
    /// Bytes of all held records, and the most held at once (for tests and monitoring).
    held_bytes: u64,
    peak_bytes: u64,
    /// The largest record seen, and how many records the next poll may ask for.
    largest: u64,
    poll_cap: usize,
    /// When the reader reached the end with records pending, and the last offset then read.
    waiting: Option<(Instant, u64)>,
    summary: Option<Summary>,
    /// The verifier as it stood when reading ended with no finding: [`follow`] goes on
    /// from it, so that a partition is never verified twice from genesis.
    ///
    /// [`follow`]: VerifyingReader::follow
    resume: Option<ChainVerifier>,
    /// Observes each poll's records two at a time.
    pairs: PairObserver<()>,
}

/// A record read and observed, held until the verifier covers it.
#[derive(Clone)]
struct Held {
    record: StoredRecord,
    height: u64,
    hash: Hash,
    bytes: u64,
}

impl<'t> VerifyingReader<'t> {
    /// Opens a reader that verifies `topic`/`partition` from its start and yields records at
    /// offsets `>= from`.
    pub fn open(
        log: &dyn Log,
        topic: &str,
        partition: u32,
        trust: &'t Trust,
        from: u64,
    ) -> Result<Self, TopicError> {
        let start = log.start_offset(topic, partition)?;
        let end = log.end_offset(topic, partition)?;
        let reader = log.reader(topic, partition, start)?;
        let limits = PendingLimits::default();
        Ok(VerifyingReader {
            reader,
            end,
            verifier: Some(ChainVerifier::with_limits(
                expectations(trust, topic, partition),
                limits,
            )),
            topic: topic.to_owned(),
            partition,
            chain: ChainId::for_partition(topic, partition),
            trust,
            keyring: None,
            from,
            limits,
            grace: DEFAULT_GRACE,
            held: VecDeque::new(),
            unverified_at: 0,
            unverified_bytes: 0,
            held_bytes: 0,
            peak_bytes: 0,
            largest: 1,
            poll_cap: 8,
            waiting: None,
            summary: None,
            resume: None,
            pairs: PairObserver::new(),
        })
    }

    /// This reader, decrypting encrypted values with `keyring`'s keys.
    pub fn with_keyring(mut self, keyring: &'t Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// This reader, with other bounds on a run of unsigned records (for writers configured
    /// with larger batches than the default). Call before reading.
    pub fn with_limits(mut self, limits: PendingLimits) -> Self {
        self.limits = limits;
        self.verifier = Some(ChainVerifier::with_limits(
            expectations(self.trust, &self.topic, self.partition),
            limits,
        ));
        self
    }

    /// This reader, waiting up to `grace` for the signature of a batch in progress at the
    /// end (zero: report such records as `unsigned` at once).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The outcome once the reader has returned `None`. Records no signature covered when
    /// reading ended, but that arrived within the grace, are counted in
    /// [`Summary::pending`]: not delivered, and not a finding.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// The finding that stopped the reader, if any.
    pub fn finding(&self) -> Option<&Finding> {
        self.summary.as_ref().and_then(|s| s.finding.as_ref())
    }

    /// Extends a reader that has returned `None` with no finding to the records appended
    /// since: true when the partition's end moved, and iterating again yields the new records
    /// once verified, going on from the verifier's state (nothing is read or hashed twice).
    /// False when there is nothing new, when the reader has not reached its end yet, or when
    /// it stopped at a finding (which is final).
    ///
    /// Records that were pending when reading ended (a batch whose signature had not arrived
    /// within the grace) are still held, and are delivered once a signature covers them.
    pub fn follow(&mut self, log: &dyn Log) -> Result<bool, TopicError> {
        if self.resume.is_none() || self.finding().is_some() {
            return Ok(false);
        }
        let end = log.end_offset(&self.topic, self.partition)?;
        if end <= self.end {
            return Ok(false);
        }
        self.end = end;
        self.verifier = self.resume.take();
        self.summary = None;
        self.waiting = None;
        Ok(true)
    }

    /// The most bytes of records (keys, values, headers) this reader has held at once.
    pub fn peak_held_bytes(&self) -> u64 {
        self.peak_bytes
    }

    fn verified_through(&self) -> Option<u64> {
        match (&self.summary, &self.verifier) {
            (Some(s), _) => s.tip.map(|t| t.offset),
            (None, Some(v)) => v.verified_through(),
            (None, None) => None,
        }
    }

    /// How many records the next poll asks for: growing from a few, and never more than the
    /// byte budget holds of the largest record seen, so that one poll of hostile records
    /// cannot hold more than the budget.
    fn want(&mut self) -> usize {
        let fit = (self.limits.bytes / self.largest).clamp(1, MAX_POLL as u64) as usize;
        let want = self.poll_cap.min(fit);
        self.poll_cap = (self.poll_cap * 2).min(MAX_POLL);
        want
    }

    fn read_more(&mut self) -> Result<(), TopicError> {
        if self.verifier.is_none() {
            return Ok(());
        }
        let at_end = self.reader.position() >= self.end;
        if at_end && self.waiting.is_none() {
            // Everything up to the end offset is read: done, unless a batch is in progress.
            let verifier = self.verifier.as_ref().expect("checked above");
            let now = verifier.clone().finish_pending();
            if now.pending == 0 || now.finding.is_some() {
                self.finish(false);
                return Ok(());
            }
            let last = verifier.next_offset().saturating_sub(1);
            self.waiting = Some((Instant::now(), last));
        }
        let wait = match self.waiting {
            Some(_) => Duration::from_millis(100),
            None => Duration::from_millis(500),
        };
        let since = Instant::now();
        let want = self.want();
        let recs = loop {
            let recs = self.reader.poll(want, wait)?;
            if !recs.is_empty() || self.waiting.is_some() {
                break recs;
            }
            if since.elapsed() > stall_timeout() {
                return Err(stalled(self.reader.position(), self.end));
            }
        };
        self.take(recs);
        if self
            .verifier
            .as_ref()
            .is_some_and(|v| v.finding().is_some())
        {
            self.finish(true);
            return Ok(());
        }
        if let Some((started, last)) = self.waiting {
            let v = self
                .verifier
                .as_ref()
                .expect("no finding, so still reading");
            let now = v.clone().finish_pending();
            if now.finding.is_some() {
                self.finish(true);
            } else if now.tip.is_some_and(|t| t.offset >= last) {
                self.finish(false);
            } else if started.elapsed() >= self.grace {
                self.finish(true);
            }
        }
        Ok(())
    }

    /// Observes and holds `recs`, then checks the byte budget of the unsigned run.
    fn take(&mut self, recs: Vec<StoredRecord>) {
        let Some(verifier) = self.verifier.as_mut() else {
            return;
        };
        let ctx = ChainContext {
            topic: &self.topic,
            chain: self.chain,
            trust: self.trust,
        };
        let observed = observe_records(&ctx, &recs, &mut self.pairs);
        for (r, obs) in recs.into_iter().zip(observed) {
            let bytes = record_bytes(&r);
            self.largest = self.largest.max(bytes);
            let (height, hash) = match &obs {
                Observation::Entry(o) => (o.height, o.hash),
                Observation::Malformed { .. } => (0, [0; 32]),
            };
            verifier.push(obs);
            self.held.push_back(Held {
                record: r,
                height,
                hash,
                bytes,
            });
            self.unverified_bytes += bytes;
            // What the verifier now covers is no longer part of the run.
            let through = verifier.verified_through();
            while let Some(h) = self.held.get(self.unverified_at) {
                if through.is_none_or(|t| h.record.offset > t) {
                    break;
                }
                self.unverified_bytes -= h.bytes;
                self.unverified_at += 1;
            }
            self.held_bytes += bytes;
            self.peak_bytes = self.peak_bytes.max(self.held_bytes);
            if let Some((_, _, n)) = verifier.pending_run() {
                // The run is the unverified records but the look-ahead after it.
                let run_end = self.unverified_at + n as usize;
                let ahead: u64 = self
                    .held
                    .range(run_end.min(self.held.len())..)
                    .map(|h| h.bytes)
                    .sum();
                let run_bytes = self.unverified_bytes - ahead;
                if n >= 2 && run_bytes > self.limits.bytes {
                    verifier.fail_pending(&format!(
                        "hold {run_bytes} bytes, more than {} bytes",
                        self.limits.bytes
                    ));
                }
            }
            if verifier.finding().is_some() {
                return;
            }
        }
    }

    /// Ends verification: with `tail_is_final`, records still unsigned are `unsigned`;
    /// otherwise they are pending.
    fn finish(&mut self, tail_is_final: bool) {
        if let Some(v) = self.verifier.take() {
            self.summary = Some(if tail_is_final {
                v.finish()
            } else {
                self.resume = Some(v.clone());
                v.finish_pending()
            });
        }
    }
}

impl VerifyingReader<'_> {
    /// Drops every held record (nothing more will be delivered).
    fn release(&mut self) {
        self.held.clear();
        (self.unverified_at, self.unverified_bytes, self.held_bytes) = (0, 0, 0);
    }
}

/// The bytes a record holds: key, value, header names and values.
fn record_bytes(r: &StoredRecord) -> u64 {
    let rec = &r.record;
    let headers: usize = rec
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len())
        .sum();
    (rec.key.as_ref().map_or(0, Vec::len) + rec.value.as_ref().map_or(0, Vec::len) + headers) as u64
}

impl VerifyingReader<'_> {
    /// Drops the verified records held before `from`; true when the first record held is
    /// verified (and so at or after `from`): the next to deliver.
    fn front_ready(&mut self) -> bool {
        let through = self.verified_through();
        while let Some(h) = self.held.front() {
            if through.is_none_or(|t| h.record.offset > t) {
                return false;
            }
            if h.record.offset >= self.from {
                return true;
            }
            self.pop_held();
        }
        false
    }

    /// Takes the first record held out of the byte counts and the queue.
    fn pop_held(&mut self) -> Held {
        let h = self.held.pop_front().expect("a record is held");
        self.held_bytes -= h.bytes;
        if self.unverified_at > 0 {
            self.unverified_at -= 1;
        } else {
            // Verified once reading ended: no longer part of a run.
            self.unverified_bytes = self.unverified_bytes.saturating_sub(h.bytes);
        }
        h
    }

    /// After a read error: nothing more will be verified or delivered.
    fn fail(&mut self) {
        self.verifier = None;
        self.summary = None;
        self.release();
    }
}

impl Iterator for VerifyingReader<'_> {
    type Item = Result<VerifiedRecord, TopicError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.front_ready() {
                let Held {
                    record: r,
                    height,
                    hash,
                    ..
                } = self.pop_held();
                let place = RecordPlace {
                    chain: self.chain,
                    partition: self.partition,
                    height,
                };
                let rec = &r.record;
                let decryption = decrypt_record(
                    self.keyring.unwrap_or(&NO_KEYS),
                    &place,
                    rec.value.as_deref(),
                    header_pairs(&rec.headers),
                );
                return Some(Ok(VerifiedRecord {
                    offset: r.offset,
                    height,
                    hash,
                    item: item_of(rec),
                    decryption,
                }));
            }
            if self.summary.is_some() {
                // A reader that may follow keeps its pending records for when their
                // signature arrives; one that stopped at a finding delivers nothing more.
                if self.resume.is_none() || self.finding().is_some() {
                    self.release();
                }
                return None;
            }
            if let Err(e) = self.read_more() {
                self.fail();
                return Some(Err(e));
            }
        }
    }
}

/// Ends a verification whose reading stopped at `verifier.next_offset()`: when records at the
/// end are not yet covered by a signature, reads on from there for up to `grace` (this
/// process's clock) until a signature covers them all. Records read meanwhile go through
/// `observe`, which pushes them to the verifier (and may tally anything else it checks).
///
/// Returns the summary: covered records count as verified; records that arrived after those
/// and are not yet covered are pending (not a finding); records still unsigned when the grace
/// ends are `unsigned`. Holds no records: O(1) memory.
pub(crate) fn finish_with_grace(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    mut verifier: ChainVerifier,
    grace: Duration,
    observe: &mut dyn FnMut(&mut ChainVerifier, &RecordView<'_>),
) -> Result<Summary, TopicError> {
    let now = verifier.clone().finish_pending();
    if now.pending == 0 || now.finding.is_some() {
        return Ok(verifier.finish());
    }
    let next = verifier.next_offset();
    let last = next.saturating_sub(1);
    // Read on from the last record read, not the next one: a broker may report an end
    // offset below records it holds (tansu's memory engine reports the base offset of the
    // last batch plus one) and then answer a fetch at that end with nothing, although a
    // fetch at an offset below it returns the rest of the batch. The record at `last`, seen
    // already, is skipped.
    let mut reader = log.reader(topic, partition, last)?;
    let started = Instant::now();
    loop {
        reader.poll_visit(MAX_POLL, Duration::from_millis(100), &mut |v| {
            if v.offset >= next {
                observe(&mut verifier, v)
            }
        })?;
        if verifier.finding().is_some() {
            return Ok(verifier.finish());
        }
        let now = verifier.clone().finish_pending();
        if now.finding.is_some() {
            return Ok(verifier.finish());
        }
        if now.tip.is_some_and(|t| t.offset >= last) {
            return Ok(verifier.finish_pending());
        }
        if started.elapsed() >= grace {
            return Ok(verifier.finish());
        }
    }
}
