//! A verifier that fetches checkpoints from witnesses (in memory here, over HTTP in the CLI's
//! tests): truncation and rewrite caught with the checkpoints topic never read, an
//! unreachable witness or one answering garbage is a warning naming it, too few witnesses is
//! a finding unless a remembered checkpoint vouches for the chain, and the freshness rule
//! (`[policy] max_age`) catches checkpoints suppressed while the chain grew.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{item, key, open_log, trust_for, unique_topic};
use kchain_core::{
    Checkpoint, CheckpointTrust, Cosigner, NoteSignature, NoteVerifier, ProofFrom, RemoteWitness,
    RemoteWitnessError, SignedNote, Trust, TrustFile, Witness, WriterKey,
};
use kchain_log::{Log, Record, TopicConfig};
use kchain_topic::checkpoints::{
    checkpoints_topic, newest_checkpoint, unix_now, CheckpointFindingKind,
};
use kchain_topic::files::CheckpointStore;
use kchain_topic::{ChainWriter, CheckpointOptions, TopicVerifier, VerifyReport, WriterOptions};

/// How a [`MemWitness`] answers `latest`.
const UP: u8 = 0;
const DOWN: u8 = 1;
const GARBAGE: u8 = 2;

/// A witness in memory: kchain-core's [`Witness`] with its state (the note it last cosigned
/// per origin), a clock, and a switch to make it unreachable or answer garbage.
struct MemWitness {
    name: String,
    witness: Witness,
    cosigned: Mutex<HashMap<String, SignedNote>>,
    clock: AtomicU64,
    mode: AtomicU8,
    /// A note answered for every origin instead of its own (a witness lying or confused).
    answer_instead: Mutex<Option<SignedNote>>,
}

impl MemWitness {
    fn new(seed: u8, writers: Vec<NoteVerifier>) -> Arc<MemWitness> {
        let name = format!("w{seed}.example");
        let cosigner = Cosigner::from_seed(&name, [seed; 32]).unwrap();
        Arc::new(MemWitness {
            name,
            witness: Witness::new(cosigner, writers),
            cosigned: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(unix_now()),
            mode: AtomicU8::new(UP),
            answer_instead: Mutex::new(None),
        })
    }

    fn vkey(&self) -> String {
        self.witness.cosigner().verifier().to_vkey()
    }

    /// Cosigns `note` as a writer pushing it would have it cosigned, at `time`.
    fn submit(&self, note: &SignedNote, time: u64) {
        self.clock.store(time, Ordering::SeqCst);
        self.add_checkpoint(note, &|_| Ok(Vec::new())).unwrap();
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

impl RemoteWitness for MemWitness {
    fn describe(&self) -> String {
        format!("mem://{}", self.name)
    }

    fn add_checkpoint(
        &self,
        note: &SignedNote,
        proof_from: &ProofFrom<'_>,
    ) -> Result<Vec<NoteSignature>, RemoteWitnessError> {
        let origin = Checkpoint::parse(note.text()).unwrap().origin().to_owned();
        let mut state = self.cosigned.lock().unwrap();
        let last = state.get(&origin);
        let old = last.map_or(0, |n| Checkpoint::parse(n.text()).unwrap().size());
        let proof = proof_from(old).unwrap();
        let refused = |e: kchain_core::WitnessRefusal| RemoteWitnessError::Refused {
            witness: self.describe(),
            status: 409,
            message: e.to_string(),
        };
        let now = self.clock.load(Ordering::SeqCst);
        let cosig = self
            .witness
            .observe(last, note, &proof, now)
            .map_err(refused)?;
        let mut kept = note.clone();
        kept.add_signature(cosig.to_note_signature());
        state.insert(origin, kept);
        Ok(vec![cosig.to_note_signature()])
    }

    fn latest(&self, origin: &str) -> Result<Option<SignedNote>, RemoteWitnessError> {
        match self.mode.load(Ordering::SeqCst) {
            DOWN => Err(RemoteWitnessError::Unreachable {
                witness: self.describe(),
                why: "connection refused".into(),
            }),
            GARBAGE => Err(RemoteWitnessError::Malformed {
                witness: self.describe(),
                why: "not a signed note".into(),
            }),
            _ => match self.answer_instead.lock().unwrap().clone() {
                Some(n) => Ok(Some(n)),
                None => Ok(self.cosigned.lock().unwrap().get(origin).cloned()),
            },
        }
    }
}

fn options(every: u64) -> CheckpointOptions {
    CheckpointOptions {
        every_entries: every,
        every: Duration::from_secs(3600),
        ..CheckpointOptions::default()
    }
}

/// Appends items `from..to` (content shifted by `salt`) to partition 0, with checkpoints
/// every `every` entries on the checkpoints topic (0: none, and no checkpoints topic).
fn write(log: &dyn Log, topic: &str, k: &WriterKey, from: u64, to: u64, salt: u64, every: u64) {
    if log.topic(topic).is_err() {
        log.create_topic(topic, &TopicConfig::default()).unwrap();
    }
    let w = ChainWriter::open(log, topic, 0, k, WriterOptions::default()).unwrap();
    let mut w = if every > 0 {
        w.with_checkpoints(log, options(every)).unwrap()
    } else {
        w
    };
    for i in from..to {
        w.append(vec![item(i + salt)]).unwrap();
    }
    w.flush().unwrap();
}

/// An honest writer's first `n` entries of `topic` with a checkpoint at `n`, and that
/// checkpoint.
fn honest(topic: &str, k: &WriterKey, n: u64) -> (tempfile::TempDir, SignedNote) {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    write(&log, topic, k, 0, n, 0, n);
    let note = newest_checkpoint(&log, topic, 0, "kchain")
        .unwrap()
        .unwrap();
    (dir, note)
}

/// Two witnesses of writer `k`, and the trust file's checkpoint half listing them with a
/// threshold and an optional max_age.
fn witnesses(
    k: &WriterKey,
    threshold: usize,
    max_age: Option<u64>,
) -> (Vec<Arc<MemWitness>>, CheckpointTrust) {
    let writer = k.public().note_verifier(k.name()).unwrap();
    let ws = vec![
        MemWitness::new(7, vec![writer.clone()]),
        MemWitness::new(8, vec![writer]),
    ];
    let mut text = String::new();
    for w in &ws {
        text += &format!("[[witness]]\nkey = \"{}\"\n", w.vkey());
    }
    text += &format!("[policy]\nwitnesses = {threshold}\n");
    if let Some(a) = max_age {
        text += &format!("max_age = {a}\n");
    }
    (
        ws,
        TrustFile::from_toml(&text).unwrap().checkpoints.unwrap(),
    )
}

fn remote(ws: &[Arc<MemWitness>]) -> Vec<Arc<dyn RemoteWitness>> {
    ws.iter()
        .map(|w| w.clone() as Arc<dyn RemoteWitness>)
        .collect()
}

/// `verify --trust --checkpoints-from witnesses`: the checkpoints topic is never read.
fn outsider(
    log: &dyn Log,
    topic: &str,
    trust: &Trust,
    ct: &CheckpointTrust,
    ws: &[Arc<MemWitness>],
) -> VerifyReport {
    TopicVerifier::new(trust)
        .checkpoints(ct)
        .witnesses(remote(ws))
        .ignore_checkpoints_topic()
        .verify(log, topic)
        .unwrap()
}

fn finding(r: &VerifyReport) -> Option<CheckpointFindingKind> {
    let c = r.checkpoints.as_ref().unwrap();
    c.partitions[0].finding.as_ref().map(|f| f.kind)
}

fn warnings(r: &VerifyReport) -> String {
    r.checkpoints.as_ref().unwrap().warnings.join("\n")
}

/// Fills the checkpoints topic of `topic` with records that are no checkpoint at all.
fn garbage_checkpoints_topic(log: &dyn Log, topic: &str) {
    let cp = checkpoints_topic(topic);
    if log.topic(&cp).is_err() {
        log.create_topic(&cp, &TopicConfig::default()).unwrap();
    }
    let mut app = log.appender(&cp, 0).unwrap();
    let junk: Vec<Record> = (0..5u8)
        .map(|i| Record {
            key: Some(b"0".to_vec()),
            value: Some(vec![0xff, i, 0, 0x80]),
            timestamp_ms: 0,
            headers: Vec::new(),
        })
        .collect();
    app.append(&junk).unwrap();
    app.flush().unwrap();
}

#[test]
fn a_fetched_checkpoint_catches_truncation_with_no_checkpoints_topic() {
    let topic = unique_topic("fetch-trunc");
    let k = key("acme", 1);
    let (_h, note) = honest(&topic, &k, 20);
    let (ws, ct) = witnesses(&k, 2, None);
    for w in &ws {
        w.submit(&note, unix_now());
    }
    // The operator keeps 15 entries and no checkpoints topic at all.
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    write(&log, &topic, &k, 0, 15, 0, 0);
    let trust = trust_for(&[&k]);
    let r = outsider(&log, &topic, &trust, &ct, &ws);
    assert_eq!(finding(&r), Some(CheckpointFindingKind::Truncated), "{r:?}");
    let f = r.checkpoints.as_ref().unwrap().partitions[0]
        .finding
        .clone()
        .unwrap();
    assert_eq!(f.offset, Some(15));
    assert_eq!(f.evidence[0].text(), note.text());
    assert_eq!(
        f.evidence[0].signatures().len(),
        3,
        "merged: writer and both witnesses"
    );

    // A checkpoints topic full of garbage changes nothing: it is not read.
    garbage_checkpoints_topic(&log, &topic);
    assert_eq!(outsider(&log, &topic, &trust, &ct, &ws), r);
}

#[test]
fn a_fetched_checkpoint_catches_a_rewrite_with_no_checkpoints_topic() {
    let topic = unique_topic("fetch-rewrite");
    let k = key("acme", 1);
    let (_h, note) = honest(&topic, &k, 20);
    let (ws, ct) = witnesses(&k, 2, None);
    for w in &ws {
        w.submit(&note, unix_now());
    }
    // Same first 15 entries, then 5 others, every hash and signature recomputed.
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    write(&log, &topic, &k, 0, 15, 0, 0);
    write(&log, &topic, &k, 15, 20, 1000, 0);
    let trust = trust_for(&[&k]);
    let r = outsider(&log, &topic, &trust, &ct, &ws);
    assert!(r.chain.ok(), "the chain itself verifies");
    assert_eq!(finding(&r), Some(CheckpointFindingKind::Rewritten), "{r:?}");
    garbage_checkpoints_topic(&log, &topic);
    assert_eq!(outsider(&log, &topic, &trust, &ct, &ws), r);
}

#[test]
fn an_honest_chain_verifies_from_witnesses_alone() {
    let topic = unique_topic("fetch-clean");
    let k = key("acme", 1);
    let (h, note) = honest(&topic, &k, 20);
    let (ws, ct) = witnesses(&k, 2, None);
    for w in &ws {
        w.submit(&note, unix_now());
    }
    let log = open_log(h.path());
    let r = outsider(&log, &topic, &trust_for(&[&k]), &ct, &ws);
    assert!(r.ok(), "{r:?}");
    let p = &r.checkpoints.as_ref().unwrap().partitions[0];
    assert_eq!(p.newest.as_ref().unwrap().checkpoint.size(), 20);
    assert_eq!(p.newest.as_ref().unwrap().cosigners.len(), 2);
    assert!(warnings(&r).is_empty(), "{}", warnings(&r));
}

#[test]
fn an_unreachable_witness_is_a_warning_naming_it() {
    let topic = unique_topic("fetch-down");
    let k = key("acme", 1);
    let (h, note) = honest(&topic, &k, 20);
    let (ws, ct) = witnesses(&k, 1, None);
    for w in &ws {
        w.submit(&note, unix_now());
    }
    ws[1].set(DOWN);
    let log = open_log(h.path());
    let r = outsider(&log, &topic, &trust_for(&[&k]), &ct, &ws);
    assert!(r.ok(), "{r:?}");
    let text = warnings(&r);
    assert!(
        text.contains("mem://w8.example") && text.contains("unreachable"),
        "{text}"
    );
    assert!(!text.contains("mem://w7.example"), "{text}");
}

#[test]
fn too_few_witnesses_is_a_finding_unless_a_remembered_checkpoint_vouches() {
    let topic = unique_topic("fetch-few");
    let k = key("acme", 1);
    let (h, note) = honest(&topic, &k, 20);
    let (ws, ct) = witnesses(&k, 2, None);
    for w in &ws {
        w.submit(&note, unix_now());
    }
    let log = open_log(h.path());
    let trust = trust_for(&[&k]);
    let memory = tempfile::tempdir().unwrap();
    let verifier = |ws: &[Arc<MemWitness>]| {
        TopicVerifier::new(&trust)
            .checkpoints(&ct)
            .witnesses(remote(ws))
            .ignore_checkpoints_topic()
            .remember(CheckpointStore::new(memory.path()), "embedded:test")
    };
    ws[1].set(DOWN);
    // Nothing remembered yet: one witness of the two needed answered.
    let r = TopicVerifier::new(&trust)
        .checkpoints(&ct)
        .witnesses(remote(&ws))
        .ignore_checkpoints_topic()
        .verify(&log, &topic)
        .unwrap();
    assert_eq!(
        finding(&r),
        Some(CheckpointFindingKind::WitnessesUnreachable),
        "{r:?}"
    );
    let f = r.checkpoints.as_ref().unwrap().partitions[0]
        .finding
        .clone()
        .unwrap();
    assert!(f.detail.contains("1 of 2 witnesses answered"), "{f}");

    // Both up once: the verifier remembers size 20. Then one down: a warning only.
    ws[1].set(UP);
    assert!(verifier(&ws).verify(&log, &topic).unwrap().ok());
    ws[1].set(DOWN);
    let r = verifier(&ws).verify(&log, &topic).unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(
        warnings(&r).contains("1 of 2 witnesses answered"),
        "{}",
        warnings(&r)
    );
}

#[test]
fn a_witness_answering_garbage_or_another_chain_is_a_warning_and_never_trusted() {
    let topic = unique_topic("fetch-garbage");
    let k = key("acme", 1);
    let (h, note) = honest(&topic, &k, 20);
    let (ws, ct) = witnesses(&k, 1, None);
    ws[0].submit(&note, unix_now());
    ws[1].set(GARBAGE);
    let log = open_log(h.path());
    let trust = trust_for(&[&k]);
    let r = outsider(&log, &topic, &trust, &ct, &ws);
    assert!(r.ok(), "{r:?}");
    assert!(
        warnings(&r).contains("mem://w8.example"),
        "{}",
        warnings(&r)
    );

    // Witness 8 answers, for this chain, a cosigned checkpoint of another chain (same writer).
    let other = unique_topic("fetch-other");
    let (_o, other_note) = honest(&other, &k, 30);
    ws[1].set(UP);
    ws[1].submit(&other_note, unix_now());
    let other_origin = Checkpoint::parse(other_note.text())
        .unwrap()
        .origin()
        .to_owned();
    let cosigned_other = ws[1].latest(&other_origin).unwrap();
    assert!(cosigned_other.is_some());
    *ws[1].answer_instead.lock().unwrap() = cosigned_other;
    let r = outsider(&log, &topic, &trust, &ct, &ws);
    assert!(r.ok(), "{r:?}");
    let text = warnings(&r);
    assert!(
        text.contains("mem://w8.example") && text.contains("not trusted"),
        "{text}"
    );
    let p = &r.checkpoints.as_ref().unwrap().partitions[0];
    assert_eq!(p.newest.as_ref().unwrap().checkpoint.size(), 20);
}

#[test]
fn checkpoints_suppressed_while_the_chain_grows_are_stale_and_a_quiet_log_is_clean() {
    let topic = unique_topic("fetch-stale");
    let k = key("acme", 1);
    let (h, note) = honest(&topic, &k, 20);
    let (ws, ct) = witnesses(&k, 2, Some(600));
    for w in &ws {
        w.submit(&note, unix_now() - 3600);
    }
    let log = open_log(h.path());
    let trust = trust_for(&[&k]);
    // A quiet log: nothing past the old checkpoint.
    let r = outsider(&log, &topic, &trust, &ct, &ws);
    assert!(r.ok(), "{r:?}");
    // The operator appends 5 more entries and keeps their checkpoints from the witnesses.
    write(&log, &topic, &k, 20, 25, 0, 0);
    let r = outsider(&log, &topic, &trust, &ct, &ws);
    assert_eq!(finding(&r), Some(CheckpointFindingKind::Stale), "{r:?}");
    let f = r.checkpoints.as_ref().unwrap().partitions[0]
        .finding
        .clone()
        .unwrap();
    assert_eq!(f.offset, Some(20));
    assert!(f.detail.contains("within 600 s"), "{f}");
    // Witnesses that cosigned the checkpoint again within max_age vouch that the log was
    // recently at size 20: the 5 entries since are younger than max_age, not suppressed.
    for w in &ws {
        w.submit(&note, unix_now());
    }
    assert!(outsider(&log, &topic, &trust, &ct, &ws).ok());
}
