//! `consume`: a topic's records printed as they verify.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::Result;
use clap::Args;
use kchain_core::Decryption;
use kchain_topic::{VerifiedRecord, VerifyingReader};
use serde_json::json;

use crate::cmd::topic::{check_partition, topic_partitions};
use crate::global::{open_log, Global};
use crate::outcome::Outcome;
use crate::report::{finding_json, placeholder, record_json};

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// The chained topic to read.
    pub topic: String,
    /// Only this partition [default: every partition, in order].
    #[arg(long, short)]
    pub partition: Option<u32>,
    /// First offset to print (the chain is still verified from genesis).
    #[arg(long, short = 'o', default_value_t = 0)]
    pub from: u64,
    /// Print at most this many records.
    #[arg(long, short = 'c')]
    pub count: Option<u64>,
    /// One JSON object per record.
    #[arg(long)]
    pub json: bool,
}

pub fn consume(g: &Global, a: &ConsumeArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let partitions = topic_partitions(log.as_ref(), &a.topic)?;
    let trust = crate::global::load_trust_on(g, log.as_ref())?;
    let keyring = crate::cmd::crypt::reading_keyring(g)?;
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
            if let Err(e) = writeln!(out, "{}", line(a, p, &rec)?) {
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

/// One record as `consume` prints it: its value (or what stands for a value that cannot be
/// read), or with `--json` a JSON line.
fn line(a: &ConsumeArgs, p: u32, rec: &VerifiedRecord) -> Result<String> {
    if a.json {
        return record_json(p, rec);
    }
    Ok(match rec.value() {
        Ok(v) => String::from_utf8_lossy(v.unwrap_or_default()).into_owned(),
        Err(d) => placeholder(d),
    })
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
