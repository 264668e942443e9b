//! Step 4 and the summary of the demo's chained-topic tour: an attacker with write access to
//! the log changes copies of it (an edit, a deletion, an inserted forgery), one with
//! producer access appends a forged record in place, and each change must be caught at its
//! exact offset.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kchain_core::{FindingKind, Item, Trust};
use kchain_log::{Log, Record};
use kchain_topic::tamper::{copy_topic_with, forge_after};
use kchain_topic::{TopicReport, TopicVerifier};

use super::events::{edit_temperature, open_scratch, temp_of};

/// One attack: where it strikes, the finding it must cause, and the one it caused.
pub(crate) struct Attack {
    name: &'static str,
    partition: u32,
    offset: u64,
    expect: FindingKind,
    caught: Option<(FindingKind, u64, String)>,
}

impl Attack {
    /// Caught as expected, at the exact offset.
    fn caught_exactly(&self) -> bool {
        self.caught
            .as_ref()
            .is_some_and(|c| c.0 == self.expect && c.1 == self.offset)
    }
}

/// The three attacks on copies of the log, at places taken from the fresh `report`.
fn planned(report: &TopicReport) -> Vec<Attack> {
    let end = |p: usize| report.partitions[p].end_offset;
    vec![
        Attack {
            name: "edit a payload (temperature)",
            partition: 2,
            offset: end(2) / 2,
            expect: FindingKind::PayloadChanged,
            caught: None,
        },
        Attack {
            name: "delete a record",
            partition: 1,
            offset: end(1) / 3,
            expect: FindingKind::Missing,
            caught: None,
        },
        Attack {
            name: "insert a forged record",
            partition: 3,
            offset: end(3) * 2 / 3,
            expect: FindingKind::Inserted,
            caught: None,
        },
    ]
}

/// Step 4: every attack on its own copy of the log, then the forgery appended in place.
pub(crate) fn run_all(
    log: &dyn Log,
    topic: &str,
    dir: &Path,
    trust: &Trust,
    report: &TopicReport,
) -> Result<Vec<Attack>> {
    println!(
        "\n4. An attacker with access to the log's files changes a copy of it, three ways, and \n   \
         one with producer access appends a forged record:"
    );
    let mut attacks = planned(report);
    for (i, attack) in attacks.iter_mut().enumerate() {
        on_copy(
            log,
            topic,
            &dir.join(format!("attack-{i}")),
            trust,
            i,
            attack,
        )?;
    }
    attacks.push(append_forgery(log, topic, trust)?);
    Ok(attacks)
}

/// Changes `attack`'s partition in a copy of the topic made in `copy_dir`, verifies the
/// copy and records what was caught.
fn on_copy(
    log: &dyn Log,
    topic: &str,
    copy_dir: &PathBuf,
    trust: &Trust,
    i: usize,
    attack: &mut Attack,
) -> Result<()> {
    let copy = open_scratch(copy_dir)?;
    let (p, off) = (attack.partition, attack.offset as usize);
    let mut what = String::new();
    copy_topic_with(log, &copy, topic, |part, recs: &mut Vec<Record>| {
        if part == p {
            what = mutate(topic, part, recs, off, attack.expect);
        }
    })?;
    let r = TopicVerifier::new(trust).verify_chains(&copy, topic)?;
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
    let _ = std::fs::remove_dir_all(copy_dir);
    Ok(())
}

/// Makes the change that should cause `expect` at `off` of one partition's records; says
/// what it did.
fn mutate(
    topic: &str,
    part: u32,
    recs: &mut Vec<Record>,
    off: usize,
    expect: FindingKind,
) -> String {
    match expect {
        FindingKind::PayloadChanged => {
            let v = recs[off].value.get_or_insert_with(Vec::new);
            let text = String::from_utf8_lossy(v).into_owned();
            let edited = edit_temperature(&text);
            *v = edited.into_bytes();
            format!("temp_c {} -> 3.0", temp_of(&text))
        }
        FindingKind::Missing => {
            recs.remove(off);
            "record removed".into()
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
            "fake 'delivered' event with a correct hash, no signature".into()
        }
    }
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
    let r = TopicVerifier::new(trust)
        .partitions(&[0])
        .verify_chains(log, topic)?;
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

/// Step 7: the table of attacks; true when every one was caught at its exact offset.
pub(crate) fn summary(attacks: &[Attack], n: u64) -> bool {
    println!("\n7. Summary of the attacks on the chained topic");
    println!(
        "   {:<30} {:<14} {:<16} {:>9}  result",
        "attack", "where", "caught as", "offset"
    );
    for at in attacks {
        let (kind, off) = match &at.caught {
            Some((k, o, _)) => (k.as_str(), o.to_string()),
            None => ("-", "-".into()),
        };
        println!(
            "   {:<30} {:<14} {:<16} {:>9}  {}",
            at.name,
            format!("p{}", at.partition),
            kind,
            off,
            if at.caught_exactly() {
                "caught at the exact offset"
            } else {
                "MISSED"
            }
        );
    }
    let caught = attacks.iter().filter(|a| a.caught_exactly()).count();
    println!(
        "\n   {n} events written and verified; {caught} of {} attacks caught at their exact offsets.",
        attacks.len()
    );
    caught == attacks.len()
}
