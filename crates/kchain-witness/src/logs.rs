//! Which logs a witness server witnesses, and with which keys: an origin is known when it is
//! configured (any C2SP log: its origin and Ed25519 note verifier key) or when it names a
//! partition of a kchain chained topic whose writers a trust file lists.
//!
//! ```text
//!  origin ──► configured origins (--log ORIGIN=VKEY, --logs FILE, ledgers' sealers) ──► keys
//!        └──► <namespace>/<topic>/<partition> ──► the trust file's writers of <topic> ──► keys
//!        └──► neither: unknown (404)
//! ```

use std::collections::BTreeMap;

use kchain_core::checkpoint::split_origin;
use kchain_core::{NoteVerifier, Trust};

use crate::error::ServeError;

/// The logs a witness accepts checkpoints of, each with the keys that may sign them.
#[derive(Clone, Debug, Default)]
pub struct KnownLogs {
    origins: BTreeMap<String, Vec<NoteVerifier>>,
    chains: Option<(String, Trust)>,
}

impl KnownLogs {
    /// No log at all (every origin unknown).
    pub fn new() -> KnownLogs {
        KnownLogs::default()
    }

    /// Accepts checkpoints of `origin` signed by `key` (one more key if it has some).
    pub fn add(&mut self, origin: &str, key: NoteVerifier) {
        let keys = self.origins.entry(origin.to_owned()).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    /// Accepts the checkpoints of kchain chained topics: origins
    /// `<namespace>/<topic>/<partition>`, signed by a writer `trust` allows for `<topic>`.
    pub fn with_chains(mut self, namespace: &str, trust: Trust) -> KnownLogs {
        self.chains = Some((namespace.to_owned(), trust));
        self
    }

    /// The keys that may sign checkpoints of `origin`; `None` when the origin is unknown.
    pub fn keys(&self, origin: &str) -> Option<Vec<NoteVerifier>> {
        if let Some(keys) = self.origins.get(origin) {
            return Some(keys.clone());
        }
        let (namespace, trust) = self.chains.as_ref()?;
        let (topic, _) = split_origin(namespace, origin)?;
        let keys: Vec<NoteVerifier> = trust
            .writers
            .iter()
            .filter(|w| w.topics.is_empty() || w.topics.iter().any(|t| t == topic))
            .filter_map(|w| w.key.note_verifier(&w.name).ok())
            .collect();
        (!keys.is_empty()).then_some(keys)
    }

    /// Whether no origin can be known (no configured log, no trust file writer).
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
            && self
                .chains
                .as_ref()
                .is_none_or(|(_, t)| t.writers.is_empty())
    }

    /// Reads `ORIGIN=VKEY` (a `--log` argument) into the log it names.
    pub fn parse_arg(arg: &str) -> Result<(String, NoteVerifier), ServeError> {
        let bad = |why: &str| ServeError::BadLog {
            what: format!("{arg:?}"),
            why: why.to_owned(),
        };
        let (origin, vkey) = arg.split_once('=').ok_or_else(|| bad("not ORIGIN=VKEY"))?;
        parse_log(origin, vkey).map_err(|why| bad(&why))
    }

    /// Reads a logs file: one `ORIGIN VKEY` per line (the origin may not hold spaces; the
    /// key is the line's last word); empty lines and lines starting with `#` are skipped.
    pub fn parse_file(text: &str) -> Result<Vec<(String, NoteVerifier)>, ServeError> {
        let mut logs = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: String| ServeError::BadLog {
                what: format!("file line {}", n + 1),
                why,
            };
            let (origin, vkey) = line
                .rsplit_once(char::is_whitespace)
                .ok_or_else(|| bad("not an origin and a verifier key".into()))?;
            logs.push(parse_log(origin.trim(), vkey).map_err(bad)?);
        }
        Ok(logs)
    }
}

fn parse_log(origin: &str, vkey: &str) -> Result<(String, NoteVerifier), String> {
    if origin.is_empty() || origin.contains('\n') {
        return Err("an empty origin".into());
    }
    let key = NoteVerifier::parse(vkey.trim()).map_err(|e| format!("verifier key: {e}"))?;
    Ok((origin.to_owned(), key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kchain_core::NoteSigner;

    #[test]
    fn configured_origins_and_files() {
        let key = NoteSigner::from_seed("log.example", [3; 32])
            .unwrap()
            .verifier();
        let (origin, k) =
            KnownLogs::parse_arg(&format!("log.example/a={}", key.to_vkey())).unwrap();
        assert_eq!((origin.as_str(), &k), ("log.example/a", &key));
        let file = format!("# logs\n\nlog.example/b {}\n", key.to_vkey());
        let logs = KnownLogs::parse_file(&file).unwrap();
        let mut known = KnownLogs::new();
        for (o, k) in logs {
            known.add(&o, k);
        }
        assert_eq!(known.keys("log.example/b"), Some(vec![key]));
        assert_eq!(known.keys("log.example/a"), None);
        assert!(KnownLogs::parse_arg("no-key").is_err());
        assert!(KnownLogs::parse_file("origin-only\n").is_err());
    }
}
