//! Three organisations on one machine: a writer, two `kchain witness serve` processes over
//! TLS (certificates made at test time), and an outsider whose `verify --trust
//! --checkpoints-from witnesses` never reads the operator's checkpoints topic, yet catches
//! the operator's truncation, rewrite and checkpoint suppression, and only warns when a
//! witness is down while its remembered checkpoint vouches for the chain.

mod support;

use std::path::Path;

use kchain_core::{notes_from_file, RemoteWitness};
use kchain_http::{Client, ClientOptions, TestPki};
use kchain_witness::HttpWitness;
use support::orgs::{copy_dir, delete_checkpoints_topic, serve, Served};
use support::{json, run, Env};

fn produce(env: &Env, from: usize, to: usize, salt: &str) {
    let input: String = (from..to)
        .map(|i| format!("{{\"n\":{i},\"s\":\"{salt}\"}}\n"))
        .collect();
    let out = env.run(&["produce", "orders", "--no-checkpoints"], &input);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// A writer organisation: key `acme` (the same key in every history: the operator holds
/// it), `to` entries of topic `orders` with a checkpoint at the end.
fn writer(key_from: Option<&Env>, to: usize, salt: &str) -> Env {
    let env = Env::new();
    match key_from {
        Some(other) => copy_dir(&other.config(), &env.config()),
        None => {
            env.ok(&["keygen", "--name", "acme"], "");
        }
    }
    env.ok(&["topic", "create", "orders"], "");
    produce(&env, 0, to, salt);
    env.ok(&["checkpoint", "publish", "orders"], "");
    env
}

/// Pushes the writer's newest checkpoint to each witness, as a writer configured with their
/// URLs will.
fn push(writer: &Env, witnesses: &[&Served], ca: &Path) {
    let text = writer.ok(&["checkpoint", "export", "orders", "--output", "-"], "");
    let note = notes_from_file(text.as_bytes()).unwrap().remove(0);
    let client = Client::new(&ClientOptions {
        ca_file: Some(ca.to_owned()),
        ..Default::default()
    })
    .unwrap();
    for w in witnesses {
        let remote = HttpWitness::new(&w.url, client.clone());
        let lines = remote.add_checkpoint(&note, &|_| Ok(Vec::new())).unwrap();
        assert_eq!(lines.len(), 1, "{}", w.url);
    }
}

/// `verify orders --checkpoints-from witnesses --json` by the outsider, on `data`; its exit
/// code and JSON.
fn outsider_verify(
    outsider: &Env,
    data: &Path,
    ca: &Path,
    state: &Path,
) -> (Option<i32>, serde_json::Value, String) {
    let (code, out, err) = run(
        outsider,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--ca-file",
            ca.to_str().unwrap(),
            "verify",
            "orders",
            "--checkpoints-from",
            "witnesses",
            "--state",
            state.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(code == Some(0) || code == Some(3), "{code:?} {out} {err}");
    (code, json(&out), err)
}

fn kind(v: &serde_json::Value) -> &str {
    v["checkpoints"]["partitions"][0]["finding"]["kind"]
        .as_str()
        .unwrap_or("none")
}

#[test]
fn an_outsider_catches_truncation_rewrite_and_suppression_from_witnesses_alone() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(pki_dir.path()).unwrap();
    let honest = writer(None, 20, "a");
    let trust = honest.config().join("trust.toml");
    let (_w1_env, w1) = serve("w1.example", &pki, &trust);
    let (_w2_env, w2) = serve("w2.example", &pki, &trust);
    push(&honest, &[&w1, &w2], &pki.ca);

    // The outsider trusts the writer's key and the two witnesses at their URLs.
    let outsider = Env::new();
    copy_dir(&honest.config(), &outsider.config());
    std::fs::remove_file(outsider.config().join("acme.key")).ok();
    for w in [&w1, &w2] {
        outsider.ok(&["trust", "add-witness", &w.vkey, "--url", &w.url], "");
    }
    outsider.ok(&["trust", "policy", "--witnesses", "2"], "");
    let states = tempfile::tempdir().unwrap();
    let state = |n: &str| states.path().join(n);

    // Honest, with the checkpoints topic deleted: verified from the witnesses.
    delete_checkpoints_topic(&honest.data());
    let (code, v, _) = outsider_verify(&outsider, &honest.data(), &pki.ca, &state("honest"));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["checkpoints"]["partitions"][0]["newest"]["size"], 20);

    // Truncation: the operator's log holds 12 entries of another history.
    let cut = writer(Some(&honest), 12, "a");
    delete_checkpoints_topic(&cut.data());
    let (code, v, _) = outsider_verify(&outsider, &cut.data(), &pki.ca, &state("cut"));
    assert_eq!((code, kind(&v)), (Some(3), "checkpoint_truncated"), "{v}");

    // Rewrite: 25 entries, every hash and signature recomputed, another content.
    let rewritten = writer(Some(&honest), 25, "b");
    let (code, v, _) = outsider_verify(&outsider, &rewritten.data(), &pki.ca, &state("rw"));
    assert_eq!((code, kind(&v)), (Some(3), "checkpoint_rewritten"), "{v}");

    // Suppression: max_age 2 s; a quiet log stays clean, entries appended while their
    // checkpoints are kept from the witnesses are stale.
    outsider.ok(&["trust", "policy", "--max-age", "2"], "");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (code, v, _) = outsider_verify(&outsider, &honest.data(), &pki.ca, &state("honest"));
    assert_eq!(code, Some(0), "a quiet log is clean: {v}");
    produce(&honest, 20, 25, "a");
    let (code, v, _) = outsider_verify(&outsider, &honest.data(), &pki.ca, &state("honest"));
    assert_eq!((code, kind(&v)), (Some(3), "checkpoint_stale"), "{v}");
    let detail = v["checkpoints"]["partitions"][0]["finding"]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("entries 20.. are not covered"), "{detail}");

    // A witness down while the remembered checkpoint vouches: a warning naming it.
    outsider.ok(&["trust", "policy", "--max-age", "0"], "");
    let w2_url = w2.url.clone();
    drop(w2);
    let (code, v, _) = outsider_verify(&outsider, &honest.data(), &pki.ca, &state("honest"));
    assert_eq!(code, Some(0), "{v}");
    let warnings = v["checkpoints"]["warnings"].to_string();
    assert!(warnings.contains(&w2_url), "{warnings}");
    assert!(warnings.contains("1 of 2 witnesses answered"), "{warnings}");
    // With nothing remembered, too few witnesses is a finding.
    let (code, v, _) = outsider_verify(&outsider, &honest.data(), &pki.ca, &state("fresh"));
    assert_eq!((code, kind(&v)), (Some(3), "witnesses_unreachable"), "{v}");
}
