//! `prove` and `verify-proof`: proof files of a record's inclusion or of two checkpoints'
//! consistency, checked offline.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use kchain_core::{
    verify_consistency_proof, verify_inclusion_proof, Checkpoint, CheckpointTrust,
    ConsistencyProofFile, InclusionProofFile, Policy, SignedNote, Trust, DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_topic::{
    checkpoints::{prove_consistency, prove_inclusion, split_origin, writer_verifiers},
    files::read_capped,
};

use crate::cmd::anchors::read_checkpoint_trust;
use crate::global::{load_trust, open_log, Global};
use crate::outcome::Outcome;
use crate::report::{proof_outcome, write_output};

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
    let log = open_log(g, false)?;
    let (kind, value) = match (&a.consistency, &a.topic, a.offset) {
        (Some(files), _, _) => {
            let old = read_note(&files[0])?;
            let new = read_note(&files[1])?;
            let file = prove_consistency(log.as_ref(), &old, &new, &a.namespace)?;
            ("consistency", serde_json::to_value(&file)?)
        }
        (None, Some(topic), Some(offset)) => {
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

pub fn verify_proof(g: &Global, a: &VerifyProofArgs) -> Result<Outcome> {
    let bytes = read_capped(&a.file, "proof file", MAX_PROOF_FILE_BYTES)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("proof file {} is not UTF-8", a.file.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("proof file {} is not JSON", a.file.display()))?;
    let (trust, checkpoint_trust) = load_checkpoint_trust(g)?;
    let format = value["format"].as_str().unwrap_or_default();
    let result = if format == kchain_core::CONSISTENCY_PROOF_FORMAT {
        let file: ConsistencyProofFile = serde_json::from_value(value)
            .with_context(|| format!("proof file {}", a.file.display()))?;
        let policy = policy_for(&trust, &checkpoint_trust, &file.new)?;
        verify_consistency_proof(&file, &policy).map(|v| {
            format!(
                "consistent: {} size {} is a prefix of size {} (cosigned by {} witness(es))",
                v.new.checkpoint.origin(),
                v.old.checkpoint.size(),
                v.new.checkpoint.size(),
                v.new.cosigners.len()
            )
        })
    } else {
        let file: InclusionProofFile = serde_json::from_value(value)
            .with_context(|| format!("proof file {}", a.file.display()))?;
        let policy = policy_for(&trust, &checkpoint_trust, &file.checkpoint)?;
        verify_inclusion_proof(&file, &policy).map(|v| {
            format!(
                "included: entry {} at height {} is in {} of size {} signed by {} (cosigned by \
                 {} witness(es))",
                kchain_core::to_hex(&v.entry_hash),
                v.index,
                v.checkpoint.checkpoint.origin(),
                v.checkpoint.checkpoint.size(),
                v.checkpoint.writers.join(", "),
                v.checkpoint.cosigners.len()
            )
        })
    };
    Ok(proof_outcome(
        &a.file,
        a.json,
        result.map_err(|e| e.to_string()),
    ))
}

/// The trust file and its checkpoint half (no witnesses, no cosignature needed, namespace
/// `kchain` when it has none).
fn load_checkpoint_trust(g: &Global) -> Result<(Trust, CheckpointTrust)> {
    let trust = load_trust(g)?;
    let (_, ct) = read_checkpoint_trust(&g.trust_path())?;
    Ok((trust, ct.unwrap_or_default()))
}

/// The policy for the chain a checkpoint note names; when the note does not name one under
/// the trust file's namespace, one with every trusted writer, which the proof then fails.
fn policy_for(trust: &Trust, ct: &CheckpointTrust, note: &str) -> Result<Policy> {
    let origin = SignedNote::parse(note.as_bytes())
        .ok()
        .and_then(|n| Checkpoint::parse(n.text()).ok())
        .map(|c| c.origin().to_owned());
    if let Some((topic, partition)) = origin
        .as_deref()
        .and_then(|o| split_origin(&ct.namespace, o))
    {
        return Ok(ct.policy(trust, topic, partition)?);
    }
    let writers = writer_verifiers(trust, "");
    Ok(Policy::new(writers, ct.witnesses.clone(), ct.threshold)?)
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
