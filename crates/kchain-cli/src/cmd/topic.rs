//! `topic create`, `topic list` and `inspect`, and the topic checks other commands share.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use kchain_core::to_hex;
use kchain_log::{Log, LogError, TopicConfig};
use kchain_topic::short;
use serde_json::json;

use crate::global::{open_log, Global};
use crate::outcome::Outcome;

#[derive(Subcommand, Debug)]
pub enum TopicCmd {
    /// Create a chained topic.
    Create {
        /// The topic's name.
        name: String,
        /// How many partitions (chains) it has.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
    },
    /// List topics.
    List {
        /// Print the topics as one JSON line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The topic to inspect.
    pub topic: String,
    /// The partition.
    #[arg(long, short, default_value_t = 0)]
    pub partition: u32,
    /// First offset to show (like kcat -o).
    #[arg(long, short = 'o', default_value_t = 0)]
    pub from: u64,
    /// Show at most this many entries (like kcat -c).
    #[arg(long, short = 'c', default_value_t = 20)]
    pub count: usize,
    /// One JSON object per entry, one per line.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `topic` subcommand.
pub fn topic(g: &Global, cmd: TopicCmd) -> Result<Outcome> {
    match cmd {
        TopicCmd::Create { name, partitions } => topic_create(g, &name, partitions),
        TopicCmd::List { json } => topic_list(g, json),
    }
}

pub fn topic_create(g: &Global, name: &str, partitions: u32) -> Result<Outcome> {
    if partitions == 0 {
        bail!("--partitions must be at least 1");
    }
    let log = open_log(g, true)?;
    log.create_topic(
        name,
        &TopicConfig {
            partitions,
            ..TopicConfig::default()
        },
    )?;
    println!("created topic {name} with {partitions} partition(s)");
    Ok(Outcome::Clean)
}

pub fn topic_list(g: &Global, json: bool) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let topics = log.list_topics()?;
    if json {
        let v: Vec<_> = topics
            .iter()
            .map(|t| json!({"topic": t.name, "partitions": t.partitions}))
            .collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        for t in topics {
            println!("{}\t{} partition(s)", t.name, t.partitions);
        }
    }
    Ok(Outcome::Clean)
}

/// Describes a topic, turning "no such topic" into an error with a hint.
pub(crate) fn topic_partitions(log: &dyn Log, topic: &str) -> Result<u32> {
    match log.topic(topic) {
        Ok(info) => Ok(info.partitions),
        Err(LogError::NoSuchTopic(_)) => {
            bail!("topic '{topic}' does not exist (create it with `kchain topic create {topic}`)")
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn check_partition(topic: &str, partition: u32, partitions: u32) -> Result<()> {
    if partition >= partitions {
        bail!("partition {partition} does not exist in topic '{topic}' (it has {partitions})");
    }
    Ok(())
}

pub fn inspect(g: &Global, a: &InspectArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let partitions = topic_partitions(log.as_ref(), &a.topic)?;
    check_partition(&a.topic, a.partition, partitions)?;
    let rows = kchain_topic::inspect(log.as_ref(), &a.topic, a.partition, a.from, a.count)?;
    if a.json {
        for r in &rows {
            println!("{}", inspect_row_json(r));
        }
        return Ok(Outcome::Clean);
    }
    println!(
        "{:>10} {:>10}  {:<16}  {:<16}  {:<6} signed by",
        "offset", "height", "prev", "hash", "link"
    );
    for r in rows {
        if let Some(p) = r.problem {
            println!("{:>10} {:>10}  {p}", r.offset, "?");
            continue;
        }
        let link = match r.link_ok {
            Some(true) => "ok",
            Some(false) => "BROKEN",
            None => "?",
        };
        println!(
            "{:>10} {:>10}  {:<16}  {:<16}  {:<6} {}",
            r.offset,
            r.height.unwrap_or_default(),
            r.prev.as_ref().map(short).unwrap_or_default(),
            r.hash.as_ref().map(short).unwrap_or_default(),
            link,
            r.signed_by.unwrap_or_else(|| "-".into())
        );
    }
    Ok(Outcome::Clean)
}

/// One entry as `inspect --json` prints it (and `kchain serve` answers it).
pub(crate) fn inspect_row_json(r: &kchain_topic::InspectRow) -> serde_json::Value {
    json!({
        "offset": r.offset,
        "height": r.height,
        "prev": r.prev.map(|h| to_hex(&h)),
        "hash": r.hash.map(|h| to_hex(&h)),
        "link_ok": r.link_ok,
        "signed_by": r.signed_by,
        "problem": r.problem,
    })
}
