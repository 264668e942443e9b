//! Secret files and writer key files: mode 0600 when written, refused when group or others
//! can read them (as ssh does with keys).

use std::fs;
use std::io::Write;
use std::path::Path;

use kchain_core::WriterKey;

use super::disk::private_options;
use crate::error::TopicError;

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
