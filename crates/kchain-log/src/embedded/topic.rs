//! Topics of the embedded log: name rules, `topic.json`, and atomic creation.
//!
//! A topic is created complete or not at all: its directory (with `topic.json` and one
//! directory per partition) is built under a staging name that no topic can have, then
//! renamed into place. `rename(2)` onto an existing, non-empty directory fails, so of two
//! concurrent `create_topic` calls (in any processes) exactly one wins and the other gets
//! [`LogError::TopicExists`].

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::partition::{corruption, sync_dir};
use crate::api::TopicConfig;
use crate::error::LogError;

/// The metadata file inside a topic directory.
pub(crate) const TOPIC_FILE: &str = "topic.json";

/// The only `topic.json` format this code reads and writes.
const FORMAT: u32 = 1;

/// The contents of `topic.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopicMeta {
    pub format: u32,
    pub partitions: u32,
    /// `None` keeps records forever.
    pub retention_ms: Option<i64>,
}

/// Checks a topic name against Kafka's rules: 1 to 249 characters of `[A-Za-z0-9._-]`, and
/// not `.` or `..`. (These rules also make every name a safe single path component.)
pub(crate) fn validate_name(name: &str) -> Result<(), LogError> {
    let invalid = |reason: &str| {
        Err(LogError::InvalidTopicName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > 249 {
        return invalid("it is longer than 249 characters");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return invalid(&format!(
            "character {c:?} is not allowed (only ASCII letters, digits, '.', '_' and '-')"
        ));
    }
    Ok(())
}

/// Creates topic `name` under `topics_dir` (see the module docs). `durable` syncs the new
/// files and directories before returning.
pub(crate) fn create(
    topics_dir: &Path,
    name: &str,
    config: &TopicConfig,
    durable: bool,
) -> Result<(), LogError> {
    validate_name(name)?;
    if config.partitions == 0 {
        return Err(LogError::InvalidArgument(format!(
            "topic '{name}' needs at least one partition"
        )));
    }
    let retention_ms = match config.retention_ms {
        None | Some(-1) => None,
        Some(ms) if ms > 0 => Some(ms),
        Some(ms) => {
            return Err(LogError::InvalidArgument(format!(
                "retention of {ms} ms for topic '{name}': use a positive number, \
                 or none to keep records forever"
            )))
        }
    };
    let target = topics_dir.join(name);
    if target.join(TOPIC_FILE).exists() {
        return Err(LogError::TopicExists(name.to_string()));
    }
    let io = |what: &str, e| LogError::io(format!("creating topic '{name}': {what}"), e);
    fs::create_dir_all(topics_dir).map_err(|e| io(&topics_dir.display().to_string(), e))?;

    // '~' cannot occur in a topic name, so the staging directory never looks like a topic.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let staging = topics_dir.join(format!(
        "~staging.{}.{}.{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let built = build(&staging, config.partitions, retention_ms, durable);
    let result = built.and_then(|()| {
        fs::rename(&staging, &target).map_err(|e| {
            if target.join(TOPIC_FILE).exists() {
                LogError::TopicExists(name.to_string())
            } else {
                io(&format!("renaming {} into place", staging.display()), e)
            }
        })
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result?;
    if durable {
        sync_dir(topics_dir)?;
    }
    Ok(())
}

/// Builds a complete topic directory at `dir`.
fn build(
    dir: &Path,
    partitions: u32,
    retention_ms: Option<i64>,
    durable: bool,
) -> Result<(), LogError> {
    let io = |path: &Path, e| LogError::io(format!("creating {}", path.display()), e);
    fs::create_dir(dir).map_err(|e| io(dir, e))?;
    let meta = TopicMeta {
        format: FORMAT,
        partitions,
        retention_ms,
    };
    let json = serde_json::to_vec_pretty(&meta).expect("topic metadata serializes");
    let path = dir.join(TOPIC_FILE);
    let mut file = File::create_new(&path).map_err(|e| io(&path, e))?;
    file.write_all(&json).map_err(|e| io(&path, e))?;
    if durable {
        file.sync_all().map_err(|e| io(&path, e))?;
    }
    for p in 0..partitions {
        let part = dir.join(p.to_string());
        fs::create_dir(&part).map_err(|e| io(&part, e))?;
    }
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads the metadata of topic `name`; [`LogError::NoSuchTopic`] when it does not exist.
pub(crate) fn load(topics_dir: &Path, name: &str) -> Result<TopicMeta, LogError> {
    validate_name(name)?;
    let path = topics_dir.join(name).join(TOPIC_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(LogError::NoSuchTopic(name.to_string()))
        }
        Err(e) => return Err(LogError::io(format!("reading {}", path.display()), e)),
    };
    let meta: TopicMeta =
        serde_json::from_slice(&bytes).map_err(|e| corruption(&path, 0, e.to_string()))?;
    if meta.format != FORMAT {
        return Err(corruption(
            &path,
            0,
            format!(
                "unsupported topic format {} (this build reads {FORMAT})",
                meta.format
            ),
        ));
    }
    if meta.partitions == 0 {
        return Err(corruption(&path, 0, "a topic with zero partitions"));
    }
    Ok(meta)
}

/// Names of the topics under `topics_dir`, sorted.
pub(crate) fn list(topics_dir: &Path) -> Result<Vec<String>, LogError> {
    let io = |e| LogError::io(format!("listing topics in {}", topics_dir.display()), e);
    let entries = match fs::read_dir(topics_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if validate_name(&name).is_ok() && entry.path().join(TOPIC_FILE).is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_name_rules() {
        for ok in ["a", "orders", "A.b_c-9", ".hidden", "..x", &"x".repeat(249)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "~x", &"x".repeat(250)] {
            assert!(
                matches!(validate_name(bad), Err(LogError::InvalidTopicName { .. })),
                "{bad}"
            );
        }
    }
}
