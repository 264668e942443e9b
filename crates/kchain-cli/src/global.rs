//! The options every command shares (where the log is, where the anchors are) and what they
//! open: the log, the trust file, and the places where keys and remembered checkpoints live.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use kchain_core::Trust;
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log};
use kchain_topic::CheckpointStore;

/// The options every command takes, shown apart from each command's own under the
/// heading "Global options".
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Data directory of the embedded log.
    #[arg(
        long,
        global = true,
        env = "KCHAIN_DATA_DIR",
        default_value = "./kchain-data"
    )]
    pub data_dir: PathBuf,
    /// Directory of your keys and trust file, kept apart from the data they protect
    /// [default: $XDG_CONFIG_HOME/kchain, else ~/.config/kchain].
    #[arg(long, global = true, env = "KCHAIN_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// The key file a command signs with: the writer key (produce, checkpoint publish) [default:
    /// <config-dir>/writer.key], a sealer's (node run --seal), a witness's (witness keygen,
    /// witness run) or a wallet's (wallet new, wallet address, tx).
    #[arg(
        long = "key-file",
        global = true,
        env = "KCHAIN_KEY_FILE",
        value_name = "FILE"
    )]
    pub key_file: Option<PathBuf>,
    /// Trust file [default: <config-dir>/trust.toml].
    #[arg(long, global = true, env = "KCHAIN_TRUST")]
    pub trust: Option<PathBuf>,
    /// Keyring of data keys for encrypted values (mode 0600) [default:
    /// <config-dir>/keyring.toml]; `verify` decrypts only when it is given.
    #[arg(long, global = true, env = "KCHAIN_KEYRING")]
    pub keyring: Option<PathBuf>,
    /// When the embedded log forces appends to disk: `batch` (before each append returns),
    /// `interval:MS`, or `never`.
    #[arg(long, global = true, default_value = "batch")]
    pub fsync: String,
    /// Kafka bootstrap brokers (host:port,...): use Kafka instead of the embedded log.
    #[arg(short = 'b', long, global = true, env = "KCHAIN_BROKERS")]
    pub brokers: Option<String>,
    /// A librdkafka property, as kcat's -X (security.protocol=SASL_SSL, sasl.mechanism=...,
    /// ssl.ca.location=...); repeatable; wins over --kafka-config.
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    pub kafka_props: Vec<String>,
    /// A file of librdkafka properties, one `key=value` per line (# comments).
    #[arg(long, global = true, env = "KCHAIN_KAFKA_CONFIG")]
    pub kafka_config: Option<PathBuf>,
    /// Seconds to wait for the log: for a Kafka broker to connect and answer metadata
    /// requests [Kafka default: 10 s to connect, 30 s per request], and for the records a
    /// read waits for before it reports "reading stalled" [default: 30]. A slow broker
    /// (tansu's sqlite engine on large topics) may need more; a script may want less.
    #[arg(long, global = true, env = "KCHAIN_TIMEOUT", value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// Print less: no notes, no progress, and only the essential line (e.g. `wallet address`
    /// prints the bare address, `node run` only its summary).
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: which log a command opened, on standard error (repeatable).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// The key file a command that has no default key signs with: `local` (the command's
    /// old flag name, still accepted), else `--key-file`; `what` names it in the error.
    pub fn key_file_for(&self, local: Option<&Path>, what: &str) -> Result<PathBuf> {
        match local.or(self.key_file.as_deref()) {
            Some(path) => Ok(path.to_owned()),
            None => anyhow::bail!("{what}: pass --key-file FILE"),
        }
    }

    /// The writer key file: `--key-file`, else `writer.key` in the configuration directory.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.anchor_file("writer.key"))
    }

    /// The trust file: `--trust`, else `trust.toml` in the configuration directory.
    pub fn trust_path(&self) -> PathBuf {
        self.trust
            .clone()
            .unwrap_or_else(|| self.anchor_file("trust.toml"))
    }

    /// The keyring file: `--keyring`, else beside the default key file.
    pub fn keyring_path(&self) -> PathBuf {
        self.keyring
            .clone()
            .unwrap_or_else(|| self.anchor_file("keyring.toml"))
    }

    /// Where keys and the trust file live by default: `--config-dir`, else the user's
    /// configuration directory. Never the data directory: whoever can change the log could
    /// then change what the verifier trusts as well.
    pub fn config_dir(&self) -> PathBuf {
        if let Some(dir) = &self.config_dir {
            return dir.clone();
        }
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(xdg) = var("XDG_CONFIG_HOME") {
            return PathBuf::from(xdg).join("kchain");
        }
        match var("HOME") {
            Some(home) => PathBuf::from(home).join(".config").join("kchain"),
            None => PathBuf::from(".kchain"),
        }
    }

    /// `name` in the configuration directory. A data directory made by an earlier kchain
    /// still holds its keys and trust file: those keep working, with a note saying where
    /// they belong, until they are moved.
    fn anchor_file(&self, name: &str) -> PathBuf {
        let new = self.config_dir().join(name);
        let old = self.data_dir.join(name);
        if !new.exists() && old.exists() {
            crate::report::note_once(&format!(
                "using {} inside the data directory it protects; move it to {} (anchors \
                 belong outside what they protect)",
                old.display(),
                new.display()
            ));
            return old;
        }
        new
    }

    /// True when `path` lies inside the embedded data directory (which an attacker with
    /// disk access to the log controls too).
    pub fn inside_data_dir(&self, path: &std::path::Path) -> bool {
        if self.brokers.is_some() {
            return false;
        }
        let (Ok(data), Ok(path)) = (self.data_dir.canonicalize(), path.canonicalize()) else {
            return false;
        };
        path.starts_with(data)
    }
}

/// Parses `--timeout SECS` (a positive number of seconds, fractions allowed).
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(std::time::Duration::from_secs_f64(secs)),
        _ => Err(format!("'{text}': expected a positive number of seconds")),
    }
}

/// Parses `--fsync`.
pub(crate) fn fsync_policy(text: &str) -> Result<FsyncPolicy> {
    match text {
        "batch" => Ok(FsyncPolicy::EveryBatch),
        "never" => Ok(FsyncPolicy::Never),
        t => t
            .strip_prefix("interval:")
            .and_then(|ms| ms.parse().ok())
            .map(FsyncPolicy::IntervalMs)
            .with_context(|| format!("--fsync '{t}': expected batch, interval:MS or never")),
    }
}

/// Opens the log the global options select: Kafka with `-b`, else the embedded log of
/// `--data-dir` (`create` makes the directory if it is missing).
pub(crate) fn open_log(g: &Global, create: bool) -> Result<Box<dyn Log>> {
    if let Some(brokers) = &g.brokers {
        if g.verbose > 0 {
            eprintln!("kchain: log: Kafka, bootstrap brokers {brokers}");
        }
        return open_kafka(g, brokers);
    }
    if g.verbose > 0 {
        eprintln!(
            "kchain: log: embedded, data directory {}",
            g.data_dir.display()
        );
    }
    let opts = EmbeddedOptions {
        fsync: fsync_policy(&g.fsync)?,
        ..EmbeddedOptions::default()
    };
    let log = if create {
        EmbeddedLog::create(&g.data_dir, opts)
    } else {
        EmbeddedLog::open(&g.data_dir, opts)
    };
    Ok(Box::new(log.with_context(|| {
        format!("data directory {}", g.data_dir.display())
    })?))
}

/// The librdkafka properties of `--kafka-config` then `-X`, in order (later ones win).
pub(crate) fn kafka_properties(g: &Global) -> Result<Vec<(String, String)>> {
    let mut props = Vec::new();
    if let Some(path) = &g.kafka_config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading Kafka config {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').with_context(|| {
                format!("{} line {}: expected key=value", path.display(), i + 1)
            })?;
            props.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    for x in &g.kafka_props {
        let (k, v) = x
            .split_once('=')
            .with_context(|| format!("-X {x}: expected key=value"))?;
        props.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(props)
}

#[cfg(feature = "kafka")]
fn open_kafka(g: &Global, brokers: &str) -> Result<Box<dyn Log>> {
    let mut options = kchain_log::KafkaOptions {
        properties: kafka_properties(g)?,
        ..kchain_log::KafkaOptions::default()
    };
    if let Some(t) = g.timeout {
        // librdkafka's own socket timeout; the backend's wait to connect; and its metadata
        // and admin requests.
        options
            .properties
            .push(("socket.timeout.ms".into(), t.as_millis().max(1).to_string()));
        options.connect_timeout = t;
        options.request_timeout = t;
    }
    let log = kchain_log::KafkaLog::connect(brokers, options)
        .with_context(|| format!("Kafka brokers {brokers}"))?;
    Ok(Box::new(log))
}

#[cfg(not(feature = "kafka"))]
fn open_kafka(g: &Global, _brokers: &str) -> Result<Box<dyn Log>> {
    kafka_properties(g)?;
    anyhow::bail!("this kchain was built without the `kafka` feature; rebuild with it for -b")
}

/// Loads the trust file, with a hint when there is none.
pub(crate) fn load_trust(g: &Global) -> Result<Trust> {
    let path = g.trust_path();
    if !path.exists() && g.trust.is_some() {
        // A verifier named the file: a typo or a wrong directory, not a missing key.
        anyhow::bail!(
            "trust file {} does not exist (given with --trust)",
            path.display()
        );
    }
    if !path.exists() {
        anyhow::bail!(
            "no trust file at {}: run `kchain keygen` to create a key and trust it, `kchain \
             trust add NAME KEY` to trust another's, or pass --trust FILE",
            path.display()
        );
    }
    Ok(kchain_topic::read_trust_file(&path)?)
}

/// The identity of the log `g` names, which keys remembered checkpoints: `embedded:<absolute
/// data directory>` or `kafka:<bootstrap list, sorted>`.
pub fn backend_identity(g: &Global) -> String {
    match &g.brokers {
        Some(b) => {
            let mut hosts: Vec<&str> = b
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .collect();
            hosts.sort_unstable();
            format!("kafka:{}", hosts.join(","))
        }
        None => {
            let dir = std::fs::canonicalize(&g.data_dir)
                .or_else(|_| std::path::absolute(&g.data_dir))
                .unwrap_or_else(|_| g.data_dir.clone());
            format!("embedded:{}", dir.display())
        }
    }
}

/// A verifier's remembered checkpoints: `--state DIR`, else `kchain-state/` beside the trust
/// file (an anchor lives where the trust file lives, not in the log).
pub fn verifier_store(g: &Global, state: Option<&Path>) -> CheckpointStore {
    CheckpointStore::new(match state {
        Some(dir) => dir.to_owned(),
        None => {
            let trust = g.trust_path();
            let dir = trust.parent().filter(|d| !d.as_os_str().is_empty());
            dir.unwrap_or(Path::new(".")).join("kchain-state")
        }
    })
}

/// A writer's or sealer's memory of the checkpoints it signed: `<key file>.checkpoints/`.
pub fn signer_store(key_file: &Path) -> CheckpointStore {
    let mut dir = key_file.as_os_str().to_owned();
    dir.push(".checkpoints");
    CheckpointStore::new(PathBuf::from(dir))
}

pub(crate) use kchain_core::time::now_ms;
