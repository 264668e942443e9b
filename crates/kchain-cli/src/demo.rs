//! `kchain demo`: a newcomer's tour on the embedded backend. Writes a realistic stream of
//! supply-chain events to a chained topic, verifies it, then plays an attacker with write
//! access to the log on copies of it and shows each change caught at its offset; then the
//! ledger (`demo_ledger.rs`) and three organisations sharing a topic through signed
//! checkpoints and witnesses (`demo_orgs.rs`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use kchain_core::{FindingKind, Item, Trust, TrustedWriter, WriterKey};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, Record, TopicConfig};
use kchain_topic::tamper::{copy_topic_with, forge_after};
use kchain_topic::{partition_for_key, verify_topic, ChainWriter, VerifyOptions, WriterOptions};

use crate::args::{DemoArgs, Global};
use crate::progress::Progress;
use crate::{open_log, Outcome};

/// The multi-organisation part (checkpoints, witnesses, an outsider's offline proof).
#[path = "demo_orgs.rs"]
mod orgs;

const TOPIC: &str = "shipments";
const PARTITIONS: u32 = 4;

/// A small deterministic generator, so that every run tells the same story.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const SITES: &[&str] = &[
    "Rotterdam DC",
    "Hamburg Port",
    "Antwerp Hub",
    "Lyon Cold Store",
    "Milan Crossdock",
    "Gdansk Terminal",
];
const EVENTS: &[&str] = &[
    "picked",
    "packed",
    "loaded",
    "scanned",
    "customs_cleared",
    "unloaded",
];
const GOODS: &[&str] = &[
    "vaccines",
    "insulin",
    "seafood",
    "berries",
    "electronics",
    "textiles",
];

fn event(rng: &mut Rng, i: u64, t0: i64) -> Item {
    let shipment = format!("SHP-{:06}", rng.next() % 20_000);
    let temp = (rng.next() % 90) as f64 / 10.0 - 1.0;
    let value = format!(
        "{{\"seq\":{i},\"shipment\":\"{shipment}\",\"event\":\"{}\",\"site\":\"{}\",\
         \"goods\":\"{}\",\"temp_c\":{temp:.1},\"handler\":\"emp-{:04}\",\"ts\":{}}}",
        rng.pick(EVENTS),
        rng.pick(SITES),
        rng.pick(GOODS),
        rng.next() % 5000,
        t0 + i as i64
    );
    Item {
        key: Some(shipment.into_bytes()),
        value: Some(value.into_bytes()),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        timestamp_ms: t0 + i as i64,
    }
}

struct Attack {
    name: &'static str,
    partition: u32,
    offset: u64,
    expect: FindingKind,
    caught: Option<(FindingKind, u64, String)>,
}

pub fn run(g: &Global, a: &DemoArgs) -> Result<Outcome> {
    if a.records < 1000 {
        bail!("--records must be at least 1000 for the demo's attacks to have room");
    }
    let (dir, temporary) = match &a.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("kchain-demo-{}", std::process::id())),
            true,
        ),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "demo directory {} is not empty; pass an empty --dir",
            dir.display()
        );
    }
    let result = if g.brokers.is_some() {
        let log = open_log(g, false)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        std::fs::create_dir_all(&dir)?;
        tour(a, log.as_ref(), &format!("{TOPIC}-{stamp}"), &dir, "Kafka")
    } else {
        open(&dir.join("log")).and_then(|log| tour(a, &log, TOPIC, &dir, "the embedded log"))
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn open(dir: &Path) -> Result<EmbeddedLog> {
    EmbeddedLog::create(
        dir,
        EmbeddedOptions {
            fsync: FsyncPolicy::IntervalMs(200),
            ..EmbeddedOptions::default()
        },
    )
    .with_context(|| format!("demo data directory {}", dir.display()))
}

fn tour(a: &DemoArgs, log: &dyn Log, topic: &str, dir: &Path, backend: &str) -> Result<Outcome> {
    let n = a.records;
    println!("kchain demo: tamper-evident event streams on {backend}\n");
    let key = WriterKey::generate("acme-logistics");
    let trust = Trust {
        writers: vec![TrustedWriter {
            name: key.name().into(),
            key: key.public(),
            topics: vec![topic.into()],
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    };
    log.create_topic(
        topic,
        &TopicConfig {
            partitions: PARTITIONS,
            ..TopicConfig::default()
        },
    )?;
    println!("1. Set up  {backend}, scratch space {}", dir.display());
    println!(
        "   writer key 'acme-logistics' (id {}), topic '{topic}' with {PARTITIONS} partitions",
        key.id()
    );

    // Write.
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let t0 = 1_763_683_200_000;
    let mut by_part: Vec<Vec<Item>> = vec![Vec::new(); PARTITIONS as usize];
    for i in 0..n {
        let it = event(&mut rng, i, t0);
        let p = partition_for_key(it.key.as_deref().unwrap_or_default(), PARTITIONS);
        by_part[p as usize].push(it);
    }
    let sample =
        String::from_utf8_lossy(by_part[0][0].value.as_deref().unwrap_or_default()).into_owned();
    let progress = Progress::new("writing", n);
    let started = Instant::now();
    for (p, items) in by_part.into_iter().enumerate() {
        let mut w = ChainWriter::open(log, topic, p as u32, &key, WriterOptions::default())?;
        for chunk in items.chunks(8192) {
            w.append(chunk.to_vec())?;
            progress.add(chunk.len() as u64);
        }
        w.flush()?;
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "\n2. Wrote {n} supply-chain events in {secs:.2} s ({:.0} records/s), keyed by shipment",
        n as f64 / secs
    );
    println!(
        "   each record is linked to the one before it; each batch is signed. e.g.\n   {sample}"
    );

    // Verify.
    let started = Instant::now();
    let progress = Progress::new("verifying", n);
    let report = verify_topic(log, topic, None, &trust, VerifyOptions::default(), &|k| {
        progress.add(k)
    })?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    if !report.ok() {
        bail!("the freshly written topic did not verify: {report:?}");
    }
    let entries: u64 = report.partitions.iter().map(|p| p.summary.entries).sum();
    println!(
        "\n3. Verified {entries} entries in {PARTITIONS} partitions in {secs:.2} s: every hash, \
         link and signature, 0 findings"
    );

    // Attack copies.
    println!(
        "\n4. An attacker with access to the log's files changes a copy of it, three ways, and \n   \
         one with producer access appends a forged record:"
    );
    let mut attacks = vec![
        Attack {
            name: "edit a payload (temperature)",
            partition: 2,
            offset: report.partitions[2].end_offset / 2,
            expect: FindingKind::PayloadChanged,
            caught: None,
        },
        Attack {
            name: "delete a record",
            partition: 1,
            offset: report.partitions[1].end_offset / 3,
            expect: FindingKind::Missing,
            caught: None,
        },
        Attack {
            name: "insert a forged record",
            partition: 3,
            offset: report.partitions[3].end_offset * 2 / 3,
            expect: FindingKind::Inserted,
            caught: None,
        },
    ];
    for (i, attack) in attacks.iter_mut().enumerate() {
        let copy_dir: PathBuf = dir.join(format!("attack-{i}"));
        let copy = open(&copy_dir)?;
        let (p, off) = (attack.partition, attack.offset as usize);
        let mut what = String::new();
        copy_topic_with(log, &copy, topic, |part, recs: &mut Vec<Record>| {
            if part != p {
                return;
            }
            match attack.expect {
                FindingKind::PayloadChanged => {
                    let v = recs[off].value.get_or_insert_with(Vec::new);
                    let text = String::from_utf8_lossy(v).into_owned();
                    let edited = edit_temperature(&text);
                    what = format!("temp_c {} -> 3.0", temp_of(&text));
                    *v = edited.into_bytes();
                }
                FindingKind::Missing => {
                    recs.remove(off);
                    what = "record removed".into();
                }
                _ => {
                    let fake = Item {
                        key: Some(b"SHP-999999".to_vec()),
                        value: Some(
                            b"{\"shipment\":\"SHP-999999\",\"event\":\"delivered\",\"temp_c\":4.0}"
                                .to_vec(),
                        ),
                        headers: Vec::new(),
                        timestamp_ms: recs[off - 1].timestamp_ms,
                    };
                    let forged = forge_after(topic, part, &recs[off - 1], fake, None)
                        .expect("the previous record is a chained record");
                    recs.insert(off, forged);
                    what = "fake 'delivered' event with a correct hash, no signature".into();
                }
            }
        })?;
        let r = verify_topic(
            &copy,
            TOPIC,
            None,
            &trust,
            VerifyOptions::default(),
            &|_| {},
        )?;
        let found = r
            .partitions
            .iter()
            .find_map(|pr| pr.summary.finding.clone().map(|f| (pr.partition, f)));
        println!(
            "   {}. {} at {topic}/{p} offset {off} ({what})",
            (b'a' + i as u8) as char,
            attack.name
        );
        match found {
            Some((fp, f)) => {
                println!("      caught: {topic}/{fp} {f}");
                attack.caught = Some((f.kind, f.offset, format!("{topic}/{fp}")));
            }
            None => println!("      NOT CAUGHT"),
        }
        drop(copy);
        let _ = std::fs::remove_dir_all(&copy_dir);
    }

    attacks.push(append_forgery(log, topic, &trust)?);

    println!();
    let ledger_ok = crate::demo_ledger::tour(log, &dir.join("ledger"), &format!("{topic}-ledger"))?;
    let orgs_ok = orgs::tour(log, &dir.join("orgs"), &format!("{topic}-orgs"))?;

    println!("\n7. Summary of the attacks on the chained topic");
    println!(
        "   {:<30} {:<14} {:<16} {:>9}  result",
        "attack", "where", "caught as", "offset"
    );
    let mut all = true;
    for at in &attacks {
        let (kind, off, ok) = match &at.caught {
            Some((k, o, _)) => (
                k.as_str(),
                o.to_string(),
                *k == at.expect && *o == at.offset,
            ),
            None => ("-", "-".into(), false),
        };
        all &= ok;
        println!(
            "   {:<30} {:<14} {:<16} {:>9}  {}",
            at.name,
            format!("p{}", at.partition),
            kind,
            off,
            if ok {
                "caught at the exact offset"
            } else {
                "MISSED"
            }
        );
    }
    println!(
        "\n   {n} events written and verified; {} of {} attacks caught at their exact offsets.",
        attacks
            .iter()
            .filter(|a| a
                .caught
                .as_ref()
                .is_some_and(|c| c.0 == a.expect && c.1 == a.offset))
            .count(),
        attacks.len()
    );
    println!("   Next: `kchain keygen`, `kchain topic create`, `kchain produce`, `kchain verify` (see README).");
    if !all {
        bail!("the demo's attacks were not all caught as expected");
    }
    if !ledger_ok {
        bail!("the demo's ledger did not behave as expected");
    }
    if !orgs_ok {
        bail!("the demo's organisations did not behave as expected");
    }
    Ok(Outcome::Clean)
}

/// Appends, in place and without the writer's key, a record that correctly links to the tip
/// of partition 0 (what a producer with write access to the topic could do), and verifies.
fn append_forgery(log: &dyn Log, topic: &str, trust: &Trust) -> Result<Attack> {
    let end = log.end_offset(topic, 0)?;
    let mut reader = log.reader(topic, 0, end - 1)?;
    let last = reader
        .poll(1, std::time::Duration::from_secs(10))?
        .pop()
        .context("reading the tip of partition 0")?;
    let fake = Item {
        key: Some(b"SHP-999999".to_vec()),
        value: Some(b"{\"shipment\":\"SHP-999999\",\"event\":\"delivered\"}".to_vec()),
        headers: Vec::new(),
        timestamp_ms: last.record.timestamp_ms + 1,
    };
    let forged = forge_after(topic, 0, &last.record, fake, None)?;
    let offset = log.appender(topic, 0)?.append(&[forged])?[0];
    println!(
        "   d. append a forged record at {topic}/0 offset {offset} (correct hash and link, no \
         signature)"
    );
    let r = verify_topic(
        log,
        topic,
        Some(&[0]),
        trust,
        VerifyOptions::default(),
        &|_| {},
    )?;
    let caught = r.partitions[0].summary.finding.clone().map(|f| {
        println!("      caught: {topic}/0 {f}");
        (f.kind, f.offset, format!("{topic}/0"))
    });
    if caught.is_none() {
        println!("      NOT CAUGHT");
    }
    Ok(Attack {
        name: "append a forged record",
        partition: 0,
        offset,
        expect: FindingKind::Unsigned,
        caught,
    })
}

fn temp_of(json: &str) -> String {
    json.split("\"temp_c\":")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("?")
        .to_owned()
}

fn edit_temperature(json: &str) -> String {
    let old = format!("\"temp_c\":{}", temp_of(json));
    let new = if old == "\"temp_c\":3.0" {
        "\"temp_c\":3.1"
    } else {
        "\"temp_c\":3.0"
    };
    json.replacen(&old, new, 1)
}
