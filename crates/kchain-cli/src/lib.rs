//! The `kchain` command-line tool: argument parsing and presentation over the kchain
//! libraries. `main.rs` only maps the outcome to an exit code:
//!
//! ```text
//! 0  everything verified        3  findings (tampering, forgery, truncation)
//! 1  any other error            2  usage error (clap)
//! ```

mod args;
mod bench;
mod chain_cmds;
mod checkpoint_cmds;
mod crypt_cmds;
mod demo;
mod demo_ledger;
mod key_cmds;
mod ledger_cmds;
mod node_cmds;
mod progress;
mod report;

use anyhow::{Context, Result};
pub use args::Cli;
use args::{Command, Global, TopicCmd};
use kchain_core::Trust;
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log};

/// What a successful command found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked verified (or nothing was checked).
    Clean,
    /// A check found tampering, forgery or truncation.
    Findings,
}

/// Runs a parsed command line.
/// An error and its causes on one line, each cause once: library errors often include their
/// source in their own message, and anyhow's chain would print it a second time.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) || line.contains(&format!("{text}: ")) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

pub fn run(cli: Cli) -> Result<Outcome> {
    let g = &cli.global;
    match cli.command {
        Command::Topic(TopicCmd::Create { name, partitions }) => {
            chain_cmds::topic_create(g, &name, partitions)
        }
        Command::Topic(TopicCmd::List { json }) => chain_cmds::topic_list(g, json),
        Command::Produce(a) => chain_cmds::produce(g, &a),
        Command::Consume(a) => chain_cmds::consume(g, &a),
        Command::Verify(a) => chain_cmds::verify(g, &a),
        Command::Inspect(a) => chain_cmds::inspect(g, &a),
        Command::Keygen(a) => key_cmds::keygen(g, &a),
        Command::Pubkey => key_cmds::pubkey(g),
        Command::Trust(t) => key_cmds::trust(g, t),
        Command::Key(c) => crypt_cmds::key(g, c),
        Command::Demo(a) => demo::run(g, &a),
        Command::Bench(a) => bench::run(g, &a),
        Command::Wallet(c) => ledger_cmds::wallet(g, c),
        Command::Ledger(c) => ledger_cmds::ledger(g, c),
        Command::Tx(c) => node_cmds::tx(g, c),
        Command::Node(c) => node_cmds::node(g, c),
        Command::Checkpoint(c) => checkpoint_cmds::checkpoint(g, c),
        Command::Prove(a) => checkpoint_cmds::prove(g, &a),
        Command::VerifyProof(a) => checkpoint_cmds::verify_proof(g, &a),
        Command::Witness(c) => checkpoint_cmds::witness(g, c),
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
        return open_kafka(g, brokers);
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
    let options = kchain_log::KafkaOptions {
        properties: kafka_properties(g)?,
        ..kchain_log::KafkaOptions::default()
    };
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
    if !path.exists() {
        anyhow::bail!(
            "no trust file at {}: run `kchain keygen` to create a key and trust it, or pass \
             --trust FILE",
            path.display()
        );
    }
    Ok(kchain_topic::read_trust_file(&path)?)
}
