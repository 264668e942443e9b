//! Checkpoints fetched from witnesses (`RemoteWitness::latest`) are held to the chain like
//! those of the checkpoints topic, and a witness that does not answer shows in the metrics
//! (`kchain_monitor_witness_up 0`), never as a finding.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kchain_core::{
    Checkpoint, NoteSignature, ProofFrom, RemoteWitness, RemoteWitnessError, SignedNote,
};
use kchain_monitor::Alerts;
use support::*;

/// A witness in memory: answers `latest` with its note, or fails.
struct Fake(Option<SignedNote>, &'static str);

impl RemoteWitness for Fake {
    fn describe(&self) -> String {
        self.1.to_owned()
    }
    fn add_checkpoint(
        &self,
        _: &SignedNote,
        _: &ProofFrom<'_>,
    ) -> Result<Vec<NoteSignature>, RemoteWitnessError> {
        unreachable!("the monitor only fetches")
    }
    fn latest(&self, _: &str) -> Result<Option<SignedNote>, RemoteWitnessError> {
        match &self.0 {
            Some(n) => Ok(Some(n.clone())),
            None => Err(RemoteWitnessError::Unreachable {
                witness: self.1.to_owned(),
                why: "connection refused".into(),
            }),
        }
    }
}

#[test]
fn a_forked_checkpoint_from_a_witness_alerts_and_a_silent_witness_is_down() {
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    let (key, state) = (key(), kchain_testkit::tempdir());
    let trust = trust(&key);
    let t = topic(&log, "witness");
    write(&log, &t, &key, 30, true);
    // What the operator showed a witness (but not its own checkpoints topic): another root.
    let origin = kchain_topic::checkpoints::partition_origin("kchain", &t, 0);
    let forked = Checkpoint::new(&origin, 30, [5; 32])
        .unwrap()
        .sign(&key.note_signer().unwrap());
    let witnesses: Vec<Arc<dyn RemoteWitness>> = vec![
        Arc::new(Fake(Some(forked), "http://w1.example")),
        Arc::new(Fake(None, "http://w2.example")),
    ];
    let lines = Lines::default();
    let alerts = Alerts::new(Box::new(lines.clone()), None);
    let mut m = kchain_monitor::Monitor::open(&log, &trust, options(&t, state.path()), alerts)
        .unwrap()
        .with_witnesses(witnesses);
    let started = Instant::now();
    m.run_once().unwrap();
    m.pass().unwrap();
    lines.wait_for("fork", started, Duration::from_secs(5));
    let page = m.metrics_page().lock().unwrap().clone();
    let up = |w: &str| {
        metric(
            &page,
            &format!("kchain_monitor_witness_up{{witness=\"{w}\"}}"),
        )
    };
    assert_eq!(up("http://w1.example"), Some(1.0), "{page}");
    assert_eq!(up("http://w2.example"), Some(0.0), "{page}");
    assert_eq!(lines.alerts().len(), 1, "{:?}", lines.alerts());
}
