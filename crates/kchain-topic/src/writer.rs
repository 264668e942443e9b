//! The chained writer: appends items to one partition as hash-linked, signed records.
//!
//! ```text
//!  items ──► [encrypt values] + leaf hashes (parallel) ──► entry hashes (in order: each needs
//!        the previous) ──► sign the last entry hash ──► one log batch ──► check the offsets
//! ```
//!
//! Two ways to the log: for an appender that takes encoded batches (the embedded log's), each
//! batch is built in place in the log's encoding (`inplace`) and handed to the writer's log
//! thread (`log_thread`), so that the next batch is built while the log writes one; for any
//! other (Kafka's), each batch becomes [`Record`]s. Both give the log the same records.
//!
//! ```text
//!  append ──► build batch k ──► wait for batch k-1 to be written ──► hand k to the log thread
//!         ──► publish a due checkpoint (of the batches up to k-1, while the log writes k)
//!         ──► build k+1 ... ──► last batch: wait for it (default), or return at once
//!                               ([`ChainWriter::with_pipelining`]: flush waits)
//! ```
//!
//! Heights are known before anything is hashed (the tip is), so encryption, whose associated
//! data binds each value to its height, runs in the parallel per-record stage and stays off
//! the sequential hash chain.

use kchain_core::{ChainId, DataKey, Hash, Item, SignedNote, WriterKey, H_ENC, ZERO_HASH};
use kchain_log::{Appender, Log};

use crate::batches::{batch_ranges, split_batches, Builder, ItemFields, Limits};
use crate::checkpoints::{CheckpointOptions, CheckpointState};
use crate::error::TopicError;
use crate::inplace::Prepared;
use crate::log_thread::{LogThread, SharedAppender};
use crate::records;
use crate::tip::read_own_tip;

/// Limits on one signed batch. A verifying reader buffers at most one batch before it can
/// release records, so these also bound a reader's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    pub max_batch_records: usize,
    pub max_batch_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_batch_records: 8192,
            max_batch_bytes: 4 << 20,
        }
    }
}

/// What one call to [`ChainWriter::append`] appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendReceipt {
    pub records: u64,
    pub first_offset: u64,
    pub last_offset: u64,
    /// Height and entry hash of the new tip.
    pub tip_height: u64,
    pub tip_hash: Hash,
}

/// The single writer of one chained partition.
pub struct ChainWriter<'k> {
    /// The appender; the `shared` one when it takes encoded batches.
    appender: Box<dyn Appender>,
    /// The appender, shared with `log_thread`, when it takes batches built in place.
    shared: Option<SharedAppender>,
    /// The thread that appends handed-over batches, started with the first of them.
    log_thread: Option<LogThread>,
    /// The batch handed to `log_thread` and not collected yet: its first offset and count.
    in_flight: Option<(u64, u64)>,
    /// Set by [`ChainWriter::with_pipelining`].
    pipelined: bool,
    topic: String,
    partition: u32,
    chain: ChainId,
    key: &'k WriterKey,
    options: WriterOptions,
    /// Height and hash of the last record, or `None` for an empty chain.
    tip: Option<(u64, Hash)>,
    /// The offset of the next record this writer hands to the log.
    next_offset: u64,
    poisoned: bool,
    scratch: Vec<u8>,
    /// A written batch's buffer, reused by the next (see `inplace`).
    batch_buf: Vec<u8>,
    /// Set by [`ChainWriter::with_checkpoints`].
    checkpoints: Option<CheckpointState<'k>>,
    /// Set by [`ChainWriter::with_encryption`].
    encryption: Option<&'k DataKey>,
}

impl<'k> ChainWriter<'k> {
    /// Opens the writer of `topic`/`partition`, resuming the chain from its tip. The tip must
    /// be a record signed by `key`: a chain whose last record someone else wrote (or never
    /// finished signing) is refused with [`TopicError::ForeignRecord`].
    pub fn open(
        log: &dyn Log,
        topic: &str,
        partition: u32,
        key: &'k WriterKey,
        options: WriterOptions,
    ) -> Result<Self, TopicError> {
        let chain = ChainId::for_partition(topic, partition);
        Self::open_with(log, topic, partition, key, options, |start, end| {
            if end > start {
                Ok(Some(read_own_tip(
                    log,
                    topic,
                    partition,
                    chain,
                    key,
                    end - 1,
                )?))
            } else {
                Ok(None)
            }
        })
    }

    /// [`ChainWriter::open`], with the tip found by `find_tip(start, end)` from the
    /// partition's start offset and the end offset its appender holds. For a caller that
    /// vouches for a tip no signature covers yet (the bridge, which checks such a tail
    /// against the records it copies); the next append then signs over it.
    pub(crate) fn open_with<E: From<TopicError>>(
        log: &dyn Log,
        topic: &str,
        partition: u32,
        key: &'k WriterKey,
        options: WriterOptions,
        find_tip: impl FnOnce(u64, u64) -> Result<Option<(u64, Hash)>, E>,
    ) -> Result<Self, E> {
        let appender = log.appender(topic, partition).map_err(TopicError::from)?;
        let chain = ChainId::for_partition(topic, partition);
        let end = appender.next_offset();
        let start = log
            .start_offset(topic, partition)
            .map_err(TopicError::from)?;
        let tip = find_tip(start, end)?;
        let (appender, shared) = match appender.takes_encoded() {
            true => {
                let shared = SharedAppender::new(appender);
                (Box::new(shared.clone()) as Box<dyn Appender>, Some(shared))
            }
            false => (appender, None),
        };
        Ok(ChainWriter {
            appender,
            shared,
            log_thread: None,
            in_flight: None,
            pipelined: false,
            topic: topic.to_owned(),
            partition,
            chain,
            key,
            options,
            tip,
            next_offset: end,
            poisoned: false,
            scratch: Vec::new(),
            batch_buf: Vec::new(),
            checkpoints: None,
            encryption: None,
        })
    }

    /// This writer, encrypting the value of every record it appends from now on under `key`
    /// (AES-256-GCM, see `kchain_core::crypt` and `docs/encryption.md`); records without a
    /// value (tombstones) stay without one. For a keyring, pass `keyring.newest()`.
    pub fn with_encryption(mut self, key: &'k DataKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// This writer with encryption under `key`, or without encryption for `None` (for a
    /// benchmark or a command that measures both side by side).
    ///
    /// ```
    /// # use kchain_core::{DataKey, Item, WriterKey};
    /// # use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
    /// # use kchain_topic::{ChainWriter, WriterOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let log = EmbeddedLog::create(dir.path(), EmbeddedOptions::default()).unwrap();
    /// let (writer_key, data_key) = (WriterKey::generate("bench"), DataKey::generate(0).unwrap());
    /// for (topic, encrypt) in [("plain", false), ("encrypted", true)] {
    ///     log.create_topic(topic, &TopicConfig::default()).unwrap();
    ///     let mut w = ChainWriter::open(&log, topic, 0, &writer_key, WriterOptions::default())
    ///         .unwrap()
    ///         .with_optional_encryption(encrypt.then_some(&data_key));
    ///     let item = Item { value: Some(b"x".to_vec()), ..Item::default() };
    ///     w.append(vec![item]).unwrap();
    /// }
    /// ```
    pub fn with_optional_encryption(mut self, key: Option<&'k DataKey>) -> Self {
        self.encryption = key;
        self
    }

    /// This writer, returning from [`ChainWriter::append`] as soon as the last batch is
    /// handed to the log (on the embedded log; Kafka's appender is not pipelined), so that the
    /// caller's next append is built while the log writes it, as a Kafka producer's `send`
    /// returns before the broker acknowledges. The receipt says where the records will land;
    /// [`ChainWriter::wait_written`] and [`ChainWriter::flush`] wait for them, and a failed
    /// write surfaces on the next call (see `docs/decisions.md`, "Pipelined appends"). Flush
    /// before dropping the writer: a dropped writer still writes what it handed over, but
    /// nobody hears of a failure.
    pub fn with_pipelining(mut self) -> Self {
        self.pipelined = true;
        self
    }

    /// This writer, publishing signed checkpoints of its chain to `<topic>.checkpoints` (see
    /// the `checkpoints` module): when `options` says one is due after an append, and on
    /// [`ChainWriter::flush`] and [`ChainWriter::checkpoint`]. Reads the chain once to rebuild
    /// its tree, and refuses a chain that contradicts the last checkpoint this key signed.
    /// Requires the key's name to be a valid note key name.
    pub fn with_checkpoints(
        mut self,
        log: &'k dyn Log,
        options: CheckpointOptions,
    ) -> Result<Self, TopicError> {
        self.checkpoints = Some(CheckpointState::open(
            log,
            &self.topic,
            self.partition,
            self.key,
            self.tip,
            options,
        )?);
        Ok(self)
    }

    /// Signs and publishes a checkpoint of the chain as it is now, unless the last one covers
    /// it or checkpoints are off. Returns the signed note once it is on the checkpoints topic
    /// and forced to disk. In push mode, waits (a bounded time) for the witnesses and
    /// publishes it with their cosignatures.
    pub fn checkpoint(&mut self) -> Result<Option<SignedNote>, TopicError> {
        self.wait_written()?;
        match &mut self.checkpoints {
            Some(c) => {
                let note = c.publish()?;
                c.settle()?;
                c.wait_published()?;
                Ok(note)
            }
            None => Ok(None),
        }
    }

    /// The last checkpoint this writer signed (or found signed by its key when it opened).
    pub fn last_checkpoint(&self) -> Option<&SignedNote> {
        self.checkpoints.as_ref().and_then(|c| c.last())
    }

    /// Height and entry hash of the chain's tip, if it has one.
    pub fn tip(&self) -> Option<(u64, Hash)> {
        self.tip
    }

    /// Appends items in order, in signed batches of at most the configured size.
    ///
    /// When it returns, the records are written to the log (and forced to disk as the log's
    /// fsync policy says), unless the writer is pipelined ([`ChainWriter::with_pipelining`]).
    pub fn append(&mut self, items: Vec<Item>) -> Result<AppendReceipt, TopicError> {
        self.refuse_poisoned()?;
        self.refuse_enc_header(&items)?;
        let mut receipt: Option<AppendReceipt> = None;
        let mut add = |r: AppendReceipt| merge(&mut receipt, r);
        if self.shared.is_some() {
            self.append_in_place(&items, &mut add)
                .inspect_err(|_| self.poisoned = true)?;
            if items.len() >= 256 {
                // Freeing the values is a measurable share of append time: off this thread.
                rayon::spawn(move || drop(items));
            }
        } else if self.appender.pipelines() {
            let (builder, link) = (self.builder(), self.next_link());
            let batches = split_batches(items, &self.limits());
            let mut landing = Landing {
                writer: self,
                add: &mut add,
            };
            records::append_pipelined(&builder, &mut landing, batches, link)
                .inspect_err(|_| self.poisoned = true)?;
        } else {
            for batch in split_batches(items, &self.limits()) {
                add(self
                    .append_batch(batch)
                    .inspect_err(|_| self.poisoned = true)?);
            }
        }
        self.appended(receipt)
    }

    /// Whether the writer builds its batches in place in the log's encoding (the embedded
    /// log), and so takes [`ChainWriter::append_fields`].
    pub(crate) fn builds_in_place(&self) -> bool {
        self.shared.is_some()
    }

    /// [`ChainWriter::append`] of items it reads without owning them (the bridge's records,
    /// copied from a raw log once, into one buffer a batch), on a writer that
    /// [builds in place](ChainWriter::builds_in_place); any other writer refuses them.
    pub(crate) fn append_fields<F: ItemFields>(
        &mut self,
        items: &[F],
    ) -> Result<AppendReceipt, TopicError> {
        self.refuse_poisoned()?;
        if !self.builds_in_place() {
            return Err(TopicError::Invalid(format!(
                "{}/{}: this log's writer takes owned items, not views",
                self.topic, self.partition
            )));
        }
        self.refuse_enc_header(items)?;
        let mut receipt: Option<AppendReceipt> = None;
        self.append_in_place(items, &mut |r| merge(&mut receipt, r))
            .inspect_err(|_| self.poisoned = true)?;
        self.appended(receipt)
    }

    /// Refuses items that carry `kchain.enc` on an encrypting writer (it sets that header).
    fn refuse_enc_header<F: ItemFields>(&self, items: &[F]) -> Result<(), TopicError> {
        if self.encryption.is_none() {
            return Ok(());
        }
        match items
            .iter()
            .position(|it| it.headers().any(|(n, _)| n == H_ENC))
        {
            Some(i) => Err(TopicError::Invalid(format!(
                "{}/{}: item {i} already carries a {H_ENC} header; the writer sets it",
                self.topic, self.partition
            ))),
            None => Ok(()),
        }
    }

    /// What an append does once its batches are built and handed to the log: publishes what
    /// witnesses pushed back, and (unless pipelined) waits for the log and publishes a due
    /// checkpoint. Returns the append's receipt (`receipt`: the batches', merged).
    fn appended(&mut self, receipt: Option<AppendReceipt>) -> Result<AppendReceipt, TopicError> {
        let receipt = receipt.ok_or_else(|| TopicError::Invalid("nothing to append".into()))?;
        if let Some(c) = &mut self.checkpoints {
            c.publish_pushed()?;
        }
        // A pipelined writer publishes a due checkpoint when its next append has built a
        // batch and collected this one (`append_in_place`), or on flush: the tree and the log
        // catch up meanwhile.
        if !self.pipelines() {
            self.wait_written()?;
            self.publish_if_due()?;
            self.wait_published()?;
        }
        Ok(receipt)
    }

    /// Whether `append` may return with a batch in flight: pipelined, on the embedded log.
    fn pipelines(&self) -> bool {
        self.pipelined && self.shared.is_some()
    }

    /// Asks the tree thread for the root of a checkpoint if one is due, and signs and hands
    /// to the note thread the checkpoints whose roots it has answered, without waiting for
    /// it (see `checkpoints::publish`); [`ChainWriter::wait_published`] signs the rest. Call
    /// with nothing in flight: a checkpoint signs only records the log holds.
    fn publish_if_due(&mut self) -> Result<(), TopicError> {
        match &mut self.checkpoints {
            Some(c) => c.publish_if_due(),
            None => Ok(()),
        }
    }

    /// Waits until every record handed to the log is written (readers see it; forced to disk
    /// only as the log's fsync policy says: see [`ChainWriter::flush`]) and every checkpoint
    /// signed is published, and fails if one could not be: the error of a pipelined append
    /// (or of a checkpoint's publication) surfaces here or on the next call.
    pub fn wait_written(&mut self) -> Result<(), TopicError> {
        self.refuse_poisoned()?;
        self.collect().inspect_err(|_| self.poisoned = true)?;
        self.wait_published()
    }

    /// Signs the checkpoints that were due (waiting for the tree thread's roots), then waits
    /// until the checkpoints signed so far are on the checkpoints topic and on disk (they are
    /// published on a thread of their own, so that the writer does not wait for their
    /// fsync). A failed publication fails this call, not the writer: the next checkpoint
    /// publishes it again.
    fn wait_published(&mut self) -> Result<(), TopicError> {
        match &mut self.checkpoints {
            Some(c) => {
                c.sign_asked()?;
                c.wait_published()
            }
            None => Ok(()),
        }
    }

    /// Fails once an append failed: the chain's tip is no longer known.
    fn refuse_poisoned(&self) -> Result<(), TopicError> {
        match self.poisoned {
            true => Err(TopicError::Poisoned {
                topic: self.topic.clone(),
                partition: self.partition,
            }),
            false => Ok(()),
        }
    }

    /// The limits on one signed batch.
    fn limits(&self) -> Limits {
        Limits {
            max_batch_records: self.options.max_batch_records,
            max_batch_bytes: self.options.max_batch_bytes,
        }
    }

    /// The next height and the hash before it.
    fn next_link(&self) -> (u64, Hash) {
        match self.tip {
            Some((h, hash)) => (h + 1, hash),
            None => (0, ZERO_HASH),
        }
    }

    /// Records that a batch of `count` entries from `first_height` landed at `first`.
    fn advance(&mut self, first: u64, first_height: u64, count: u64, tip: Hash) -> AppendReceipt {
        let tip_height = first_height + count - 1;
        self.tip = Some((tip_height, tip));
        AppendReceipt {
            records: count,
            first_offset: first,
            last_offset: first + count - 1,
            tip_height,
            tip_hash: tip,
        }
    }

    /// Appends one signed batch as [`Record`]s (for an appender that does not take encoded
    /// batches), built by `records`.
    fn append_batch(&mut self, items: Vec<Item>) -> Result<AppendReceipt, TopicError> {
        let (first_height, prev) = self.next_link();
        let mut built = self
            .builder()
            .build(items, first_height, prev, &mut self.scratch)?;
        self.grow_tree(std::mem::take(&mut built.entry_hashes));
        let offsets = self.appender.append(&built.records)?;
        records::drop_records(built.records);
        let first = self.check_offsets(&offsets)?;
        Ok(self.advance(first, built.first_height, built.count, built.tip_hash))
    }

    /// The builder of this writer's batches (in place or as records).
    fn builder(&self) -> Builder<'k> {
        Builder {
            chain: self.chain,
            partition: self.partition,
            topic: self.topic.clone(),
            key: self.key,
            encryption: self.encryption,
            keep_hashes: self.checkpoints.is_some(),
        }
    }

    /// Appends `items` in signed batches built in place (see `inplace`), for an appender that
    /// takes encoded batches: each batch is handed to the log thread once the one before is
    /// written, so that it is built while the log writes that one (one core copying it into
    /// the page cache). The call's last batch, with nothing to overlap unless the writer is
    /// pipelined, is appended on this thread; a pipelined writer hands it over and returns.
    ///
    /// The batches are built and handed over on one of rayon's threads, the whole call at
    /// once, while this thread sleeps: the stages of each batch then start from inside the
    /// pool instead of by a round trip from this thread into it and back, and the steps
    /// between batches (collecting the written one, handing over the next) run on a thread
    /// that goes on to the next build. The waits there are for this writer's log thread and
    /// tree thread, which never use rayon; the last batch's synchronous append (disk writes,
    /// an fsync) is made back on this thread. Measured in docs/benchmarks.md, seventh pass.
    fn append_in_place<F: ItemFields>(
        &mut self,
        items: &[F],
        add: &mut (impl FnMut(AppendReceipt) + Send),
    ) -> Result<(), TopicError> {
        let this = &mut *self;
        let last = rayon::scope(|_| this.build_and_hand_over(items, add))?;
        if let Some(mut batch) = last {
            let (first, count) = (self.next_offset, batch.count);
            self.grow_tree(std::mem::take(&mut batch.entry_hashes));
            let offsets = self.appender.append_encoded(&mut batch.records)?;
            self.batch_buf = batch.records.into_buffer();
            self.check_landed(first, count, &offsets)?;
            self.next_offset += count;
            add(self.advance(first, batch.first_height, count, batch.tip_hash));
        }
        Ok(())
    }

    /// [`ChainWriter::append_in_place`]'s batches, built and handed to the log thread in
    /// order, each advancing the tip; the last one is returned instead, built, when the
    /// writer is not pipelined (the caller appends it and advances).
    fn build_and_hand_over<F: ItemFields>(
        &mut self,
        items: &[F],
        add: &mut impl FnMut(AppendReceipt),
    ) -> Result<Option<Prepared>, TopicError> {
        let builder = self.builder();
        let ranges = batch_ranges(items, &self.limits());
        let last = ranges.len().saturating_sub(1);
        for (i, range) in ranges.into_iter().enumerate() {
            let (height, prev) = self.next_link();
            let buf = std::mem::take(&mut self.batch_buf);
            let mut batch = builder.prepare(&items[range], height, prev, buf)?;
            self.collect()?;
            if i == last && !self.pipelined {
                return Ok(Some(batch));
            }
            let entry_hashes = std::mem::take(&mut batch.entry_hashes);
            let (first, count) = (self.next_offset, batch.count);
            self.log_thread()?.hand_over(batch.records)?;
            self.in_flight = Some((first, count));
            if self.pipelines() {
                // The tree holds exactly the written batches here, not the one just handed
                // over (see `append`): the log writes that one meanwhile.
                self.publish_if_due()?;
            }
            self.grow_tree(entry_hashes);
            self.next_offset += count;
            add(self.advance(first, batch.first_height, count, batch.tip_hash));
        }
        Ok(None)
    }

    /// The log thread, started on first use.
    fn log_thread(&mut self) -> Result<&mut LogThread, TopicError> {
        let (topic, partition) = (&self.topic, self.partition);
        match (&mut self.log_thread, &self.shared) {
            (Some(thread), _) => Ok(thread),
            (slot, Some(shared)) => {
                let thread = LogThread::start(shared.clone(), format!("kchain-log-{partition}"))
                    .map_err(|e| {
                        TopicError::io(format!("starting {topic}/{partition}'s log thread"), e)
                    })?;
                Ok(slot.insert(thread))
            }
            (None, None) => Err(TopicError::Invalid(format!(
                "{topic}/{partition}: this log's appender takes records, not encoded batches"
            ))),
        }
    }

    /// Waits for the batch handed to the log thread, if one is in flight, and checks where
    /// it landed.
    fn collect(&mut self) -> Result<(), TopicError> {
        let (Some((first, count)), Some(thread)) = (self.in_flight.take(), &mut self.log_thread)
        else {
            return Ok(());
        };
        let (written, buf) = thread.collect();
        if buf.capacity() > self.batch_buf.capacity() {
            self.batch_buf = buf;
        }
        self.check_landed(first, count, &written?)
    }

    /// Checks that the `count` records of a batch landed at `first` and after, where this
    /// writer expected them (one writer per partition).
    fn check_landed(&self, first: u64, count: u64, offsets: &[u64]) -> Result<(), TopicError> {
        let expected = first..first + count;
        match offsets
            .iter()
            .zip(expected.clone())
            .find(|(got, want)| got != &want)
        {
            None if offsets.len() as u64 == count => Ok(()),
            found => Err(TopicError::ForeignRecord {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: found.map_or(expected.end, |(_, want)| want),
                detail: format!(
                    "this writer's batch of {count} for offsets {expected:?} landed as {} \
                     record(s) from offset {:?}",
                    offsets.len(),
                    offsets.first()
                ),
            }),
        }
    }

    /// Hands a batch's entry hashes to the checkpoint tree, if checkpoints are on. Called just
    /// before the log append, or just after the batch is handed to the log thread: the tree
    /// grows on its own thread while the log writes (the parallel stages are over, so it
    /// takes a core that would idle). A failed append poisons the writer, so a tree ahead of
    /// the log is never signed.
    fn grow_tree(&mut self, entry_hashes: Vec<Hash>) {
        if let Some(c) = &mut self.checkpoints {
            c.push_all(entry_hashes);
        }
    }

    /// Checks that each record of a batch landed where this writer expected it; returns the
    /// first one's offset.
    fn check_offsets(&mut self, offsets: &[u64]) -> Result<u64, TopicError> {
        for (i, &off) in offsets.iter().enumerate() {
            let expected = self.next_offset + i as u64;
            if off != expected {
                return Err(TopicError::ForeignRecord {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    offset: expected,
                    detail: format!("this writer's record landed at offset {off} instead"),
                });
            }
        }
        let first = self.next_offset;
        self.next_offset += offsets.len() as u64;
        Ok(first)
    }

    /// Forces appended records to stable storage, then publishes a checkpoint if checkpoints
    /// are on and the chain grew since the last (a clean shutdown flushes). Waits for every
    /// record handed to the log first (see [`ChainWriter::wait_written`]): once it returns,
    /// nothing appended before is lost to a crash of the process or of the machine.
    pub fn flush(&mut self) -> Result<(), TopicError> {
        self.collect().inspect_err(|_| self.poisoned = true)?;
        self.appender.flush()?;
        if self.checkpoints.is_some() && !self.poisoned {
            self.checkpoint()?;
        }
        Ok(())
    }
}

/// The writer as `records::append_pipelined` sees it, with where its receipts go.
struct Landing<'a, 'k> {
    writer: &'a mut ChainWriter<'k>,
    add: &'a mut dyn FnMut(AppendReceipt),
}

impl records::Landing for Landing<'_, '_> {
    fn appender(&mut self) -> &mut dyn Appender {
        self.writer.appender.as_mut()
    }

    fn grow_tree(&mut self, entry_hashes: Vec<Hash>) {
        self.writer.grow_tree(entry_hashes);
    }

    fn landed(&mut self, batch: &records::Landed, offsets: &[u64]) -> Result<(), TopicError> {
        let first = self.writer.check_offsets(offsets)?;
        let receipt = self
            .writer
            .advance(first, batch.first_height, batch.count, batch.tip_hash);
        (self.add)(receipt);
        Ok(())
    }
}

/// Adds one batch's receipt `r` to the receipt of the append so far (`acc`).
fn merge(acc: &mut Option<AppendReceipt>, r: AppendReceipt) {
    *acc = Some(match *acc {
        None => r,
        Some(acc) => AppendReceipt {
            records: acc.records + r.records,
            first_offset: acc.first_offset,
            ..r
        },
    });
}
