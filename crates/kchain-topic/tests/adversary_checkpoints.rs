//! Hostile checkpoints topics: anyone who can append to `<topic>.checkpoints` can add junk
//! notes signed by keys nobody trusts. Verifying, opening a writer (`produce`) and a witness
//! pass must stay linear in what was appended: four times the junk, about four times the
//! time (the quadratic merge took 45 s for 160,000 notes and four times that for twice as
//! many). Measured as a ratio side by side, never as an absolute time; the sizes are four
//! apart so that linear (4) and quadratic (16) stay far apart on a loaded machine.

mod common;

use std::time::{Duration, Instant};

use common::{key, open_log, trust_for, unique_topic};
use kchain_core::{Checkpoint, Cosigner, NoteSignature, SignedNote, TrustFile, Witness};
use kchain_log::{Log, Record, TopicConfig};
use kchain_topic::{
    checkpoints::{check_checkpoints, checkpoints_topic, witness_pass, writer_verifiers},
    ChainWriter, CheckpointOptions, TopicVerifier, WriterOptions,
};

/// `n` distinct junk checkpoints of partition 0, each "signed" by a key nobody trusts.
fn junk(topic: &str, n: u64, salt: u64) -> Vec<Record> {
    let origin = format!("kchain/{topic}/0");
    (0..n)
        .map(|i| {
            let root = kchain_core::sha256(&(i ^ salt).to_be_bytes());
            let text = Checkpoint::new(&origin, 1_000 + i, root).unwrap().to_text();
            let mut note = SignedNote::new(text).unwrap();
            note.add_signature(NoteSignature::new("mallory", 7, vec![7; 64]).unwrap());
            Record {
                key: Some(b"0".to_vec()),
                value: Some(note.to_text().into_bytes()),
                headers: Vec::new(),
                timestamp_ms: 1,
            }
        })
        .collect()
}

/// A clean 20-entry chain with its checkpoint, then `n` junk notes on its checkpoints topic.
fn hostile(log: &dyn Log, topic: &str, n: u64) {
    let k = key("acme", 1);
    log.create_topic(topic, &TopicConfig::default()).unwrap();
    let mut w = ChainWriter::open(log, topic, 0, &k, WriterOptions::default())
        .unwrap()
        .with_checkpoints(log, CheckpointOptions::default())
        .unwrap();
    w.append((0..20).map(common::item).collect()).unwrap();
    w.flush().unwrap();
    let mut a = log.appender(&checkpoints_topic(topic), 0).unwrap();
    for chunk in junk(topic, n, 0).chunks(10_000) {
        a.append(chunk).unwrap();
    }
    a.flush().unwrap();
}

/// The three timed operations on one hostile log: verify, opening a writer, a witness pass.
struct Hostile {
    _dir: tempfile::TempDir,
    log: kchain_log::EmbeddedLog,
    topic: String,
    state: tempfile::TempDir,
}

/// The time of `f` once.
fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

#[test]
fn junk_checkpoints_cost_linear_time_to_verify_produce_and_witness() {
    let k = key("acme", 1);
    let trust = trust_for(&[&k]);
    let ct = TrustFile::from_toml("[policy]\n")
        .unwrap()
        .checkpoints
        .unwrap();
    let cosigner = Cosigner::from_seed("w1.example", [9; 32]).unwrap();
    let writers = writer_verifiers(&trust, "");
    let witness = Witness::new(cosigner, writers.clone());
    let sizes = [80_000u64, 320_000];
    let logs: Vec<Hostile> = sizes
        .iter()
        .map(|&n| {
            let dir = tempfile::tempdir().unwrap();
            let log = open_log(dir.path());
            let topic = unique_topic("cp-junk");
            hostile(&log, &topic, n);
            let state = tempfile::tempdir().unwrap();
            Hostile {
                _dir: dir,
                log,
                topic,
                state,
            }
        })
        .collect();
    // The best of three rounds, the two sizes measured alternately within each round, so
    // that a change of the machine's load (it is shared) falls on both sizes alike.
    let mut times = [[Duration::MAX; 3]; 2];
    for _round in 0..3 {
        for (t, h) in times.iter_mut().zip(&logs) {
            let (log, topic) = (&h.log, h.topic.as_str());
            let verify = timed(|| {
                let report = TopicVerifier::new(&trust)
                    .verify_chains(log, topic)
                    .unwrap();
                let r = check_checkpoints(log, &report, &trust, &ct).unwrap();
                assert!(r.ok(), "{}", r.to_text());
                let p = &r.partitions[0];
                assert_eq!(p.newest.as_ref().unwrap().checkpoint.size(), 20);
            });
            let produce = timed(|| {
                let mut w = ChainWriter::open(log, topic, 0, &k, WriterOptions::default())
                    .unwrap()
                    .with_checkpoints(log, CheckpointOptions::default())
                    .unwrap();
                assert!(w.last_checkpoint().is_some());
                w.flush().unwrap();
            });
            let witnessed = timed(|| {
                witness_pass(log, topic, &witness, &writers, h.state.path(), "kchain", 1).unwrap();
            });
            for (best, now) in t.iter_mut().zip([verify, produce, witnessed]) {
                *best = (*best).min(now);
            }
        }
    }
    for (n, t) in sizes.iter().zip(&times) {
        println!(
            "{n} junk notes: verify {:?}, writer open {:?}, witness {:?}",
            t[0], t[1], t[2]
        );
    }
    for (i, what) in ["verify", "writer open", "witness pass"].iter().enumerate() {
        let ratio = times[1][i].as_secs_f64() / times[0][i].as_secs_f64().max(1e-3);
        // Linear work takes four times as long (4.0); quadratic work sixteen times.
        assert!(
            ratio < 8.0,
            "{what}: four times the junk took {ratio:.2} times as long ({:?} vs {:?})",
            times[1][i],
            times[0][i]
        );
    }
}
