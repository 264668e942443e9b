//! The witness's answers, independent of HTTP: an add-checkpoint body in, a status and a
//! body out, with every check of c2sp.org/tlog-witness in the spec's order.
//!
//! ```text
//!  body ──parse──► 400 malformed
//!       ──origin──► 404 unknown           (KnownLogs)
//!       ──signature of a trusted key──► 403
//!       ──old size > checkpoint size──► 400
//!  lock origin ─┬─ forked before ──────► 409 (refused for ever)
//!               ├─ old size != cosigned ► 409 "size\n" text/x.tlog.size
//!               ├─ same size, other root ► 409 + evidence + .forked (a proven fork)
//!               ├─ proof fails ─────────► 422 (request kept; the origin is not locked)
//!               └─ cosign, queue the note ► 200 cosignature line
//!  unlock ──► wait for the origin's queued state to be durable (group commit) ──► answer
//! ```

use kchain_core::checkpoint::witness_wire::{
    cosignature_lines, size_body, AddCheckpoint, TLOG_SIZE_CONTENT_TYPE,
};
use kchain_core::checkpoint::{extension, Extension, NoteError, NoteSignature};
use kchain_core::{Checkpoint, ConsistencyProofFile, Cosigner, SignedNote};

use crate::logs::KnownLogs;
use crate::state::{OriginState, StateStore};

/// The content type of plain text answers.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// An answer: an HTTP status, a content type and a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Reply {
        let mut body = body.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Reply {
            status,
            content_type: TEXT_PLAIN,
            body,
        }
    }

    fn size(size: u64) -> Reply {
        Reply {
            status: 409,
            content_type: TLOG_SIZE_CONTENT_TYPE,
            body: size_body(size),
        }
    }
}

/// A witness: its key, the logs it witnesses, and its state.
pub struct WitnessService {
    cosigner: Cosigner,
    logs: KnownLogs,
    store: StateStore,
}

impl WitnessService {
    pub fn new(cosigner: Cosigner, logs: KnownLogs, store: StateStore) -> WitnessService {
        WitnessService {
            cosigner,
            logs,
            store,
        }
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// `POST /add-checkpoint` with `body`, at `now` (POSIX seconds).
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Reply {
        let (request, checkpoint) = match parse(body) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        let origin = checkpoint.origin();
        let Some(keys) = self.logs.keys(origin) else {
            return Reply::text(404, format!("unknown origin {origin:?}"));
        };
        if let Err(e) = request.checkpoint.verify(&keys) {
            let why = match e {
                NoteError::NoVerifiedSignature { .. } => "no signature of a trusted key".into(),
                e => e.to_string(),
            };
            return Reply::text(403, format!("checkpoint of {origin}: {why}"));
        }
        if request.old_size > checkpoint.size() {
            return Reply::text(400, "the old size is larger than the checkpoint's size");
        }
        let guard = match self.store.lock(origin) {
            Ok(g) => g,
            Err(e) => return Reply::text(500, e.to_string()),
        };
        let (reply, pending) = {
            let mut state = guard.get();
            let reply = self.decide(&mut state, request, checkpoint, now);
            (reply, state.pending())
        };
        // The answer shows the origin's state (a cosignature, a size): it leaves once that
        // state is durable, waiting without the origin's lock so that the next request of
        // the origin joins the same group commit.
        if let Some(Err(e)) = pending.map(|t| t.wait()) {
            return Reply::text(500, e.to_string());
        }
        reply.unwrap_or_else(|e| Reply::text(500, e.to_string()))
    }

    /// The checks that need the origin's state, and the cosignature; under its lock.
    fn decide(
        &self,
        state: &mut OriginState,
        request: AddCheckpoint,
        checkpoint: Checkpoint,
        now: u64,
    ) -> Result<Reply, crate::ServeError> {
        if let Some(why) = state.forked() {
            let why = format!("{} is refused for ever: {why}", checkpoint.origin());
            return Ok(Reply::text(409, why));
        }
        if request.old_size != state.size() {
            return Ok(Reply::size(state.size()));
        }
        // The rule every kchain witness applies (kchain-core `extension`); the old size
        // matched, so the checkpoint cannot shrink here.
        match extension(state.last().map(|(_, c)| c), &checkpoint, &request.proof) {
            Ok(()) => {}
            Err(Extension::Fork) => {
                let cosigned = state
                    .last()
                    .expect("a fork needs a cosigned note")
                    .0
                    .clone();
                return self.fork(state, cosigned, &request);
            }
            Err(e) => {
                self.keep_rejected(state, &request, &checkpoint);
                let cause = match e {
                    Extension::Inconsistent(cause) => cause.to_string(),
                    Extension::UnexpectedProof => format!(
                        "{} hashes offered where none is needed",
                        request.proof.len()
                    ),
                    _ => format!("{e:?}"),
                };
                return Ok(Reply::text(422, format!("the consistency proof: {cause}")));
            }
        }
        let line = self
            .cosigner
            .cosign(request.checkpoint.text(), now)
            .to_note_signature();
        let note = self.stored_note(&request.checkpoint, line.clone());
        // Durable once the origin's pending ticket is: the caller waits for it.
        let _queued = state.store(note, checkpoint)?;
        Ok(Reply {
            status: 200,
            content_type: TEXT_PLAIN,
            body: cosignature_lines(&[line]),
        })
    }

    /// What is kept of a cosigned checkpoint: the offered note's signatures (but any older
    /// cosignature of this witness) and the new cosignature.
    fn stored_note(&self, offered: &SignedNote, cosignature: NoteSignature) -> SignedNote {
        let mut note = SignedNote::new(offered.text()).expect("a parsed note's text");
        let own = self.cosigner.key_id();
        for s in offered.signatures().iter().filter(|s| s.key_id() != own) {
            note.add_signature(s.clone());
        }
        note.add_signature(cosignature);
        note
    }

    /// A proven fork: two roots signed for one size. Evidence naming both, the origin
    /// refused for ever, 409.
    fn fork(
        &self,
        state: &mut OriginState,
        cosigned: SignedNote,
        request: &AddCheckpoint,
    ) -> Result<Reply, crate::ServeError> {
        let file = ConsistencyProofFile::new(&cosigned, &request.checkpoint, &request.proof);
        let json = serde_json::to_string_pretty(&file).expect("a proof file serializes") + "\n";
        let why = format!(
            "the log signed two different roots for size {}",
            state.size()
        );
        let path = state.mark_forked(self.store.dir(), &json, &why)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        Ok(Reply::text(409, format!("fork: {why}; evidence {name}")))
    }

    /// Keeps a request whose proof failed (best effort: it proves nothing by itself).
    fn keep_rejected(&self, state: &OriginState, request: &AddCheckpoint, new: &Checkpoint) {
        let Some((cosigned, _)) = state.last() else {
            return;
        };
        let file = ConsistencyProofFile::new(cosigned, &request.checkpoint, &request.proof);
        let json = serde_json::to_string_pretty(&file).expect("a proof file serializes") + "\n";
        let path = self.store.rejected_path(new.origin(), new.size());
        let _ = kchain_topic::checkpoints::witness_state::write_file(&path, json.as_bytes());
    }

    /// `GET /checkpoint/<origin>`: the newest cosigned checkpoint, or 404.
    pub fn latest(&self, origin: &str) -> Reply {
        if self.logs.keys(origin).is_none() {
            return Reply::text(404, format!("unknown origin {origin:?}"));
        }
        match self.store.newest(origin) {
            Ok(Some(note)) => Reply::text(200, note.to_text()),
            Ok(None) => Reply::text(404, format!("no checkpoint of {origin:?} cosigned")),
            Err(e) => Reply::text(500, e.to_string()),
        }
    }

    /// `GET /origins`: `origin size` per line, sorted.
    pub fn origins(&self) -> Reply {
        match self.store.sizes() {
            Ok(sizes) => Reply {
                status: 200,
                content_type: TEXT_PLAIN,
                body: sizes.iter().map(|(o, s)| format!("{o} {s}\n")).collect(),
            },
            Err(e) => Reply::text(500, e.to_string()),
        }
    }
}

/// A request body and its checkpoint, or the 400 answer.
fn parse(body: &[u8]) -> Result<(AddCheckpoint, Checkpoint), Reply> {
    let request =
        AddCheckpoint::parse(body).map_err(|e| Reply::text(400, format!("malformed: {e}")))?;
    let checkpoint = Checkpoint::parse(request.checkpoint.text())
        .map_err(|e| Reply::text(400, format!("malformed checkpoint: {e}")))?;
    Ok((request, checkpoint))
}
