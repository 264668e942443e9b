//! Push mode on a writer: every checkpoint it signs goes to its witnesses (here in memory,
//! behind the same `RemoteWitness` trait as the HTTP client) and is published with their
//! valid cosignatures; a witness that is down, slow or refusing never stops the writer and
//! catches up when it is back.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{item, key, open_log, unique_topic};
use kchain_core::{Checkpoint, Cosigner, NoteVerifier, SignedNote, Witness, WriterKey};
use kchain_log::{Log, TopicConfig};
use kchain_topic::checkpoints::{
    read_checkpoints, Behaviour, MemoryWitness, PushEvent, PushOptions, PushWitness,
};
use kchain_topic::{ChainWriter, CheckpointOptions, WriterOptions};

struct Fixture {
    witnesses: Vec<Arc<MemoryWitness>>,
    keys: Vec<NoteVerifier>,
    events: Arc<Mutex<Vec<PushEvent>>>,
}

/// `n` in-memory witnesses trusting `writer`.
fn fixture(writer: &WriterKey, n: u8) -> Fixture {
    let wkey = writer.note_signer().unwrap().verifier();
    let mut witnesses = Vec::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let cosigner = Cosigner::from_seed(&format!("w{i}"), [40 + i; 32]).unwrap();
        keys.push(cosigner.verifier());
        let witness = Witness::new(cosigner, vec![wkey.clone()]);
        witnesses.push(Arc::new(MemoryWitness::new(&format!("w{i}"), witness)));
    }
    Fixture {
        witnesses,
        keys,
        events: Arc::new(Mutex::new(Vec::new())),
    }
}

impl Fixture {
    fn options(&self, every: u64, wait: Duration) -> CheckpointOptions {
        let push = self
            .witnesses
            .iter()
            .zip(&self.keys)
            .map(|(w, k)| PushWitness {
                witness: w.clone(),
                key: k.clone(),
            })
            .collect();
        let events = self.events.clone();
        CheckpointOptions {
            every_entries: every,
            every: Duration::from_secs(3600),
            push: Some(
                PushOptions::new(push, wait)
                    .with_events(Arc::new(move |e| events.lock().unwrap().push(e.clone()))),
            ),
            ..CheckpointOptions::default()
        }
    }

    fn events(&self) -> Vec<PushEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Which witnesses cosigned `note` with a signature that verifies.
    fn cosigned_by(&self, note: &SignedNote) -> Vec<usize> {
        (0..self.keys.len())
            .filter(|&i| {
                note.signatures().iter().any(|s| {
                    s.key_id() == self.keys[i].key_id()
                        && self.keys[i].verify(note.text(), s.signature())
                })
            })
            .collect()
    }
}

fn writer<'k>(
    log: &'k dyn Log,
    topic: &str,
    k: &'k WriterKey,
    o: CheckpointOptions,
) -> ChainWriter<'k> {
    if log.topic(topic).is_err() {
        log.create_topic(topic, &TopicConfig::default()).unwrap();
    }
    ChainWriter::open(log, topic, 0, k, WriterOptions::default())
        .unwrap()
        .with_checkpoints(log, o)
        .unwrap()
}

/// The published notes of size `size`, merged.
fn published(log: &dyn Log, topic: &str, size: u64) -> Vec<SignedNote> {
    read_checkpoints(log, topic)
        .unwrap()
        .into_iter()
        .map(|r| r.note)
        .filter(|n| Checkpoint::parse(n.text()).unwrap().size() == size)
        .collect()
}

fn append(w: &mut ChainWriter<'_>, from: u64, n: u64) {
    for i in from..from + n {
        w.append(vec![item(i)]).unwrap();
    }
}

#[test]
fn published_checkpoints_carry_the_witnesses_valid_cosignatures() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("push-cosigned");
    let k = key("acme", 1);
    let f = fixture(&k, 2);
    let mut w = writer(&log, &topic, &k, f.options(10, Duration::from_secs(5)));
    append(&mut w, 0, 35);
    w.flush().unwrap();
    // A push may have taken the place of older ones still queued (only the newest goes to
    // the witnesses when it is behind), so the intermediate sizes are all published, and
    // the last one carries both cosignatures.
    for size in [10, 20, 30] {
        assert!(!published(&log, &topic, size).is_empty(), "size {size}");
    }
    let last = published(&log, &topic, 35);
    let both: Vec<usize> = last.iter().flat_map(|n| f.cosigned_by(n)).collect();
    assert!(both.contains(&0) && both.contains(&1), "{last:?}");
    // Every push was proved from a previous checkpoint the writer kept the frontier of.
    let from = f.witnesses[0].proofs_from();
    assert!(
        from.windows(2).all(|p| p[0] < p[1]) && from.iter().all(|s| [0, 10, 20, 30].contains(s)),
        "{from:?}"
    );
    assert!(f.events().is_empty(), "{:?}", f.events());
}

#[test]
fn a_witness_down_then_up_catches_up_from_its_old_size() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("push-catch-up");
    let k = key("acme", 2);
    let f = fixture(&k, 2);
    // Checkpoints only when asked: each waits for the witnesses.
    let mut w = writer(&log, &topic, &k, f.options(1_000, Duration::from_secs(5)));
    append(&mut w, 0, 10);
    w.checkpoint().unwrap();
    f.witnesses[1].set(Behaviour::Down);
    for round in 1..3 {
        append(&mut w, round * 10, 10);
        w.checkpoint().unwrap();
    }
    let failing: Vec<_> = f.events();
    assert_eq!(failing.len(), 1, "once per change of state: {failing:?}");
    assert!(matches!(
        &failing[0],
        PushEvent::Failing { fork: false, .. }
    ));
    // Size 20 and 30 were published with the cosignature that came, not w1's.
    assert_eq!(f.cosigned_by(&published(&log, &topic, 30)[0]), vec![0]);

    f.witnesses[1].set(Behaviour::Up);
    // w1 holds size 10, the writer's frontier is at 30: the proof needs the log, and the
    // checkpoint goes to w1 once more with it before the flush returns.
    append(&mut w, 30, 10);
    w.checkpoint().unwrap();
    let at_40: Vec<usize> = published(&log, &topic, 40)
        .iter()
        .flat_map(|n| f.cosigned_by(n))
        .collect();
    assert!(at_40.contains(&0) && at_40.contains(&1), "{at_40:?}");
    assert_eq!(f.witnesses[1].proofs_from(), vec![0, 10]);
    assert!(matches!(
        f.events().last().unwrap(),
        PushEvent::Recovered { size: 40, .. }
    ));
    // From then on, proofs from the frontier again.
    append(&mut w, 40, 10);
    w.checkpoint().unwrap();
    assert_eq!(f.cosigned_by(&published(&log, &topic, 50)[0]), vec![0, 1]);
    assert_eq!(f.witnesses[1].proofs_from(), vec![0, 10, 40]);
    // The witness that stayed up never needed the log.
    assert_eq!(f.witnesses[0].proofs_from(), vec![0, 10, 20, 30, 40]);
}

#[test]
fn appends_do_not_wait_for_a_hanging_witness() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("push-hang");
    let k = key("acme", 3);
    let f = fixture(&k, 1);
    f.witnesses[0].set(Behaviour::Hang(Duration::from_secs(3)));
    let mut w = writer(&log, &topic, &k, f.options(10, Duration::from_millis(300)));
    let start = Instant::now();
    append(&mut w, 0, 100);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let flush = Instant::now();
    w.flush().unwrap();
    assert!(
        flush.elapsed() < Duration::from_secs(2),
        "{:?}",
        flush.elapsed()
    );
    // Published as signed, without the cosignature that did not come in time.
    let last = published(&log, &topic, 100);
    assert!(!last.is_empty());
    assert!(f.cosigned_by(&last[0]).is_empty());
}

#[test]
fn a_refusing_witness_is_reported_and_never_stops_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("push-refuse");
    let k = key("acme", 4);
    let f = fixture(&k, 2);
    f.witnesses[1].set(Behaviour::Refuse {
        status: 409,
        message: "a checkpoint of size 3 with another root was cosigned".into(),
    });
    let mut w = writer(&log, &topic, &k, f.options(10, Duration::from_secs(5)));
    append(&mut w, 0, 30);
    w.flush().unwrap();
    let notes = published(&log, &topic, 30);
    assert_eq!(f.cosigned_by(&notes[0]), vec![0]);
    let events = f.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(&events[0], PushEvent::Failing { fork: true, .. }));
}

#[test]
fn cosignatures_that_do_not_verify_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let topic = unique_topic("push-wrong-key");
    let k = key("acme", 5);
    let mut f = fixture(&k, 1);
    // The trust file names another key for this witness.
    f.keys[0] = Cosigner::from_seed("w0", [99; 32]).unwrap().verifier();
    let mut w = writer(&log, &topic, &k, f.options(10, Duration::from_secs(5)));
    append(&mut w, 0, 10);
    w.flush().unwrap();
    let notes = published(&log, &topic, 10);
    assert_eq!(
        notes[0].signatures().len(),
        1,
        "the writer's alone: {notes:?}"
    );
    assert!(matches!(&f.events()[0], PushEvent::Failing { .. }));
}
