//! `checkpoint publish` and `checkpoint export`.

use std::path::PathBuf;

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Subcommand;
use kchain_core::{TrustFile, DEFAULT_ORIGIN_NAMESPACE};
use kchain_log::Log;
use kchain_topic::checkpoints::{PushEvent, PushOptions, PushWitness};
use kchain_topic::{checkpoints::newest_checkpoint, ChainWriter, CheckpointOptions, WriterOptions};

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
        /// Do not push the checkpoint to the trust file's witnesses that have a url.
        #[arg(long)]
        no_push: bool,
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
            no_push,
        } => {
            let log = open_log(g, false)?;
            let push = push_options(g, no_push)?;
            let partitions = topic_partitions(log.as_ref(), &topic)?;
            let parts: Vec<u32> = match partition {
                Some(p) => {
                    check_partition(&topic, p, partitions)?;
                    vec![p]
                }
                None => (0..partitions).collect(),
            };
            for p in parts {
                publish(g, log.as_ref(), (&topic, p), &namespace, push.clone(), json)?;
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
    (topic, partition): (&str, u32),
    namespace: &str,
    push: Option<PushOptions>,
    json: bool,
) -> Result<()> {
    let key = g.writer_key()?;
    let options = CheckpointOptions {
        namespace: namespace.to_owned(),
        store: Some(signer_store(&g.key_path())),
        backend: backend_identity(g),
        push,
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

/// Push mode for a command that signs checkpoints: the witnesses of the trust file that have
/// a url, unless `no_push` or there are none (or no trust file). A witness that fails is a
/// warning on standard error, once per change of its state.
pub(crate) fn push_options(g: &Global, no_push: bool) -> Result<Option<PushOptions>> {
    let path = g.trust_path();
    if no_push || !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading trust file {}", path.display()))?;
    let trust =
        TrustFile::from_toml(&text).with_context(|| format!("trust file {}", path.display()))?;
    let endpoints = trust.checkpoints.map(|c| c.endpoints).unwrap_or_default();
    if endpoints.is_empty() {
        return Ok(None);
    }
    let urls: Vec<String> = endpoints.iter().map(|e| e.url.clone()).collect();
    let witnesses = g
        .remote_witnesses(&urls)?
        .into_iter()
        .zip(endpoints)
        .map(|(witness, e)| PushWitness {
            witness,
            key: e.key,
        })
        .collect();
    // Each push is at most two requests (the second when the witness holds another size).
    let timeout = g
        .timeout
        .unwrap_or(kchain_http::ClientOptions::default().timeout);
    Ok(Some(
        PushOptions::new(witnesses, timeout * 2).with_events(Arc::new(warn_push)),
    ))
}

/// Prints a witness's change of state on standard error.
fn warn_push(event: &PushEvent) {
    match event {
        PushEvent::Failing {
            witness,
            error,
            fork: true,
        } => eprintln!(
            "WARNING: witness {witness} refuses this log's checkpoints as conflicting with one \
             it holds (a fork?): {error}"
        ),
        PushEvent::Failing { witness, error, .. } => eprintln!(
            "warning: no cosignature from witness {witness}: {error}; checkpoints are published \
             without it and it is tried again with the next"
        ),
        PushEvent::Recovered { witness, size } => {
            eprintln!("note: witness {witness} cosigns again (size {size})")
        }
        _ => eprintln!("note: witness push: {event:?}"),
    }
}
