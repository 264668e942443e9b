//! Checkpoints remembered outside the log ([`CheckpointStore`]) and files of checkpoint
//! notes handed over outside it.

use std::path::{Path, PathBuf};

use kchain_core::SignedNote;

use super::disk::{read_capped, write_atomic};
use crate::error::TopicError;

/// The most bytes read from a file that holds checkpoint notes (a remembered checkpoint, a
/// checkpoint handed over by a witness): a note has at most 100 signature lines, a bundle a
/// few thousand notes. Larger files are refused before they are read.
pub const MAX_CHECKPOINT_FILE_BYTES: u64 = 16 << 20;

/// Checkpoints remembered outside the log: per chain, the newest checkpoint that a verifier
/// saw meet its policy, or that a writer or sealer signed. One file per chain, named by the
/// chain's origin and the identity of the log it lives in (the embedded data directory's
/// absolute path, or the Kafka bootstrap list), so that two logs with the same topic names
/// never share a memory:
///
/// ```text
/// <dir>/<origin, '/' as '_'>-<first 16 hex digits of SHA-256(backend "\n" origin)>.json
/// ```
///
/// holding a `kchain-remembered-checkpoint/v1` file (`kchain_core::remembered_to_json`),
/// replaced atomically ([`write_atomic`]). The directory is an anchor: it must live where
/// whoever can change the log cannot change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    pub fn new(dir: impl Into<PathBuf>) -> CheckpointStore {
        CheckpointStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds the checkpoint of `origin` in the log `backend`.
    pub fn path(&self, backend: &str, origin: &str) -> PathBuf {
        let digest = kchain_core::sha256(format!("{backend}\n{origin}").as_bytes());
        let readable: String = origin
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
                _ => '_',
            })
            .take(100)
            .collect();
        self.dir
            .join(format!("{readable}-{}.json", &hex::encode(digest)[..16]))
    }

    /// The remembered checkpoint of `origin` in `backend`, if any. A file that cannot be read
    /// back is an error, never "nothing remembered".
    pub fn load(&self, backend: &str, origin: &str) -> Result<Option<SignedNote>, TopicError> {
        let path = self.path(backend, origin);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_capped(&path, "remembered checkpoint", MAX_CHECKPOINT_FILE_BYTES)?;
        kchain_core::remembered_from_json(&bytes, backend, origin)
            .map(Some)
            .map_err(|e| {
                TopicError::Invalid(format!(
                    "remembered checkpoint {}: {e}; restore it from a backup or from a \
                     witness (`kchain witness export`)",
                    path.display()
                ))
            })
    }

    /// Remembers `note` as the checkpoint of `origin` in `backend`, replacing the file
    /// atomically; returns its path.
    pub fn save(
        &self,
        backend: &str,
        origin: &str,
        note: &SignedNote,
    ) -> Result<PathBuf, TopicError> {
        let path = self.path(backend, origin);
        let text = kchain_core::remembered_to_json(backend, origin, note);
        write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }
}

/// Reads a file of checkpoint notes: one signed note (as `kchain checkpoint export` writes)
/// or a bundle (as `kchain witness export` writes). Capped at [`MAX_CHECKPOINT_FILE_BYTES`].
pub fn read_checkpoint_file(path: &Path) -> Result<Vec<SignedNote>, TopicError> {
    let bytes = read_capped(path, "checkpoint file", MAX_CHECKPOINT_FILE_BYTES)?;
    kchain_core::notes_from_file(&bytes)
        .map_err(|e| TopicError::Invalid(format!("checkpoint file {}: {e}", path.display())))
}
