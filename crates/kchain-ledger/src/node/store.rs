//! Where a ledger lives and how it is read and written: its chain opened from the genesis
//! block of its blocks topic, a node's state directory under a data directory, and small
//! helpers over a [`Log`] (reading one record, appending while other processes hold the
//! partition, the clock).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kchain_core::Hash;
use kchain_log::{Appender, Log, LogError, Reader, Record, StoredRecord};

use crate::consensus::chain::Chain;
use crate::consensus::finding::{Finding, FindingKind};
use crate::error::LedgerError;

/// How long an append waits for another appender to let go of a partition.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// How long a read to a known end offset goes on polling while polls come back empty,
/// before it takes what it read as all there is (see [`poll_to_end`]).
const READ_PATIENCE: Duration = Duration::from_secs(10);
/// How long one of those polls waits.
const READ_POLL: Duration = Duration::from_millis(200);

/// Milliseconds since the Unix epoch.
pub use kchain_core::time::now_ms;

/// Reads the record at `offset`, if the partition holds it.
pub fn read_record(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    offset: u64,
) -> Result<Option<StoredRecord>, LogError> {
    if offset >= log.end_offset(topic, partition)? {
        return Ok(None);
    }
    let mut reader = log.reader(topic, partition, offset)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let recs = reader.poll(1, Duration::from_millis(200))?;
        if let Some(r) = recs.into_iter().next() {
            return Ok((r.offset == offset).then_some(r));
        }
    }
    Ok(None)
}

/// The next records of `reader` below `end` (up to `max`; the last poll may hand back
/// records past `end`, which the caller drops). Empty only once the reader has reached
/// `end`, or when no record came for [`READ_PATIENCE`]: a poll that comes back empty does
/// not mean the records are over. A Kafka consumer's first fetch (connecting, metadata,
/// offsets) can take longer than one poll's wait on a loaded machine, and a read that took
/// that for the end would see a chain shorter than the log holds (a verify reporting a
/// lower height, a replay that misses the last blocks).
pub(crate) fn poll_to_end(
    reader: &mut dyn Reader,
    end: u64,
    max: usize,
) -> Result<Vec<StoredRecord>, LogError> {
    let started = Instant::now();
    while reader.position() < end {
        let recs = reader.poll(max, READ_POLL)?;
        if !recs.is_empty() || started.elapsed() >= READ_PATIENCE {
            return Ok(recs);
        }
    }
    Ok(Vec::new())
}

/// Reads every record of a partition from `from` to its end offset at the time of the call.
pub fn read_to_end(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    from: u64,
    mut each: impl FnMut(StoredRecord) -> bool,
) -> Result<(), LogError> {
    let end = log.end_offset(topic, partition)?;
    let from = from.max(log.start_offset(topic, partition)?);
    if from >= end {
        return Ok(());
    }
    let mut reader = log.reader(topic, partition, from)?;
    loop {
        let recs = poll_to_end(reader.as_mut(), end, 4096)?;
        if recs.is_empty() {
            return Ok(());
        }
        for r in recs {
            if r.offset >= end || !each(r) {
                return Ok(());
            }
        }
    }
}

/// An appender that is opened when needed and, unless `hold`, closed after each append, so
/// that several processes (or sealers in one process) can take turns on an embedded
/// partition, whose appender is exclusive. With a lease, it is kept for appends that follow
/// within the lease of opening it, and closed at the first append or
/// [`SharedAppender::release_expired`] after: a busy writer does not pay for opening and
/// closing (on the embedded log, an fsync) at every append, and others wait at most a lease.
pub struct SharedAppender {
    topic: String,
    partition: u32,
    hold: bool,
    lease: Option<Duration>,
    open: Option<(Box<dyn Appender>, Instant)>,
}

impl SharedAppender {
    pub fn new(topic: &str, partition: u32, hold: bool) -> Self {
        SharedAppender {
            topic: topic.to_owned(),
            partition,
            hold,
            lease: None,
            open: None,
        }
    }

    /// Keeps the appender open for `lease` after opening it (when not held anyway).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Opens the appender now when it is held between appends (opening one may take a
    /// round trip to a broker and a producer id: better paid before the first append).
    pub fn open(&mut self, log: &dyn Log) -> Result<(), LogError> {
        if self.hold && self.open.is_none() {
            self.open = Some((log.appender(&self.topic, self.partition)?, Instant::now()));
        }
        Ok(())
    }

    /// Closes the appender if it is open past its lease (never a held one).
    pub fn release_expired(&mut self) {
        let expired = match (&self.open, self.lease) {
            (Some((_, opened)), Some(lease)) => !self.hold && opened.elapsed() >= lease,
            _ => false,
        };
        if expired {
            self.open = None;
        }
    }

    /// Appends `records` as one batch, waiting while another appender holds the partition.
    pub fn append(&mut self, log: &dyn Log, records: &[Record]) -> Result<Vec<u64>, LogError> {
        self.release_expired();
        let started = Instant::now();
        let mut backoff = Duration::from_micros(200);
        let (mut appender, opened) = loop {
            if let Some(a) = self.open.take() {
                break a;
            }
            match log.appender(&self.topic, self.partition) {
                Ok(a) => break (a, Instant::now()),
                Err(LogError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        };
        let offsets = appender.append(records)?;
        let leased = self.lease.is_some_and(|l| opened.elapsed() < l);
        if self.hold || leased {
            self.open = Some((appender, opened));
        }
        Ok(offsets)
    }
}

/// Reads the genesis block of a ledger and starts its chain.
pub fn open_chain(
    log: &dyn Log,
    blocks_topic: &str,
    expected: Option<Hash>,
) -> Result<Chain, LedgerError> {
    let start = log.start_offset(blocks_topic, 0)?;
    let rec = read_record(log, blocks_topic, 0, start)?.ok_or_else(|| LedgerError::NoGenesis {
        topic: blocks_topic.to_owned(),
        offset: start,
        detail: "the topic is empty".into(),
    })?;
    let chain = Chain::from_genesis(blocks_topic, start, rec.record.value.as_deref())?;
    if let Some(want) = expected {
        if chain.genesis_hash() != want {
            return Err(LedgerError::Tampered(Box::new(Finding {
                offset: start,
                height: Some(0),
                kind: FindingKind::GenesisChanged,
                detail: format!(
                    "the genesis block hashes to {}, expected {}",
                    kchain_core::to_hex(&chain.genesis_hash()),
                    kchain_core::to_hex(&want)
                ),
            })));
        }
    }
    Ok(chain)
}

/// The state directory of a ledger under a data directory (see
/// [`kchain_topic::DataDir::ledger_state`], which alone knows the layout).
pub fn state_dir(data_dir: &Path, blocks_topic: &str) -> PathBuf {
    kchain_topic::DataDir::new(data_dir, PathBuf::new()).ledger_state(blocks_topic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kchain_log::{EmbeddedLog, EmbeddedOptions, TopicConfig};

    fn record() -> Record {
        Record {
            key: None,
            value: Some(b"x".to_vec()),
            headers: vec![],
            timestamp_ms: 0,
        }
    }

    #[test]
    fn a_leased_appender_is_kept_within_its_lease_and_let_go_after() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::create(dir.path(), EmbeddedOptions::default()).unwrap();
        log.create_topic("t", &TopicConfig::default()).unwrap();
        let locked =
            |log: &EmbeddedLog| matches!(log.appender("t", 0), Err(LogError::Locked { .. }));

        let mut plain = SharedAppender::new("t", 0, false);
        plain.append(&log, &[record()]).unwrap();
        assert!(
            !locked(&log),
            "without a lease the appender is closed after each append"
        );

        let mut long = SharedAppender::new("t", 0, false).with_lease(Duration::from_secs(60));
        long.append(&log, &[record()]).unwrap();
        assert!(locked(&log), "within its lease the appender stays open");
        assert_eq!(long.append(&log, &[record()]).unwrap(), vec![2]);
        long.release_expired();
        assert!(locked(&log));
        drop(long);

        let mut short = SharedAppender::new("t", 0, false).with_lease(Duration::from_millis(1));
        short.open = Some((log.appender("t", 0).unwrap(), Instant::now()));
        std::thread::sleep(Duration::from_millis(5));
        short.release_expired();
        assert!(!locked(&log), "past its lease an idle appender is closed");
    }
}
