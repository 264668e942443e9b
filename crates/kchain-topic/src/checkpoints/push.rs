//! Push mode: a writer or sealer submits every checkpoint it signs to the witnesses it was
//! given (c2sp.org/tlog-witness `add-checkpoint`, through [`RemoteWitness`]), keeps the
//! cosignatures that verify under each witness's key, and publishes the cosigned checkpoint.
//!
//! ```text
//!  owner thread (writer / sealer)                 push thread
//!  ─────────────────────────────                  ───────────
//!  entry hashes ── add_entries ──────────────────► leaves since the last checkpoint
//!  sign note ── submit(note, fallback proofs) ───► for each witness: add_checkpoint(note,
//!                                                    proof_from(its size)) ─► cosignatures
//!  ready() / settle(wait) ◄── cosigned note ◄────── keep those that verify under its key
//!  publish it to the checkpoints topic
//! ```
//!
//! The push thread keeps the tree's frontier at the previous checkpoint and the leaves since
//! then, so a witness at any size from the previous checkpoint on gets its consistency proof
//! without the log ([`merkle::consistency_proof_extending`]). A witness that asks for an older
//! size (it was down) is reported back as lagging; the owner computes that proof its own way
//! (from the log, or the ledger's chain) with the next checkpoint it submits.
//!
//! The owner never waits on HTTP except in [`Pusher::settle`] (flush, close), and then at most
//! the time it was given. A witness that fails is reported once per change of its state
//! ([`PushEvent`]), and tried again with the next checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{chain_leaf, Hash, NoteVerifier, RemoteWitness, RemoteWitnessError};
use kchain_core::{NoteSignature, SignedNote};

use crate::error::TopicError;

/// One witness to push to: how to reach it, and the key its cosignatures must verify under.
#[derive(Clone)]
pub struct PushWitness {
    pub witness: Arc<dyn RemoteWitness>,
    pub key: NoteVerifier,
}

/// What happened to pushes to one witness, reported when its state changes (not per
/// checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushEvent {
    /// The witness gave no valid cosignature; checkpoints are published without it until it
    /// recovers. `fork` is set when it refused with a conflict that is not a size: it holds a
    /// checkpoint this one contradicts, a loud matter.
    Failing {
        witness: String,
        error: String,
        fork: bool,
    },
    /// The witness cosigned again (at `size`) after failing.
    Recovered { witness: String, size: u64 },
}

/// Called on the push thread for every [`PushEvent`].
pub type PushEvents = Arc<dyn Fn(&PushEvent) + Send + Sync>;

/// Push mode's settings: the witnesses, how long a flush waits for their cosignatures, and
/// who hears of failures.
#[derive(Clone)]
pub struct PushOptions {
    pub witnesses: Vec<PushWitness>,
    /// The longest a flush or close waits for the cosignatures of the last checkpoint
    /// (the client's timeout is a good value).
    pub wait: Duration,
    pub on_event: Option<PushEvents>,
}

impl PushOptions {
    /// Pushing to `witnesses`, waiting at most `wait` on flush, reporting nothing.
    pub fn new(witnesses: Vec<PushWitness>, wait: Duration) -> Self {
        PushOptions {
            witnesses,
            wait,
            on_event: None,
        }
    }

    /// The same, reporting failures and recoveries to `on_event`.
    pub fn with_events(mut self, on_event: PushEvents) -> Self {
        self.on_event = Some(on_event);
        self
    }
}

impl fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .witnesses
            .iter()
            .map(|w| w.witness.describe())
            .collect();
        f.debug_struct("PushOptions")
            .field("witnesses", &names)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PushOptions {
    /// The same witnesses (by description and key) and wait.
    fn eq(&self, other: &Self) -> bool {
        let ids = |o: &Self| -> Vec<(String, String)> {
            o.witnesses
                .iter()
                .map(|w| (w.witness.describe(), w.key.to_vkey()))
                .collect()
        };
        self.wait == other.wait && ids(self) == ids(other)
    }
}

impl Eq for PushOptions {}

enum Msg {
    Entries(Vec<Hash>),
    Job(Job),
}

struct Job {
    seq: u64,
    note: SignedNote,
    size: u64,
    /// Consistency proofs to this checkpoint from sizes the push thread no longer holds, as
    /// the owner computed them (or why it could not).
    proofs: HashMap<u64, Result<Vec<Hash>, String>>,
    /// The witnesses to push to (by index); `None`: all.
    only: Option<Vec<usize>>,
}

struct Done {
    seq: u64,
    note: SignedNote,
    /// Witnesses (by index) that asked for a proof from a size the push thread did not
    /// hold, with that size.
    lagging: Vec<(usize, u64)>,
}

/// The owner's handle on the push thread.
pub struct Pusher {
    tx: Option<Sender<Msg>>,
    done: Receiver<Done>,
    wait: Duration,
    seq: u64,
    /// Submitted, not yet back: by sequence number.
    in_flight: BTreeMap<u64, SignedNote>,
    lagging: Vec<(usize, u64)>,
    /// The last note submitted, with its size.
    last: Option<(SignedNote, u64)>,
}

impl Pusher {
    /// Starts the push thread with the tree's frontier at the last signed checkpoint (or
    /// wherever the owner's leaves start: `add_entries` continues from its size).
    pub fn start(options: PushOptions, frontier: TreeBuilder) -> Result<Pusher, TopicError> {
        let (tx, rx) = channel::<Msg>();
        let (done_tx, done) = channel::<Done>();
        let wait = options.wait;
        let mut worker = Worker {
            states: vec![None; options.witnesses.len()],
            options,
            tree: frontier,
            since: Vec::new(),
        };
        std::thread::Builder::new()
            .name("kchain-witness-push".into())
            .spawn(move || worker.run(rx, done_tx))
            .map_err(|e| TopicError::io("starting the witness push thread".to_owned(), e))?;
        Ok(Pusher {
            tx: Some(tx),
            done,
            wait,
            seq: 0,
            in_flight: BTreeMap::new(),
            lagging: Vec::new(),
            last: None,
        })
    }

    /// The next entries of the chain (entry hashes; their leaves are hashed on the push
    /// thread), continuing from the frontier and the entries given before.
    pub fn add_entries(&mut self, entry_hashes: Vec<Hash>) {
        if let (false, Some(tx)) = (entry_hashes.is_empty(), &self.tx) {
            let _ = tx.send(Msg::Entries(entry_hashes));
        }
    }

    /// Submits `note` (a checkpoint the owner signed, covering every entry given so far) to
    /// the witnesses. `prove(old_size)` gives the consistency proof from an old size the push
    /// thread no longer holds (a witness that lags); it runs here, on the owner's thread, and
    /// only when a witness asked for such a size.
    pub fn submit(
        &mut self,
        note: SignedNote,
        size: u64,
        prove: &dyn Fn(u64) -> Result<Vec<Hash>, String>,
    ) {
        self.last = Some((note.clone(), size));
        self.send(note, size, prove, None);
    }

    fn send(
        &mut self,
        note: SignedNote,
        size: u64,
        prove: &dyn Fn(u64) -> Result<Vec<Hash>, String>,
        only: Option<Vec<usize>>,
    ) {
        let mut proofs = HashMap::new();
        for (_, old) in std::mem::take(&mut self.lagging) {
            if old > 0 && old < size && !proofs.contains_key(&old) {
                proofs.insert(old, prove(old));
            }
        }
        self.seq += 1;
        self.in_flight.insert(self.seq, note.clone());
        let job = Job {
            seq: self.seq,
            note,
            size,
            proofs,
            only,
        };
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Job(job));
        }
    }

    /// The checkpoints whose pushes are over, with the cosignatures they gathered; never
    /// waits.
    pub fn ready(&mut self) -> Vec<SignedNote> {
        let mut out = Vec::new();
        while let Ok(d) = self.done.try_recv() {
            out.push(self.finished(d));
        }
        out
    }

    /// Waits, at most the configured wait, for every submitted checkpoint's push; returns
    /// those that came back (cosigned as far as the witnesses answered) and, for those still
    /// out, the notes as submitted, so the owner publishes something. A witness that asked
    /// for a size the push thread no longer holds is sent the last checkpoint once more,
    /// with the proof `prove` gives. A late answer comes back from a later
    /// [`Pusher::ready`] and is published then (its cosignatures merge).
    pub fn settle(&mut self, prove: &dyn Fn(u64) -> Result<Vec<Hash>, String>) -> Vec<SignedNote> {
        let deadline = Instant::now() + self.wait;
        let mut out = self.wait_until(deadline);
        let retry = (
            self.lagging.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            &self.last,
        );
        if let (false, Some((note, size))) = (retry.0.is_empty(), retry.1.clone()) {
            let only = retry.0;
            self.send(note, size, prove, Some(only));
            out.extend(self.wait_until(deadline));
        }
        out.extend(std::mem::take(&mut self.in_flight).into_values());
        out
    }

    fn wait_until(&mut self, deadline: Instant) -> Vec<SignedNote> {
        let mut out = self.ready();
        while !self.in_flight.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(d) => out.push(self.finished(d)),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        out
    }

    fn finished(&mut self, d: Done) -> SignedNote {
        self.in_flight.remove(&d.seq);
        self.lagging.extend(d.lagging);
        d.note
    }
}

impl Drop for Pusher {
    /// Closes the channel: the push thread ends after the push it is in (not waited for).
    fn drop(&mut self) {
        self.tx.take();
    }
}

/// The push thread's state.
struct Worker {
    options: PushOptions,
    /// The frontier at the last checkpoint pushed, and the leaves since.
    tree: TreeBuilder,
    since: Vec<Hash>,
    /// Per witness: `None` while it cosigns, else the failure last reported.
    states: Vec<Option<String>>,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Msg>, done: Sender<Done>) {
        while let Ok(msg) = rx.recv() {
            let mut jobs = Vec::new();
            for m in std::iter::once(msg).chain(rx.try_iter()) {
                match m {
                    Msg::Entries(hashes) => self.since.extend(hashes.iter().map(chain_leaf)),
                    Msg::Job(j) => jobs.push(j),
                }
            }
            // Behind (a witness hung): only the newest checkpoint is pushed; the older ones
            // go back as signed, and the newest's cosignatures cover them.
            let Some(newest) = jobs.pop() else { continue };
            for j in jobs {
                let _ = done.send(Done {
                    seq: j.seq,
                    note: j.note,
                    lagging: Vec::new(),
                });
            }
            let d = self.push(newest);
            if done.send(d).is_err() {
                return;
            }
        }
    }

    fn push(&mut self, job: Job) -> Done {
        let base = self.tree.size();
        // Leaves beyond the checkpoint (added after it was signed) wait for the next one.
        let covered = job.size.saturating_sub(base) as usize;
        let held = job.size >= base && covered <= self.since.len();
        let mut note = job.note.clone();
        let mut lagging = Vec::new();
        for i in 0..self.options.witnesses.len() {
            if job.only.as_ref().is_some_and(|only| !only.contains(&i)) {
                continue;
            }
            let w = &self.options.witnesses[i];
            let proof_from = |old: u64| -> Result<Vec<Hash>, String> {
                if old == 0 || old == job.size {
                    return Ok(Vec::new());
                }
                if held && old >= base && old < job.size {
                    return self.extending(old, job.size);
                }
                job.proofs
                    .get(&old)
                    .cloned()
                    .unwrap_or_else(|| Err(format!("size {old} is no longer held")))
            };
            let result = w.witness.add_checkpoint(&job.note, &proof_from);
            let outcome = match result {
                Ok(sigs) => {
                    let valid = valid_cosignatures(&job.note, &w.key, sigs);
                    if valid.is_empty() {
                        let why = "answered no cosignature that verifies under its key";
                        Err((
                            format!("{}: {why}", w.witness.describe()),
                            "invalid".into(),
                            false,
                        ))
                    } else {
                        valid.into_iter().for_each(|s| note.add_signature(s));
                        Ok(())
                    }
                }
                Err(e) => {
                    if let RemoteWitnessError::NoProof { old_size, .. } = &e {
                        lagging.push((i, *old_size));
                        if !job.proofs.contains_key(old_size) {
                            // Not a failure yet: the owner proves it with the next send.
                            continue;
                        }
                    }
                    let fork = is_conflict(&e);
                    Err((e.to_string(), kind_of(&e), fork))
                }
            };
            self.report(i, outcome, job.size);
        }
        if held {
            let (now, later) = self.since.split_at(covered);
            now.iter().for_each(|l| self.tree.push(l));
            self.since = later.to_vec();
        }
        Done {
            seq: job.seq,
            note,
            lagging,
        }
    }

    /// The proof from `old` (at least the frontier's size) to `size`, from the leaves held.
    fn extending(&self, old: u64, size: u64) -> Result<Vec<Hash>, String> {
        let base = self.tree.size();
        let (before, after) = self.since[..(size - base) as usize].split_at((old - base) as usize);
        let mut at_old = self.tree.clone();
        before.iter().for_each(|l| at_old.push(l));
        merkle::consistency_proof_extending(&at_old, after).map_err(|e| e.to_string())
    }

    /// Reports witness `i`'s outcome when its state changed.
    fn report(&mut self, i: usize, outcome: Result<(), Failure>, size: u64) {
        let witness = self.options.witnesses[i].witness.describe();
        let event = match (outcome, &self.states[i]) {
            (Ok(()), None) => None,
            (Ok(()), Some(_)) => {
                self.states[i] = None;
                Some(PushEvent::Recovered { witness, size })
            }
            (Err((error, state, fork)), last) => {
                let changed = last.as_deref() != Some(state.as_str());
                self.states[i] = Some(state);
                changed.then_some(PushEvent::Failing {
                    witness,
                    error,
                    fork,
                })
            }
        };
        if let (Some(e), Some(f)) = (event, &self.options.on_event) {
            f(&e);
        }
    }
}

/// A failed push: the message, its kind (what a change of state compares), whether it is a
/// conflict.
type Failure = (String, String, bool);

/// Whether `error` is a 409 whose body is not a size: the witness holds a checkpoint this
/// one contradicts (a fork, or a replay), not merely another size.
fn is_conflict(error: &RemoteWitnessError) -> bool {
    matches!(error, RemoteWitnessError::Refused { status: 409, message, .. }
        if message.trim().parse::<u64>().is_err())
}

/// The failure's kind, without the details that change from one checkpoint to the next.
fn kind_of(error: &RemoteWitnessError) -> String {
    match error {
        RemoteWitnessError::Unreachable { .. } => "unreachable".into(),
        RemoteWitnessError::Refused { status, .. } => format!("refused {status}"),
        RemoteWitnessError::Malformed { .. } => "malformed".into(),
        RemoteWitnessError::NoProof { .. } => "no proof".into(),
        _ => "other".into(),
    }
}

/// The signatures among `sigs` that are `key`'s valid cosignatures of `note`'s text.
fn valid_cosignatures(
    note: &SignedNote,
    key: &NoteVerifier,
    sigs: Vec<NoteSignature>,
) -> Vec<NoteSignature> {
    sigs.into_iter()
        .filter(|s| {
            s.name() == key.name()
                && s.key_id() == key.key_id()
                && key.verify(note.text(), s.signature())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_from_any_held_size_match_proofs_from_all_leaves() {
        let leaves: Vec<Hash> = (0..300u32)
            .map(|i| chain_leaf(&kchain_core::sha256(&i.to_le_bytes())))
            .collect();
        for base in [1u64, 7, 64, 100] {
            let mut tree = TreeBuilder::new();
            leaves[..base as usize].iter().for_each(|l| tree.push(l));
            let worker = Worker {
                options: PushOptions::new(Vec::new(), Duration::ZERO),
                tree,
                since: leaves[base as usize..].to_vec(),
                states: Vec::new(),
            };
            for (old, size) in [(base, 300), (base, base + 1), (base + 5, 200), (299, 300)] {
                assert_eq!(
                    worker.extending(old, size).unwrap(),
                    merkle::consistency_proof(&leaves[..size as usize], old).unwrap(),
                    "base {base}, {old} -> {size}"
                );
            }
        }
    }
}
