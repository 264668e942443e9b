//! `produce`: lines of input appended to a chained topic as they arrive, keyed to partitions
//! as Kafka does, through the library's [`TopicProducer`]. SIGINT and SIGTERM end the input:
//! what was read is appended and signed, a summary is printed, and the exit code is 0.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TrySendError};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use kchain_core::{to_hex, Item};
use kchain_topic::{
    ChainWriter, PartitionReceipt, ProducerOptions, TopicProducer, WriterOpenStage, WriterOptions,
};
use serde_json::json;

use crate::cmd::checkpoint::push_options;
use crate::cmd::topic::{check_partition, topic_partitions};
use crate::global::{backend_identity, now_ms, open_log, signer_store, Global};
use crate::outcome::Outcome;
use crate::progress::Progress;

#[derive(Args, Debug)]
#[command(
    after_help = "Records are appended and signed as lines arrive: a batch goes when it \
holds --batch records or its oldest is --linger-ms old. SIGINT (Ctrl-C) or SIGTERM stops \
reading, appends every line read, prints the summary and exits 0; a second Ctrl-C kills at \
once. Exit codes: 0 everything read was appended, 1 an error."
)]
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
    /// Records per signed batch (the size bound; --linger-ms is the time bound).
    #[arg(long, default_value_t = 8192)]
    pub batch: usize,
    /// Append and sign a partition's batch once its oldest record is this old, so that a
    /// slow source (`tail -f`) is verifiable line by line (like Kafka's linger.ms).
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub linger_ms: u64,
    /// An application header on every record (repeatable), like kcat's -H.
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Encrypt each value (AES-256-GCM) under the keyring's newest key.
    #[arg(long)]
    pub encrypt: bool,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    /// Print what was appended as one JSON line: per partition the records appended, the
    /// tip and the newest checkpoint.
    #[arg(long)]
    pub json: bool,
}

/// What each partition's writer appended, by partition.
type Appended = BTreeMap<u32, u64>;

/// One event of the input thread.
enum Input {
    /// Lines (without their ends of line) read together, and when they were read.
    Lines(Vec<Vec<u8>>, i64),
    /// The end of the input.
    End,
    Failed(io::Error),
}

/// Appends every line of input as it arrives. Exit code 0 when everything read was appended,
/// also when SIGINT or SIGTERM ended the input early (a summary on stderr says so).
///
/// ```text
///  input thread ── lines ──► channel ──► main: TopicProducer::send (batch full: append)
///                                          every tick: flush_due (batch older than linger)
///                                          end, SIGINT, SIGTERM: drain, flush, summary
/// ```
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
    let key = g.writer_key()?;
    let data_key = match a.encrypt {
        true => Some(crate::cmd::crypt::writing_key(g)?),
        false => None,
    };
    let headers = parse_headers(&a.headers)?;
    let (input, size) = open_input(a)?;
    let options = ProducerOptions {
        writer: WriterOptions {
            max_batch_records: a.batch,
            ..WriterOptions::default()
        },
        linger: Duration::from_millis(a.linger_ms),
        checkpoints: a.checkpoints.options(g)?,
    };
    let mut producer = TopicProducer::open(log.as_ref(), &a.topic, &key, options)?
        .with_encryption(data_key.as_ref());
    crate::stop::watch();
    let lines = read_lines(input);
    let progress = size.map(|n| Progress::new(format!("produce {}", a.topic), n));
    let mut appended = Appended::new();
    let tick = Duration::from_millis(a.linger_ms.clamp(10, 100));
    let stopped = loop {
        if let Some(signal) = crate::stop::requested() {
            // Lines the input thread has already read are appended too.
            while let Ok(Input::Lines(lines, at)) = lines.recv_timeout(Duration::from_millis(20)) {
                for line in lines {
                    send_line(&mut producer, a, &headers, line, at)?;
                }
            }
            break Some(signal);
        }
        match lines.recv_timeout(tick) {
            Ok(Input::Lines(lines, at)) => {
                if let Some(p) = &progress {
                    p.add(lines.iter().map(|l| l.len() as u64 + 1).sum());
                }
                for line in lines {
                    send_line(&mut producer, a, &headers, line, at)?;
                }
            }
            Ok(Input::End) | Err(RecvTimeoutError::Disconnected) => break None,
            Ok(Input::Failed(e)) => return Err(anyhow::Error::from(e).context("reading input")),
            Err(RecvTimeoutError::Timeout) => {}
        }
        count(&mut appended, producer.flush_due()?);
    };
    drop(progress);
    count(&mut appended, producer.flush()?);
    let encrypted = data_key.as_ref().map(|k| k.id().to_string());
    if let Some(signal) = stopped {
        let total: u64 = appended.values().sum();
        eprintln!(
            "kchain: {signal}: stopped reading; every line read was appended ({total} record(s) \
             to {} this run)",
            a.topic
        );
    }
    if a.json {
        println!(
            "{}",
            summary_json(&a.topic, &producer, &appended, encrypted.as_deref())
        );
    } else {
        print_summary(&a.topic, &producer, &appended, encrypted.as_deref());
    }
    Ok(Outcome::Clean)
}

/// Sends one line as a record: to `--partition`, else by key, else the sticky partition.
/// The partition's writer is opened first, so that an error says which writer and why.
fn send_line(
    producer: &mut TopicProducer,
    a: &ProduceArgs,
    headers: &[(String, Vec<u8>)],
    line: Vec<u8>,
    at: i64,
) -> Result<()> {
    let (key, value) = split_line(a, &line);
    let p = a
        .partition
        .unwrap_or_else(|| producer.partition_for(key.as_deref()));
    producer.open_writer_staged(p).map_err(|e| {
        let context = match e.stage {
            WriterOpenStage::Checkpoints => format!(
                "checkpoints of {}/{p} (pass --no-checkpoints to write without them)",
                a.topic
            ),
            _ => format!("opening the writer of {}/{p}", a.topic),
        };
        anyhow::Error::from(e.error).context(context)
    })?;
    let item = Item {
        key,
        value: Some(value),
        headers: headers.to_vec(),
        timestamp_ms: at,
    };
    producer.send_to(p, item)?;
    Ok(())
}

/// Adds what `receipts` appended to the per-partition counts.
fn count(appended: &mut Appended, receipts: Vec<PartitionReceipt>) {
    for r in receipts {
        *appended.entry(r.partition).or_default() += r.receipt.records;
    }
}

/// Reads `input` line by line on a thread of its own, so that a silent source never keeps
/// the lines already read from being signed (the linger needs a clock, not a read). Lines
/// go over the channel in chunks: all those the buffer holds, so that a fast source costs one
/// channel message per chunk and a slow one is sent line by line. While an append is in
/// progress and [`CHUNKS`] chunks wait, the thread reads on into its chunk (up to [`CHUNK`]
/// lines or [`CHUNK_BYTES`]): a source faster than the linger then still fills whole
/// batches (one signature and one round trip each), and memory stays bounded.
fn read_lines(input: Box<dyn Read + Send>) -> Receiver<Input> {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS);
    std::thread::spawn(move || {
        let mut input = BufReader::with_capacity(1 << 20, input);
        let mut chunk = Vec::new();
        let mut bytes = 0;
        loop {
            let mut line = Vec::new();
            let last = match input.read_until(b'\n', &mut line) {
                Ok(0) => Some(Input::End),
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    bytes += line.len();
                    chunk.push(line);
                    None
                }
                Err(e) => Some(Input::Failed(e)),
            };
            // Send what was read when the next line would wait for the source.
            let more_buffered = input.buffer().contains(&b'\n');
            let full = chunk.len() >= CHUNK || bytes >= CHUNK_BYTES;
            if !chunk.is_empty() && (last.is_some() || !more_buffered || full) {
                let lines = Input::Lines(std::mem::take(&mut chunk), now_ms());
                let sent = match last.is_some() || full {
                    true => tx.send(lines).map_err(|_| ()),
                    // While the channel is full (an append is in progress), go on reading
                    // into the chunk: the next batch is then ready at once.
                    false => match tx.try_send(lines) {
                        Err(TrySendError::Full(Input::Lines(back, _))) => {
                            chunk = back;
                            Ok(())
                        }
                        Err(_) => Err(()),
                        Ok(()) => Ok(()),
                    },
                };
                if sent.is_err() {
                    return;
                }
                if chunk.is_empty() {
                    bytes = 0;
                }
            }
            if let Some(event) = last {
                let _ = tx.send(event);
                return;
            }
        }
    });
    rx
}

/// The most lines, and about the most bytes, the input thread gathers in one chunk.
const CHUNK: usize = 8192;
const CHUNK_BYTES: usize = 8 << 20;
/// The chunks that may wait in the channel.
const CHUNKS: usize = 16;

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

/// `--file`, else standard input, and its size when it is a regular file (for progress).
fn open_input(a: &ProduceArgs) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
    Ok(match &a.file {
        Some(f) => {
            let file =
                std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
            let size = file
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            (Box::new(file), size)
        }
        None => {
            let size = std::fs::metadata("/dev/stdin")
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            (Box::new(io::stdin()), size)
        }
    })
}

/// When the writers publish checkpoints (none with `--no-checkpoints`).
/// The checkpoint options of a command that writes a chain (`produce`, `bridge run`).
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Sign and publish a checkpoint to <topic>.checkpoints once this many entries of a
    /// partition are not covered by one (0: never on count); one is always published on exit.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub checkpoint_every: u64,
    /// ... or once this many seconds have passed since the last (0: never on time).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub checkpoint_secs: u64,
    /// Publish no checkpoints.
    #[arg(long)]
    pub no_checkpoints: bool,
    /// Do not push checkpoints to the trust file's witnesses that have a url (they may still
    /// pull them with `witness run`).
    #[arg(long)]
    pub no_push: bool,
    /// The checkpoints' origin namespace (`<namespace>/<topic>/<partition>`).
    #[arg(long, default_value = kchain_core::DEFAULT_ORIGIN_NAMESPACE)]
    pub namespace: String,
}

impl CheckpointArgs {
    /// What the writer is given: none with --no-checkpoints.
    pub fn options(&self, g: &Global) -> Result<Option<kchain_topic::CheckpointOptions>> {
        if self.no_checkpoints {
            return Ok(None);
        }
        let or_never = |n: u64| if n == 0 { u64::MAX } else { n };
        Ok(Some(kchain_topic::CheckpointOptions {
            every_entries: or_never(self.checkpoint_every),
            every: std::time::Duration::from_secs(or_never(self.checkpoint_secs)),
            namespace: self.namespace.clone(),
            store: Some(signer_store(&g.key_path())),
            backend: backend_identity(g),
            push: push_options(g, self.no_push)?,
        }))
    }
}

/// The newest checkpoint a writer published: (origin, size).
fn last_checkpoint(w: &ChainWriter) -> Option<(String, u64)> {
    let note = w.last_checkpoint()?;
    let c = kchain_core::Checkpoint::parse(note.text()).ok()?;
    Some((c.origin().to_owned(), c.size()))
}

/// What was appended, for people.
fn print_summary(
    topic: &str,
    producer: &TopicProducer,
    appended: &Appended,
    data_key: Option<&str>,
) {
    if appended.is_empty() {
        println!("appended 0 records to {topic}");
    }
    let encrypted = data_key
        .map(|k| format!(" (values encrypted under data key {k})"))
        .unwrap_or_default();
    for (p, w) in producer.writers() {
        let n = appended.get(&p).copied().unwrap_or(0);
        if let Some((h, hash)) = w.tip() {
            println!(
                "appended {n} records to {topic}/{p}{encrypted}: tip height {h} hash {}",
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
fn summary_json(
    topic: &str,
    producer: &TopicProducer,
    appended: &Appended,
    data_key: Option<&str>,
) -> serde_json::Value {
    let partitions: Vec<_> = producer
        .writers()
        .map(|(p, w)| {
            let tip = w.tip();
            let checkpoint = last_checkpoint(w);
            json!({
                "partition": p,
                "appended": appended.get(&p).copied().unwrap_or(0),
                "tip_height": tip.map(|t| t.0),
                "tip_hash": tip.map(|t| to_hex(&t.1)),
                "checkpoint": checkpoint.map(|(origin, size)| json!({"origin": origin, "size": size})),
            })
        })
        .collect();
    json!({
        "topic": topic,
        "appended": appended.values().sum::<u64>(),
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
