//! `ledger verify` fetching the blocks chain's checkpoints from witnesses (in memory here):
//! truncation caught with the checkpoints topic gone, an unreachable witness a warning, too
//! few witnesses a finding unless a remembered checkpoint vouches, and checkpoints
//! suppressed while blocks are sealed caught by the freshness rule (`[policy] max_age`).

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kchain_core::{
    Checkpoint, CheckpointTrust, Cosigner, NoteSignature, NoteVerifier, ProofFrom, RemoteWitness,
    RemoteWitnessError, SignedNote, TrustFile, Witness,
};
use kchain_ledger::{
    replay, sealer_verifiers, submit, verify_ledger, CheckpointAnchors, CheckpointFindingKind,
    CheckpointOptions, LedgerReport, Node, NodeOptions, Transaction, VerifyOptions,
};
use kchain_log::Log;
use kchain_topic::checkpoints::{read_checkpoints, unix_now, RemoteWitnesses};
use kchain_topic::files::CheckpointStore;
use kchain_topic::tamper::copy_topic_with;
use support::*;

/// A witness in memory: kchain-core's [`Witness`] with its state per origin, a clock, and a
/// switch that makes it unreachable.
struct MemWitness {
    name: String,
    witness: Witness,
    cosigned: Mutex<HashMap<String, SignedNote>>,
    clock: AtomicU64,
    down: AtomicBool,
}

impl MemWitness {
    fn new(seed: u8, writers: Vec<NoteVerifier>) -> Arc<MemWitness> {
        let name = format!("w{seed}.example");
        Arc::new(MemWitness {
            witness: Witness::new(Cosigner::from_seed(&name, [seed; 32]).unwrap(), writers),
            name,
            cosigned: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(unix_now()),
            down: AtomicBool::new(false),
        })
    }

    /// Cosigns `note` at `time`, as a sealer pushing it would have it cosigned.
    fn submit(&self, note: &SignedNote, time: u64) {
        self.clock.store(time, Ordering::SeqCst);
        self.add_checkpoint(note, &|_| Ok(Vec::new())).unwrap();
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
        let now = self.clock.load(Ordering::SeqCst);
        let cosig = self.witness.observe(last, note, &proof, now).map_err(|e| {
            RemoteWitnessError::Refused {
                witness: self.describe(),
                status: 409,
                message: e.to_string(),
            }
        })?;
        let mut kept = note.clone();
        kept.add_signature(cosig.to_note_signature());
        state.insert(origin, kept);
        Ok(vec![cosig.to_note_signature()])
    }

    fn latest(&self, origin: &str) -> Result<Option<SignedNote>, RemoteWitnessError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(RemoteWitnessError::Unreachable {
                witness: self.describe(),
                why: "connection refused".into(),
            });
        }
        Ok(self.cosigned.lock().unwrap().get(origin).cloned())
    }
}

/// A ledger of `n` transfers sealed by sealer 0 (one a block) with checkpoints every 2 blocks
/// (`checkpoints`) or none.
fn ledger(log: &dyn Log, cast: &Cast, from: u64, n: u64, checkpoints: bool) {
    let txs: Vec<Transaction> = (from..from + n)
        .map(|i| {
            let a = (i % 4) as usize;
            cast.transfer(a, cast.address(((i + 1) % 4) as usize), 1, 1 + i / 4)
        })
        .collect();
    submit(log, &cast.genesis, &txs).unwrap();
    let options = NodeOptions {
        checkpoints: checkpoints.then(|| CheckpointOptions {
            every_blocks: 2,
            every: Duration::ZERO,
            ..CheckpointOptions::default()
        }),
        ..cast.node_options()
    };
    let mut events = Vec::new();
    let mut node = Node::open(
        log,
        options,
        Some((cast.sealer_key(0), seal_options(1))),
        &mut events,
    )
    .unwrap();
    node.run(true, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
}

/// The newest checkpoint on the ledger's checkpoints topic.
fn newest(log: &dyn Log, cast: &Cast) -> SignedNote {
    read_checkpoints(log, &cast.genesis.topics.blocks)
        .unwrap()
        .into_iter()
        .map(|r| r.note)
        .max_by_key(|n| Checkpoint::parse(n.text()).unwrap().size())
        .unwrap()
}

/// Two witnesses of the ledger's sealers, and a trust file's checkpoint half listing them.
fn witnesses(
    cast: &Cast,
    threshold: usize,
    max_age: Option<u64>,
) -> (Vec<Arc<MemWitness>>, CheckpointTrust) {
    let sealers = sealer_verifiers(&cast.genesis);
    let ws = vec![
        MemWitness::new(7, sealers.clone()),
        MemWitness::new(8, sealers),
    ];
    let mut text = String::new();
    for w in &ws {
        let vkey = w.witness.cosigner().verifier().to_vkey();
        text += &format!("[[witness]]\nkey = \"{vkey}\"\n");
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

/// `ledger verify --trust --checkpoints-from witnesses`, remembering in `store` if given.
fn outsider(
    log: &dyn Log,
    cast: &Cast,
    ct: &CheckpointTrust,
    ws: &[Arc<MemWitness>],
    store: Option<&std::path::Path>,
) -> LedgerReport {
    let opts = VerifyOptions {
        checkpoints: Some(ct.clone()),
        checkpoint_anchors: CheckpointAnchors {
            store: store.map(CheckpointStore::new),
            backend: "embedded:test".into(),
            required: true,
            witnesses: RemoteWitnesses(
                ws.iter()
                    .map(|w| w.clone() as Arc<dyn RemoteWitness>)
                    .collect(),
            ),
            ignore_topic: true,
            ..CheckpointAnchors::default()
        },
        ..VerifyOptions::default()
    };
    verify_ledger(log, &cast.genesis.topics.blocks, &opts, &|_| {}).unwrap()
}

fn kind(r: &LedgerReport) -> Option<CheckpointFindingKind> {
    r.checkpoint_finding.as_ref().map(|f| f.kind)
}

#[test]
fn a_fetched_checkpoint_catches_truncation_with_the_checkpoints_topic_gone() {
    let (_src_dir, src) = embedded();
    let cast = Cast::new("fetch-cut", 2, 4, 1000, 2);
    cast.init(&src);
    ledger(&src, &cast, 0, 6, true);
    let note = newest(&src, &cast);
    let (ws, ct) = witnesses(&cast, 2, None);
    for w in &ws {
        w.submit(&note, unix_now());
    }
    // The honest ledger verifies from the witnesses alone.
    let r = outsider(&src, &cast, &ct, &ws, None);
    assert!(r.ok(), "{}", r.to_text());
    assert_eq!(
        r.checkpoints
            .as_ref()
            .unwrap()
            .newest
            .as_ref()
            .unwrap()
            .1
            .cosigners
            .len(),
        2
    );

    // The last two blocks dropped, and no checkpoints topic at all.
    let (_dst_dir, dst) = embedded();
    let t = &cast.genesis.topics;
    copy_topic_with(&src, &dst, &t.blocks, |_, r| r.truncate(r.len() - 2)).unwrap();
    copy_topic_with(&src, &dst, &t.transactions, |_, _| {}).unwrap();
    let r = outsider(&dst, &cast, &ct, &ws, None);
    assert_eq!(
        kind(&r),
        Some(CheckpointFindingKind::Truncated),
        "{}",
        r.to_text()
    );
    assert_eq!(
        r.checkpoint_finding.as_ref().unwrap().evidence[0].text(),
        note.text()
    );
}

#[test]
fn unreachable_witnesses_warn_or_find_by_what_the_verifier_remembers() {
    let (_dir, log) = embedded();
    let cast = Cast::new("fetch-down", 2, 4, 1000, 2);
    cast.init(&log);
    ledger(&log, &cast, 0, 4, true);
    let note = newest(&log, &cast);
    let (ws, ct) = witnesses(&cast, 2, None);
    for w in &ws {
        w.submit(&note, unix_now());
    }
    ws[1].down.store(true, Ordering::SeqCst);
    let r = outsider(&log, &cast, &ct, &ws, None);
    assert_eq!(
        kind(&r),
        Some(CheckpointFindingKind::WitnessesUnreachable),
        "{}",
        r.to_text()
    );
    assert!(
        r.warnings.iter().any(|w| w.contains("mem://w8.example")),
        "{:?}",
        r.warnings
    );

    let memory = tempfile::tempdir().unwrap();
    ws[1].down.store(false, Ordering::SeqCst);
    assert!(outsider(&log, &cast, &ct, &ws, Some(memory.path())).ok());
    ws[1].down.store(true, Ordering::SeqCst);
    let r = outsider(&log, &cast, &ct, &ws, Some(memory.path()));
    assert!(r.ok(), "{}", r.to_text());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("1 of 2 witnesses answered")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn blocks_sealed_while_checkpoints_are_suppressed_are_stale() {
    let (_dir, log) = embedded();
    let cast = Cast::new("fetch-stale", 2, 4, 1000, 2);
    cast.init(&log);
    ledger(&log, &cast, 0, 4, true);
    let note = newest(&log, &cast);
    let (ws, ct) = witnesses(&cast, 2, Some(600));
    for w in &ws {
        w.submit(&note, unix_now() - 3600);
    }
    let r = outsider(&log, &cast, &ct, &ws, None);
    assert!(r.ok(), "a quiet ledger is clean: {}", r.to_text());
    // Two more blocks, their checkpoints kept from the witnesses.
    ledger(&log, &cast, 4, 2, false);
    let len = replay(&log, &cast.genesis.topics.blocks, None)
        .unwrap()
        .chain
        .tip()
        .height
        + 1;
    let r = outsider(&log, &cast, &ct, &ws, None);
    assert_eq!(
        kind(&r),
        Some(CheckpointFindingKind::Stale),
        "{}",
        r.to_text()
    );
    let size = Checkpoint::parse(note.text()).unwrap().size();
    assert!(len > size);
    let f = r.checkpoint_finding.as_ref().unwrap();
    assert!(f.detail.contains(&format!("blocks {size}..")), "{f}");
    assert_eq!(r.to_json()["finding"]["kind"], "checkpoint_stale");
}
