//! `trust`: the trust file's writer keys and pins.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use kchain_core::checkpoint::SignatureType;
use kchain_core::{CheckpointTrust, NoteVerifier, Pin, PublicKey, Trust, TrustedWriter};
use kchain_topic::files::{read_trust_file, write_trust_file};
use kchain_topic::{inspect, TopicVerifier};
use serde_json::json;

use crate::global::{load_trust, log_identity, open_log, Global};
use crate::outcome::Outcome;
use crate::report::topic_text;

#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// Trust a writer's public key.
    Add {
        /// A name for the writer (shown in the trust file and in findings).
        name: String,
        /// The writer's key as `kchain pubkey` prints it: the C2SP verifier key
        /// `name+id+base64` (any NAME may be given: keys match by key material), or 64 hex
        /// digits (`kchain pubkey --hex`).
        public_key: String,
        /// Restrict the key to this topic (repeatable).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Print what was trusted as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Trust a witness: its cosignatures then count towards `trust policy --witnesses K`.
    AddWitness {
        /// The witness's C2SP verifier key (`name+id+base64`), as `kchain witness keygen`
        /// prints it.
        verifier_key: String,
        /// Where the witness is reached over HTTP (c2sp.org/tlog-witness): writers and sealers
        /// push their checkpoints there, `verify` and `monitor` fetch what it cosigned. Given
        /// again for a trusted witness, it sets (replaces) the URL.
        #[arg(long)]
        url: Option<String>,
        /// Print what was trusted as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Set the checkpoint policy: how many cosignatures of trusted witnesses a checkpoint
    /// needs, the namespace of checkpoint origins, and how fresh the newest cosignature
    /// must be while the chain grows.
    Policy {
        /// Cosignatures needed from distinct witnesses of `trust add-witness` (0: the
        /// writer's signature alone) [default: kept, else 0].
        #[arg(long, value_name = "K", required_unless_present = "max_age")]
        witnesses: Option<usize>,
        /// The freshness rule: entries past the newest trusted checkpoint are a finding
        /// (`checkpoint_stale`) unless a witness cosigned it within SECS seconds, which
        /// catches checkpoints kept from the witnesses while the log grows (0: no such rule)
        /// [default: kept].
        #[arg(long, value_name = "SECS")]
        max_age: Option<u64>,
        /// The origin namespace of the checkpoints (`<NAMESPACE>/<topic>/<partition>`)
        /// [default: kept, else kchain].
        #[arg(long)]
        namespace: Option<String>,
        /// Print the policy as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Verify a topic and pin each partition's genesis and current tip, so that later
    /// truncation or rewriting is caught.
    Pin {
        /// The chained topic to pin.
        topic: String,
        /// Pin only this partition [default: every partition].
        #[arg(long, short)]
        partition: Option<u32>,
        /// Print the pins as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Hold a topic's chains under another chain name: a topic restored (`archive restore
    /// --from ORIGINAL --to TOPIC`) or mirrored under a new name keeps the chain ids and
    /// checkpoint origins of the topic it was written to.
    Chain {
        /// The topic as it is named on this log.
        topic: String,
        /// The chain name: the topic name the chains were written under.
        #[arg(long = "name", value_name = "CHAIN", required_unless_present = "clear")]
        chain: Option<String>,
        /// Hold the topic under its own name again.
        #[arg(long, conflicts_with = "chain")]
        clear: bool,
        /// Print the result as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Print the trust file.
    Show {
        /// Print the whole trust file (witnesses and policy too) as one JSON line.
        #[arg(long)]
        json: bool,
    },
}

/// A writer's public key as `trust add` takes it: a C2SP verifier key (`name+id+base64`,
/// Ed25519) or 64 hex digits, with an error that says which form was meant and what is wrong.
fn parse_writer_key(text: &str) -> Result<PublicKey> {
    let text = text.trim();
    if text.contains('+') {
        let v =
            NoteVerifier::parse(text).map_err(|e| anyhow::anyhow!("verifier key '{text}': {e}"))?;
        if v.kind() != SignatureType::Ed25519 {
            anyhow::bail!(
                "verifier key '{text}' is a witness key (cosignature/v1): add it with `kchain \
                 trust add-witness`"
            );
        }
        return Ok(PublicKey::from_hex(&kchain_core::to_hex(v.public_key()))?);
    }
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!(
            "public key '{text}': expected the verifier key `kchain pubkey` prints \
             (name+id+base64) or 64 hex digits, got {} characters",
            text.chars().count()
        );
    }
    PublicKey::from_hex(text).map_err(|_| {
        anyhow::anyhow!(
            "public key '{text}': 64 hex digits, but not an Ed25519 public key (copy it again \
             from `kchain pubkey`)"
        )
    })
}

pub fn trust(g: &Global, cmd: TrustCmd) -> Result<Outcome> {
    match cmd {
        TrustCmd::Add {
            name,
            public_key,
            topics,
            json,
        } => {
            let key = parse_writer_key(&public_key)?;
            let mut trust = load_or_new_trust(g)?;
            trust.add_writer(TrustedWriter {
                name: name.clone(),
                key,
                topics,
            });
            write_trust_file(&g.trust_path(), &trust)?;
            let path = g.trust_path();
            if json {
                println!(
                    "{}",
                    json!({"trusted": "writer", "name": name, "key_id": key.id().to_string(),
                           "trust_file": path.display().to_string()})
                );
            } else {
                println!("trusted key {} in {}", key.id(), path.display());
            }
            Ok(Outcome::Clean)
        }
        TrustCmd::AddWitness {
            verifier_key,
            url,
            json,
        } => add_witness(g, &verifier_key, url.as_deref(), json),
        TrustCmd::Policy {
            witnesses,
            max_age,
            namespace,
            json,
        } => policy(g, witnesses, max_age, namespace, json),
        TrustCmd::Show { json: false } => {
            print!("{}", load_trust(g)?.to_toml());
            Ok(Outcome::Clean)
        }
        TrustCmd::Show { json: true } => {
            load_trust(g)?;
            let table = read_table(&g.trust_path())?;
            println!("{}", serde_json::to_string(&table)?);
            Ok(Outcome::Clean)
        }
        TrustCmd::Pin {
            topic,
            partition,
            json,
        } => pin(g, &topic, partition, json),
        TrustCmd::Chain {
            topic, chain, json, ..
        } => chain_name(g, &topic, chain.as_deref(), json),
    }
}

pub(crate) fn load_or_new_trust(g: &Global) -> Result<Trust> {
    let path = g.trust_path();
    Ok(if path.exists() {
        read_trust_file(&path)?
    } else {
        Trust::default()
    })
}

/// Sets (or clears) the chain name `topic` is held under.
fn chain_name(g: &Global, topic: &str, chain: Option<&str>, json: bool) -> Result<Outcome> {
    let mut trust = load_or_new_trust(g)?;
    trust.set_chain_name(topic, chain);
    write_trust_file(&g.trust_path(), &trust)?;
    let name = trust.chain_name(topic);
    if json {
        println!("{}", json!({"topic": topic, "chain": name}));
    } else {
        println!("{topic}: chains held under the chain name {name}");
    }
    Ok(Outcome::Clean)
}

/// Verifies the topic, then pins each partition's genesis and tip.
fn pin(g: &Global, topic: &str, partition: Option<u32>, json: bool) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let log_id = log_identity(g, log.as_ref());
    let mut trust = load_trust(g)?;
    // Held to the pins of this log only: a pin of the same topic on another log names
    // another chain.
    let mut verifier = TopicVerifier::new(&trust).log(log_id.clone());
    if let Some(p) = partition {
        verifier = verifier.partitions(&[p]);
    }
    let report = verifier.verify_chains(log.as_ref(), topic)?;
    if !report.ok() {
        print!("{}", topic_text(&report));
        eprintln!("kchain: not pinning a topic that does not verify");
        return Ok(Outcome::Findings);
    }
    let mut pinned = Vec::new();
    for p in &report.partitions {
        let Some(tip) = p.summary.tip else {
            if !json {
                println!("{topic}/{}: empty, nothing to pin", p.partition);
            }
            pinned.push(json!({"partition": p.partition, "tip_height": null, "tip_hash": null}));
            continue;
        };
        // The genesis hash as `inspect` computes it (from the topic name); under another
        // chain name only the tip, which the verifier computed under that name, is pinned.
        let genesis = match trust.chain_of(topic) {
            Some(_) => None,
            None => inspect(log.as_ref(), topic, p.partition, p.start_offset, 1)?
                .first()
                .and_then(|r| r.hash),
        };
        trust.set_pin(Pin {
            topic: topic.to_owned(),
            partition: p.partition,
            genesis,
            tip: Some((tip.height, tip.hash)),
            log: Some(log_id.clone()),
        });
        let hash = kchain_core::to_hex(&tip.hash);
        if !json {
            println!(
                "{topic}/{}: pinned tip height {} hash {hash}",
                p.partition, tip.height
            );
        }
        pinned.push(json!({"partition": p.partition, "tip_height": tip.height, "tip_hash": hash}));
    }
    // The partition count is pinned too: a log that later reports fewer partitions (a
    // metadata file edited, a topic recreated) is hiding some.
    let partitions = log.topic(topic)?.partitions;
    trust.set_topic_pin_on(topic, partitions, Some(&log_id));
    write_trust_file(&g.trust_path(), &trust)?;
    if json {
        println!(
            "{}",
            json!({"topic": topic, "partition_count": partitions, "partitions": pinned,
                   "log": log_id})
        );
    } else {
        println!(
            "{topic}: pinned {partitions} partition(s) on {}",
            kchain_topic::describe_log(&log_id)
        );
    }
    Ok(Outcome::Clean)
}

/// The trust file as a TOML table (an empty trust when there is no file yet).
fn read_table(path: &Path) -> Result<toml::Table> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Trust::default().to_toml(),
        Err(e) => return Err(e).with_context(|| format!("reading trust file {}", path.display())),
    };
    text.parse()
        .with_context(|| format!("trust file {}", path.display()))
}

/// Changes the checkpoint half of the trust file (`[[witness]]`, `[policy]`, which
/// [`Trust`] does not hold) with `edit`, checks the result as a verifier would read it, and
/// writes it back in the usual layout. Returns the new checkpoint half.
fn edit_checkpoint_half(
    g: &Global,
    edit: impl FnOnce(&mut toml::Table) -> Result<()>,
) -> Result<CheckpointTrust> {
    let path = g.trust_path();
    let mut table = read_table(&path)?;
    edit(&mut table)?;
    let text = toml::to_string(&table)?;
    let file = kchain_core::TrustFile::from_toml(&text)
        .with_context(|| format!("trust file {}", path.display()))?;
    let (trust, ct) = (file.trust, file.checkpoints.unwrap_or_default());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    write_trust_file(&path, &trust)?;
    Ok(ct)
}

/// `trust add-witness VKEY`.
fn add_witness(g: &Global, vkey: &str, url: Option<&str>, json: bool) -> Result<Outcome> {
    let vkey = vkey.trim().to_owned();
    if let Some(url) = url {
        if !kchain_core::is_witness_url(url) {
            bail!("--url {url:?} is not an http:// or https:// URL");
        }
    }
    let mut already = false;
    let ct = edit_checkpoint_half(g, |t| {
        let list = t
            .entry("witness")
            .or_insert_with(|| toml::Value::Array(Vec::new()))
            .as_array_mut()
            .context("[[witness]] in the trust file is not a list")?;
        let existing = list
            .iter_mut()
            .find(|w| w.get("key").and_then(|k| k.as_str()).map(str::trim) == Some(&vkey));
        already = existing.is_some();
        let entry = match existing {
            Some(w) => w,
            None => {
                let mut w = toml::Table::new();
                w.insert("key".into(), vkey.clone().into());
                list.push(w.into());
                list.last_mut().expect("just pushed")
            }
        };
        if let (Some(url), Some(table)) = (url, entry.as_table_mut()) {
            table.insert("url".into(), url.into());
        }
        Ok(())
    })?;
    let path = g.trust_path();
    if json {
        println!(
            "{}",
            json!({"trusted": "witness", "verifier_key": vkey, "url": url, "already": already,
                   "witnesses": ct.witnesses.len(), "threshold": ct.threshold,
                   "trust_file": path.display().to_string()})
        );
    } else if already && url.is_some() {
        println!("witness already trusted in {}; url set", path.display());
    } else if already {
        println!("witness already trusted in {}", path.display());
    } else {
        println!(
            "trusted witness {} in {} ({} witness(es); checkpoints need {} cosignature(s): \
             `kchain trust policy --witnesses K` to change)",
            vkey.split('+').next().unwrap_or_default(),
            path.display(),
            ct.witnesses.len(),
            ct.threshold
        );
    }
    Ok(Outcome::Clean)
}

/// `trust policy [--witnesses K] [--max-age SECS] [--namespace NS]`.
fn policy(
    g: &Global,
    witnesses: Option<usize>,
    max_age: Option<u64>,
    namespace: Option<String>,
    json: bool,
) -> Result<Outcome> {
    let ct = edit_checkpoint_half(g, |t| {
        let policy = t
            .entry("policy")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .context("[policy] in the trust file is not a table")?;
        if let Some(k) = witnesses {
            policy.insert("witnesses".into(), toml::Value::Integer(k as i64));
        }
        match max_age {
            Some(0) => {
                policy.remove("max_age");
            }
            Some(secs) => {
                let secs = i64::try_from(secs).context("--max-age is too large")?;
                policy.insert("max_age".into(), toml::Value::Integer(secs));
            }
            None => {}
        }
        if let Some(ns) = namespace {
            policy.insert("namespace".into(), ns.into());
        }
        Ok(())
    })?;
    if ct.threshold > ct.witnesses.len() {
        crate::report::note_once(&format!(
            "the policy needs {} cosignature(s) but the trust file lists {} witness(es): no \
             checkpoint can meet it until more are added (`kchain trust add-witness`)",
            ct.threshold,
            ct.witnesses.len()
        ));
    }
    let path = g.trust_path();
    if json {
        println!(
            "{}",
            json!({"witnesses": ct.threshold, "namespace": ct.namespace,
                   "max_age": ct.max_age,
                   "trusted_witnesses": ct.witnesses.len(),
                   "trust_file": path.display().to_string()})
        );
    } else {
        let fresh = ct.max_age.map_or(String::new(), |s| {
            format!(", cosigned within {s} s while the chain grows")
        });
        println!(
            "checkpoint policy in {}: {} cosignature(s) of {} trusted witness(es), namespace \
             {}{fresh}",
            path.display(),
            ct.threshold,
            ct.witnesses.len(),
            ct.namespace
        );
    }
    Ok(Outcome::Clean)
}
