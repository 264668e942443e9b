//! The `Log` abstraction: what kchain needs from an ordered, partitioned, append-only log.
//!
//! Both backends (embedded segment files, and Kafka in a later crate feature) implement these
//! traits, and one conformance suite runs against each.

use std::fmt;
use std::time::Duration;

use crate::encoded::EncodedRecords;
use crate::error::LogError;

/// One record header: a name and opaque bytes, as in Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// One record as an application sees it: optional key, optional value, headers in order, and a
/// timestamp in milliseconds since the Unix epoch (Kafka's CreateTime).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp_ms: i64,
}

impl Record {
    /// The value of the first header called `name`, if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.as_slice())
    }
}

/// A record read back from a log, with the offset the log gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub record: Record,
}

/// When the embedded backend forces appended data to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// fsync before `append` returns: an acknowledged append survives power loss.
    #[default]
    EveryBatch,
    /// fsync at most every this many milliseconds (checked on append and on drop); an
    /// acknowledged append survives a process crash but may be lost on power loss.
    IntervalMs(u64),
    /// Never fsync explicitly (tests and benchmarks of the hashing path only).
    Never,
}

/// Settings for a new topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    pub partitions: u32,
    /// Retention in milliseconds; `None` keeps records forever (kchain's default).
    pub retention_ms: Option<i64>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            partitions: 1,
            retention_ms: None,
        }
    }
}

/// What a log knows about one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    /// Backend-specific settings worth showing a user (e.g. `retention.ms`), as text.
    pub settings: Vec<(String, String)>,
}

/// A topic name and partition number, for messages and map keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub topic: String,
    pub partition: u32,
}

impl Partition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Partition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// An ordered, partitioned, append-only log.
///
/// Offsets within a partition start at the partition's start offset (0 unless retention has
/// removed records) and grow by one per record.
pub trait Log: Send + Sync {
    /// Short name of the backend for messages: `"embedded"` or `"kafka"`.
    fn backend(&self) -> &'static str;

    /// What names this log wherever it is reached from, for anchors kept outside it (pins,
    /// remembered checkpoints): `kafka:<cluster id>` for a Kafka cluster that reports its
    /// id. `None` (the default) when the log does not know one: the caller names it by how
    /// it reached it (a data directory, a bootstrap list).
    fn identity(&self) -> Option<String> {
        None
    }

    /// Creates a topic. Fails with [`LogError::TopicExists`] when it already exists.
    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<(), LogError>;

    /// Lists topics, sorted by name.
    fn list_topics(&self) -> Result<Vec<TopicInfo>, LogError>;

    /// Describes one topic. Fails with [`LogError::NoSuchTopic`] when it does not exist.
    fn topic(&self, name: &str) -> Result<TopicInfo, LogError>;

    /// Opens the single appender of a partition. On the embedded backend this takes an
    /// exclusive lock that fails with [`LogError::Locked`] while another appender (in this or
    /// another process) holds it.
    fn appender(&self, topic: &str, partition: u32) -> Result<Box<dyn Appender>, LogError>;

    /// Opens a reader positioned at `from` (clamped up to the start offset).
    fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Box<dyn Reader>, LogError>;

    /// The offset the next appended record will get (the high watermark).
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError>;

    /// The first offset still stored in the partition.
    fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError>;

    /// Deletes stored records below `offset` as retention does, and returns the partition's
    /// start offset after it (Kafka's log start offset is the model). The embedded log
    /// deletes whole segments only, never the last one: the start offset moves to the first
    /// segment that holds `offset` or later, so it may stay below `offset`. The default
    /// deletes nothing and says so ([`LogError::Unsupported`]): a caller decides what may be
    /// deleted (for kchain, what an archive's checkpoint covers), the log only deletes it.
    fn delete_records_before(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<u64, LogError> {
        let _ = offset;
        Err(LogError::Unsupported(format!(
            "the {} log of {topic}/{partition} does not delete records on request",
            self.backend()
        )))
    }

    /// Whether opening a reader is cheap (a file handle, not a consumer with its own fetch
    /// session), so that reading one partition with several readers at once pays. The
    /// default, `false`, suits a networked backend.
    fn cheap_readers(&self) -> bool {
        false
    }

    /// Whether an open appender holds its partition exclusively against every other
    /// process (a file lock), so that a process appending now and then should open the
    /// appender for each append and let others in between. The default, `false`, suits a
    /// broker that serves any number of producers.
    fn exclusive_appenders(&self) -> bool {
        false
    }
}

/// Appends batches to one partition.
pub trait Appender: Send {
    /// Appends `records` as one batch and returns the offset of each record, in order. When
    /// this returns `Ok`, the records are acknowledged: readers can see them, and they
    /// survive a crash of this process (and power loss, under [`FsyncPolicy::EveryBatch`]).
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError>;

    /// Whether [`Appender::append_encoded`] takes records without decoding them (the
    /// embedded log's appender does), so that a writer gains by building them in place. The
    /// default, `false`: build [`Record`]s and call [`Appender::append`].
    fn takes_encoded(&self) -> bool {
        false
    }

    /// Appends records built in place as one batch, as [`Appender::append`] does; the
    /// appender may write the batch header into the room `records` keeps for it. Only for an
    /// appender whose [`Appender::takes_encoded`] is true: the default refuses
    /// ([`LogError::Unsupported`]).
    fn append_encoded(&mut self, records: &mut EncodedRecords) -> Result<Vec<u64>, LogError> {
        let _ = records;
        Err(LogError::Unsupported(
            "this appender takes records, not encoded batches".into(),
        ))
    }

    /// Whether [`Appender::send`] and [`Appender::receive`] keep batches in flight (Kafka's
    /// appender does: a batch travels to the broker while the caller builds the next), so
    /// that a writer gains by overlapping the two. The default, `false`: call
    /// [`Appender::append`].
    fn pipelines(&self) -> bool {
        false
    }

    /// Hands `records` over as one batch and returns without waiting for its
    /// acknowledgement: nothing is acknowledged until [`Appender::receive`] returns its
    /// offsets. Batches are received in the order they were sent. A batch that fails makes
    /// every later one fail too (the appender stops). Only for an appender whose
    /// [`Appender::pipelines`] is true: the default refuses ([`LogError::Unsupported`]).
    fn send(&mut self, records: Vec<Record>) -> Result<(), LogError> {
        let _ = records;
        Err(LogError::Unsupported(
            "this appender does not keep batches in flight".into(),
        ))
    }

    /// Waits for the oldest batch [`Appender::send`] handed over and not yet received, and
    /// returns the offset of each of its records, in order: from then on they are
    /// acknowledged as after [`Appender::append`]. `Ok(None)` when no batch is in flight.
    fn receive(&mut self) -> Result<Option<Vec<u64>>, LogError> {
        Err(LogError::Unsupported(
            "this appender does not keep batches in flight".into(),
        ))
    }

    /// Forces everything appended so far to stable storage.
    fn flush(&mut self) -> Result<(), LogError>;

    /// The offset the next appended record will get.
    fn next_offset(&self) -> u64;
}

/// A stored record lent by a reader, without copies: see [`Reader::poll_visit`].
#[derive(Clone, Copy, Debug)]
pub struct RecordView<'a> {
    pub offset: u64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: HeadersRef<'a>,
    pub timestamp_ms: i64,
}

/// A record's headers, borrowed: a slice of owned headers, the encoded header block of an
/// embedded segment (already checked when the record was decoded), or the (name, value)
/// pairs a decoder has already split that block into, so that a reader that walks the
/// headers several times parses them once.
#[derive(Clone, Copy, Debug)]
pub struct HeadersRef<'a>(HeadersInner<'a>);

#[derive(Clone, Copy, Debug)]
enum HeadersInner<'a> {
    Owned(&'a [Header]),
    /// `u32 name length, name, u32 value length, value` repeated (the embedded encoding).
    Encoded(&'a [u8]),
    Split(&'a [(&'a str, &'a [u8])]),
}

impl<'a> HeadersRef<'a> {
    pub fn owned(headers: &'a [Header]) -> Self {
        HeadersRef(HeadersInner::Owned(headers))
    }

    /// Requires `bytes` to be a whole, valid header block (names UTF-8); anything else ends
    /// the iteration early rather than panicking.
    pub(crate) fn encoded(bytes: &'a [u8]) -> Self {
        HeadersRef(HeadersInner::Encoded(bytes))
    }

    /// Headers a decoder has split already: `pairs` in order.
    pub fn split(pairs: &'a [(&'a str, &'a [u8])]) -> Self {
        HeadersRef(HeadersInner::Split(pairs))
    }

    /// The headers as (name, value) pairs, in order.
    #[inline]
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter(match self.0 {
            HeadersInner::Owned(h) => IterInner::Owned(h.iter()),
            HeadersInner::Encoded(b) => IterInner::Encoded(b),
            HeadersInner::Split(p) => IterInner::Split(p.iter()),
        })
    }
}

/// Iterator over [`HeadersRef`].
#[derive(Clone, Debug)]
pub struct HeaderIter<'a>(IterInner<'a>);

#[derive(Clone, Debug)]
enum IterInner<'a> {
    Owned(std::slice::Iter<'a, Header>),
    Encoded(&'a [u8]),
    Split(std::slice::Iter<'a, (&'a str, &'a [u8])>),
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterInner::Owned(it) => it.next().map(|h| (h.name.as_str(), h.value.as_slice())),
            IterInner::Split(it) => it.next().copied(),
            IterInner::Encoded(rest) => {
                let field = |b: &'a [u8]| -> Option<(&'a [u8], &'a [u8])> {
                    let n = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
                    let end = 4usize.checked_add(n)?;
                    Some((b.get(4..end)?, b.get(end..)?))
                };
                let (name, after) = field(rest)?;
                let (value, after) = field(after)?;
                *rest = after;
                Some((std::str::from_utf8(name).ok()?, value))
            }
        }
    }
}

/// Reads one partition in offset order.
pub trait Reader: Send {
    /// Returns up to `max` records from the current position and advances past them. Returns
    /// an empty vector when no record arrives within `wait` (`Duration::ZERO` does not wait).
    fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError>;

    /// Like [`poll`](Reader::poll), but lends each record to `visit` instead of returning
    /// copies, and returns how many it visited. Backends that can (the embedded one) read
    /// without allocating; the default copies through `poll`.
    fn poll_visit(
        &mut self,
        max: usize,
        wait: Duration,
        visit: &mut dyn FnMut(&RecordView<'_>),
    ) -> Result<usize, LogError> {
        let recs = self.poll(max, wait)?;
        for r in &recs {
            visit(&RecordView {
                offset: r.offset,
                key: r.record.key.as_deref(),
                value: r.record.value.as_deref(),
                headers: HeadersRef::owned(&r.record.headers),
                timestamp_ms: r.record.timestamp_ms,
            });
        }
        Ok(recs.len())
    }

    /// The offset of the next record this reader will return.
    fn position(&self) -> u64;
}
