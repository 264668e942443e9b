//! A sealer takes the block it appended as read when the chain has read everything before
//! it (no wait for the log to hand it back), and still compares it with what the log holds
//! once its reader gets there: a block changed in between is a finding.

mod support;

use std::time::{Duration, Instant};

use std::sync::atomic::AtomicBool;

use kchain_ledger::{
    replay, state_digest, submit, Event, FindingKind, LedgerError, Node, SealEvent,
};
use kchain_log::{Appender, Log, LogError, Reader, StoredRecord, TopicConfig, TopicInfo};
use support::*;

/// Steps `node` until a step reports `Appended`; returns that step's events.
fn step_until_appended(node: &mut Node<'_>) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the sealer appended nothing");
        let mut events = Vec::new();
        node.step(&mut events).unwrap();
        if events
            .iter()
            .any(|e| matches!(e, Event::Seal(SealEvent::Appended { .. })))
        {
            return events;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Submits one transfer to `cast`'s ledger and opens its sealer on `log`.
fn sealer_with_one_transfer<'l>(log: &'l dyn Log, cast: &Cast) -> Node<'l> {
    submit(
        log,
        &cast.genesis,
        &[cast.transfer(0, cast.address(1), 5, 1)],
    )
    .unwrap();
    let mut events = Vec::new();
    let sealer = Some((cast.sealer_key(0), seal_options(1)));
    Node::open(log, cast.node_options(), sealer, &mut events).unwrap()
}

#[test]
fn a_sealer_takes_its_block_as_canonical_in_the_step_that_appends_it() {
    let (_dir, log) = embedded();
    let cast = Cast::new("own", 1, 2, 100, 2);
    cast.init(&log);
    let mut node = sealer_with_one_transfer(&log, &cast);
    let events = step_until_appended(&mut node);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Canonical { height: 1, .. })),
        "{events:?}"
    );
    assert_eq!(node.chain().tip().height, 1);
    // Reading the block back later agrees with what was taken.
    let mut more = Vec::new();
    node.follow(Duration::from_millis(200), &mut more).unwrap();
    node.follow(Duration::from_millis(200), &mut more).unwrap();
    assert_eq!(node.chain().tip().height, 1);
}

#[test]
fn a_block_changed_after_its_sealer_took_it_is_a_finding() {
    let (_dir, inner) = embedded();
    let cast = Cast::new("own-changed", 1, 2, 100, 2);
    cast.init(&inner);
    let log = Rewriting {
        inner,
        topic: cast.genesis.topics.blocks.clone(),
    };
    let mut node = sealer_with_one_transfer(&log, &cast);
    step_until_appended(&mut node);
    assert_eq!(node.chain().tip().height, 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        assert!(Instant::now() < deadline, "the change was not found");
        match node.follow(Duration::from_millis(50), &mut Vec::new()) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    match err {
        LedgerError::Tampered(f) => {
            assert_eq!(f.kind, FindingKind::AnchorMismatch);
            assert_eq!(f.offset, 1);
        }
        other => panic!("expected a finding, got {other}"),
    }
}

#[test]
fn a_sealers_state_from_its_own_blocks_is_the_state_a_replay_computes() {
    // The sealer takes the state changes of its own blocks from building them; a node that
    // reads and validates the same blocks must reach the same state, rejections, retried
    // transfers (a nonce ahead, funds that arrive later in the block) and rewards included.
    let (_dir, log) = embedded();
    let cast = Cast::new("own-state", 1, 3, 10, 2);
    cast.init(&log);
    let (a, b, c) = (cast.address(0), cast.address(1), cast.address(2));
    let txs = vec![
        cast.transfer(0, b, 4, 2), // a nonce ahead: sealed after the next
        cast.transfer(0, b, 4, 1),
        cast.transfer(1, c, 17, 1), // funds that arrive within the block
        cast.transfer(2, a, 1, 1),
        cast.transfer(2, a, 100, 2), // overdraft: rejected
        cast.transfer(1, a, 1, 1),   // a nonce used twice: rejected
        cast.transfer(1, a, 0, 2),   // a zero amount: rejected
    ];
    submit(&log, &cast.genesis, &txs).unwrap();
    let mut events = Vec::new();
    let mut node = Node::open(
        &log,
        cast.node_options(),
        Some((cast.sealer_key(0), seal_options(3))),
        &mut events,
    )
    .unwrap();
    node.run(true, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    assert!(node.chain().tip().height >= 2, "several blocks");
    assert!(node.stats().sealed_txs >= 3, "{:?}", node.stats());
    let replayed = replay(&log, &cast.genesis.topics.blocks, None).unwrap();
    assert!(replayed.finding.is_none());
    assert_eq!(replayed.chain.tip(), node.chain().tip());
    assert_eq!(state_digest(&replayed.chain), state_digest(node.chain()));
}

/// A log whose readers of one topic return every record after the first with a space added
/// to its value: the stored bytes changed after they were appended.
struct Rewriting<L: Log> {
    inner: L,
    topic: String,
}

struct RewritingReader(Box<dyn Reader>);

impl Reader for RewritingReader {
    fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        let mut recs = self.0.poll(max, wait)?;
        for r in recs.iter_mut().filter(|r| r.offset > 0) {
            if let Some(v) = &mut r.record.value {
                v.push(b' ');
            }
        }
        Ok(recs)
    }

    fn position(&self) -> u64 {
        self.0.position()
    }
}

impl<L: Log> Log for Rewriting<L> {
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
        let r = self.inner.reader(topic, partition, from)?;
        Ok(match topic == self.topic {
            true => Box::new(RewritingReader(r)),
            false => r,
        })
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.inner.end_offset(topic, partition)
    }
    fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.inner.start_offset(topic, partition)
    }
    fn exclusive_appenders(&self) -> bool {
        self.inner.exclusive_appenders()
    }
}
