//! A witness in memory behind the [`RemoteWitness`] trait: the real cosigning decision
//! ([`Witness::observe`]) with its state in a map, and a switch that makes it down, slow or
//! refusing. It lets push mode be exercised (and embedded) without a network.
//!
//! ```text
//!  add_checkpoint(note, proof_from) ── behaviour? ── Down ─► Unreachable
//!        │                                       ├─ Refuse ─► Refused(status)
//!        │                                       └─ Hang(d): sleeps d, then as Up
//!        ▼
//!  proof from the size the caller last saw; another size stored ─► (as a 409) once more
//!  from the stored size ─► Witness::observe ─► cosignature, state = the cosigned note
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kchain_core::{
    Checkpoint, NoteSignature, ProofFrom, RemoteWitness, RemoteWitnessError, SignedNote, Witness,
    WitnessRefusal,
};

/// How a [`MemoryWitness`] answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Up,
    /// Unreachable.
    Down,
    /// Answers after this long.
    Hang(Duration),
    /// Refuses every checkpoint with this status.
    Refuse {
        status: u16,
        message: String,
    },
}

/// A witness held in memory (see the module docs).
pub struct MemoryWitness {
    name: String,
    witness: Witness,
    behaviour: Mutex<Behaviour>,
    /// Per origin: the note cosigned last (with its cosignature).
    state: Mutex<HashMap<String, SignedNote>>,
    /// Per origin: the size the caller last learnt the witness holds (as an HTTP client would).
    known: Mutex<HashMap<String, u64>>,
    asked: Mutex<Vec<u64>>,
}

impl MemoryWitness {
    /// A witness named `name` in messages, deciding with `witness`, up.
    pub fn new(name: &str, witness: Witness) -> MemoryWitness {
        MemoryWitness {
            name: name.to_owned(),
            witness,
            behaviour: Mutex::new(Behaviour::Up),
            state: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// From now on, answers as `behaviour` says.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("behaviour") = behaviour;
    }

    /// The old sizes it was sent consistency proofs from, in order.
    pub fn proofs_from(&self) -> Vec<u64> {
        self.asked.lock().expect("asked").clone()
    }

    fn refused(&self, status: u16, message: String) -> RemoteWitnessError {
        RemoteWitnessError::Refused {
            witness: self.name.clone(),
            status,
            message,
        }
    }

    /// One add-checkpoint request from `old` with `proof`: the cosignature, or the size it
    /// holds when that is not `old` (a 409 with its size), or a refusal.
    fn request(
        &self,
        note: &SignedNote,
        origin: &str,
        old: u64,
        proof: &[kchain_core::Hash],
    ) -> Result<Result<NoteSignature, u64>, RemoteWitnessError> {
        let mut state = self.state.lock().expect("state");
        let stored = state.get(origin);
        let stored_size = stored
            .and_then(|n| Checkpoint::parse(n.text()).ok())
            .map_or(0, |c| c.size());
        if stored_size != old {
            return Ok(Err(stored_size));
        }
        let now = (kchain_core::time::now_ms() / 1000).max(0) as u64;
        match self.witness.observe(stored, note, proof, now) {
            Ok(cosignature) => {
                let signature = cosignature.to_note_signature();
                let mut cosigned = note.clone();
                cosigned.add_signature(signature.clone());
                state.insert(origin.to_owned(), cosigned);
                Ok(Ok(signature))
            }
            Err(refusal) => Err(self.refused(status_of(&refusal), refusal.to_string())),
        }
    }
}

/// The tlog-witness status of a refusal.
fn status_of(refusal: &WitnessRefusal) -> u16 {
    match refusal {
        WitnessRefusal::UnknownWriter { .. } => 404,
        WitnessRefusal::BadWriterSignature { .. } => 403,
        WitnessRefusal::Inconsistent { .. } => 422,
        WitnessRefusal::Fork { .. } | WitnessRefusal::Replay { .. } => 409,
        _ => 400,
    }
}

impl RemoteWitness for MemoryWitness {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn add_checkpoint(
        &self,
        note: &SignedNote,
        proof_from: &ProofFrom<'_>,
    ) -> Result<Vec<NoteSignature>, RemoteWitnessError> {
        let behaviour = self.behaviour.lock().expect("behaviour").clone();
        match behaviour {
            Behaviour::Up => {}
            Behaviour::Down => {
                return Err(RemoteWitnessError::Unreachable {
                    witness: self.name.clone(),
                    why: "connection refused".into(),
                })
            }
            Behaviour::Hang(d) => std::thread::sleep(d),
            Behaviour::Refuse { status, message } => return Err(self.refused(status, message)),
        }
        let c = Checkpoint::parse(note.text()).map_err(|e| RemoteWitnessError::Malformed {
            witness: self.name.clone(),
            why: e.to_string(),
        })?;
        let known = self.known.lock().expect("known").get(c.origin()).copied();
        let mut old = known.filter(|s| *s <= c.size()).unwrap_or(0);
        let mut held = old;
        for _ in 0..2 {
            let proof = proof_from(old).map_err(|why| RemoteWitnessError::NoProof {
                witness: self.name.clone(),
                old_size: old,
                why,
            })?;
            self.asked.lock().expect("asked").push(old);
            match self.request(note, c.origin(), old, &proof)? {
                Ok(signature) => {
                    let mut known = self.known.lock().expect("known");
                    known.insert(c.origin().to_owned(), c.size());
                    return Ok(vec![signature]);
                }
                Err(size) if size > c.size() => {
                    held = size;
                    break;
                }
                Err(size) => (old, held) = (size, size),
            }
        }
        // As the HTTP client reports a 409 with a size body: the size.
        Err(self.refused(409, held.to_string()))
    }

    fn latest(&self, origin: &str) -> Result<Option<SignedNote>, RemoteWitnessError> {
        Ok(self.state.lock().expect("state").get(origin).cloned())
    }
}
