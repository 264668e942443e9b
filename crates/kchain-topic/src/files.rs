//! Key files and trust files on disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use kchain_core::{SignedNote, Trust, WriterKey};

use crate::error::TopicError;

/// Options that create files only their owner can read or write (mode 0600).
pub(crate) fn private_options() -> fs::OpenOptions {
    let mut opts = fs::OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Creates a new file holding a secret (`what`: "key file", ...) with mode 0600, and syncs it.
/// Refuses to overwrite an existing file.
pub fn write_secret_file(path: &Path, what: &str, text: &str) -> Result<(), TopicError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(|e| TopicError::io(format!("creating {}", dir.display()), e))?;
    }
    let mut f = private_options()
        .create_new(true)
        .open(path)
        .map_err(|e| TopicError::io(format!("creating {what} {}", path.display()), e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| TopicError::io(format!("writing {what} {}", path.display()), e))
}

/// Reads a file holding a secret (`what`: "key file", ...). Refuses one that group or others
/// can read, as ssh does, with the error `refused` makes of its mode.
pub fn read_secret_file(
    path: &Path,
    what: &str,
    refused: impl FnOnce(u32) -> TopicError,
) -> Result<String, TopicError> {
    let meta = fs::metadata(path)
        .map_err(|e| TopicError::io(format!("reading {what} {}", path.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(refused(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    fs::read_to_string(path)
        .map_err(|e| TopicError::io(format!("reading {what} {}", path.display()), e))
}

/// Writes a new key file with mode 0600. Refuses to overwrite an existing file.
pub fn write_key_file(path: &Path, key: &WriterKey) -> Result<(), TopicError> {
    write_secret_file(path, "key file", &key.to_key_file())
}

/// Reads a key file. Refuses one that group or others can read, as ssh does.
pub fn read_key_file(path: &Path) -> Result<WriterKey, TopicError> {
    let text = read_secret_file(path, "key file", |mode| TopicError::KeyPermissions {
        path: path.to_owned(),
        mode,
    })?;
    WriterKey::from_key_file(&text).map_err(|source| TopicError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Reads a trust file.
pub fn read_trust_file(path: &Path) -> Result<Trust, TopicError> {
    let text = fs::read_to_string(path)
        .map_err(|e| TopicError::io(format!("reading trust file {}", path.display()), e))?;
    Trust::from_toml(&text).map_err(|source| TopicError::Trust {
        path: path.to_owned(),
        source,
    })
}

/// Writes a trust file atomically (a temporary file renamed over the old one).
pub fn write_trust_file(path: &Path, trust: &Trust) -> Result<(), TopicError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(|e| TopicError::io(format!("creating {}", dir.display()), e))?;
    }
    // The checkpoint half of an existing file ([[witness]], [policy]) is kept as it is.
    let text = match fs::read_to_string(path) {
        Ok(previous) => trust
            .to_toml_keeping(&previous)
            .map_err(|source| TopicError::Trust {
                path: path.to_owned(),
                source,
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => trust.to_toml(),
        Err(e) => {
            return Err(TopicError::io(
                format!("reading trust file {}", path.display()),
                e,
            ))
        }
    };
    let tmp = path.with_extension("toml.tmp");
    fs::write(&tmp, text)
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| TopicError::io(format!("writing trust file {}", path.display()), e))
}

/// The most bytes read from a file that holds checkpoint notes (a remembered checkpoint, a
/// checkpoint handed over by a witness): a note has at most 100 signature lines, a bundle a
/// few thousand notes. Larger files are refused before they are read.
pub const MAX_CHECKPOINT_FILE_BYTES: u64 = 16 << 20;

/// Reads a file of at most `max` bytes, refusing a larger one before reading it (a hostile
/// file must not make the reader allocate without bound).
pub fn read_capped(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, TopicError> {
    use std::io::Read;
    let f = fs::File::open(path)
        .map_err(|e| TopicError::io(format!("reading {what} {}", path.display()), e))?;
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| TopicError::io(format!("reading {what} {}", path.display()), e))?;
    if bytes.len() as u64 > max {
        return Err(TopicError::Invalid(format!(
            "{what} {} is larger than {max} bytes; refusing to read it",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Replaces `path` with `bytes` atomically and durably: a temporary file beside it, fsynced,
/// renamed over it, and the directory fsynced, so that a crash leaves the old or the new
/// contents, never a mix and never nothing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TopicError> {
    let io = |e| TopicError::io(format!("writing {}", path.display()), e);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(name);
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)?;
    #[cfg(unix)]
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

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
