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
mod demo;
mod key_cmds;
mod progress;
mod report;

use anyhow::{Context, Result};
pub use args::Cli;
use args::{Command, Global, TopicCmd};
use kchain_core::Trust;
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy};

/// What a successful command found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked verified (or nothing was checked).
    Clean,
    /// A check found tampering, forgery or truncation.
    Findings,
}

/// Runs a parsed command line.
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
        Command::Demo(a) => demo::run(&a),
        Command::Bench(a) => bench::run(&a),
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

/// Opens the embedded log of `--data-dir`; `create` makes the directory if it is missing.
pub(crate) fn open_log(g: &Global, create: bool) -> Result<EmbeddedLog> {
    let opts = EmbeddedOptions {
        fsync: fsync_policy(&g.fsync)?,
        ..EmbeddedOptions::default()
    };
    let log = if create {
        EmbeddedLog::create(&g.data_dir, opts)
    } else {
        EmbeddedLog::open(&g.data_dir, opts)
    };
    log.with_context(|| format!("data directory {}", g.data_dir.display()))
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
