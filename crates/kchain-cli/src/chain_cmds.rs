//! `topic`, `produce`, `consume`, `verify` and `inspect`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use kchain_core::{to_hex, Decryption, Item, H_ENC};
use kchain_log::{Log, LogError, TopicConfig};
use kchain_topic::{
    partition_for_key, read_key_file, short, verify_topic, verify_topic_decrypting, ChainWriter,
    VerifiedRecord, VerifyOptions, VerifyingReader, WriterOptions,
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

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

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
        true => Some(crate::crypt_cmds::writing_key(g)?),
        false => None,
    };
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
    let checkpoints = (!a.no_checkpoints).then(|| kchain_topic::CheckpointOptions {
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
        store: Some(crate::checkpoint_cmds::signer_store(&g.key_path())),
        backend: crate::checkpoint_cmds::backend_identity(g),
    });
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
                std::collections::btree_map::Entry::Vacant(v) => v.insert(open_writer(p)?),
            };
            let r = w.append(items)?;
            *appended.entry(p).or_default() += r.records;
        }
    }
    if writers.is_empty() {
        println!("appended 0 records to {}", a.topic);
    }
    let encrypted = data_key
        .as_ref()
        .map(|k| format!(" (values encrypted under data key {})", k.id()))
        .unwrap_or_default();
    for (p, w) in &mut writers {
        w.flush()?;
        if let Some((h, hash)) = w.tip() {
            println!(
                "appended {} records to {}/{p}{encrypted}: tip height {h} hash {}",
                appended.get(p).copied().unwrap_or(0),
                a.topic,
                to_hex(&hash)
            );
        }
        if let Some(note) = w.last_checkpoint() {
            if let Ok(c) = kchain_core::Checkpoint::parse(note.text()) {
                println!(
                    "signed checkpoint {} size {} to {}",
                    c.origin(),
                    c.size(),
                    kchain_topic::checkpoints_topic(&a.topic)
                );
            }
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
    let keyring = crate::crypt_cmds::reading_keyring(g)?;
    let parts: Vec<u32> = match a.partition {
        Some(p) => {
            check_partition(&a.topic, p, partitions)?;
            vec![p]
        }
        None => (0..partitions).collect(),
    };
    let mut unreadable = Unreadable::default();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let limit = a.count.unwrap_or(u64::MAX);
    for p in parts {
        if printed >= limit {
            break;
        }
        let mut reader = VerifyingReader::open(log.as_ref(), &a.topic, p, &trust, a.from)?;
        if let Some(k) = &keyring {
            reader = reader.with_keyring(k);
        }
        for rec in reader.by_ref() {
            let rec = rec?;
            unreadable.note(p, &rec);
            let line = if a.json {
                record_json(p, &rec)?
            } else {
                match rec.value() {
                    Ok(v) => String::from_utf8_lossy(v.unwrap_or_default()).into_owned(),
                    Err(d) => placeholder(d),
                }
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
            unreadable.report(&a.topic);
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
    Ok(if unreadable.report(&a.topic) {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

/// One consumed record as JSON. An encrypted record says what became of it in `encryption`
/// (`decrypted`, `shredded`, `key_missing`, `decrypt_failed`) and has a `value` only when it
/// decrypted; its `kchain.enc` header is shown as `key_id`.
fn record_json(p: u32, rec: &VerifiedRecord) -> Result<String> {
    let it = &rec.item;
    let headers: serde_json::Map<_, _> = it
        .headers
        .iter()
        .filter(|(k, _)| k != H_ENC)
        .map(|(k, v)| (k.clone(), bytes_json(Some(v))))
        .collect();
    let mut v = json!({
        "partition": p,
        "offset": rec.offset,
        "height": rec.height,
        "hash": to_hex(&rec.hash),
        "timestamp": it.timestamp_ms,
        "key": bytes_json(it.key.as_deref()),
    });
    if let Ok(value) = rec.value() {
        v["value"] = bytes_json(value);
    }
    v["headers"] = headers.into();
    let d = &rec.decryption;
    if *d != Decryption::Plain {
        v["encryption"] = json!(d.as_str());
        v["key_id"] = json!(d.key().map(|k| k.to_string()));
        match d {
            Decryption::Shredded { at_ms, .. } => v["shredded_ms"] = json!(at_ms),
            Decryption::Failed { why, .. } => v["detail"] = json!(why),
            _ => {}
        }
    }
    Ok(serde_json::to_string(&v)?)
}

/// What the text form of `consume` prints in place of a value that cannot be read.
fn placeholder(d: &Decryption) -> String {
    match d {
        Decryption::Shredded { key, at_ms } => format!(
            "<shredded: encrypted under data key {key}, shredded {}>",
            crate::crypt_cmds::utc(*at_ms)
        ),
        Decryption::MissingKey { key } => {
            format!("<encrypted: data key {key} is not in the keyring>")
        }
        Decryption::Failed {
            key: Some(key),
            why,
        } => {
            format!("<encrypted under data key {key}: does not decrypt: {why}>")
        }
        Decryption::Failed { key: None, why } => format!("<encrypted: does not decrypt: {why}>"),
        Decryption::Plain | Decryption::Decrypted { .. } => String::new(),
    }
}

/// Records `consume` could not decrypt (shredded ones are not counted: that is by design),
/// reported on standard error once the records are printed.
#[derive(Default)]
struct Unreadable {
    /// Per partition: (records, the first one's offset and outcome).
    missing: BTreeMap<u32, (u64, u64, Decryption)>,
    failed: BTreeMap<u32, (u64, u64, Decryption)>,
}

impl Unreadable {
    fn note(&mut self, p: u32, rec: &VerifiedRecord) {
        let slot = match rec.decryption {
            Decryption::MissingKey { .. } => &mut self.missing,
            Decryption::Failed { .. } => &mut self.failed,
            _ => return,
        };
        slot.entry(p)
            .or_insert_with(|| (0, rec.offset, rec.decryption.clone()))
            .0 += 1;
    }

    /// Prints what was unreadable; true if anything was.
    fn report(&self, topic: &str) -> bool {
        for (p, (n, offset, d)) in &self.missing {
            let key = d.key().map(|k| k.to_string()).unwrap_or_default();
            eprintln!(
                "kchain: {topic}/{p}: key_missing: {n} record(s) encrypted under a data key the \
                 keyring does not hold (first at offset {offset}, data key {key})"
            );
        }
        for (p, (n, offset, d)) in &self.failed {
            let why = match d {
                Decryption::Failed { key: Some(k), why } => format!("data key {k}: {why}"),
                Decryption::Failed { why, .. } => why.clone(),
                _ => String::new(),
            };
            eprintln!(
                "kchain: {topic}/{p}: decrypt_failed: {n} record(s) do not decrypt (first at \
                 offset {offset}: {why})"
            );
        }
        !self.missing.is_empty() || !self.failed.is_empty()
    }
}

pub fn verify(g: &Global, a: &VerifyArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let trust = load_trust(g)?;
    // A pinned topic is verified even when the log hides it or some of its partitions: the
    // verifier reports them missing.
    let pinned = trust.pinned_partitions(&a.topic);
    let partitions = match (topic_partitions(log.as_ref(), &a.topic), pinned) {
        (Ok(n), _) => n,
        (Err(_), Some(_)) => 0,
        (Err(e), None) => return Err(e),
    };
    let parts: Option<Vec<u32>> = match a.partition {
        Some(p) => {
            check_partition(&a.topic, p, partitions.max(pinned.unwrap_or(0)))?;
            Some(vec![p])
        }
        None => None,
    };
    let mut total = 0;
    for p in parts.clone().unwrap_or_else(|| (0..partitions).collect()) {
        if p < partitions {
            // Only for the progress bar: a partition whose end cannot be read is reported
            // by the verifier itself.
            let end = log.end_offset(&a.topic, p).unwrap_or(0);
            total += end.saturating_sub(log.start_offset(&a.topic, p).unwrap_or(0));
        }
    }
    let keyring = crate::crypt_cmds::verify_keyring(g)?;
    // Checkpoints first: one published while the chain is read then covers no more than it.
    let first = crate::checkpoint_cmds::read_first(g, log.as_ref(), &a.topic, &a.checkpoints)?;
    let progress = Progress::new(format!("verifying {}", a.topic), total);
    let options = VerifyOptions {
        threads: a.threads,
        ..VerifyOptions::default()
    };
    let (log_ref, parts_ref, on_progress) = (log.as_ref(), parts.as_deref(), &|n| progress.add(n));
    let report = match &keyring {
        Some(k) => verify_topic_decrypting(
            log_ref,
            &a.topic,
            parts_ref,
            &trust,
            k,
            options,
            on_progress,
        )?,
        None => verify_topic(log_ref, &a.topic, parts_ref, &trust, options, on_progress)?,
    };
    progress.finish();
    let checkpoints = crate::checkpoint_cmds::check(
        g,
        log.as_ref(),
        &report,
        &trust,
        first,
        a.state.as_deref(),
        &a.checkpoints,
    )?;
    let mut report = report;
    let anchored = |p: u32| {
        checkpoints.as_ref().is_some_and(|c| {
            c.partitions
                .iter()
                .any(|x| x.partition == p && (x.newest.is_some() || x.remembered.is_some()))
        })
    };
    let warnings = kchain_topic::anchor_warnings(&report, &trust, &anchored);
    report.warnings.extend(warnings);
    let trust_path = g.trust_path();
    if g.inside_data_dir(&trust_path) {
        report.warnings.push(format!(
            "the trust file {} lies inside the data directory it verifies: whoever can change \
             the log can change what this verifier trusts; keep it elsewhere (--config-dir, \
             --trust)",
            trust_path.display()
        ));
    }
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
