//! Key files and trust files on disk.

use std::fs;
use std::io::Write;
use std::path::Path;

use kchain_core::{Trust, WriterKey};

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
