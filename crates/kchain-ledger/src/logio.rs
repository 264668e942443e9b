//! Small helpers over a [`Log`]: reading one record, appending while other processes hold
//! the partition, the clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kchain_log::{Appender, Log, LogError, Record, StoredRecord};

/// How long an append waits for another appender to let go of a partition.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

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
    while reader.position() < end {
        let recs = reader.poll(4096, Duration::from_millis(500))?;
        if recs.is_empty() {
            break;
        }
        for r in recs {
            if r.offset >= end || !each(r) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// An appender that is opened when needed and, unless `hold`, closed after each append, so
/// that several processes (or sealers in one process) can take turns on an embedded
/// partition, whose appender is exclusive.
pub struct SharedAppender {
    topic: String,
    partition: u32,
    hold: bool,
    open: Option<Box<dyn Appender>>,
}

impl SharedAppender {
    pub fn new(topic: &str, partition: u32, hold: bool) -> Self {
        SharedAppender {
            topic: topic.to_owned(),
            partition,
            hold,
            open: None,
        }
    }

    /// Appends `records` as one batch, waiting while another appender holds the partition.
    pub fn append(&mut self, log: &dyn Log, records: &[Record]) -> Result<Vec<u64>, LogError> {
        let started = Instant::now();
        let mut backoff = Duration::from_micros(200);
        let mut appender = loop {
            if let Some(a) = self.open.take() {
                break a;
            }
            match log.appender(&self.topic, self.partition) {
                Ok(a) => break a,
                Err(LogError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        };
        let offsets = appender.append(records)?;
        if self.hold {
            self.open = Some(appender);
        }
        Ok(offsets)
    }
}
