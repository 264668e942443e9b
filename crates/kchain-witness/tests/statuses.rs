//! Every status of c2sp.org/tlog-witness's add-checkpoint, in the spec's order, over real
//! HTTP (and HTTPS), and the monitoring GETs.

mod support;

use kchain_core::checkpoint::witness_wire::{parse_cosignature_lines, AddCheckpoint};
use kchain_core::{ConsistencyProofFile, NoteSigner, Policy, SignedNote};
use kchain_http::TestPki;
use kchain_witness::checkpoint_path;
use support::{size_answer, Log, TestWitness};

/// The checkpoint the witness answered with its cosignature lines added, held to a policy
/// that needs the log's signature and the witness's cosignature.
fn cosigned(w: &TestWitness, log: &Log, size: u64, body: &[u8]) -> SignedNote {
    let mut note = log.note_at(size);
    for line in parse_cosignature_lines(note.text(), body).unwrap() {
        note.add_signature(line);
    }
    let policy = Policy::new(vec![log.signer.verifier()], vec![w.cosigner.verifier()], 1).unwrap();
    policy.check(&note).expect("the cosignature verifies");
    note
}

#[test]
fn every_status_in_the_specs_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("log.example/a", 1);
    log.grow(5);
    let w = TestWitness::start(dir.path(), &[&log]);

    // Malformed: not a request, or a request whose note is no checkpoint.
    assert_eq!(w.post(b"hello").status, 400);
    assert_eq!(w.post(b"old 01\n\n").status, 400);
    let not_checkpoint = format!(
        "old 0\n\n{}",
        SignedNote::new("just text\n").unwrap().to_text()
    );
    assert_eq!(w.post(not_checkpoint.as_bytes()).status, 400);

    // Unknown origin: 404, whoever signed it.
    let mut stranger = Log::new("log.example/unknown", 2);
    stranger.grow(3);
    let r = w.post(&stranger.body(0, 3));
    assert_eq!(r.status, 404, "{}", r.text());

    // Known origin, no signature of its key: 403 (a key of the same name is not its key).
    let mut impostor = Log::new("log.example/a", 3);
    impostor.leaves = log.leaves.clone();
    assert_eq!(w.post(&impostor.body(0, 5)).status, 403);

    // Old size beyond the checkpoint's: 400.
    assert_eq!(
        w.post(&log.body(0, 5).replacen(b"old 0", b"old 9")).status,
        400
    );

    // First checkpoint from 0: 200 with a cosignature that verifies.
    let r = w.post(&log.body(0, 5));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("— witness.example/w1 "));
    cosigned(&w, &log, 5, &r.body);

    // Old size not the one cosigned: 409 with the size the witness holds.
    log.grow(3);
    assert_eq!(size_answer(&w.post(&log.body(0, 8))), 5);
    assert_eq!(size_answer(&w.post(&log.body(3, 8))), 5);

    // A proof that does not verify: 422, and the origin goes on (a bad proof proves nothing).
    let mut bad = AddCheckpoint::parse(&log.body(5, 8)).unwrap();
    bad.proof[0][0] ^= 1;
    assert_eq!(w.post(&bad.to_body()).status, 422);
    assert!(dir.path().join("rejected-log.example_a-8.json").exists());
    let r = w.post(&log.body(5, 8));
    assert_eq!(r.status, 200, "{}", r.text());
    cosigned(&w, &log, 8, &r.body);

    // The same checkpoint again: a fresh cosignature. With a proof where none is due: 422.
    assert_eq!(w.post(&log.body(8, 8)).status, 200);
    let mut extra = AddCheckpoint::parse(&log.body(8, 8)).unwrap();
    extra.proof.push([0; 32]);
    assert_eq!(w.post(&extra.to_body()).status, 422);
    // A proof from 0 must be empty.
    let mut from_zero = AddCheckpoint::parse(&log.body(0, 8)).unwrap();
    from_zero.proof.push([0; 32]);
    assert_eq!(size_answer(&w.post(&from_zero.to_body())), 8);
}

trait Replace {
    fn replacen(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl Replace for Vec<u8> {
    fn replacen(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self.windows(from.len()).position(|w| w == from).unwrap();
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}

#[test]
fn a_fork_is_refused_for_ever_with_evidence_naming_both_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("log.example/forked", 1);
    log.grow(4);
    {
        let w = TestWitness::start(dir.path(), &[&log]);
        assert_eq!(w.post(&log.body(0, 4)).status, 200);
        let other = log.forked(2);
        let r = w.post(&other.body(4, 4));
        assert_eq!(r.status, 409);
        assert_ne!(r.content_type.as_deref(), Some("text/x.tlog.size"));
        assert!(r.text().contains("fork"), "{}", r.text());

        let evidence = dir.path().join("evidence-log.example_forked-4.json");
        let file: ConsistencyProofFile =
            serde_json::from_str(&std::fs::read_to_string(&evidence).unwrap()).unwrap();
        let old = SignedNote::parse(file.old.as_bytes()).unwrap();
        let new = SignedNote::parse(file.new.as_bytes()).unwrap();
        assert_eq!(old.text(), log.note_at(4).text());
        assert_eq!(new.text(), other.note_at(4).text());
        // Both are signed by the log: the file proves the fork by itself.
        old.verify(&[log.signer.verifier()]).unwrap();
        new.verify(&[log.signer.verifier()]).unwrap();

        // Refused for ever: even the honest log's next checkpoint.
        log.grow(2);
        let r = w.post(&log.body(4, 6));
        assert_eq!(r.status, 409);
        assert!(r.text().contains("refused for ever"), "{}", r.text());
    }
    // And after a restart.
    let w = TestWitness::start(dir.path(), &[&log]);
    let r = w.post(&log.body(4, 6));
    assert_eq!(r.status, 409);
    assert!(r.text().contains("refused for ever"), "{}", r.text());
}

#[test]
fn limits_methods_and_the_monitoring_gets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("log.example/a b", 1);
    log.grow(3);
    let mut quiet = Log::new("log.example/quiet", 2);
    quiet.grow(1);
    let w = TestWitness::start(dir.path(), &[&log, &quiet]);

    assert_eq!(w.post(&vec![b'x'; 70 * 1024]).status, 413);
    assert_eq!(w.get("/add-checkpoint").status, 405);
    assert_eq!(w.get("/healthz").text(), "ok\n");

    assert_eq!(w.get(&checkpoint_path("log.example/a b")).status, 404);
    assert_eq!(w.post(&log.body(0, 3)).status, 200);
    let r = w.get(&checkpoint_path("log.example/a b"));
    assert_eq!(r.status, 200);
    let note = SignedNote::parse(&r.body).unwrap();
    assert_eq!(note.text(), log.note_at(3).text());
    let policy = Policy::new(vec![log.signer.verifier()], vec![w.cosigner.verifier()], 1).unwrap();
    policy.check(&note).unwrap();
    // Known but never cosigned, and unknown: 404.
    assert_eq!(w.get(&checkpoint_path("log.example/quiet")).status, 404);
    assert_eq!(w.get(&checkpoint_path("log.example/none")).status, 404);

    assert_eq!(w.get("/origins").text(), "log.example/a b 3\n");
    assert_eq!(w.get("/").text(), "log.example/a b 3\n");
}

#[test]
fn over_tls_with_a_run_time_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&dir.path().join("pki")).unwrap();
    let mut log = Log::new("log.example/tls", 1);
    log.grow(2);
    let w = TestWitness::start_with(
        &dir.path().join("state"),
        &[&log],
        Some(pki.server.clone()),
        Some(pki.ca.clone()),
    );
    assert!(w.url().starts_with("https://"));
    assert_eq!(w.post(&log.body(0, 2)).status, 200);
    log.grow(5);
    assert_eq!(w.post(&log.body(2, 7)).status, 200);
    assert_eq!(size_answer(&w.post(&log.body(2, 7))), 7);
}

#[test]
fn a_key_of_another_log_is_not_trusted_for_this_origin() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Log::new("log.example/a", 1);
    let mut b = Log::new("log.example/b", 2);
    a.grow(2);
    b.grow(2);
    let w = TestWitness::start(dir.path(), &[&a, &b]);
    // b's key signs a checkpoint of a's origin.
    let mut cross = Log::new("log.example/a", 2);
    cross.signer = NoteSigner::from_seed("log.example/b", [2; 32]).unwrap();
    cross.leaves = a.leaves.clone();
    assert_eq!(w.post(&cross.body(0, 2)).status, 403);
}
