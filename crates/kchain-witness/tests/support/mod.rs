//! Logs that sign checkpoints and a witness server on loopback, for the witness's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kchain_core::checkpoint::witness_wire::AddCheckpoint;
use kchain_core::{merkle, Checkpoint, Cosigner, Hash, NoteSigner, SignedNote};
use kchain_http::{Client, ClientOptions, Response, RunningServer, ServerOptions, TlsFiles};
use kchain_witness::{KnownLogs, StateStore, WitnessService};

/// A C2SP log: an origin, an Ed25519 note key, and its leaves.
pub struct Log {
    pub origin: String,
    pub signer: NoteSigner,
    pub leaves: Vec<Hash>,
}

impl Log {
    pub fn new(origin: &str, seed: u8) -> Log {
        Log {
            origin: origin.to_owned(),
            signer: NoteSigner::from_seed(&origin.replace(' ', "_"), [seed; 32]).unwrap(),
            leaves: Vec::new(),
        }
    }

    /// Appends `n` leaves.
    pub fn grow(&mut self, n: usize) -> &mut Log {
        for _ in 0..n {
            let i = self.leaves.len() as u64;
            self.leaves
                .push(merkle::leaf_hash(format!("{} {i}", self.origin).as_bytes()));
        }
        self
    }

    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The signed checkpoint of the first `size` leaves.
    pub fn note_at(&self, size: u64) -> SignedNote {
        let root = merkle::root(&self.leaves[..size as usize]);
        Checkpoint::new(&self.origin, size, root)
            .unwrap()
            .sign(&self.signer)
    }

    pub fn note(&self) -> SignedNote {
        self.note_at(self.size())
    }

    /// The consistency proof from `old` to `new` (empty from 0).
    pub fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        if old == 0 {
            return Vec::new();
        }
        merkle::consistency_proof(&self.leaves[..new as usize], old).unwrap()
    }

    /// An add-checkpoint body for the checkpoint at `new`, from `old`.
    pub fn body(&self, old: u64, new: u64) -> Vec<u8> {
        AddCheckpoint {
            old_size: old,
            proof: self.proof(old, new),
            checkpoint: self.note_at(new),
        }
        .to_body()
    }

    /// A fork: the same size with other leaves, signed by the same key.
    pub fn forked(&self, from: u64) -> Log {
        let mut other = Log {
            origin: self.origin.clone(),
            signer: self.signer.clone(),
            leaves: self.leaves[..from as usize].to_vec(),
        };
        for i in from..self.size() {
            other
                .leaves
                .push(merkle::leaf_hash(format!("forged {i}").as_bytes()));
        }
        other
    }
}

/// A witness server on 127.0.0.1:0 over a state directory.
pub struct TestWitness {
    pub server: RunningServer,
    pub service: Arc<WitnessService>,
    pub state: PathBuf,
    pub cosigner: Cosigner,
    pub client: Client,
}

pub fn cosigner() -> Cosigner {
    Cosigner::from_seed("witness.example/w1", [9; 32]).unwrap()
}

impl TestWitness {
    /// A witness of `logs` with its state in `state`, plain HTTP.
    pub fn start(state: &Path, logs: &[&Log]) -> TestWitness {
        TestWitness::start_with(state, logs, None, None)
    }

    pub fn start_with(
        state: &Path,
        logs: &[&Log],
        tls: Option<TlsFiles>,
        ca: Option<PathBuf>,
    ) -> TestWitness {
        let mut known = KnownLogs::new();
        for log in logs {
            known.add(&log.origin, log.signer.verifier());
        }
        let store = StateStore::open(state).unwrap();
        let service = Arc::new(WitnessService::new(cosigner(), known, store));
        let options = ServerOptions::new("127.0.0.1:0").with_tls(tls);
        let server = kchain_witness::serve(&options, service.clone()).unwrap();
        let client = Client::new(&ClientOptions {
            ca_file: ca,
            ..ClientOptions::default()
        })
        .unwrap();
        TestWitness {
            server,
            service,
            state: state.to_owned(),
            cosigner: cosigner(),
            client,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn post(&self, body: &[u8]) -> Response {
        self.client
            .post(
                &format!("{}/add-checkpoint", self.url()),
                "text/plain",
                body,
            )
            .unwrap()
    }

    pub fn get(&self, path: &str) -> Response {
        self.client.get(&format!("{}{path}", self.url())).unwrap()
    }
}

/// The size a 409 size answer carries, checking its content type.
pub fn size_answer(r: &Response) -> u64 {
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.content_type.as_deref(), Some("text/x.tlog.size"));
    kchain_core::checkpoint::witness_wire::parse_size_body(&r.body).unwrap()
}
