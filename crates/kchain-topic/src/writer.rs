//! The chained writer: appends items to one partition as hash-linked, signed records.
//!
//! ```text
//!  items ──► [encrypt values] + leaf hashes (parallel) ──► entry hashes (in order: each needs
//!        the previous) ──► sign the last entry hash ──► one log batch ──► check the offsets
//! ```
//!
//! Two ways to the log: for an appender that takes encoded batches (the embedded log's), each
//! batch is built in place in the log's encoding (`inplace`) and the batches of one call are
//! pipelined (the next is built while the log writes one); for any other (Kafka's), each
//! batch becomes [`Record`]s. Both give the log the same records.
//!
//! Heights are known before anything is hashed (the tip is), so encryption, whose associated
//! data binds each value to its height, runs in the parallel per-record stage and stays off
//! the sequential hash chain.

use std::time::Duration;

use kchain_core::{
    observe, ChainContext, ChainId, DataKey, Hash, Item, Observation, SigCheck, SignedNote, Trust,
    TrustedWriter, WriterKey, H_ENC, ZERO_HASH,
};
use kchain_log::{Appender, Log};

use crate::batches::{batch_ranges, split_batches, Limits};
use crate::checkpoints::{CheckpointOptions, CheckpointState};
use crate::error::TopicError;
use crate::inplace;
use crate::records;

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
    appender: Box<dyn Appender>,
    topic: String,
    partition: u32,
    chain: ChainId,
    key: &'k WriterKey,
    options: WriterOptions,
    /// Height and hash of the last record, or `None` for an empty chain.
    tip: Option<(u64, Hash)>,
    next_offset: u64,
    poisoned: bool,
    scratch: Vec<u8>,
    /// The last batch's buffer, reused by the next (see `inplace`).
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
        Ok(ChainWriter {
            appender,
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
    /// it or checkpoints are off. Returns the signed note. In push mode, waits (a bounded
    /// time) for the witnesses and publishes it with their cosignatures.
    pub fn checkpoint(&mut self) -> Result<Option<SignedNote>, TopicError> {
        if self.poisoned {
            return Err(TopicError::Poisoned {
                topic: self.topic.clone(),
                partition: self.partition,
            });
        }
        match &mut self.checkpoints {
            Some(c) => {
                let note = c.publish()?;
                c.settle()?;
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
    pub fn append(&mut self, items: Vec<Item>) -> Result<AppendReceipt, TopicError> {
        if self.poisoned {
            return Err(TopicError::Poisoned {
                topic: self.topic.clone(),
                partition: self.partition,
            });
        }
        if self.encryption.is_some() {
            if let Some(i) = items
                .iter()
                .position(|it| it.headers.iter().any(|(n, _)| n == H_ENC))
            {
                return Err(TopicError::Invalid(format!(
                    "{}/{}: item {i} already carries a {H_ENC} header; the writer sets it",
                    self.topic, self.partition
                )));
            }
        }
        let mut receipt: Option<AppendReceipt> = None;
        let mut add = |r: AppendReceipt| {
            receipt = Some(match receipt {
                None => r,
                Some(acc) => AppendReceipt {
                    records: acc.records + r.records,
                    first_offset: acc.first_offset,
                    ..r
                },
            })
        };
        if self.appender.takes_encoded() {
            self.append_in_place(items, &mut add)
                .inspect_err(|_| self.poisoned = true)?;
        } else if self.appender.pipelines() {
            let (builder, link) = (self.record_builder(), self.next_link());
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
        let receipt = receipt.ok_or_else(|| TopicError::Invalid("nothing to append".into()))?;
        if let Some(c) = &mut self.checkpoints {
            c.publish_pushed()?;
            if c.due() {
                c.publish()?;
            }
        }
        Ok(receipt)
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
        let mut built =
            self.record_builder()
                .build(items, first_height, prev, &mut self.scratch)?;
        self.grow_tree(std::mem::take(&mut built.entry_hashes));
        let offsets = self.appender.append(&built.records)?;
        records::drop_records(built.records);
        let first = self.check_offsets(&offsets)?;
        Ok(self.advance(first, built.first_height, built.count, built.tip_hash))
    }

    /// The builder of this writer's batches as records.
    fn record_builder(&self) -> records::Builder<'k> {
        records::Builder {
            chain: self.chain,
            partition: self.partition,
            topic: self.topic.clone(),
            key: self.key,
            encryption: self.encryption,
            keep_hashes: self.checkpoints.is_some(),
        }
    }

    /// Appends `items` in signed batches built in place (see `inplace`), for an appender that
    /// takes encoded batches. Pipelined: while the appender writes one batch (one core, the
    /// kernel copying it into the page cache), the next is built on the other.
    fn append_in_place(
        &mut self,
        items: Vec<Item>,
        add: &mut impl FnMut(AppendReceipt),
    ) -> Result<(), TopicError> {
        let builder = inplace::Builder {
            chain: self.chain,
            partition: self.partition,
            topic: self.topic.clone(),
            key: self.key,
            encryption: self.encryption,
            keep_hashes: self.checkpoints.is_some(),
        };
        let ranges = batch_ranges(&items, &self.limits());
        let Some(first_range) = ranges.first() else {
            return Ok(());
        };
        let (first_height, prev) = self.next_link();
        let buf = std::mem::take(&mut self.batch_buf);
        let mut spare = Vec::new();
        let mut current = builder.prepare(&items[first_range.clone()], first_height, prev, buf)?;
        for next in ranges.iter().skip(1).map(Some).chain([None]) {
            self.grow_tree(std::mem::take(&mut current.entry_hashes));
            let (height, count, tip_hash) = (current.first_height, current.count, current.tip_hash);
            let appender = &mut self.appender;
            let records = &mut current.records;
            let (written, prepared) = match next {
                Some(range) => {
                    let buf = std::mem::take(&mut spare);
                    let (w, p) = rayon::join(
                        || appender.append_encoded(records),
                        || builder.prepare(&items[range.clone()], height + count, tip_hash, buf),
                    );
                    (w, Some(p))
                }
                None => (appender.append_encoded(records), None),
            };
            let first = self.check_offsets(&written?)?;
            add(self.advance(first, height, count, tip_hash));
            spare = std::mem::take(&mut current.records).into_buffer();
            match prepared {
                Some(p) => current = p?,
                None => break,
            }
        }
        self.batch_buf = spare;
        if items.len() >= 256 {
            // Freeing the values is a measurable share of append time: off this thread.
            rayon::spawn(move || drop(items));
        }
        Ok(())
    }

    /// Hands a batch's entry hashes to the checkpoint tree, if checkpoints are on. Called just
    /// before the log append: the tree grows on its own thread while this one appends (the
    /// parallel stages are over, so it takes a core that would idle). A failed append poisons
    /// the writer, so a tree ahead of the log is never signed.
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
    /// are on and the chain grew since the last (a clean shutdown flushes).
    pub fn flush(&mut self) -> Result<(), TopicError> {
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

/// Reads the record at `offset` and checks that it is a tip signed by `key`.
fn read_own_tip(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    chain: ChainId,
    key: &WriterKey,
    offset: u64,
) -> Result<(u64, Hash), TopicError> {
    let mut reader = log.reader(topic, partition, offset)?;
    let rec = reader
        .poll(1, Duration::from_secs(10))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            TopicError::Invalid(format!(
                "{topic}/{partition}: cannot read the tip at offset {offset}"
            ))
        })?;
    let trust = Trust {
        writers: vec![TrustedWriter {
            name: key.name().to_owned(),
            key: key.public(),
            topics: Vec::new(),
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    };
    let ctx = ChainContext {
        topic,
        chain,
        trust: &trust,
    };
    let r = &rec.record;
    let obs = observe(
        &ctx,
        rec.offset,
        r.key.as_deref(),
        r.value.as_deref(),
        r.headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_slice())),
        r.timestamp_ms,
        &mut Vec::new(),
    );
    let foreign = |detail: String| TopicError::ForeignRecord {
        topic: topic.to_owned(),
        partition,
        offset,
        detail,
    };
    match obs {
        Observation::Entry(o) if o.sig == SigCheck::Valid(key.id()) => Ok((o.height, o.hash)),
        Observation::Entry(o) => Err(foreign(match o.sig {
            SigCheck::None => "the tip is not signed".into(),
            SigCheck::Unknown(id) | SigCheck::OtherTopics(id) => {
                format!(
                    "the tip is signed by key {id}, not by this writer's key {}",
                    key.id()
                )
            }
            _ => "the tip's signature does not verify".into(),
        })),
        Observation::Malformed { error, .. } => Err(foreign(error.to_string())),
    }
}
