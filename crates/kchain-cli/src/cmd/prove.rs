//! `prove` and `verify-proof`: proof files of a record's inclusion or of two checkpoints'
//! consistency, checked offline.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use kchain_core::checkpoint::{split_origin, verify_proof_file, ProofVerdict};
use kchain_core::{
    decrypt_record, to_hex, Decryption, Item, Keyring, RecordPlace, SignedNote, TrustFile,
    TrustedCheckpoint, DEFAULT_ORIGIN_NAMESPACE, H_ENC,
};
use kchain_topic::checkpoints::{prove_consistency, prove_inclusion};
use kchain_topic::files::read_capped;
use serde_json::{json, Value};

use crate::cmd::crypt::verify_keyring;
use crate::global::{load_trust, open_log, Global};
use crate::outcome::Outcome;
use crate::report::{placeholder, proof_outcome, utc, write_output};

#[derive(Args, Debug)]
pub struct ProveArgs {
    /// The topic of the record to prove (not with --consistency).
    #[arg(
        required_unless_present = "consistency",
        conflicts_with = "consistency"
    )]
    pub topic: Option<String>,
    /// The offset of the record.
    #[arg(long, required_unless_present = "consistency")]
    pub offset: Option<u64>,
    /// The partition of the record.
    #[arg(long, short, default_value_t = 0)]
    pub partition: u32,
    /// Prove that checkpoint file OLD is a prefix of checkpoint file NEW.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    pub consistency: Option<Vec<PathBuf>>,
    /// The proof file to write (JSON), or `-` for standard output.
    #[arg(long, short_alias = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Prove from this archive (`kchain archive`) instead of the log: a record from its
    /// checkpoint, tiles and record bundle (--offset is then the record's height, its offset
    /// in a log that holds the chain from genesis), or --consistency from its tiles.
    #[arg(long, value_name = "URL")]
    pub archive: Option<String>,
    /// Origin namespace of the checkpoints: origins are <NAMESPACE>/<TOPIC>/<PARTITION>.
    #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
    pub namespace: String,
    /// Say what was written as one JSON line (with `--output -`, the proof itself as one
    /// line).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct VerifyProofArgs {
    /// An inclusion or consistency proof file.
    pub file: PathBuf,
    /// Print the verdict as one JSON line.
    #[arg(long)]
    pub json: bool,
}

pub fn prove(g: &Global, a: &ProveArgs) -> Result<Outcome> {
    let (kind, value) = match (&a.consistency, &a.topic, a.offset) {
        (Some(files), _, _) => {
            let old = read_note(&files[0])?;
            let new = read_note(&files[1])?;
            let file = match &a.archive {
                Some(url) => {
                    let store = kchain_archive::Store::open(url)?;
                    kchain_archive::prove_consistency(&store, &old, &new, &a.namespace)
                        .with_context(|| format!("proving consistency from {url}"))?
                }
                None => prove_consistency(open_log(g, false)?.as_ref(), &old, &new, &a.namespace)?,
            };
            ("consistency", serde_json::to_value(&file)?)
        }
        (None, Some(topic), Some(offset)) if a.archive.is_some() => {
            let url = a.archive.as_deref().unwrap_or_default();
            let store = kchain_archive::Store::open(url)?;
            let file = kchain_archive::prove_inclusion(&store, topic, a.partition, offset)
                .with_context(|| format!("proving {topic}/{} from {url}", a.partition))?;
            ("inclusion", serde_json::to_value(&file)?)
        }
        (None, Some(topic), Some(offset)) => {
            let log = open_log(g, false)?;
            let file = prove_inclusion(log.as_ref(), topic, a.partition, offset, &a.namespace)?;
            ("inclusion", serde_json::to_value(&file)?)
        }
        _ => bail!("give TOPIC --offset O, or --consistency OLD NEW"),
    };
    let to_stdout = a.output == Path::new("-");
    let text = if a.json && to_stdout {
        serde_json::to_string(&value)?
    } else {
        serde_json::to_string_pretty(&value)?
    };
    write_output(&a.output, &format!("{text}\n"))?;
    if to_stdout {
        return Ok(Outcome::Clean);
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"wrote": a.output.display().to_string(), "proof": kind,
                               "topic": a.topic, "partition": a.topic.as_ref().map(|_| a.partition),
                               "offset": a.offset})
        );
    } else {
        println!("wrote {}", a.output.display());
    }
    Ok(Outcome::Clean)
}

/// `verify-proof`: the proof file checked under the trust file by core's
/// [`verify_proof_file`], then what it proved (exit 0), or why not (exit 3).
pub fn verify_proof(g: &Global, a: &VerifyProofArgs) -> Result<Outcome> {
    let bytes = read_capped(&a.file, "proof file", MAX_PROOF_FILE_BYTES)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("proof file {} is not UTF-8", a.file.display()))?;
    let trust = load_trust_file(g)?;
    let keyring = verify_keyring(g)?;
    let verdict = verify_proof_file(&text, &trust)
        .with_context(|| format!("proof file {}", a.file.display()))?;
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => return Ok(proof_outcome(&a.file, a.json, Err(e.to_string()))),
    };
    let shown = proven(
        &verdict,
        trust.checkpoints_or_default().namespace.as_str(),
        keyring.as_ref(),
    );
    if a.json {
        let mut v = json!({"file": a.file.display().to_string(), "ok": true,
                           "result": verdict.to_string()});
        if let (Some(o), Some(shown)) = (v.as_object_mut(), shown.as_object()) {
            o.extend(shown.clone());
        }
        println!("{v}");
    } else {
        println!("{verdict}");
        print!("{}", proven_text(&shown));
    }
    Ok(Outcome::Clean)
}

/// The trust file as core reads it (writers, pins, witnesses, policy).
fn load_trust_file(g: &Global) -> Result<TrustFile> {
    let path = g.trust_path();
    if !path.exists() {
        // The same message as every other command's (`global::load_trust`).
        load_trust(g)?;
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading trust file {}", path.display()))?;
    TrustFile::from_toml(&text).with_context(|| format!("trust file {}", path.display()))
}

/// What a verified proof established, as structured fields: the checkpoint (origin, size,
/// root, writers, cosigners) and for an inclusion proof the record (topic, partition,
/// offset, height, key, value, timestamp, headers), its value decrypted with `keyring`.
fn proven(verdict: &ProofVerdict, namespace: &str, keyring: Option<&Keyring>) -> Value {
    match verdict {
        ProofVerdict::Consistency(v) => json!({
            "proof": "consistency",
            "old": checkpoint_fields(&v.old),
            "checkpoint": checkpoint_fields(&v.new),
        }),
        ProofVerdict::Inclusion(v) => {
            let place = split_origin(namespace, v.checkpoint.checkpoint.origin());
            let mut out = json!({
                "proof": "inclusion",
                "topic": place.map(|(t, _)| t),
                "partition": place.map(|(_, p)| p),
                "offset": v.offset,
                "height": v.index,
                "entry_hash": to_hex(&v.entry_hash),
                "checkpoint": checkpoint_fields(&v.checkpoint),
            });
            if let Some(item) = &v.item {
                record_fields(&mut out, item, place, v.index, keyring);
            }
            out
        }
    }
}

/// The checkpoint a proof was checked against.
fn checkpoint_fields(t: &TrustedCheckpoint) -> Value {
    let cosigners: Vec<Value> = t
        .cosigners
        .iter()
        .map(|(name, ts)| json!({"witness": name, "timestamp": ts}))
        .collect();
    json!({
        "origin": t.checkpoint.origin(),
        "size": t.checkpoint.size(),
        "root": to_hex(t.checkpoint.root()),
        "signed_by": t.writers,
        "cosigned_by": cosigners,
    })
}

/// The proven record's key, value (decrypted when it can be), timestamp and headers.
fn record_fields(
    out: &mut Value,
    item: &Item,
    place: Option<(&str, u32)>,
    height: u64,
    keyring: Option<&Keyring>,
) {
    out["key"] = bytes_json(item.key.as_deref());
    out["timestamp"] = json!(item.timestamp_ms);
    out["time"] = json!(utc(item.timestamp_ms));
    let headers = || item.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
    // Without a keyring (or a place to bind the value to), an empty one says which key
    // an encrypted value needs.
    let empty = Keyring::default();
    let (ring, place) = match (keyring, place) {
        (Some(ring), Some(place)) => (ring, place),
        (_, place) => (&empty, place.unwrap_or_default()),
    };
    let decryption = decrypt_record(
        ring,
        &RecordPlace::new(place.0, place.1, height),
        item.value.as_deref(),
        headers(),
    );
    match &decryption {
        Decryption::Plain => out["value"] = bytes_json(item.value.as_deref()),
        Decryption::Decrypted { key, value } => {
            out["value"] = bytes_json(Some(value));
            out["encryption"] = json!("decrypted");
            out["key_id"] = json!(key.to_string());
        }
        other => {
            out["value_shown"] = json!(placeholder(other));
            out["encryption"] = json!(other.as_str());
            out["key_id"] = json!(other.key().map(|k| k.to_string()));
        }
    }
    out["headers"] = item
        .headers
        .iter()
        .filter(|(k, _)| k != H_ENC)
        .map(|(k, v)| (k.clone(), bytes_json(Some(v))))
        .collect::<serde_json::Map<_, _>>()
        .into();
}

/// A key or value as JSON: a string when it is UTF-8, else `{"base64": ...}`.
fn bytes_json(b: Option<&[u8]>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => json!(s),
            Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
        },
    }
}

/// The fields of [`proven`] as the lines `verify-proof` prints under its verdict.
fn proven_text(v: &Value) -> String {
    let show = |x: &Value| match x {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut out = String::new();
    if v["proof"] == "inclusion" {
        out += &format!(
            "  record     {}/{} offset {} (height {})\n",
            show(&v["topic"]),
            show(&v["partition"]),
            show(&v["offset"]),
            show(&v["height"])
        );
        if v.get("timestamp").is_some() {
            let value = v.get("value").unwrap_or(&v["value_shown"]);
            out += &format!("  key        {}\n", show(&v["key"]));
            out += &format!("  value      {}\n", show(value));
            out += &format!(
                "  timestamp  {} ({} ms)\n",
                show(&v["time"]),
                show(&v["timestamp"])
            );
        }
    }
    let cp = &v["checkpoint"];
    let names = |list: &Value, field: Option<&str>| -> Vec<String> {
        list.as_array()
            .map(|a| a.iter().map(|x| show(field.map_or(x, |f| &x[f]))).collect())
            .unwrap_or_default()
    };
    let cosigners = names(&cp["cosigned_by"], Some("witness"));
    out += &format!(
        "  checkpoint {} size {}, signed by {}, cosigned by {}\n",
        show(&cp["origin"]),
        show(&cp["size"]),
        names(&cp["signed_by"], None).join(", "),
        if cosigners.is_empty() {
            "no witness".to_owned()
        } else {
            cosigners.join(", ")
        }
    );
    out
}

/// The most bytes of a proof file read: a proof holds at most 64 hashes and two notes, an
/// inclusion proof also the record itself (a Kafka record is at most a few MiB).
pub const MAX_PROOF_FILE_BYTES: u64 = 64 << 20;

fn read_note(path: &Path) -> Result<SignedNote> {
    let bytes = read_capped(
        path,
        "checkpoint",
        kchain_topic::files::MAX_CHECKPOINT_FILE_BYTES,
    )?;
    SignedNote::parse(&bytes).with_context(|| format!("checkpoint {}", path.display()))
}
