//! `checkpoint publish` and `checkpoint export`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use kchain_core::DEFAULT_ORIGIN_NAMESPACE;
use kchain_log::Log;
use kchain_topic::{
    checkpoints::newest_checkpoint, files::read_key_file, ChainWriter, CheckpointOptions,
    WriterOptions,
};

use serde_json::json;

use crate::cmd::topic::{check_partition, topic_partitions};
use crate::global::{backend_identity, open_log, signer_store, Global};
use crate::outcome::Outcome;
use crate::report::write_output;

#[derive(Subcommand, Debug)]
pub enum CheckpointCmd {
    /// Sign a checkpoint of a topic's chains now (each partition, or one with -p) and
    /// publish it to <TOPIC>.checkpoints, with the writer key (--key-file FILE).
    Publish {
        /// The chained topic.
        topic: String,
        /// Only this partition [default: every partition].
        #[arg(long, short)]
        partition: Option<u32>,
        /// Origin namespace: origins are <NAMESPACE>/<TOPIC>/<PARTITION>.
        #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
        namespace: String,
        /// One JSON line per partition: its status (published, already, empty) and note.
        #[arg(long)]
        json: bool,
    },
    /// Write the newest checkpoint of a partition (a signed note with every cosignature
    /// seen) to a file, or to standard output with `--output -`.
    Export {
        /// The chained topic.
        topic: String,
        /// The partition.
        #[arg(long, short, default_value_t = 0)]
        partition: u32,
        /// The file to write, or `-` for standard output.
        #[arg(long, short_alias = 'o', value_name = "FILE")]
        output: PathBuf,
        /// Origin namespace: origins are <NAMESPACE>/<TOPIC>/<PARTITION>.
        #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
        namespace: String,
    },
}

pub fn checkpoint(g: &Global, cmd: CheckpointCmd) -> Result<Outcome> {
    match cmd {
        CheckpointCmd::Publish {
            topic,
            partition,
            namespace,
            json,
        } => {
            let log = open_log(g, false)?;
            let partitions = topic_partitions(log.as_ref(), &topic)?;
            let parts: Vec<u32> = match partition {
                Some(p) => {
                    check_partition(&topic, p, partitions)?;
                    vec![p]
                }
                None => (0..partitions).collect(),
            };
            for p in parts {
                publish(g, log.as_ref(), &topic, p, &namespace, json)?;
            }
            Ok(Outcome::Clean)
        }
        CheckpointCmd::Export {
            topic,
            partition,
            output,
            namespace,
        } => {
            let log = open_log(g, false)?;
            let note = newest_checkpoint(log.as_ref(), &topic, partition, &namespace)?
                .with_context(|| format!("{topic}/{partition} has no checkpoint yet"))?;
            write_output(&output, &note.to_text())?;
            Ok(Outcome::Clean)
        }
    }
}

/// Signs and publishes a checkpoint of one partition, unless its newest already covers it.
fn publish(
    g: &Global,
    log: &dyn Log,
    topic: &str,
    partition: u32,
    namespace: &str,
    json: bool,
) -> Result<()> {
    let key = read_key_file(&g.key_path())?;
    let options = CheckpointOptions {
        namespace: namespace.to_owned(),
        store: Some(signer_store(&g.key_path())),
        backend: backend_identity(g),
        ..CheckpointOptions::default()
    };
    let mut w = ChainWriter::open(log, topic, partition, &key, WriterOptions::default())?
        .with_checkpoints(log, options)?;
    let (status, note) = match w.checkpoint()? {
        Some(note) => ("published", Some(note.to_string())),
        None => match w.last_checkpoint() {
            Some(note) => ("already published", Some(note.to_string())),
            None => ("empty", None),
        },
    };
    if json {
        let status = status.strip_suffix(" published").unwrap_or(status);
        println!(
            "{}",
            json!({"topic": topic, "partition": partition, "status": status, "note": note})
        );
        return Ok(());
    }
    match note {
        Some(note) => print!("{status}\n{note}"),
        None => println!("{topic}/{partition} is empty: nothing to checkpoint"),
    }
    Ok(())
}
