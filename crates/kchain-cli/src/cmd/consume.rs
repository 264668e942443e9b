//! `consume`: a topic's records printed as they verify, with kcat's conventions (`-o`, `-K`,
//! `-f`, `-e`), following new records until SIGINT unless `-e` asks to exit at the end.
//!
//! ```text
//!  for each partition, from its start (-o):
//!    VerifyingReader (verifies from genesis) ──► records ──► text (-K/-f) or --json
//!    finding ──► reported on stderr for that partition, the others go on (exit 3 at the end)
//!                --allow-unverified: the rest of the partition, read raw, marked unverified
//!  -e: stop here.  Otherwise every 200 ms: a partition whose end moved goes on through the
//!  same reader (VerifyingReader::follow: from where its verification stood, nothing read
//!  twice), until SIGINT/SIGTERM or -c records.
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use kchain_core::{Decryption, Item, H_ENC};
use kchain_log::Log;
use kchain_topic::{VerifiedRecord, VerifyingReader};
use serde_json::json;

use crate::cmd::topic::{check_partition, topic_partitions};
use crate::global::{open_log, Global};
use crate::outcome::Outcome;
use crate::report::{finding_json, placeholder, record_json, unverified_json, Shown, TextFormat};

#[derive(Args, Debug)]
#[command(
    after_help = "Without -e, consume follows the topic like kcat -C until SIGINT \
(Ctrl-C) or SIGTERM. Exit codes: 0 every record shown verified, 3 a finding in some \
partition (the others are still shown) or a value that cannot be decrypted, 1 an error."
)]
pub struct ConsumeArgs {
    /// The chained topic to read.
    pub topic: String,
    /// Only this partition [default: every partition, in order].
    #[arg(long, short)]
    pub partition: Option<u32>,
    /// Where to start in each partition, as kcat: `beginning`, `end`, `-N` (N records before
    /// the end), `@MS` (the first record stamped at or after MS, milliseconds since the
    /// epoch) or an absolute offset. The chain is still verified from genesis.
    #[arg(
        long = "offset",
        short = 'o',
        alias = "from",
        default_value = "beginning",
        allow_hyphen_values = true,
        value_parser = parse_start
    )]
    pub offset: Start,
    /// Exit at the end of the partitions (kcat -e); without it, wait for new records until
    /// SIGINT or SIGTERM, which end cleanly.
    #[arg(long = "exit", short = 'e')]
    pub exit_at_end: bool,
    /// Print at most this many records, then exit.
    #[arg(long, short = 'c')]
    pub count: Option<u64>,
    /// Print each record's key, DELIM, then its value (kcat -K; `\t` is a tab).
    #[arg(long = "key-delimiter", short = 'K', value_name = "DELIM")]
    pub key_delimiter: Option<String>,
    /// Print each record with a kcat format string: %t topic, %p partition, %o offset,
    /// %T timestamp (ms), %k key, %s value, %h headers, %K/%S key/value length, %%;
    /// escapes \n \t \r \\. No newline is added.
    #[arg(long = "format", short = 'f', conflicts_with = "json")]
    pub format: Option<String>,
    /// After a finding in a partition, show the rest of its records too, marked as
    /// unverified ("[UNVERIFIED] " before the text; `"verified": false` in JSON). The exit
    /// code is still 3.
    #[arg(long)]
    pub allow_unverified: bool,
    /// One JSON object per record (`verified`, `partition`, `offset`, `key`, `value`, ...).
    #[arg(long)]
    pub json: bool,
}

/// Where `consume` starts in each partition (`-o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    /// This many records before the end.
    Tail(u64),
    /// The first record stamped at or after this time (ms since the epoch).
    Time(i64),
    Offset(u64),
}

fn parse_start(s: &str) -> Result<Start, String> {
    let bad = || format!("'{s}': expected beginning, end, -N, @TIMESTAMP_MS or an offset");
    Ok(match s {
        "beginning" => Start::Beginning,
        "end" => Start::End,
        _ if s.starts_with('-') => Start::Tail(s[1..].parse().map_err(|_| bad())?),
        _ if s.starts_with('@') => Start::Time(s[1..].parse().map_err(|_| bad())?),
        _ => Start::Offset(s.parse().map_err(|_| bad())?),
    })
}

/// Where one partition stands.
struct Part<'t> {
    /// The next offset to show.
    next: u64,
    /// Its verifying reader, kept between passes when following: each pass goes on from
    /// where the last one ended, never from genesis again.
    reader: Option<VerifyingReader<'t>>,
    /// With `-o @MS`: records before the first stamped at or after MS are skipped.
    since: Option<i64>,
    /// The finding that stopped its verification (no verified record follows it).
    finding: Option<String>,
}

/// What `consume` has printed and found so far.
struct Consumer<'a> {
    a: &'a ConsumeArgs,
    log: &'a dyn Log,
    trust: &'a kchain_core::Trust,
    keyring: Option<&'a kchain_core::Keyring>,
    text: TextFormat,
    out: io::BufWriter<io::StdoutLock<'static>>,
    printed: u64,
    findings: bool,
    unreadable: Unreadable,
}

/// Why printing stopped before the end.
#[derive(PartialEq, Eq)]
enum Stop {
    /// `-c` records were printed.
    Count,
    /// SIGINT or SIGTERM.
    Signal,
}

pub fn consume(g: &Global, a: &ConsumeArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let partitions = topic_partitions(log.as_ref(), &a.topic)?;
    let trust = crate::global::load_trust_on(g, log.as_ref())?;
    let keyring = crate::cmd::crypt::reading_keyring(g)?;
    let text = match TextFormat::new(a.format.as_deref(), a.key_delimiter.as_deref()) {
        Ok(t) => t,
        Err(e) => bail!(e),
    };
    let parts: Vec<u32> = match a.partition {
        Some(p) => {
            check_partition(&a.topic, p, partitions)?;
            vec![p]
        }
        None => (0..partitions).collect(),
    };
    let mut state = BTreeMap::new();
    for &p in &parts {
        state.insert(p, start_of(log.as_ref(), &a.topic, p, a.offset)?);
    }
    crate::stop::watch();
    let mut c = Consumer {
        a,
        log: log.as_ref(),
        trust: &trust,
        keyring: keyring.as_ref(),
        text,
        out: io::BufWriter::new(io::stdout().lock()),
        printed: 0,
        findings: false,
        unreadable: Unreadable::default(),
    };
    let mut first = true;
    'follow: loop {
        for (&p, part) in state.iter_mut() {
            // After the first pass, only partitions that grew are read again.
            if !first && log.end_offset(&a.topic, p)? <= part.next {
                continue;
            }
            if c.partition(p, part)?.is_some() {
                break 'follow;
            }
        }
        first = false;
        c.out.flush().or_else(broken_pipe)?;
        if a.exit_at_end || !wait_for_more() {
            break;
        }
    }
    c.out.flush().or_else(broken_pipe)?;
    if let Some(signal) = crate::stop::requested() {
        eprintln!("kchain: {signal}: stopped after {} record(s)", c.printed);
    }
    let unreadable = c.unreadable.report(&a.topic);
    Ok(if c.findings || unreadable {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

/// Sleeps 200 ms between passes; false once SIGINT or SIGTERM asked to stop.
fn wait_for_more() -> bool {
    for _ in 0..10 {
        if crate::stop::requested().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::stop::requested().is_none()
}

fn broken_pipe(e: io::Error) -> io::Result<()> {
    match e.kind() {
        io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(e),
    }
}

/// Where partition `p` starts for `-o`.
fn start_of<'t>(log: &dyn Log, topic: &str, p: u32, start: Start) -> Result<Part<'t>> {
    let first = log.start_offset(topic, p)?;
    let end = log.end_offset(topic, p)?;
    let (next, since) = match start {
        Start::Beginning => (first, None),
        Start::End => (end, None),
        Start::Tail(n) => (end.saturating_sub(n).max(first), None),
        Start::Time(ms) => (first, Some(ms)),
        Start::Offset(o) => (o, None),
    };
    Ok(Part {
        next,
        reader: None,
        since,
        finding: None,
    })
}

impl<'a> Consumer<'a> {
    /// Prints partition `p` from `part.next` to its end: verified records, then, after a
    /// finding and with `--allow-unverified`, the rest read raw.
    fn partition(&mut self, p: u32, part: &mut Part<'a>) -> Result<Option<Stop>> {
        if part.finding.is_none() {
            if let Some(stop) = self.verified(p, part)? {
                return Ok(Some(stop));
            }
        }
        if part.finding.is_some() && self.a.allow_unverified {
            return self.unverified(p, part);
        }
        Ok(None)
    }

    fn verified(&mut self, p: u32, part: &mut Part<'a>) -> Result<Option<Stop>> {
        let topic = &self.a.topic;
        let mut reader = match part.reader.take() {
            Some(mut r) => {
                if !r.follow(self.log)? {
                    part.reader = Some(r);
                    return Ok(None);
                }
                r
            }
            None => {
                let r = VerifyingReader::open(self.log, topic, p, self.trust, part.next)?;
                match self.keyring {
                    Some(k) => r.with_keyring(k),
                    None => r,
                }
            }
        };
        for rec in reader.by_ref() {
            let rec = rec?;
            part.next = rec.offset + 1;
            if part.since.is_some_and(|ms| rec.item.timestamp_ms < ms) {
                continue;
            }
            part.since = None;
            self.unreadable.note(p, &rec);
            let line = self.verified_line(p, &rec)?;
            if let Some(stop) = self.print(&line)? {
                return Ok(Some(stop));
            }
        }
        if let Some(f) = reader.finding() {
            self.out.flush().or_else(broken_pipe)?;
            self.findings = true;
            part.finding = Some(f.kind.as_str().to_owned());
            part.next = part.next.max(f.offset);
            if self.a.json {
                eprintln!("{}", json!({"partition": p, "finding": finding_json(f)}));
            } else {
                let rest = match self.a.allow_unverified {
                    true => "the records from there on are shown marked [UNVERIFIED]",
                    false => "nothing from there on is shown (--allow-unverified shows it marked)",
                };
                eprintln!("kchain: {topic}/{p}: finding: {f}; {rest}");
            }
        } else {
            part.reader = Some(reader);
        }
        Ok(None)
    }

    /// The records of `p` from `part.next` to its end, read without verification.
    fn unverified(&mut self, p: u32, part: &mut Part<'a>) -> Result<Option<Stop>> {
        let end = self.log.end_offset(&self.a.topic, p)?;
        let mut reader = self.log.reader(&self.a.topic, p, part.next)?;
        let finding = part.finding.clone().unwrap_or_default();
        while part.next < end {
            let recs = reader.poll(1024, Duration::from_millis(500))?;
            if recs.is_empty() {
                break;
            }
            for r in recs {
                part.next = r.offset + 1;
                let item = application_item(&r.record);
                let line = self.unverified_line(p, r.offset, &item, &finding)?;
                if let Some(stop) = self.print(&line)? {
                    return Ok(Some(stop));
                }
            }
        }
        Ok(None)
    }

    /// Prints one record's line; says why to stop, if it is time to.
    fn print(&mut self, line: &[u8]) -> Result<Option<Stop>> {
        if let Err(e) = self.out.write_all(line) {
            broken_pipe(e)?;
        }
        self.printed += 1;
        if self.a.count.is_some_and(|n| self.printed >= n) {
            return Ok(Some(Stop::Count));
        }
        Ok(crate::stop::requested().map(|_| Stop::Signal))
    }

    fn verified_line(&self, p: u32, rec: &VerifiedRecord) -> Result<Vec<u8>> {
        if self.a.json {
            return Ok(format!("{}\n", record_json(p, rec)?).into_bytes());
        }
        let unreadable;
        let value = match rec.value() {
            Ok(v) => v,
            Err(d) => {
                unreadable = placeholder(d);
                Some(unreadable.as_bytes())
            }
        };
        Ok(self.text.render(&Shown {
            topic: &self.a.topic,
            partition: p,
            offset: rec.offset,
            timestamp_ms: rec.item.timestamp_ms,
            key: rec.item.key.as_deref(),
            value,
            headers: &rec.item.headers,
            verified: true,
        }))
    }

    fn unverified_line(&self, p: u32, offset: u64, item: &Item, finding: &str) -> Result<Vec<u8>> {
        if self.a.json {
            return Ok(format!("{}\n", unverified_json(p, offset, item, finding)?).into_bytes());
        }
        let encrypted = item.headers.iter().any(|(k, _)| k == H_ENC);
        let value = match encrypted {
            true => Some(&b"<encrypted: not decrypted, the record did not verify>"[..]),
            false => item.value.as_deref(),
        };
        Ok(self.text.render(&Shown {
            topic: &self.a.topic,
            partition: p,
            offset,
            timestamp_ms: item.timestamp_ms,
            key: item.key.as_deref(),
            value,
            headers: &item.headers,
            verified: false,
        }))
    }
}

/// A stored record as the application wrote it: kchain's own headers left out.
fn application_item(r: &kchain_log::Record) -> Item {
    Item {
        key: r.key.clone(),
        value: r.value.clone(),
        headers: r
            .headers
            .iter()
            .filter(|h| !kchain_core::is_chain_header(&h.name))
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        timestamp_ms: r.timestamp_ms,
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
