//! `topic`, `produce`, `consume`, `verify` and `inspect`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use kchain_core::{to_hex, Item};
use kchain_log::{Log, LogError, TopicConfig};
use kchain_topic::{
    partition_for_key, read_key_file, short, verify_topic, ChainWriter, VerifyOptions,
    VerifyingReader, WriterOptions,
};
use serde_json::json;

use crate::args::{ConsumeArgs, Global, InspectArgs, ProduceArgs, VerifyArgs};
use crate::progress::Progress;
use crate::report::{finding_json, topic_json, topic_text};
use crate::{load_trust, open_log, Outcome};

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
fn topic_partitions(log: &dyn Log, topic: &str) -> Result<u32> {
    match log.topic(topic) {
        Ok(info) => Ok(info.partitions),
        Err(LogError::NoSuchTopic(_)) => {
            bail!("topic '{topic}' does not exist (create it with `kchain topic create {topic}`)")
        }
        Err(e) => Err(e.into()),
    }
}

fn check_partition(topic: &str, partition: u32, partitions: u32) -> Result<()> {
    if partition >= partitions {
        bail!("partition {partition} does not exist in topic '{topic}' (it has {partitions})");
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn produce(g: &Global, a: &ProduceArgs) -> Result<Outcome> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
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
    let mut headers = Vec::new();
    for h in &a.headers {
        let (n, v) = h
            .split_once('=')
            .with_context(|| format!("--header {h}: expected NAME=VALUE"))?;
        if n.starts_with(kchain_core::HEADER_PREFIX) {
            bail!("--header {n}: names starting with 'kchain.' are kchain's own");
        }
        headers.push((n.to_owned(), v.as_bytes().to_vec()));
    }
    let input: Box<dyn Read> = match &a.file {
        Some(f) => {
            Box::new(std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?)
        }
        None => Box::new(io::stdin().lock()),
    };
    let mut input = BufReader::with_capacity(1 << 20, input);
    let options = WriterOptions {
        max_batch_records: a.batch,
        ..WriterOptions::default()
    };
    let mut writers: BTreeMap<u32, ChainWriter> = BTreeMap::new();
    let mut appended: BTreeMap<u32, u64> = BTreeMap::new();
    let mut sticky = 0u32;
    let mut line = Vec::new();
    loop {
        let mut groups: BTreeMap<u32, Vec<Item>> = BTreeMap::new();
        let mut n = 0;
        while n < a.batch {
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
                headers: headers.clone(),
                timestamp_ms: now_ms(),
            });
            n += 1;
        }
        if n == 0 {
            break;
        }
        sticky = (sticky + 1) % partitions;
        for (p, items) in groups {
            let w = match writers.entry(p) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(
                    ChainWriter::open(log.as_ref(), &a.topic, p, &key, options)
                        .with_context(|| format!("opening the writer of {}/{p}", a.topic))?,
                ),
            };
            let r = w.append(items)?;
            *appended.entry(p).or_default() += r.records;
        }
    }
    if writers.is_empty() {
        println!("appended 0 records to {}", a.topic);
    }
    for (p, w) in &mut writers {
        w.flush()?;
        if let Some((h, hash)) = w.tip() {
            println!(
                "appended {} records to {}/{p}: tip height {h} hash {}",
                appended.get(p).copied().unwrap_or(0),
                a.topic,
                to_hex(&hash)
            );
        }
    }
    Ok(Outcome::Clean)
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

fn bytes_json(b: Option<&[u8]>) -> serde_json::Value {
    match b {
        None => serde_json::Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => json!(s),
            Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
        },
    }
}

pub fn consume(g: &Global, a: &ConsumeArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let partitions = topic_partitions(log.as_ref(), &a.topic)?;
    let trust = load_trust(g)?;
    let parts: Vec<u32> = match a.partition {
        Some(p) => {
            check_partition(&a.topic, p, partitions)?;
            vec![p]
        }
        None => (0..partitions).collect(),
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let limit = a.count.unwrap_or(u64::MAX);
    for p in parts {
        if printed >= limit {
            break;
        }
        let mut reader = VerifyingReader::open(log.as_ref(), &a.topic, p, &trust, a.from)?;
        for rec in reader.by_ref() {
            let rec = rec?;
            let line = if a.json {
                let it = &rec.item;
                let headers: serde_json::Map<_, _> = it
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), bytes_json(Some(v))))
                    .collect();
                serde_json::to_string(&json!({
                    "partition": p,
                    "offset": rec.offset,
                    "height": rec.height,
                    "hash": to_hex(&rec.hash),
                    "timestamp": it.timestamp_ms,
                    "key": bytes_json(it.key.as_deref()),
                    "value": bytes_json(it.value.as_deref()),
                    "headers": headers,
                }))?
            } else {
                String::from_utf8_lossy(rec.item.value.as_deref().unwrap_or_default()).into_owned()
            };
            if let Err(e) = writeln!(out, "{line}") {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Ok(Outcome::Clean);
                }
                return Err(e.into());
            }
            printed += 1;
            if printed >= limit {
                break;
            }
        }
        if let Some(f) = reader.finding() {
            let _ = out.flush();
            if a.json {
                let v = json!({"partition": p, "finding": finding_json(f)});
                eprintln!("{v}");
            } else {
                eprintln!("kchain: {}/{p}: stopped at a finding: {f}", a.topic);
            }
            return Ok(Outcome::Findings);
        }
    }
    out.flush().or_else(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    Ok(Outcome::Clean)
}

pub fn verify(g: &Global, a: &VerifyArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let partitions = topic_partitions(log.as_ref(), &a.topic)?;
    let trust = load_trust(g)?;
    let parts: Option<Vec<u32>> = match a.partition {
        Some(p) => {
            check_partition(&a.topic, p, partitions)?;
            Some(vec![p])
        }
        None => None,
    };
    let mut total = 0;
    for p in parts.clone().unwrap_or_else(|| (0..partitions).collect()) {
        total += log.end_offset(&a.topic, p)? - log.start_offset(&a.topic, p)?;
    }
    let progress = Progress::new(format!("verifying {}", a.topic), total);
    let report = verify_topic(
        log.as_ref(),
        &a.topic,
        parts.as_deref(),
        &trust,
        VerifyOptions {
            threads: a.threads,
            ..VerifyOptions::default()
        },
        &|n| progress.add(n),
    )?;
    progress.finish();
    let checkpoints = crate::checkpoint_cmds::check(g, log.as_ref(), &report, &trust)?;
    if a.json {
        let mut v = topic_json(&report);
        if let Some(c) = &checkpoints {
            v["checkpoints"] = crate::checkpoint_cmds::report_json(c);
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        print!("{}", topic_text(&report));
        if let Some(c) = &checkpoints {
            print!("{}", c.to_text());
        }
    }
    Ok(
        if report.ok() && checkpoints.as_ref().is_none_or(|c| c.ok()) {
            Outcome::Clean
        } else {
            Outcome::Findings
        },
    )
}

pub fn inspect(g: &Global, a: &InspectArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let partitions = topic_partitions(log.as_ref(), &a.topic)?;
    check_partition(&a.topic, a.partition, partitions)?;
    let rows = kchain_topic::inspect(log.as_ref(), &a.topic, a.partition, a.from, a.count)?;
    if a.json {
        for r in rows {
            println!(
                "{}",
                json!({
                    "offset": r.offset,
                    "height": r.height,
                    "prev": r.prev.map(|h| to_hex(&h)),
                    "hash": r.hash.map(|h| to_hex(&h)),
                    "link_ok": r.link_ok,
                    "signed_by": r.signed_by,
                    "problem": r.problem,
                })
            );
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
