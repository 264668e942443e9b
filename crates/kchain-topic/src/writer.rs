//! The chained writer: appends items to one partition as hash-linked, signed records.
//!
//! ```text
//!  items ──► leaf hashes (parallel) ──► entry hashes (in order: each needs the previous)
//!        ──► sign the last entry hash ──► one log batch ──► check the offsets we were given
//! ```

use std::time::Duration;

use kchain_core::{
    observe, ChainContext, ChainId, ChainMeta, EntryHeader, Hash, Item, Observation, SigCheck,
    SignedNote, Trust, TrustedWriter, WriterKey, ENTRY_VERSION, ZERO_HASH,
};
use kchain_log::{Appender, Header, Log, Record};
use rayon::prelude::*;

use crate::checkpoints::{CheckpointOptions, CheckpointState};
use crate::error::TopicError;
use crate::mapping::record_headers;

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
    /// Set by [`ChainWriter::with_checkpoints`].
    checkpoints: Option<CheckpointState<'k>>,
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
        let appender = log.appender(topic, partition)?;
        let chain = ChainId::for_partition(topic, partition);
        let end = appender.next_offset();
        let start = log.start_offset(topic, partition)?;
        let tip = if end > start {
            Some(read_own_tip(log, topic, partition, chain, key, end - 1)?)
        } else {
            None
        };
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
            checkpoints: None,
        })
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
    /// it or checkpoints are off. Returns the signed note it published.
    pub fn checkpoint(&mut self) -> Result<Option<SignedNote>, TopicError> {
        if self.poisoned {
            return Err(TopicError::Poisoned {
                topic: self.topic.clone(),
                partition: self.partition,
            });
        }
        match &mut self.checkpoints {
            Some(c) => c.publish(),
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
        let mut receipt: Option<AppendReceipt> = None;
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some(item) = items.next_if(|it| {
                batch.is_empty()
                    || (batch.len() < self.options.max_batch_records
                        && bytes + item_size(it) <= self.options.max_batch_bytes)
            }) {
                bytes += item_size(&item);
                batch.push(item);
            }
            let r = self
                .append_batch(batch)
                .inspect_err(|_| self.poisoned = true)?;
            receipt = Some(match receipt {
                None => r,
                Some(acc) => AppendReceipt {
                    records: acc.records + r.records,
                    first_offset: acc.first_offset,
                    ..r
                },
            });
        }
        let receipt = receipt.ok_or_else(|| TopicError::Invalid("nothing to append".into()))?;
        if self.checkpoints.as_ref().is_some_and(|c| c.due()) {
            self.checkpoint()?;
        }
        Ok(receipt)
    }

    fn append_batch(&mut self, items: Vec<Item>) -> Result<AppendReceipt, TopicError> {
        // Only the entry hashes form a sequence (each needs the one before); item hashing
        // and record building run in parallel around it.
        let parallel = items.len() >= 256;
        let leaves: Vec<Hash> = if parallel {
            items
                .par_iter()
                .map_init(Vec::new, |buf, it| it.as_ref().leaf_hash(buf))
                .collect()
        } else {
            items
                .iter()
                .map(|it| it.as_ref().leaf_hash(&mut self.scratch))
                .collect()
        };
        let (first_height, mut prev) = match self.tip {
            Some((h, hash)) => (h + 1, hash),
            None => (0, ZERO_HASH),
        };
        let n = items.len();
        // links[i] = (prev of record i, entry hash of record i)
        let mut links = Vec::with_capacity(n);
        for (i, (item, leaf)) in items.iter().zip(&leaves).enumerate() {
            let hash = EntryHeader {
                version: ENTRY_VERSION,
                chain: self.chain,
                height: first_height + i as u64,
                prev,
                timestamp_ms: item.timestamp_ms,
                items_root: *leaf,
                item_count: 1,
            }
            .hash();
            links.push((prev, hash));
            prev = hash;
        }
        // A failed append poisons the writer, so a tree ahead of the log is never signed.
        if let Some(c) = &mut self.checkpoints {
            links.iter().for_each(|(_, hash)| c.push(hash));
        }
        let tip_hash = prev;
        let signature = Some((self.key.id(), self.key.sign_entry(&tip_hash)));
        let build = |(i, (item, (prev, _))): (usize, (Item, (Hash, Hash)))| {
            let meta = ChainMeta {
                version: ENTRY_VERSION,
                height: first_height + i as u64,
                prev,
                signature: if i + 1 == n { signature } else { None },
            };
            Record {
                key: item.key,
                value: item.value,
                headers: record_headers(&meta, item.headers),
                timestamp_ms: item.timestamp_ms,
            }
        };
        let records: Vec<Record> = if parallel {
            items
                .into_par_iter()
                .zip(links)
                .enumerate()
                .map(build)
                .collect()
        } else {
            items
                .into_iter()
                .zip(links)
                .enumerate()
                .map(build)
                .collect()
        };
        let height = first_height + n as u64;
        let offsets = self.appender.append(&records)?;
        if parallel {
            // Freeing a batch's buffers is a measurable share of append time.
            records.into_par_iter().for_each(drop);
        } else {
            drop(records);
        }
        // One writer per partition, checked: every record must land where we expected it.
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
        self.next_offset += n as u64;
        self.tip = Some((height - 1, prev));
        Ok(AppendReceipt {
            records: n as u64,
            first_offset: first,
            last_offset: first + n as u64 - 1,
            tip_height: height - 1,
            tip_hash: prev,
        })
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

fn item_size(it: &Item) -> usize {
    it.key.as_ref().map_or(0, Vec::len)
        + it.value.as_ref().map_or(0, Vec::len)
        + it.headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
        + 160
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

/// Turns a log record's header list into (name, value) pairs.
pub(crate) fn header_pairs(headers: &[Header]) -> impl Iterator<Item = (&str, &[u8])> + Clone {
    headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_slice()))
}
