//! `kchain witness serve` through the binary: it prints where it listens, cosigns the
//! checkpoints of trusted chains and of `--log` logs over HTTP, refuses unknown origins, and
//! `witness export --state` reads its state.

use std::io::{BufRead, BufReader};
use std::process::Child;

mod support;

use kchain_core::checkpoint::witness_wire::AddCheckpoint;
use kchain_core::{merkle, Checkpoint, NoteSigner, SignedNote};
use kchain_http::{Client, ClientOptions};
use support::Env;

/// A running `witness serve`, killed when dropped.
struct Serving {
    child: Child,
    url: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(k: &Env, args: &[&str]) -> Serving {
    let mut child = k.command(args).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .split(" listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("no listening line: {line:?}"))
        .to_owned();
    assert!(line.starts_with("witness w.example/w1 "), "{line}");
    Serving { child, url }
}

fn post(url: &str, note: &SignedNote) -> kchain_http::Response {
    let body = AddCheckpoint {
        old_size: 0,
        proof: Vec::new(),
        checkpoint: note.clone(),
    }
    .to_body();
    Client::new(&ClientOptions::default())
        .unwrap()
        .post(&format!("{url}/add-checkpoint"), "text/plain", &body)
        .unwrap()
}

#[test]
fn witness_serve_cosigns_over_http_and_export_reads_its_state() {
    let k = Env::new();
    let dir = k.dir.path();
    let wkey = dir.join("w.key");
    let state = dir.join("state");
    k.ok(&["keygen", "--name", "acme"], "");
    k.ok(
        &[
            "--key-file",
            wkey.to_str().unwrap(),
            "witness",
            "keygen",
            "--name",
            "w.example/w1",
        ],
        "",
    );
    k.ok(&["topic", "create", "orders"], "");
    k.ok(&["produce", "orders"], "a\nb\nc\n");
    k.ok(&["checkpoint", "publish", "orders"], "");
    let chain_note = SignedNote::parse(
        k.ok(&["checkpoint", "export", "orders", "--output", "-"], "")
            .as_bytes(),
    )
    .unwrap();

    // A C2SP log of its own, given with --log.
    let log = NoteSigner::from_seed("log.example/x", [5; 32]).unwrap();
    let leaves: Vec<merkle::Hash> = (0u8..4).map(|i| merkle::leaf_hash(&[i])).collect();
    let log_note = Checkpoint::new("log.example/x", 4, merkle::root(&leaves))
        .unwrap()
        .sign(&log);
    let log_arg = format!("log.example/x={}", log.verifier().to_vkey());

    let server = serve(
        &k,
        &[
            "--key-file",
            wkey.to_str().unwrap(),
            "witness",
            "serve",
            "--state",
            state.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--log",
            &log_arg,
        ],
    );
    let r = post(&server.url, &chain_note);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("— w.example/w1 "));
    assert_eq!(post(&server.url, &log_note).status, 200);
    let stranger = Checkpoint::new("log.example/y", 4, merkle::root(&leaves))
        .unwrap()
        .sign(&NoteSigner::from_seed("log.example/y", [6; 32]).unwrap());
    assert_eq!(post(&server.url, &stranger).status, 404);
    let client = Client::new(&ClientOptions::default()).unwrap();
    let origins = client
        .get(&format!("{}/origins", server.url))
        .unwrap()
        .text();
    assert_eq!(origins, "kchain/orders/0 3\nlog.example/x 4\n");
    drop(server);

    let out = dir.join("cosigned.json");
    k.ok(
        &[
            "witness",
            "export",
            "--state",
            state.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        "",
    );
    let bundle = std::fs::read_to_string(&out).unwrap();
    assert!(bundle.contains("kchain/orders/0\\n3\\n"), "{bundle}");
    assert!(bundle.contains("log.example/x\\n4\\n"), "{bundle}");
    assert_eq!(bundle.matches("— w.example/w1 ").count(), 2, "{bundle}");
}

#[test]
fn witness_serve_needs_a_log_to_witness() {
    let k = Env::new();
    let wkey = k.dir.path().join("w.key");
    k.ok(
        &[
            "--key-file",
            wkey.to_str().unwrap(),
            "witness",
            "keygen",
            "--name",
            "w.example/w1",
        ],
        "",
    );
    let state = k.dir.path().join("state");
    k.error(
        &[
            "--key-file",
            wkey.to_str().unwrap(),
            "witness",
            "serve",
            "--state",
            state.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
        ],
        "no log to witness",
    );
}

#[test]
fn witness_serve_witnesses_the_ledgers_of_the_trust_file() {
    let k = Env::new();
    let dir = k.dir.path();
    let wkey = dir.join("w.key");
    k.ok(
        &[
            "--key-file",
            wkey.to_str().unwrap(),
            "witness",
            "keygen",
            "--name",
            "w.example/w1",
        ],
        "",
    );
    let sealer = kchain_core::WriterKey::from_seed("sealer", [7; 32]);
    let trust = dir.join("trust.toml");
    std::fs::write(
        &trust,
        format!(
            "[[ledger]]\nchain = \"bank\"\ngenesis = \"{}\"\n\
             sealers = [{{ name = \"sealer\", public_key = \"{}\" }}]\n",
            "ab".repeat(32),
            sealer.public().to_hex()
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let server = serve(
        &k,
        &[
            "--key-file",
            wkey.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
            "witness",
            "serve",
            "--state",
            state.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
        ],
    );
    let leaves: Vec<merkle::Hash> = (0u8..2).map(|i| merkle::leaf_hash(&[i])).collect();
    let checkpoint = Checkpoint::new("kchain/bank.blocks", 2, merkle::root(&leaves)).unwrap();
    let sealed = checkpoint.sign(&sealer.note_signer().unwrap());
    let r = post(&server.url, &sealed);
    assert_eq!(r.status, 200, "{}", r.text());
    // Signed by a key that is not the ledger's sealer: 403.
    let other = kchain_core::WriterKey::from_seed("sealer", [8; 32]);
    let r = post(&server.url, &checkpoint.sign(&other.note_signer().unwrap()));
    assert_eq!(r.status, 403, "{}", r.text());
}
