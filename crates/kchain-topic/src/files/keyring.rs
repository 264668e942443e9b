//! Keyring files on disk: TOML, mode 0600, refused when group or others can read them, and
//! replaced atomically so that a crash leaves the old keyring or the new one, never half.
//!
//! ```text
//!  lock .keyring.toml.lock ──► read keyring.toml ──► change ──► .keyring.toml.tmp (create_new,
//!  0600) ──write, fsync──► rename over keyring.toml ──► fsync dir ──► unlock
//! ```
//!
//! Changes hold an exclusive lock for the whole read-change-write, so that two commands run at
//! once cannot lose a change; above all, a `key new` that read the keyring before a `key shred`
//! must not write the shredded key back.

use std::fs;
use std::io::Write;
use std::path::Path;

use kchain_core::Keyring;
use zeroize::Zeroize;

use super::disk::private_options;
use super::keys::read_secret_file;
use crate::error::TopicError;

/// Reads a keyring file. Refuses one that group or others can read, as ssh does with keys.
pub fn read_keyring_file(path: &Path) -> Result<Keyring, TopicError> {
    let mut text = read_secret_file(path, "keyring", |mode| TopicError::KeyringPermissions {
        path: path.to_owned(),
        mode,
    })?;
    let parsed = Keyring::from_toml(&text);
    text.zeroize();
    parsed.map_err(|source| TopicError::Keyring {
        path: path.to_owned(),
        source,
    })
}

/// Reads the keyring at `path` (an empty one if there is none and `create` is set), lets
/// `change` change it, and writes it back atomically, all under an exclusive lock on a
/// `.<name>.lock` file beside it. Nothing is written when `change` fails.
pub fn update_keyring_file<T>(
    path: &Path,
    create: bool,
    change: impl FnOnce(&mut Keyring) -> Result<T, TopicError>,
) -> Result<T, TopicError> {
    let (dir, name) = dir_and_name(path)?;
    if create {
        fs::create_dir_all(&dir)
            .map_err(|e| TopicError::io(format!("creating {}", dir.display()), e))?;
    }
    let lock_path = dir.join(format!(".{name}.lock"));
    let lock = private_options()
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .and_then(|f| f.lock().map(|_| f))
        .map_err(|e| TopicError::io(format!("locking keyring {}", path.display()), e))?;
    let mut keyring = if !path.exists() && create {
        Keyring::default()
    } else {
        read_keyring_file(path)?
    };
    let out = change(&mut keyring)?;
    write_keyring_file(path, &keyring)?;
    drop(lock);
    Ok(out)
}

fn dir_and_name(path: &Path) -> Result<(std::path::PathBuf, String), TopicError> {
    let name = path
        .file_name()
        .ok_or_else(|| TopicError::Invalid(format!("keyring {}: not a file", path.display())))?;
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_owned(),
        None => std::path::PathBuf::from("."),
    };
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// Writes a keyring file with mode 0600, replacing any old one atomically: a temporary file
/// in the same directory, synced, renamed over the old one, then the directory synced. The
/// old file's blocks are not overwritten (the file system decides what becomes of them):
/// shredding a key also means destroying every copy and backup of the keyring.
pub fn write_keyring_file(path: &Path, keyring: &Keyring) -> Result<(), TopicError> {
    let (dir, name) = dir_and_name(path)?;
    fs::create_dir_all(&dir)
        .map_err(|e| TopicError::io(format!("creating {}", dir.display()), e))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |what: &str, e: std::io::Error| {
        TopicError::io(format!("{what} keyring {}", path.display()), e)
    };
    // A temporary file left by a crash holds an old keyring: replace it.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("replacing the temporary file of", e)),
    }
    let mut f = private_options()
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io("creating", e))?;
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
