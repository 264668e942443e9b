//! How kchain writes and reads its own files: private (mode 0600), atomic (a temporary
//! file renamed over the old one, then the directory synced) and capped (a hostile file must
//! not make the reader allocate without bound).

use std::fs;
use std::io::Write;
use std::path::Path;

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
