//! The witness server's durable state: per origin, the last checkpoint it cosigned, and
//! whether the origin is refused for ever (a proven fork). The files are those of the
//! pull-mode witness (kchain-topic's `witness_state`), so `kchain witness export --state`
//! reads either:
//!
//! ```text
//!  StateStore ── origin ──► Arc<Mutex<OriginState>>   (one lock per origin, made on first use)
//!                               │ loaded from <hex origin>.note / .forked on first lock
//!                               │ check the old size ... queue the new note: under the lock
//!                               ▼
//!                  Committer (the temp file fdatasynced under the lock; renames and one
//!                  fsync of the directory per batch) ──► Ticket::wait, unlocked ──► answer
//! ```
//!
//! A request holds its origin's lock from the check of the old size to the queueing of the
//! new state, so two requests of one origin cannot roll it back (the race the spec
//! describes): the next request sees the new state at once, and its own write queues after
//! this one. Every answer that depends on an origin's state waits for the origin's last
//! queued write ([`OriginState::pending`]) to be durable, so no answer shows a state a crash
//! could lose.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use kchain_core::{Checkpoint, SignedNote};
use kchain_topic::checkpoints::witness_state::{
    file_safe, read_marker, read_state, write_file, StateFiles,
};

use crate::commit::{Committer, Ticket};
use crate::error::ServeError;

/// What the witness holds of one origin.
#[derive(Debug)]
pub struct OriginState {
    origin: String,
    files: StateFiles,
    /// The last cosigned note (the log's signatures and this witness's cosignature).
    last: Option<(SignedNote, Checkpoint)>,
    /// Why the origin is refused for ever, once a fork was proven.
    forked: Option<String>,
    committer: Arc<Committer>,
    /// The last write of `last`, durable once this ticket is.
    pending: Option<Ticket>,
}

impl OriginState {
    /// The last checkpoint cosigned, with its note.
    pub fn last(&self) -> Option<&(SignedNote, Checkpoint)> {
        self.last.as_ref()
    }

    /// The size cosigned last (0 if none), the size a client's old size must match.
    pub fn size(&self) -> u64 {
        self.last.as_ref().map_or(0, |(_, c)| c.size())
    }

    /// Why the origin is refused for ever, if it is.
    pub fn forked(&self) -> Option<&str> {
        self.forked.as_deref()
    }

    /// The origin's last queued write: an answer that shows this state waits for it
    /// (after the origin's lock is released).
    pub fn pending(&self) -> Option<Ticket> {
        self.pending.clone()
    }

    /// Keeps `note` as the last cosigned: at once for the next request, durably once the
    /// returned ticket (also [`OriginState::pending`]) is; the caller answers after that.
    pub fn store(
        &mut self,
        note: SignedNote,
        checkpoint: Checkpoint,
    ) -> Result<Ticket, ServeError> {
        let ticket = self
            .committer
            .write(&self.files.note, note.to_text().as_bytes())?;
        self.last = Some((note, checkpoint));
        self.pending = Some(ticket.clone());
        Ok(ticket)
    }

    /// Records a proven fork: writes `evidence` (JSON naming both checkpoints) and the
    /// marker that refuses the origin for ever. Returns the evidence file.
    pub fn mark_forked(
        &mut self,
        dir: &Path,
        evidence: &str,
        why: &str,
    ) -> Result<PathBuf, ServeError> {
        let path = StateFiles::evidence(dir, &self.origin, self.size());
        write_file(&path, evidence.as_bytes())?;
        write_file(&self.files.forked, format!("{why}\n").as_bytes())?;
        self.forked = Some(why.to_owned());
        Ok(path)
    }
}

/// The state directory of a witness server, with one lock per origin.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    origins: Mutex<HashMap<String, Arc<Mutex<OriginState>>>>,
    committer: Arc<Committer>,
}

impl StateStore {
    /// Opens (and creates) the state directory `dir`, and starts its committer thread
    /// (it stops once the store and every origin's state are dropped).
    pub fn open(dir: &Path) -> Result<StateStore, ServeError> {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(StateStore {
            dir: dir.to_owned(),
            origins: Mutex::new(HashMap::new()),
            committer: Arc::new(Committer::start(dir)?),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state of `origin`, locked (read from its files the first time).
    pub fn lock(&self, origin: &str) -> Result<OriginGuard, ServeError> {
        let slot = {
            let mut origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
            match origins.get(origin) {
                Some(slot) => slot.clone(),
                None => {
                    let slot = Arc::new(Mutex::new(self.load(origin)?));
                    origins.insert(origin.to_owned(), slot.clone());
                    slot
                }
            }
        };
        Ok(OriginGuard { slot })
    }

    /// The last note cosigned for `origin`, without keeping anything of the origin in
    /// memory when it was never locked (a GET of any well-formed origin costs no memory).
    pub fn newest(&self, origin: &str) -> Result<Option<SignedNote>, ServeError> {
        let slot = {
            let origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
            origins.get(origin).cloned()
        };
        if let Some(slot) = slot {
            let (note, pending) = {
                let state = slot.lock().unwrap_or_else(|p| p.into_inner());
                (state.last.as_ref().map(|(n, _)| n.clone()), state.pending())
            };
            if let Some(ticket) = pending {
                ticket.wait()?;
            }
            return Ok(note);
        }
        let files = StateFiles::new(&self.dir, origin);
        Ok(read_state(&files.note)?
            .filter(|(_, c)| c.origin() == origin)
            .map(|(n, _)| n))
    }

    fn load(&self, origin: &str) -> Result<OriginState, ServeError> {
        let files = StateFiles::new(&self.dir, origin);
        let last = read_state(&files.note)?.filter(|(_, c)| c.origin() == origin);
        let forked = read_marker(&files.forked)?;
        Ok(OriginState {
            origin: origin.to_owned(),
            files,
            last,
            forked,
            committer: self.committer.clone(),
            pending: None,
        })
    }

    /// Every origin with a cosigned checkpoint and its size, sorted by origin (from the
    /// files, so it includes origins not touched since the server started).
    pub fn sizes(&self) -> Result<Vec<(String, u64)>, ServeError> {
        let mut sizes: Vec<(String, u64)> = kchain_topic::checkpoints::witness_export(&self.dir)?
            .iter()
            .filter_map(|n| Checkpoint::parse(n.text()).ok())
            .map(|c| (c.origin().to_owned(), c.size()))
            .collect();
        sizes.sort();
        Ok(sizes)
    }

    /// Where a request whose proof did not verify is kept (the spec allows logging it: it
    /// may show a log misbehaving). One file per origin and offered size.
    pub fn rejected_path(&self, origin: &str, size: u64) -> PathBuf {
        self.dir
            .join(format!("rejected-{}-{size}.json", file_safe(origin)))
    }
}

/// A handle on one origin's state; [`OriginGuard::get`] takes its lock.
pub struct OriginGuard {
    slot: Arc<Mutex<OriginState>>,
}

impl OriginGuard {
    /// Locks the origin: held from the check of the old size to the write of the new state.
    pub fn get(&self) -> MutexGuard<'_, OriginState> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}
