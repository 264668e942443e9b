//! `produce`: lines of input appended to a chained topic, keyed to partitions as Kafka does.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use kchain_core::{to_hex, Item};
use kchain_topic::{files::read_key_file, partition_for_key, ChainWriter, WriterOptions};
use serde_json::json;

use crate::cmd::topic::{check_partition, topic_partitions};
use crate::global::{backend_identity, now_ms, open_log, signer_store, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// The chained topic to append to (`kchain topic create` makes one).
    pub topic: String,
    /// Partition to append to [default: by key as Kafka does, else 0].
    #[arg(long, short)]
    pub partition: Option<u32>,
    /// The record key of every record (like kcat -k); not a key file (that is --key-file).
    #[arg(long, short)]
    pub key: Option<String>,
    /// Split each line into key and value at the first DELIM (like kcat -K).
    #[arg(long = "key-delimiter", short = 'K', conflicts_with = "key")]
    pub key_delimiter: Option<String>,
    /// Read lines from this file instead of standard input (`-f` is kept for old scripts;
    /// in kcat it is a format string).
    #[arg(long, short_alias = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Records per signed batch.
    #[arg(long, default_value_t = 8192)]
    pub batch: usize,
    /// An application header on every record (repeatable), like kcat's -H.
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Encrypt each value (AES-256-GCM) under the keyring's newest key.
    #[arg(long)]
    pub encrypt: bool,
    /// Sign and publish a checkpoint to <TOPIC>.checkpoints once this many entries of a
    /// partition are not covered by one (0: never on count); one is always published on exit.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub checkpoint_every: u64,
    /// ... or once this many seconds have passed since the last (0: never on time).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub checkpoint_secs: u64,
    /// Publish no checkpoints.
    #[arg(long)]
    pub no_checkpoints: bool,
    /// The checkpoints' origin namespace (`<namespace>/<topic>/<partition>`).
    #[arg(long, default_value = kchain_core::DEFAULT_ORIGIN_NAMESPACE)]
    pub namespace: String,
    /// Print what was appended as one JSON line: per partition the records appended, the
    /// tip and the newest checkpoint.
    #[arg(long)]
    pub json: bool,
}

/// The partitions' writers, opened on first use, and what each appended.
type Writers<'a> = BTreeMap<u32, (ChainWriter<'a>, u64)>;

pub fn produce(g: &Global, a: &ProduceArgs) -> Result<Outcome> {
    let most = kchain_core::PendingLimits::default().records;
    if a.batch == 0 || a.batch as u64 > most {
        bail!(
            "--batch must be between 1 and {most}: readers take a longer run of records that no \
             signature covers for a forgery (docs/pending.md)"
        );
    }
    let log = open_log(g, false)?;
    let partitions = topic_partitions(log.as_ref(), &a.topic)?;
    if let Some(p) = a.partition {
        check_partition(&a.topic, p, partitions)?;
    }
    let key_path = g.key_path();
    if !key_path.exists() {
        bail!(
            "no writer key at {}: run `kchain keygen` first, or pass --key-file FILE",
            key_path.display()
        );
    }
    let key = read_key_file(&key_path)?;
    let data_key = match a.encrypt {
        true => Some(crate::cmd::crypt::writing_key(g)?),
        false => None,
    };
    let headers = parse_headers(&a.headers)?;
    let mut input = BufReader::with_capacity(1 << 20, open_input(a)?);
    let options = WriterOptions {
        max_batch_records: a.batch,
        ..WriterOptions::default()
    };
    let checkpoints = checkpoint_options(g, a);
    let open_writer = |p: u32| -> Result<ChainWriter<'_>> {
        let w = ChainWriter::open(log.as_ref(), &a.topic, p, &key, options)
            .with_context(|| format!("opening the writer of {}/{p}", a.topic))?
            .with_optional_encryption(data_key.as_ref());
        Ok(match &checkpoints {
            Some(c) => w
                .with_checkpoints(log.as_ref(), c.clone())
                .with_context(|| {
                    format!(
                        "checkpoints of {}/{p} (pass --no-checkpoints to write without them)",
                        a.topic
                    )
                })?,
            None => w,
        })
    };
    let mut writers: Writers = BTreeMap::new();
    let mut sticky = 0u32;
    loop {
        let groups = read_batch(&mut input, a, partitions, sticky, &headers)?;
        if groups.is_empty() {
            break;
        }
        sticky = (sticky + 1) % partitions;
        for (p, items) in groups {
            let (w, appended) = match writers.entry(p) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert((open_writer(p)?, 0)),
            };
            *appended += w.append(items)?.records;
        }
    }
    for (w, _) in writers.values_mut() {
        w.flush()?;
    }
    let encrypted = data_key.as_ref().map(|k| k.id().to_string());
    if a.json {
        println!("{}", summary_json(&a.topic, &writers, encrypted.as_deref()));
    } else {
        print_summary(&a.topic, &writers, encrypted.as_deref());
    }
    Ok(Outcome::Clean)
}

/// The `--header NAME=VALUE` options as record headers.
fn parse_headers(given: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut headers = Vec::new();
    for h in given {
        let (n, v) = h
            .split_once('=')
            .with_context(|| format!("--header {h}: expected NAME=VALUE"))?;
        if n.starts_with(kchain_core::HEADER_PREFIX) {
            bail!("--header {n}: names starting with 'kchain.' are kchain's own");
        }
        headers.push((n.to_owned(), v.as_bytes().to_vec()));
    }
    Ok(headers)
}

/// `--file`, else standard input.
fn open_input(a: &ProduceArgs) -> Result<Box<dyn Read>> {
    Ok(match &a.file {
        Some(f) => {
            Box::new(std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?)
        }
        None => Box::new(io::stdin().lock()),
    })
}

/// When the writers publish checkpoints (none with `--no-checkpoints`).
fn checkpoint_options(g: &Global, a: &ProduceArgs) -> Option<kchain_topic::CheckpointOptions> {
    (!a.no_checkpoints).then(|| kchain_topic::CheckpointOptions {
        every_entries: if a.checkpoint_every == 0 {
            u64::MAX
        } else {
            a.checkpoint_every
        },
        every: if a.checkpoint_secs == 0 {
            std::time::Duration::MAX
        } else {
            std::time::Duration::from_secs(a.checkpoint_secs)
        },
        namespace: a.namespace.clone(),
        store: Some(signer_store(&g.key_path())),
        backend: backend_identity(g),
    })
}

/// Up to `--batch` lines of input as records, grouped by partition: `--partition`, else by
/// record key as Kafka does, else the `sticky` partition of this batch. Empty at the end of
/// the input.
fn read_batch(
    input: &mut impl BufRead,
    a: &ProduceArgs,
    partitions: u32,
    sticky: u32,
    headers: &[(String, Vec<u8>)],
) -> Result<BTreeMap<u32, Vec<Item>>> {
    let mut groups: BTreeMap<u32, Vec<Item>> = BTreeMap::new();
    let mut line = Vec::new();
    for _ in 0..a.batch {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .context("reading input")?
            == 0
        {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let (key, value) = split_line(a, &line);
        let p = match (a.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, partitions),
            (None, None) => sticky,
        };
        groups.entry(p).or_default().push(Item {
            key,
            value: Some(value),
            headers: headers.to_vec(),
            timestamp_ms: now_ms(),
        });
    }
    Ok(groups)
}

/// The newest checkpoint a writer published: (origin, size).
fn last_checkpoint(w: &ChainWriter) -> Option<(String, u64)> {
    let note = w.last_checkpoint()?;
    let c = kchain_core::Checkpoint::parse(note.text()).ok()?;
    Some((c.origin().to_owned(), c.size()))
}

/// What was appended, for people.
fn print_summary(topic: &str, writers: &Writers, data_key: Option<&str>) {
    if writers.is_empty() {
        println!("appended 0 records to {topic}");
    }
    let encrypted = data_key
        .map(|k| format!(" (values encrypted under data key {k})"))
        .unwrap_or_default();
    for (p, (w, appended)) in writers {
        if let Some((h, hash)) = w.tip() {
            println!(
                "appended {appended} records to {topic}/{p}{encrypted}: tip height {h} hash {}",
                to_hex(&hash)
            );
        }
        if let Some((origin, size)) = last_checkpoint(w) {
            println!(
                "signed checkpoint {origin} size {size} to {}",
                kchain_topic::checkpoints::checkpoints_topic(topic)
            );
        }
    }
}

/// What was appended, as one JSON object.
fn summary_json(topic: &str, writers: &Writers, data_key: Option<&str>) -> serde_json::Value {
    let partitions: Vec<_> = writers
        .iter()
        .map(|(p, (w, appended))| {
            let tip = w.tip();
            let checkpoint = last_checkpoint(w);
            json!({
                "partition": p,
                "appended": appended,
                "tip_height": tip.map(|t| t.0),
                "tip_hash": tip.map(|t| to_hex(&t.1)),
                "checkpoint": checkpoint.map(|(origin, size)| json!({"origin": origin, "size": size})),
            })
        })
        .collect();
    json!({
        "topic": topic,
        "appended": writers.values().map(|(_, n)| n).sum::<u64>(),
        "data_key": data_key,
        "partitions": partitions,
    })
}

fn split_line(a: &ProduceArgs, line: &[u8]) -> (Option<Vec<u8>>, Vec<u8>) {
    if let Some(k) = &a.key {
        return (Some(k.as_bytes().to_vec()), line.to_vec());
    }
    if let Some(d) = &a.key_delimiter {
        let d = d.as_bytes();
        if let Some(i) = line.windows(d.len().max(1)).position(|w| w == d) {
            return (Some(line[..i].to_vec()), line[i + d.len()..].to_vec());
        }
    }
    (None, line.to_vec())
}
