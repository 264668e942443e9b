//! Keyring files on disk: TOML, mode 0600, refused when group or others can read them, and
//! replaced atomically so that a crash leaves the old keyring or the new one, never half.
//!
//! ```text
//!  keyring.toml.tmp (create_new, 0600) ──write, fsync──► rename over keyring.toml ──► fsync dir
//! ```

use std::fs;
use std::io::Write;
use std::path::Path;

use kchain_core::Keyring;
use zeroize::Zeroize;

use crate::error::TopicError;

/// Reads a keyring file. Refuses one that group or others can read, as ssh does with keys.
pub fn read_keyring_file(path: &Path) -> Result<Keyring, TopicError> {
    let meta = fs::metadata(path)
        .map_err(|e| TopicError::io(format!("reading keyring {}", path.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TopicError::KeyPermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let mut text = fs::read_to_string(path)
        .map_err(|e| TopicError::io(format!("reading keyring {}", path.display()), e))?;
    let parsed = Keyring::from_toml(&text);
    text.zeroize();
    parsed.map_err(|source| TopicError::Keyring {
        path: path.to_owned(),
        source,
    })
}

/// Writes a keyring file with mode 0600, replacing any old one atomically: a temporary file
/// in the same directory, synced, renamed over the old one, then the directory synced. The
/// old file's blocks are not overwritten (the file system decides what becomes of them):
/// shredding a key also means destroying every copy and backup of the keyring.
pub fn write_keyring_file(path: &Path, keyring: &Keyring) -> Result<(), TopicError> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => {
            fs::create_dir_all(d)
                .map_err(|e| TopicError::io(format!("creating {}", d.display()), e))?;
            d.to_owned()
        }
        None => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| TopicError::Invalid(format!("keyring {}: not a file", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let io = |what: &str, e: std::io::Error| {
        TopicError::io(format!("{what} keyring {}", path.display()), e)
    };
    // A temporary file left by a crash holds an old keyring: replace it.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("replacing the temporary file of", e)),
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| io("creating", e))?;
    let text = keyring.to_toml();
    let written = f
        .write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .and_then(|_| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing", e));
    }
    #[cfg(unix)]
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the directory of", e))?;
    Ok(())
}
