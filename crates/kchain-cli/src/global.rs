//! The options every command shares (where the log is, where the anchors are) and what they
//! open: the log, the trust file, and the places where keys and remembered checkpoints live.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use kchain_core::Trust;
use kchain_log::{EmbeddedOptions, FsyncPolicy, Log};
use kchain_topic::files::{AnchorFile, CheckpointStore, DataDir};

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
    /// A CA certificate (PEM) to trust for HTTPS to witnesses and webhooks, besides the public
    /// web roots: a private CA, or a witness's self-signed certificate.
    #[arg(long, global = true, env = "KCHAIN_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print less: no notes, no progress, and only the essential line (e.g. `wallet address`
    /// prints the bare address, `node run` only its summary).
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more on standard error: the identity of the log a command opened, which its
    /// pins and remembered checkpoints name (repeatable).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// The HTTP client for witnesses and webhooks: `--ca-file` trusted, `--timeout` (default
    /// 10 s) for connecting and for each read.
    pub fn http_client(&self) -> Result<kchain_http::Client> {
        let mut options = kchain_http::ClientOptions {
            ca_file: self.ca_file.clone(),
            ..Default::default()
        };
        if let Some(t) = self.timeout {
            options.timeout = t;
        }
        kchain_http::Client::new(&options).context("setting up HTTPS")
    }

    /// The witnesses at `urls`, reached with [`Global::http_client`].
    pub fn remote_witnesses(
        &self,
        urls: &[String],
    ) -> Result<Vec<std::sync::Arc<dyn kchain_core::RemoteWitness>>> {
        let client = self.http_client()?;
        Ok(urls
            .iter()
            .map(|u| {
                std::sync::Arc::new(kchain_witness::HttpWitness::new(u, client.clone()))
                    as std::sync::Arc<dyn kchain_core::RemoteWitness>
            })
            .collect())
    }

    /// The key file a command that has no default key signs with: `local` (the command's
    /// old flag name, still accepted), else `--key-file`; `what` names it in the error.
    pub fn key_file_for(&self, local: Option<&Path>, what: &str) -> Result<PathBuf> {
        match local.or(self.key_file.as_deref()) {
            Some(path) => Ok(path.to_owned()),
            None => anyhow::bail!("{what}: pass --key-file FILE"),
        }
    }

    /// The layout of the data directory and of the configuration directory of its anchors.
    pub fn dirs(&self) -> DataDir {
        DataDir::new(&self.data_dir, self.config_dir())
    }

    /// The writer key file: `--key-file`, else `writer.key` in the configuration directory.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| noted(self.dirs().key_file()))
    }

    /// The writer key a command that appends to a chain signs with ([`Global::key_path`]),
    /// with an error that says how to make one when there is none.
    pub fn writer_key(&self) -> Result<kchain_core::WriterKey> {
        let path = self.key_path();
        if !path.exists() {
            anyhow::bail!(
                "no writer key at {}: run `kchain keygen` first, or pass --key-file FILE",
                path.display()
            );
        }
        Ok(kchain_topic::files::read_key_file(&path)?)
    }

    /// The trust file: `--trust`, else `trust.toml` in the configuration directory.
    pub fn trust_path(&self) -> PathBuf {
        self.trust
            .clone()
            .unwrap_or_else(|| noted(self.dirs().trust_file()))
    }

    /// The keyring file: `--keyring`, else `keyring.toml` in the configuration directory.
    pub fn keyring_path(&self) -> PathBuf {
        self.keyring
            .clone()
            .unwrap_or_else(|| noted(self.dirs().keyring_file()))
    }

    /// Where keys and the trust file live by default: `--config-dir`, else the user's
    /// configuration directory. Never the data directory: whoever can change the log could
    /// then change what the verifier trusts as well.
    pub fn config_dir(&self) -> PathBuf {
        match &self.config_dir {
            Some(dir) => dir.clone(),
            None => DataDir::user_config_dir(),
        }
    }

    /// True when `path` lies inside the embedded data directory (which an attacker with
    /// disk access to the log controls too).
    pub fn inside_data_dir(&self, path: &std::path::Path) -> bool {
        self.brokers.is_none() && self.dirs().contains(path)
    }

    /// The backend in words, for the line every command prints: `embedded log DIR` or
    /// `kafka brokers HOSTS`.
    pub fn backend_line(&self) -> String {
        match &self.brokers {
            Some(b) => format!("kafka brokers {b}"),
            None => format!("embedded log {}", self.data_dir.display()),
        }
    }
}

/// The anchor file to use. A data directory made by an earlier kchain still holds its keys
/// and trust file: those keep working, with a note saying where they belong, until moved.
fn noted(file: AnchorFile) -> PathBuf {
    if let Some(to) = &file.move_to {
        crate::report::note_once(&format!(
            "using {} inside the data directory it protects; move it to {} (anchors belong \
             outside what they protect)",
            file.path.display(),
            to.display()
        ));
    }
    file.path
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
/// Names the backend in one line on standard error (unless `-q`), so that no command works
/// on the embedded log while its user thinks it works on Kafka, or the other way round.
pub(crate) fn open_log(g: &Global, create: bool) -> Result<Box<dyn Log>> {
    if g.brokers.is_none() && !g.kafka_props.is_empty() {
        anyhow::bail!(
            "-X given without -b: Kafka properties need a Kafka log; pass -b BROKERS, or drop \
             -X to use the embedded log in {}",
            g.data_dir.display()
        );
    }
    let log: Box<dyn Log> = match &g.brokers {
        Some(brokers) => open_kafka(g, brokers)?,
        None => {
            let opts = EmbeddedOptions {
                fsync: fsync_policy(&g.fsync)?,
                ..EmbeddedOptions::default()
            };
            let log = g.dirs().embedded_log(create, opts);
            Box::new(log.with_context(|| format!("data directory {}", g.data_dir.display()))?)
        }
    };
    announce(g, log.as_ref());
    Ok(log)
}

/// Names the log just opened on standard error (unless `--quiet`), and its identity with
/// `-v`: once the log is open, so that an error opening it names the backend itself, on one
/// line.
pub(crate) fn announce(g: &Global, log: &dyn Log) {
    if !g.quiet {
        eprintln!("kchain: {}", g.backend_line());
    }
    if g.verbose > 0 {
        eprintln!("kchain: log identity {}", log_identity(g, log));
    }
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
    Ok(Box::new(open_kafka_log(g, brokers)?))
}

/// The Kafka log at `brokers`, with the global options' properties and timeouts.
#[cfg(feature = "kafka")]
pub(crate) fn open_kafka_log(g: &Global, brokers: &str) -> Result<kchain_log::KafkaLog> {
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
    kchain_log::KafkaLog::connect(brokers, options)
        .with_context(|| format!("Kafka brokers {brokers}"))
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
    Ok(kchain_topic::files::read_trust_file(&path)?)
}

/// The trust file as it applies on `log`: only the pins taken there (and pins that name no
/// log); see [`kchain_core::Trust::on_log`].
pub(crate) fn load_trust_on(g: &Global, log: &dyn Log) -> Result<Trust> {
    Ok(load_trust(g)?.on_log(&log_identity(g, log)))
}

/// The identity of the log `g` names by how it is reached: `embedded:<absolute data
/// directory>` or `kafka:<bootstrap list, sorted>` (what keys a signer's remembered
/// checkpoints).
pub fn backend_identity(g: &Global) -> String {
    match &g.brokers {
        Some(b) => DataDir::kafka_identity(b),
        None => g.dirs().log_identity(),
    }
}

/// The identity of an opened log, which pins and a verifier's remembered checkpoints name:
/// the cluster id a Kafka cluster reports (`kafka:<id>`), else [`backend_identity`].
pub fn log_identity(g: &Global, log: &dyn Log) -> String {
    log.identity().unwrap_or_else(|| backend_identity(g))
}

/// A verifier's remembered checkpoints: `--state DIR`, else `kchain-state/` beside the trust
/// file (an anchor lives where the trust file lives, not in the log).
pub fn verifier_store(g: &Global, state: Option<&Path>) -> CheckpointStore {
    match state {
        Some(dir) => CheckpointStore::new(dir.to_owned()),
        None => DataDir::verifier_store(&g.trust_path()),
    }
}

/// A writer's or sealer's memory of the checkpoints it signed: `<key file>.checkpoints/`.
pub fn signer_store(key_file: &Path) -> CheckpointStore {
    DataDir::signer_store(key_file)
}

pub(crate) use kchain_core::time::now_ms;
