//! The layout of kchain's directories, known here alone.
//!
//! ```text
//!  <config dir>/            anchors: what vouches for the log, kept apart from it
//!      writer.key           the writer key (mode 0600)
//!      writer.key.checkpoints/   the newest checkpoint that key signed, per chain
//!      trust.toml           the trust file
//!      kchain-state/        the newest checkpoint this verifier trusted, per chain
//!      keyring.toml         data keys for encrypted values (mode 0600)
//!  <data dir>/              what an attacker with the log's disk may change
//!      topics/              the embedded log (kchain_log::EmbeddedLog)
//!      ledger/<blocks topic>/   a ledger node's state (snapshots)
//!      wallets/<name>.key   wallet keys made by `kchain wallet new`
//! ```
//!
//! The config dir defaults to `$XDG_CONFIG_HOME/kchain`, else `~/.config/kchain`. A data
//! directory made by an earlier kchain may still hold `writer.key`, `trust.toml` or
//! `keyring.toml`: those are found there until they are moved ([`AnchorFile::move_to`]).

use std::path::{Path, PathBuf};

use kchain_log::{EmbeddedLog, EmbeddedOptions, LogError};

use super::store::CheckpointStore;

/// A data directory and the configuration directory of the anchors that protect it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    data: PathBuf,
    config: PathBuf,
}

/// Where an anchor file was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorFile {
    /// The file to use.
    pub path: PathBuf,
    /// Where it belongs, when it was found inside the data directory instead (an older
    /// layout): the caller should tell its user to move it.
    pub move_to: Option<PathBuf>,
}

impl DataDir {
    /// The layout of data directory `data` with anchors in `config`.
    pub fn new(data: impl Into<PathBuf>, config: impl Into<PathBuf>) -> DataDir {
        DataDir {
            data: data.into(),
            config: config.into(),
        }
    }

    /// The user's configuration directory for kchain: `$XDG_CONFIG_HOME/kchain`, else
    /// `$HOME/.config/kchain`, else `.kchain`.
    pub fn user_config_dir() -> PathBuf {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(xdg) = var("XDG_CONFIG_HOME") {
            return PathBuf::from(xdg).join("kchain");
        }
        match var("HOME") {
            Some(home) => PathBuf::from(home).join(".config").join("kchain"),
            None => PathBuf::from(".kchain"),
        }
    }

    /// The data directory: the root of the embedded log ([`kchain_log::EmbeddedLog::open`]).
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The embedded log of this data directory (its `topics/` sit at the root), created
    /// when `create` is set and it does not exist yet.
    pub fn embedded_log(
        &self,
        create: bool,
        options: EmbeddedOptions,
    ) -> Result<EmbeddedLog, LogError> {
        match create {
            true => EmbeddedLog::create(&self.data, options),
            false => EmbeddedLog::open(&self.data, options),
        }
    }

    /// The configuration directory of the anchors.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The default writer key file: `<config>/writer.key`.
    pub fn key_file(&self) -> AnchorFile {
        self.anchor("writer.key")
    }

    /// The default trust file: `<config>/trust.toml`.
    pub fn trust_file(&self) -> AnchorFile {
        self.anchor("trust.toml")
    }

    /// The default keyring file: `<config>/keyring.toml`.
    pub fn keyring_file(&self) -> AnchorFile {
        self.anchor("keyring.toml")
    }

    /// `name` in the configuration directory, or in the data directory when only an older
    /// layout put it there.
    fn anchor(&self, name: &str) -> AnchorFile {
        let new = self.config.join(name);
        let old = self.data.join(name);
        if !new.exists() && old.exists() {
            return AnchorFile {
                path: old,
                move_to: Some(new),
            };
        }
        AnchorFile {
            path: new,
            move_to: None,
        }
    }

    /// The directory of a ledger node's state for the chain on `blocks_topic`:
    /// `<data>/ledger/<blocks topic>`.
    pub fn ledger_state(&self, blocks_topic: &str) -> PathBuf {
        self.data.join("ledger").join(blocks_topic)
    }

    /// The directory of wallet keys: `<data>/wallets`.
    pub fn wallets(&self) -> PathBuf {
        self.data.join("wallets")
    }

    /// The default file of wallet `name`'s key: `<data>/wallets/<name>.key`.
    pub fn wallet_key(&self, name: &str) -> PathBuf {
        self.wallets().join(format!("{name}.key"))
    }

    /// A writer's or sealer's memory of the checkpoints it signed: `<key file>.checkpoints/`,
    /// beside its key, wherever the key file is.
    pub fn signer_store(key_file: &Path) -> CheckpointStore {
        let mut dir = key_file.as_os_str().to_owned();
        dir.push(".checkpoints");
        CheckpointStore::new(PathBuf::from(dir))
    }

    /// A verifier's memory of the checkpoints it trusted: `kchain-state/` beside its trust
    /// file (an anchor lives where the trust file lives, not in the log).
    pub fn verifier_store(trust_file: &Path) -> CheckpointStore {
        let dir = trust_file.parent().filter(|d| !d.as_os_str().is_empty());
        CheckpointStore::new(dir.unwrap_or(Path::new(".")).join("kchain-state"))
    }

    /// The identity of the embedded log in this data directory, which pins and remembered
    /// checkpoints name: `embedded:<canonical path>` (where the directory really is, however
    /// it was named on the command line).
    pub fn log_identity(&self) -> String {
        let dir = std::fs::canonicalize(&self.data)
            .or_else(|_| std::path::absolute(&self.data))
            .unwrap_or_else(|_| self.data.clone());
        format!("embedded:{}", dir.display())
    }

    /// The identity of a Kafka cluster by its bootstrap list: `kafka:<hosts, sorted>`, so
    /// that the order of the list does not change it. The fallback for a cluster that does
    /// not report its id ([`kchain_log::Log::identity`] is `None`).
    pub fn kafka_identity(brokers: &str) -> String {
        let mut hosts: Vec<&str> = brokers
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        hosts.sort_unstable();
        format!("kafka:{}", hosts.join(","))
    }

    /// True when `path` (which must exist) lies inside the data directory, which an
    /// attacker with disk access to the log controls too.
    pub fn contains(&self, path: &Path) -> bool {
        let (Ok(data), Ok(path)) = (self.data.canonicalize(), path.canonicalize()) else {
            return false;
        };
        path.starts_with(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("data"), tmp.path().join("config"));
        std::fs::create_dir_all(dir.data()).unwrap();
        (tmp, dir)
    }

    #[test]
    fn anchors_live_in_the_config_dir_and_state_in_the_data_dir() {
        let (tmp, dir) = layout();
        let (data, config) = (tmp.path().join("data"), tmp.path().join("config"));
        assert_eq!(dir.key_file().path, config.join("writer.key"));
        assert_eq!(dir.trust_file().path, config.join("trust.toml"));
        assert_eq!(dir.keyring_file().path, config.join("keyring.toml"));
        assert_eq!(dir.key_file().move_to, None);
        assert_eq!(
            dir.ledger_state("demo.blocks"),
            data.join("ledger/demo.blocks")
        );
        assert_eq!(dir.wallet_key("alice"), data.join("wallets/alice.key"));
        let key = config.join("writer.key");
        assert_eq!(
            DataDir::signer_store(&key).dir(),
            config.join("writer.key.checkpoints")
        );
        let trust = config.join("trust.toml");
        assert_eq!(
            DataDir::verifier_store(&trust).dir(),
            config.join("kchain-state")
        );
        assert_eq!(
            DataDir::verifier_store(Path::new("trust.toml")).dir(),
            Path::new("./kchain-state")
        );
    }

    #[test]
    fn an_anchor_left_in_the_data_dir_is_found_there_until_moved() {
        let (_tmp, dir) = layout();
        let old = dir.data().join("trust.toml");
        std::fs::write(&old, "").unwrap();
        let found = dir.trust_file();
        assert_eq!(found.path, old);
        assert_eq!(found.move_to, Some(dir.config().join("trust.toml")));
        std::fs::create_dir_all(dir.config()).unwrap();
        std::fs::write(dir.config().join("trust.toml"), "").unwrap();
        assert_eq!(dir.trust_file().move_to, None);
    }

    #[test]
    fn the_embedded_log_lives_at_the_root_of_the_data_dir() {
        let (_tmp, dir) = layout();
        assert!(dir.embedded_log(false, EmbeddedOptions::default()).is_err());
        let log = dir.embedded_log(true, EmbeddedOptions::default()).unwrap();
        assert_eq!(log.path(), dir.data());
        drop(log);
        dir.embedded_log(false, EmbeddedOptions::default()).unwrap();
    }

    #[test]
    fn contains_and_identities() {
        let (_tmp, dir) = layout();
        let inside = dir.data().join("trust.toml");
        std::fs::write(&inside, "").unwrap();
        assert!(dir.contains(&inside));
        assert!(!dir.contains(dir.config()));
        let abs = dir.data().canonicalize().unwrap();
        assert_eq!(dir.log_identity(), format!("embedded:{}", abs.display()));
        assert_eq!(
            DataDir::kafka_identity(" b:9092, a:9092,"),
            "kafka:a:9092,b:9092"
        );
    }
}
