//! `checkpoint publish` and `checkpoint export`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use kchain_core::DEFAULT_ORIGIN_NAMESPACE;
use kchain_topic::{
    newest_checkpoint, read_key_file, ChainWriter, CheckpointOptions, WriterOptions,
};

use crate::global::{backend_identity, open_log, signer_store, Global};
use crate::report::write_output;
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum CheckpointCmd {
    /// Sign a checkpoint of a partition's chain now and publish it to <TOPIC>.checkpoints.
    Publish {
        topic: String,
        #[arg(long, short, default_value_t = 0)]
        partition: u32,
        /// Origin namespace: origins are <NAMESPACE>/<TOPIC>/<PARTITION>.
        #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
        namespace: String,
    },
    /// Write the newest checkpoint of a partition (a signed note with every cosignature
    /// seen) to a file, or to standard output with `-o -`.
    Export {
        topic: String,
        #[arg(long, short, default_value_t = 0)]
        partition: u32,
        #[arg(long, short)]
        output: PathBuf,
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
        } => {
            let log = open_log(g, false)?;
            let key = read_key_file(&g.key_path())?;
            let options = CheckpointOptions {
                namespace,
                store: Some(signer_store(&g.key_path())),
                backend: backend_identity(g),
                ..CheckpointOptions::default()
            };
            let mut w = ChainWriter::open(
                log.as_ref(),
                &topic,
                partition,
                &key,
                WriterOptions::default(),
            )?
            .with_checkpoints(log.as_ref(), options)?;
            match w.checkpoint()? {
                Some(note) => print!("published\n{note}"),
                None => match w.last_checkpoint() {
                    Some(note) => print!("already published\n{note}"),
                    None => println!("{topic}/{partition} is empty: nothing to checkpoint"),
                },
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
