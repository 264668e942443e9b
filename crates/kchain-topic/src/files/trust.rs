//! Trust files: what a verifier trusts without asking the log (writers and their topics,
//! pins, and the checkpoint half: witnesses and the policy). These functions are thin
//! wrappers over `kchain_core`'s TOML parser and printer, so that the file's one type lives
//! in the core.

use std::fs;
use std::path::Path;

use kchain_core::Trust;

use crate::error::TopicError;

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
