//! The multi-organisation part of `kchain demo`: one organisation writes a chained topic and
//! publishes signed checkpoints, two others witness them, and an outsider who trusts none of
//! them alone (a policy of two cosignatures) checks a record offline and catches the broker's
//! operator truncating and rewriting the topic, and truncating it with the covering
//! checkpoints deleted (caught by the checkpoint the outsider remembers from an earlier run).
//!
//! ```text
//!  acme (writer) ──records──▶ <topic>          ──checkpoints──▶ <topic>.checkpoints
//!                                                                   ▲        ▲
//!                               beta (witness) ── cosignatures ─────┘        │
//!                               gamma (witness) ── cosignatures ─────────────┘
//!  outsider: trust.toml = acme's key + beta's and gamma's keys + "2 cosignatures"
//!            proof.json ──▶ checked with no log and no broker
//!  operator: truncates / rewrites (with a stolen copy of acme's key) ──▶ caught by checkpoints
//!            truncates and deletes the newer checkpoints ──▶ caught by the outsider's memory
//! ```
//!
//! Uses only the library API, so it runs on either backend; the operator's altered copies are
//! embedded logs in the demo's scratch directory.

use std::path::Path;

use anyhow::{bail, Context, Result};
use kchain_core::{
    verify_inclusion_proof, Checkpoint, CheckpointTrust, Cosigner, InclusionProofFile, Item,
    SignedNote, Trust, TrustedWriter, Witness, WriterKey, DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
use kchain_topic::checkpoints::{
    check_checkpoints_with, checkpoints_topic, prove_inclusion, read_checkpoints, witness_pass,
    WitnessEvent,
};
use kchain_topic::files::{write_trust_file, CheckpointStore};
use kchain_topic::tamper::{copy_topic_with, forge_after};
use kchain_topic::{
    ChainWriter, CheckOptions, CheckpointOptions, CheckpointReport, TopicVerifier, WriterOptions,
};

/// Events acme writes; a checkpoint every `EVERY` of them.
const EVENTS: u64 = 2_000;
const EVERY: u64 = 500;
/// The record the outsider asks about.
const ASKED: u64 = 1_234;
/// What the operator does: drop the last `CUT` events (a whole signed batch, so that the
/// chain alone still verifies); rewrite from `REWRITE_FROM` on.
const CUT: u64 = 250;
const REWRITE_FROM: u64 = 1_500;

fn event(i: u64) -> Item {
    let value = format!(
        "{{\"seq\":{i},\"container\":\"MSCU{:07}\",\"event\":\"{}\",\"port\":\"{}\"}}",
        1_000_000 + i * 7 % 9_000_000,
        ["gate_in", "loaded", "departed", "arrived", "discharged"][(i % 5) as usize],
        ["Rotterdam", "Singapore", "Shanghai", "Santos", "Durban"][(i * 3 % 5) as usize]
    );
    Item {
        key: Some(format!("MSCU{:07}", 1_000_000 + i * 7 % 9_000_000).into_bytes()),
        value: Some(value.into_bytes()),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        timestamp_ms: 1_767_225_600_000 + i as i64 * 1000,
    }
}

/// The verifier's view: the checkpoints, the chain, then the chain against the checkpoints
/// that meet the outsider's policy and (with `memory`) the one it remembers.
fn judge(
    log: &dyn Log,
    topic: &str,
    trust: &Trust,
    ct: &CheckpointTrust,
    memory: &CheckOptions,
) -> Result<(bool, CheckpointReport)> {
    let notes = read_checkpoints(log, topic)?;
    let chain = TopicVerifier::new(trust).verify_chains(log, topic)?;
    let checkpoints = check_checkpoints_with(log, &chain, trust, ct, &notes, memory)?;
    Ok((chain.ok(), checkpoints))
}

/// A verifier with no memory of earlier runs.
fn forgetful() -> CheckOptions {
    CheckOptions {
        store: None,
        backend: "demo".into(),
        handed: Vec::new(),
        ..CheckOptions::default()
    }
}

/// The keys of the three organisations.
struct Orgs {
    acme: WriterKey,
    beta: Cosigner,
    gamma: Cosigner,
}

/// What the outsider holds: a trust file and the checkpoint it remembers.
struct Outsider {
    dir: std::path::PathBuf,
    trust: Trust,
    ct: CheckpointTrust,
    memory: CheckOptions,
}

/// Runs the tour on `log` with the chained topic `topic`, keeping each organisation's files
/// under `dir`. Prints the story; returns true when every step behaved as expected.
pub fn tour(log: &dyn Log, dir: &Path, topic: &str) -> Result<bool> {
    println!(
        "\nThree organisations: a writer, two witnesses, and an outsider who trusts none alone\n"
    );
    let orgs = keys(topic)?;
    write(log, topic, &orgs.acme)?;
    let mut ok = witness(log, dir, topic, &orgs)?;
    let outsider = outsider(dir, topic, &orgs)?;
    ok &= first_verify(log, topic, &outsider)?;
    ok &= offline_proof(log, topic, &outsider)?;
    ok &= operator_attacks(log, dir, topic, &orgs, &outsider)?;
    println!(
        "   {}",
        if ok {
            "all caught: two witnesses and a remembered checkpoint make a log nobody can quietly cut or rewrite"
        } else {
            "NOT ALL CAUGHT"
        }
    );
    if !ok {
        bail!("the multi-organisation demo did not behave as expected");
    }
    Ok(ok)
}

/// Step 1: Keys, one organisation each.
fn keys(topic: &str) -> Result<Orgs> {
    let acme = WriterKey::generate("acme");
    let beta = Cosigner::generate("witness.beta.example")?;
    let gamma = Cosigner::generate("witness.gamma.example")?;
    println!("1. Keys: acme writes `{topic}`; beta and gamma run witnesses");
    println!("     acme  writer key id {}", acme.id());
    println!("     beta  {}", beta.verifier().to_vkey());
    println!("     gamma {}", gamma.verifier().to_vkey());
    Ok(Orgs { acme, beta, gamma })
}

/// Step 2: acme writes, publishing a signed checkpoint every EVERY events and on flush.
fn write(log: &dyn Log, topic: &str, acme: &WriterKey) -> Result<()> {
    log.create_topic(topic, &TopicConfig::default())?;
    let options = CheckpointOptions {
        every_entries: EVERY,
        ..CheckpointOptions::default()
    };
    let mut w = ChainWriter::open(log, topic, 0, acme, WriterOptions::default())?
        .with_checkpoints(log, options)?;
    for start in (0..EVENTS).step_by(250) {
        w.append((start..(start + 250).min(EVENTS)).map(event).collect())?;
    }
    w.flush()?;
    println!(
        "2. acme wrote {EVENTS} events and signed a checkpoint every {EVERY} to `{}`",
        checkpoints_topic(topic)
    );
    Ok(())
}

/// Step 3: each witness checks every new checkpoint against the last it cosigned; true when
/// both cosigned every checkpoint.
fn witness(log: &dyn Log, dir: &Path, topic: &str, orgs: &Orgs) -> Result<bool> {
    let mut ok = true;
    let writers = vec![orgs.acme.public().note_verifier(orgs.acme.name())?];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (name, cosigner) in [("beta", &orgs.beta), ("gamma", &orgs.gamma)] {
        let witness = Witness::new(cosigner.clone(), writers.clone());
        let state = dir.join(name).join("witness-state");
        let events = witness_pass(
            log,
            topic,
            &witness,
            &writers,
            &state,
            DEFAULT_ORIGIN_NAMESPACE,
            now,
        )?;
        let sizes: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                WitnessEvent::Cosigned { size, .. } => Some(size.to_string()),
                _ => None,
            })
            .collect();
        println!(
            "3. witness {name} checked consistency and cosigned sizes {}",
            sizes.join(", ")
        );
        ok &= sizes.len() as u64 == EVENTS / EVERY;
    }
    Ok(ok)
}

/// Step 4: The outsider's trust file: acme's key, both witnesses, two cosignatures needed.
fn outsider(dir: &Path, topic: &str, orgs: &Orgs) -> Result<Outsider> {
    let trust = Trust {
        writers: vec![TrustedWriter {
            name: orgs.acme.name().to_owned(),
            key: orgs.acme.public(),
            topics: vec![topic.to_owned()],
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    };
    let outsider = dir.join("outsider");
    std::fs::create_dir_all(&outsider)?;
    let trust_path = outsider.join("trust.toml");
    write_trust_file(&trust_path, &trust)?;
    let mut text = std::fs::read_to_string(&trust_path)?;
    text += &format!(
        "\n[[witness]]\nkey = \"{}\"\n\n[[witness]]\nkey = \"{}\"\n\n[policy]\nwitnesses = 2\n",
        orgs.beta.verifier().to_vkey(),
        orgs.gamma.verifier().to_vkey()
    );
    std::fs::write(&trust_path, &text)?;
    let ct = kchain_core::TrustFile::from_toml(&text)?
        .checkpoints
        .context("the trust file has a policy")?;
    println!(
        "4. The outsider's trust file {} needs acme's signature and 2 of 2 cosignatures",
        trust_path.display()
    );
    // The outsider remembers, outside the log, the newest checkpoint that met the policy.
    let memory = CheckOptions {
        store: Some(CheckpointStore::new(outsider.join("kchain-state"))),
        ..forgetful()
    };
    Ok(Outsider {
        dir: outsider,
        trust,
        ct,
        memory,
    })
}

/// Step 4, continued: The outsider's first verification, which it remembers.
fn first_verify(log: &dyn Log, topic: &str, o: &Outsider) -> Result<bool> {
    let (chain_ok, report) = judge(log, topic, &o.trust, &o.ct, &o.memory)?;
    let newest = report.partitions[0].newest.as_ref();
    println!(
        "   verify: chain {}, newest checkpoint meeting the policy: size {}, cosigned by {}",
        if chain_ok { "intact" } else { "NOT intact" },
        newest.map_or(0, |t| t.checkpoint.size()),
        newest.map_or("nobody".into(), |t| t
            .cosigners
            .iter()
            .map(|c| c.0.clone())
            .collect::<Vec<_>>()
            .join(" and "))
    );
    Ok(chain_ok && report.ok() && newest.is_some_and(|t| t.checkpoint.size() == EVENTS))
}

/// Step 5: one record proven to the outsider, who has no access to the log; the same proof
/// with one hash changed must fail.
fn offline_proof(log: &dyn Log, topic: &str, o: &Outsider) -> Result<bool> {
    let proof = prove_inclusion(log, topic, 0, ASKED, DEFAULT_ORIGIN_NAMESPACE)?;
    let proof_path = o.dir.join("proof.json");
    std::fs::write(&proof_path, serde_json::to_string_pretty(&proof)?)?;
    let from_disk: InclusionProofFile =
        serde_json::from_str(&std::fs::read_to_string(&proof_path)?)?;
    let policy = o.ct.policy(&o.trust, topic, 0)?;
    let mut ok = match verify_inclusion_proof(&from_disk, &policy) {
        Ok(v) => {
            let value = v
                .item
                .as_ref()
                .and_then(|i| i.value.as_deref())
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            println!(
                "5. Offline proof {}: record {ASKED} is entry {} of the checkpoint of size {} \
                 (cosigned by {})\n     {value}",
                proof_path.display(),
                v.index,
                v.checkpoint.checkpoint.size(),
                v.checkpoint.cosigners.len()
            );
            v.index == ASKED
        }
        Err(e) => {
            println!("5. Offline proof REJECTED: {e}");
            false
        }
    };
    let mut bent = from_disk.clone();
    bent.proof[0] = bent.proof[0].replacen(
        &bent.proof[0][..1],
        if bent.proof[0].starts_with('0') {
            "1"
        } else {
            "0"
        },
        1,
    );
    let refused = verify_inclusion_proof(&bent, &policy).is_err();
    println!(
        "   the same proof with one hash changed: {}",
        if refused { "rejected" } else { "ACCEPTED" }
    );
    ok &= refused;
    Ok(ok)
}

/// How the operator changes the records of the topic.
type Mutation<'a> = &'a dyn Fn(&mut Vec<kchain_log::Record>) -> Result<()>;

/// One altered copy of the topic made by the broker's operator (`mutate` on the records,
/// `keep_checkpoint` on the checkpoint sizes), judged like the real one.
#[allow(clippy::too_many_arguments)]
fn altered(
    log: &dyn Log,
    dir: &Path,
    topic: &str,
    o: &Outsider,
    name: &str,
    mutate: Mutation,
    keep_checkpoint: &dyn Fn(u64) -> bool,
    memory: &CheckOptions,
) -> Result<CheckpointReport> {
    let copy = EmbeddedLog::create(
        dir.join("operator").join(name.replace([' ', ','], "-")),
        EmbeddedOptions::default(),
    )?;
    let mut failed = None;
    copy_topic_with(log, &copy, topic, |_, records| {
        if let Err(e) = mutate(records) {
            failed = Some(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    copy_topic_with(log, &copy, &checkpoints_topic(topic), |_, records| {
        records.retain(|r| checkpoint_size(r).is_none_or(keep_checkpoint));
    })?;
    let (chain_ok, report) = judge(&copy, topic, &o.trust, &o.ct, memory)?;
    println!(
        "   {name}: the chain alone {}; against the cosigned checkpoints: {}",
        if chain_ok {
            "verifies"
        } else {
            "does not verify"
        },
        report.partitions[0]
            .finding
            .as_ref()
            .map_or("nothing found".to_owned(), |f| format!(
                "{} ({})",
                f.kind.as_str(),
                f.detail
            ))
    );
    Ok(report)
}

/// Step 6: the broker's operator alters the topic four ways; true when each is caught as
/// it should be.
fn operator_attacks(
    log: &dyn Log,
    dir: &Path,
    topic: &str,
    orgs: &Orgs,
    o: &Outsider,
) -> Result<bool> {
    println!("6. The broker's operator alters the topic");
    let forgetful = forgetful();
    let operator =
        |name: &str, mutate: Mutation, keep: &dyn Fn(u64) -> bool, memory: &CheckOptions| {
            altered(log, dir, topic, o, name, mutate, keep, memory)
        };
    let cut = |records: &mut Vec<kchain_log::Record>| {
        records.truncate((EVENTS - CUT) as usize);
        Ok(())
    };
    let all = |_| true;
    let truncated = operator("truncation", &cut, &all, &forgetful)?;
    let stolen = &orgs.acme;
    let rewritten = operator(
        "rewrite",
        &|records| {
            // From REWRITE_FROM on, other events, every hash recomputed and signed with a copy of
            // acme's key: nothing in the chain itself gives it away.
            records.truncate(REWRITE_FROM as usize);
            for i in REWRITE_FROM..EVENTS {
                let mut item = event(i);
                item.value = Some(format!("{{\"seq\":{i},\"event\":\"rewritten\"}}").into_bytes());
                let last = records.last().expect("records before the rewrite");
                let forged = forge_after(topic, 0, last, item, Some(stolen))?;
                records.push(forged);
            }
            Ok(())
        },
        &all,
        &forgetful,
    )?;
    // Suppression: the same cut, and every checkpoint that covers the cut records deleted
    // from the checkpoints topic too. The log alone is now a consistent, shorter story; the
    // checkpoint the outsider remembers from step 4 is not in it.
    let covers_only_what_is_left = |size: u64| size <= EVENTS - CUT;
    let suppressed = operator("suppression", &cut, &covers_only_what_is_left, &forgetful)?;
    let remembered = operator(
        "suppression, judged by the outsider who remembers",
        &cut,
        &covers_only_what_is_left,
        &o.memory,
    )?;
    let kind = |r: &CheckpointReport| r.partitions[0].finding.as_ref().map(|f| f.kind.as_str());
    Ok(kind(&truncated) == Some("checkpoint_truncated")
        && kind(&rewritten) == Some("checkpoint_rewritten")
        && kind(&suppressed).is_none()
        && kind(&remembered) == Some("checkpoint_rollback"))
}

/// The tree size of a record of a checkpoints topic (`None` when it is not a checkpoint).
fn checkpoint_size(r: &kchain_log::Record) -> Option<u64> {
    let note = SignedNote::parse(r.value.as_deref()?).ok()?;
    Some(Checkpoint::parse(note.text()).ok()?.size())
}
