//! The writer's record path through an appender that keeps batches in flight (as Kafka's
//! does): each batch is sent before the one before it is received, receipts come in order,
//! and a failed delivery stops the writer with nothing after it counted as written.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use common::*;
use kchain_core::Item;
use kchain_log::{Appender, EmbeddedLog, Log, LogError, Record, TopicConfig};
use kchain_topic::{ChainWriter, TopicError, TopicVerifier, WriterOptions};

/// The embedded log, with appenders that take `Record`s and keep them in flight until
/// received; `events` records the calls, `fail_receive` fails the receipt of that batch.
struct InFlight {
    events: Arc<Mutex<Vec<String>>>,
    fail_receive: Option<usize>,
}

struct InFlightAppender {
    inner: Box<dyn Appender>,
    queued: VecDeque<Vec<Record>>,
    sent: usize,
    received: usize,
    events: Arc<Mutex<Vec<String>>>,
    fail_receive: Option<usize>,
}

impl Appender for InFlightAppender {
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError> {
        self.events.lock().unwrap().push("append".into());
        self.inner.append(records)
    }
    fn pipelines(&self) -> bool {
        true
    }
    fn send(&mut self, records: Vec<Record>) -> Result<(), LogError> {
        self.events
            .lock()
            .unwrap()
            .push(format!("send {}", self.sent));
        self.sent += 1;
        self.queued.push_back(records);
        Ok(())
    }
    fn receive(&mut self) -> Result<Option<Vec<u64>>, LogError> {
        let Some(batch) = self.queued.pop_front() else {
            return Ok(None);
        };
        let n = self.received;
        self.received += 1;
        self.events.lock().unwrap().push(format!("receive {n}"));
        if self.fail_receive == Some(n) {
            return Err(LogError::Backend {
                backend: "test",
                detail: "delivery failed".into(),
            });
        }
        self.inner.append(&batch).map(Some)
    }
    fn flush(&mut self) -> Result<(), LogError> {
        self.inner.flush()
    }
    fn next_offset(&self) -> u64 {
        self.inner.next_offset()
    }
}

impl Hooks for InFlight {
    fn appender(
        &self,
        log: &EmbeddedLog,
        topic: &str,
        partition: u32,
    ) -> Result<Box<dyn Appender>, LogError> {
        Ok(Box::new(InFlightAppender {
            inner: log.appender(topic, partition)?,
            queued: VecDeque::new(),
            sent: 0,
            received: 0,
            events: self.events.clone(),
            fail_receive: self.fail_receive,
        }))
    }
}

fn in_flight(dir: &std::path::Path, fail_receive: Option<usize>) -> Hooked<InFlight> {
    Hooked {
        log: open_log(dir),
        hooks: InFlight {
            events: Arc::default(),
            fail_receive,
        },
    }
}

fn items(n: u64) -> Vec<Item> {
    (0..n).map(item).collect()
}

const OPTIONS: WriterOptions = WriterOptions {
    max_batch_records: 300,
    max_batch_bytes: 4 << 20,
};

#[test]
fn batches_in_flight_write_what_the_in_place_path_writes() {
    let (a, b) = (kchain_testkit::tempdir(), kchain_testkit::tempdir());
    let in_place = open_log(a.path());
    let pipelined = in_flight(b.path(), None);
    let key = key("acme", 3);
    for log in [&in_place as &dyn Log, &pipelined] {
        log.create_topic("t", &TopicConfig::default()).unwrap();
        let mut w = ChainWriter::open(log, "t", 0, &key, OPTIONS).unwrap();
        let all = items(1000);
        let receipt = w.append(all[..950].to_vec()).unwrap();
        assert_eq!((receipt.records, receipt.first_offset), (950, 0));
        assert_eq!((receipt.last_offset, receipt.tip_height), (949, 949));
        w.append(all[950..].to_vec()).unwrap();
        w.flush().unwrap();
        let report = TopicVerifier::new(&trust_for(&[&key]))
            .verify_chains(log, "t")
            .unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.partitions[0].summary.entries, 1000);
    }
    assert_eq!(
        kchain_testkit::segment_bytes(a.path(), "t", 0),
        kchain_testkit::segment_bytes(b.path(), "t", 0)
    );
    // 950 items: batches of 300, 300, 300, 50; each sent before the one before it is
    // received, never more than two in flight; then one batch of 50.
    let events = pipelined.hooks.events.lock().unwrap().clone();
    let expected = [
        "send 0",
        "send 1",
        "receive 0",
        "send 2",
        "receive 1",
        "send 3",
        "receive 2",
        "receive 3",
        "send 4",
        "receive 4",
    ];
    assert_eq!(events, expected);
}

#[test]
fn a_failed_delivery_stops_the_writer_with_nothing_after_it_written() {
    let dir = kchain_testkit::tempdir();
    let log = in_flight(dir.path(), Some(1));
    let key = key("acme", 3);
    log.create_topic("t", &TopicConfig::default()).unwrap();
    let mut w = ChainWriter::open(&log, "t", 0, &key, OPTIONS).unwrap();
    let err = w.append(items(900)).unwrap_err();
    assert!(matches!(err, TopicError::Log(_)), "{err:?}");
    // Batch 0 was received and counts; batch 1 failed; batch 2 was built and sent but is
    // not taken as written.
    assert_eq!(w.tip().map(|(h, _)| h), Some(299));
    assert!(matches!(
        w.append(items(1)),
        Err(TopicError::Poisoned { .. })
    ));
    let events = log.hooks.events.lock().unwrap().clone();
    assert_eq!(
        events,
        ["send 0", "send 1", "receive 0", "send 2", "receive 1"]
    );
}
