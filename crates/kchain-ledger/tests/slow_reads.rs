//! Reads of the blocks topic to its end on a log whose readers come back empty at first, as a
//! Kafka consumer does on a loaded machine until its first fetch is answered (connecting,
//! metadata, offsets): a verify, a replay or an audit must still read every block, never take
//! an empty poll for the end of the topic and report a shorter chain.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kchain_ledger::{audit, replay, submit, verify_ledger, VerifyOptions};
use kchain_log::{Appender, Log, LogError, Reader, StoredRecord, TopicConfig, TopicInfo};
use support::*;

/// A log whose every reader returns nothing for its first `empty_polls` polls.
struct SlowStart<'a> {
    inner: &'a dyn Log,
    empty_polls: usize,
    /// Polls that came back empty because of it, over all readers.
    held_back: Arc<AtomicUsize>,
}

struct SlowReader {
    inner: Box<dyn Reader>,
    empty_left: usize,
    held_back: Arc<AtomicUsize>,
}

impl Reader for SlowReader {
    fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        if self.empty_left > 0 {
            self.empty_left -= 1;
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return Ok(Vec::new());
        }
        self.inner.poll(max, wait)
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }
}

impl Log for SlowStart<'_> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<(), LogError> {
        self.inner.create_topic(name, config)
    }
    fn list_topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        self.inner.list_topics()
    }
    fn topic(&self, name: &str) -> Result<TopicInfo, LogError> {
        self.inner.topic(name)
    }
    fn appender(&self, topic: &str, partition: u32) -> Result<Box<dyn Appender>, LogError> {
        self.inner.appender(topic, partition)
    }
    fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Box<dyn Reader>, LogError> {
        Ok(Box::new(SlowReader {
            inner: self.inner.reader(topic, partition, from)?,
            empty_left: self.empty_polls,
            held_back: Arc::clone(&self.held_back),
        }))
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.inner.end_offset(topic, partition)
    }
    fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.inner.start_offset(topic, partition)
    }
}

#[test]
fn reads_to_the_end_go_on_past_polls_that_come_back_empty() {
    let (_dir, log) = embedded();
    let cast = Cast::new("slow", 1, 4, 1000, 1);
    cast.init(&log);
    for nonce in 1..=3 {
        let tx = cast.transfer(0, cast.address(1), 1, nonce);
        submit(&log, &cast.genesis, &[tx]).unwrap();
        seal_until_idle(&log, &cast, 0, 1);
    }
    let blocks = &cast.genesis.topics.blocks;
    let truth = replay(&log, blocks, None).unwrap().chain;
    assert!(truth.tip().height >= 3);

    let slow = SlowStart {
        inner: &log,
        empty_polls: 3,
        held_back: Arc::new(AtomicUsize::new(0)),
    };
    let replayed = replay(&slow, blocks, None).unwrap();
    assert_eq!(replayed.chain.tip(), truth.tip(), "replay");
    let report = verify_ledger(&slow, blocks, &VerifyOptions::default(), &|_| {}).unwrap();
    assert!(report.ok(), "{}", report.to_text());
    assert_eq!(report.height, truth.tip().height, "verify");
    let mut audited = 0;
    assert!(!audit(&slow, blocks, |_| audited += 1).unwrap());
    assert_eq!(audited as u64, log.end_offset(blocks, 0).unwrap(), "audit");
    assert!(
        slow.held_back.load(Ordering::Relaxed) >= 9,
        "the readers were slow"
    );
}
