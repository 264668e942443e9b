//! `checkpoint`, `prove`, `verify-proof`, and the checkpoint half of `verify --trust`.
//!
//! ```text
//! kchain checkpoint publish TOPIC [-p P]        sign and publish a checkpoint now
//! kchain checkpoint export TOPIC [-p P] -o FILE the newest checkpoint, as a signed note
//! kchain prove TOPIC --offset O [-p P] -o FILE  inclusion proof of one record
//! kchain prove --consistency OLD NEW -o FILE    consistency proof of two checkpoint files
//! kchain verify-proof FILE [--trust T]          offline: exit 0 valid, 3 not, 1 error
//! kchain witness keygen --name N --key FILE     a witness key (0600); prints its vkey
//! kchain witness run TOPIC --key FILE --state DIR [--until-idle]
//! kchain witness export --state DIR -o FILE      cosigned checkpoints, for --checkpoint FILE
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kchain_core::{
    verify_consistency_proof, verify_inclusion_proof, Checkpoint, CheckpointTrust,
    ConsistencyProofFile, Cosigner, InclusionProofFile, Policy, SignedNote, Trust, Witness,
    WitnessRefusal, DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_log::Log;
use kchain_topic::{
    check_checkpoints_with, newest_checkpoint, prove_consistency, prove_inclusion, read_capped,
    read_checkpoint_file, read_checkpoints, read_key_file, read_secret_file, split_origin,
    witness_export, witness_pass, write_secret_file, writer_verifiers, ChainWriter, CheckOptions,
    CheckpointOptions, CheckpointReport, CheckpointStore, TopicError, TopicReport, WitnessEvent,
    WriterOptions,
};

use crate::args::Global;
use crate::{load_trust, open_log, Outcome};

#[derive(Subcommand, Debug)]
pub enum CheckpointCmd {
    /// Sign a checkpoint of a partition's chain now and publish it to <TOPIC>.checkpoints.
    Publish {
        topic: String,
        #[arg(long, short, default_value_t = 0)]
        partition: u32,
        /// Origin namespace: origins are <NAMESPACE>/<TOPIC>/<PARTITION>.
        #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
        namespace: String,
    },
    /// Write the newest checkpoint of a partition (a signed note with every cosignature
    /// seen) to a file, or to standard output with `-o -`.
    Export {
        topic: String,
        #[arg(long, short, default_value_t = 0)]
        partition: u32,
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
        namespace: String,
    },
}

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
    #[arg(long, short, default_value_t = 0)]
    pub partition: u32,
    /// Prove that checkpoint file OLD is a prefix of checkpoint file NEW.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    pub consistency: Option<Vec<PathBuf>>,
    /// The proof file to write (JSON).
    #[arg(long, short)]
    pub output: PathBuf,
    #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
    pub namespace: String,
}

#[derive(Args, Debug)]
pub struct VerifyProofArgs {
    /// An inclusion or consistency proof file.
    pub file: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum WitnessCmd {
    /// Generate a witness key (C2SP signer key, mode 0600) and print its verifier key, the
    /// line verifiers put in a trust file's `[[witness]]`.
    Keygen {
        /// The key name, e.g. witness.example.com/w1 (no spaces, no '+').
        #[arg(long)]
        name: String,
        #[arg(long)]
        key: PathBuf,
    },
    /// Write the checkpoints this witness cosigned (one per chain, with its cosignature) to
    /// a file that verifiers pass with `verify --checkpoint FILE`: an anchor outside the log.
    Export {
        /// The witness's state directory (as given to `witness run`).
        #[arg(long)]
        state: PathBuf,
        /// The file to write, or `-` for standard output.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Follow TOPIC's checkpoints and cosign each one that extends the last this witness
    /// cosigned (writers trusted by the trust file); refuse forks, with an evidence file.
    Run {
        topic: String,
        #[arg(long)]
        key: PathBuf,
        /// Directory of the witness's state: the last cosigned checkpoint per origin, and
        /// evidence files.
        #[arg(long)]
        state: PathBuf,
        /// Stop once a pass over the checkpoints cosigns nothing new.
        #[arg(long)]
        until_idle: bool,
        /// TOPIC is a ledger's blocks topic (e.g. `demo.blocks`): witness the checkpoints
        /// its sealers sign, whose keys come from its genesis block.
        #[arg(long)]
        ledger: bool,
        /// Milliseconds between passes.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
        namespace: String,
    },
}

pub fn witness(g: &Global, cmd: WitnessCmd) -> Result<Outcome> {
    match cmd {
        WitnessCmd::Keygen { name, key } => {
            let cosigner = Cosigner::generate(&name)?;
            write_secret_file(&key, "key file", &format!("{}\n", cosigner.to_signer_key()))?;
            println!(
                "wrote witness key '{name}' to {} (mode 0600)",
                key.display()
            );
            println!("verifier key {}", cosigner.verifier().to_vkey());
            Ok(Outcome::Clean)
        }
        WitnessCmd::Export { state, output } => {
            let notes = witness_export(&state)?;
            if notes.is_empty() {
                bail!("{} holds no cosigned checkpoint", state.display());
            }
            write_output(&output, &kchain_core::bundle_to_json(&notes))?;
            if output != Path::new("-") {
                eprintln!(
                    "wrote {} cosigned checkpoint(s) to {}",
                    notes.len(),
                    output.display()
                );
            }
            Ok(Outcome::Clean)
        }
        WitnessCmd::Run {
            topic,
            key,
            state,
            until_idle,
            ledger,
            interval_ms,
            namespace,
        } => {
            let cosigner = read_witness_key(&key)?;
            let writers = if ledger {
                Vec::new()
            } else {
                writer_verifiers(&load_trust(g)?, &topic)
            };
            let witness = Witness::new(cosigner.clone(), writers.clone());
            let log = open_log(g, false)?;
            let mut outcome = Outcome::Clean;
            let mut alarmed = std::collections::HashSet::new();
            loop {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let events = if ledger {
                    kchain_ledger::witness_ledger_pass(
                        log.as_ref(),
                        &topic,
                        &cosigner,
                        &state,
                        &namespace,
                        now,
                    )?
                } else {
                    witness_pass(
                        log.as_ref(),
                        &topic,
                        &witness,
                        &writers,
                        &state,
                        &namespace,
                        now,
                    )?
                };
                let mut cosigned = 0;
                for e in &events {
                    match e {
                        WitnessEvent::Cosigned { origin, size } => {
                            cosigned += 1;
                            println!("cosigned {origin} size {size}");
                        }
                        WitnessEvent::Refused {
                            origin,
                            size,
                            refusal,
                        } => {
                            outcome = Outcome::Findings;
                            println!("REFUSED {origin} size {size}: {refusal}");
                            if let Some(path) = write_evidence(&state, origin, *size, refusal)? {
                                println!("  evidence: {}", path.display());
                            }
                        }
                        WitnessEvent::Skipped {
                            origin,
                            size,
                            reason,
                        } => println!("skipped {origin} size {size}: {reason}"),
                        WitnessEvent::Alarm {
                            origin,
                            size,
                            detail,
                            evidence,
                        } => {
                            outcome = Outcome::Findings;
                            // Long-running: alert once per origin, not on every pass.
                            if alarmed.insert(origin.clone()) {
                                println!("ALERT {origin} cosigned size {size}: {detail}");
                                if let Some(path) = evidence {
                                    println!("  evidence: {}", path.display());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                if until_idle && cosigned == 0 {
                    return Ok(outcome);
                }
                std::thread::sleep(std::time::Duration::from_millis(interval_ms));
            }
        }
    }
}

/// Writes a refusal's evidence as a consistency proof file (which fails verification the way
/// the witness saw it fail), for refusals that have evidence.
fn write_evidence(
    state: &Path,
    origin: &str,
    size: u64,
    refusal: &WitnessRefusal,
) -> Result<Option<PathBuf>> {
    let evidence = match refusal {
        WitnessRefusal::Fork { evidence, .. } | WitnessRefusal::Inconsistent { evidence, .. } => {
            evidence
        }
        _ => return Ok(None),
    };
    let file = ConsistencyProofFile::from(&**evidence);
    let path = state.join(format!(
        "evidence-{}-{size}.json",
        origin.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
            "_"
        )
    ));
    std::fs::write(&path, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(path))
}

/// Reads a witness key file, refusing one that others can read. Errors never show the key.
fn read_witness_key(path: &Path) -> Result<Cosigner> {
    let text = read_secret_file(path, "key file", |mode| TopicError::KeyPermissions {
        path: path.to_owned(),
        mode,
    })?;
    Cosigner::from_signer_key(text.trim())
        .map_err(|e| anyhow::anyhow!("key file {}: {e}", path.display()))
}

pub fn checkpoint(g: &Global, cmd: CheckpointCmd) -> Result<Outcome> {
    match cmd {
        CheckpointCmd::Publish {
            topic,
            partition,
            namespace,
        } => {
            let log = open_log(g, false)?;
            let key = read_key_file(&g.key_path())?;
            let options = CheckpointOptions {
                namespace,
                store: Some(signer_store(&g.key_path())),
                backend: backend_identity(g),
                ..CheckpointOptions::default()
            };
            let mut w = ChainWriter::open(
                log.as_ref(),
                &topic,
                partition,
                &key,
                WriterOptions::default(),
            )?
            .with_checkpoints(log.as_ref(), options)?;
            match w.checkpoint()? {
                Some(note) => print!("published\n{note}"),
                None => match w.last_checkpoint() {
                    Some(note) => print!("already published\n{note}"),
                    None => println!("{topic}/{partition} is empty: nothing to checkpoint"),
                },
            }
            Ok(Outcome::Clean)
        }
        CheckpointCmd::Export {
            topic,
            partition,
            output,
            namespace,
        } => {
            let log = open_log(g, false)?;
            let note = newest_checkpoint(log.as_ref(), &topic, partition, &namespace)?
                .with_context(|| format!("{topic}/{partition} has no checkpoint yet"))?;
            write_output(&output, &note.to_text())?;
            Ok(Outcome::Clean)
        }
    }
}

pub fn prove(g: &Global, a: &ProveArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    let json = match (&a.consistency, &a.topic, a.offset) {
        (Some(files), _, _) => {
            let old = read_note(&files[0])?;
            let new = read_note(&files[1])?;
            let file = prove_consistency(log.as_ref(), &old, &new, &a.namespace)?;
            serde_json::to_string_pretty(&file)?
        }
        (None, Some(topic), Some(offset)) => {
            let file = prove_inclusion(log.as_ref(), topic, a.partition, offset, &a.namespace)?;
            serde_json::to_string_pretty(&file)?
        }
        _ => bail!("give TOPIC --offset O, or --consistency OLD NEW"),
    };
    write_output(&a.output, &format!("{json}\n"))?;
    if a.output != Path::new("-") {
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

/// A trust file's text and its checkpoint half (`None` when it has no `[[witness]]` and no
/// `[policy]`).
pub(crate) fn read_checkpoint_trust(path: &Path) -> Result<(String, Option<CheckpointTrust>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading trust file {}", path.display()))?;
    let ct = kchain_core::TrustFile::from_toml(&text)
        .with_context(|| format!("trust file {}", path.display()))?
        .checkpoints;
    Ok((text, ct))
}

/// Prints the verdict on a proof file (`--json`: `{"file", "ok", "result"}`): exit 0 when it
/// holds, 3 when it does not.
pub(crate) fn proof_outcome(file: &Path, json: bool, verdict: Result<String, String>) -> Outcome {
    let (ok, message) = match verdict {
        Ok(m) => (true, m),
        Err(m) => (false, format!("PROOF INVALID: {m}")),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "file": file.display().to_string(), "ok": ok, "result": message })
        );
    } else {
        println!("{message}");
    }
    if ok {
        Outcome::Clean
    } else {
        Outcome::Findings
    }
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

/// The identity of the log `g` names, which keys remembered checkpoints: `embedded:<absolute
/// data directory>` or `kafka:<bootstrap list, sorted>`.
pub fn backend_identity(g: &Global) -> String {
    match &g.brokers {
        Some(b) => {
            let mut hosts: Vec<&str> = b
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .collect();
            hosts.sort_unstable();
            format!("kafka:{}", hosts.join(","))
        }
        None => {
            let dir = std::fs::canonicalize(&g.data_dir)
                .or_else(|_| std::path::absolute(&g.data_dir))
                .unwrap_or_else(|_| g.data_dir.clone());
            format!("embedded:{}", dir.display())
        }
    }
}

/// A verifier's remembered checkpoints: `--state DIR`, else `kchain-state/` beside the trust
/// file (an anchor lives where the trust file lives, not in the log).
pub fn verifier_store(g: &Global, state: Option<&Path>) -> CheckpointStore {
    CheckpointStore::new(match state {
        Some(dir) => dir.to_owned(),
        None => {
            let trust = g.trust_path();
            let dir = trust.parent().filter(|d| !d.as_os_str().is_empty());
            dir.unwrap_or(Path::new(".")).join("kchain-state")
        }
    })
}

/// A writer's or sealer's memory of the checkpoints it signed: `<key file>.checkpoints/`.
pub fn signer_store(key_file: &Path) -> CheckpointStore {
    let mut dir = key_file.as_os_str().to_owned();
    dir.push(".checkpoints");
    CheckpointStore::new(PathBuf::from(dir))
}

/// Rollback protection options of `ledger verify`.
#[derive(Args, Debug, Clone, Default)]
pub struct AnchorArgs {
    /// Where this verifier remembers the newest checkpoint that met its policy (rollback
    /// protection) [default with --trust: kchain-state/ beside the trust file].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// A checkpoint file handed over outside the log (`kchain witness export`): counts as
    /// if read from the log; repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
}

/// The anchors of `ledger verify`: the remembered checkpoint (with `--trust FILE` or
/// `--state DIR`), the handed-over checkpoints, and whether a trusted checkpoint is required
/// (the trust file has a checkpoint policy).
pub fn ledger_anchors(g: &Global, a: &AnchorArgs) -> Result<kchain_ledger::CheckpointAnchors> {
    let required = match &g.trust {
        Some(path) => read_checkpoint_trust(path)?.1.is_some(),
        None => false,
    };
    let store =
        (g.trust.is_some() || a.state.is_some()).then(|| verifier_store(g, a.state.as_deref()));
    Ok(kchain_ledger::CheckpointAnchors {
        store,
        backend: backend_identity(g),
        handed: handed_checkpoints(&a.checkpoints)?,
        required,
    })
}

/// The checkpoints handed over with `--checkpoint FILE` (repeatable).
pub fn handed_checkpoints(files: &[PathBuf]) -> Result<Vec<SignedNote>> {
    let mut notes = Vec::new();
    for f in files {
        notes.extend(read_checkpoint_file(f)?);
    }
    Ok(notes)
}

/// What `verify` reads of the checkpoints *before* it reads the chain, so that no checkpoint
/// published meanwhile can cover more than the chain it reads: the trust file's checkpoint
/// half and the checkpoint records. `None` when the trust file has no `[[witness]]` or
/// `[policy]` and no `--checkpoint` was given.
pub struct CheckpointsFirst {
    trust: CheckpointTrust,
    records: Vec<kchain_topic::CheckpointRecord>,
}

/// Reads the checkpoints of `topic` (see [`CheckpointsFirst`]).
pub fn read_first(
    g: &Global,
    log: &dyn Log,
    topic: &str,
    handed: &[PathBuf],
) -> Result<Option<CheckpointsFirst>> {
    let ct = match read_checkpoint_trust(&g.trust_path())?.1 {
        Some(ct) => ct,
        None if !handed.is_empty() => CheckpointTrust::default(),
        None => return Ok(None),
    };
    Ok(Some(CheckpointsFirst {
        trust: ct,
        records: read_checkpoints(log, topic)?,
    }))
}

/// The checkpoint half of `kchain verify --trust FILE`: the chain held against the
/// checkpoints read first, those handed over (`--checkpoint FILE`) and the checkpoint this
/// verifier remembers (`--state DIR`).
pub fn check(
    g: &Global,
    log: &dyn Log,
    report: &TopicReport,
    trust: &Trust,
    first: Option<CheckpointsFirst>,
    state: Option<&Path>,
    handed: &[PathBuf],
) -> Result<Option<CheckpointReport>> {
    let Some(first) = first else {
        return Ok(None);
    };
    let store = verifier_store(g, state);
    let mut warnings = Vec::new();
    if g.brokers.is_none() && is_inside(store.dir(), &g.data_dir) {
        warnings.push(format!(
            "the remembered checkpoints ({}) lie inside the data directory they protect: \
             whoever can roll the log back can roll them back too; keep them elsewhere \
             (--state DIR, or a trust file outside the data directory)",
            store.dir().display()
        ));
    }
    let options = CheckOptions {
        store: Some(store),
        backend: backend_identity(g),
        handed: handed_checkpoints(handed)?,
    };
    let mut checked =
        check_checkpoints_with(log, report, trust, &first.trust, &first.records, &options)?;
    checked.warnings.extend(warnings);
    Ok(Some(checked))
}

/// Whether `path` (which may not exist yet) lies inside `dir`.
fn is_inside(path: &Path, dir: &Path) -> bool {
    let real = |p: &Path| {
        // The longest existing ancestor, resolved, with the rest appended.
        let mut base = p.to_owned();
        let mut rest = Vec::new();
        while !base.exists() {
            match (base.file_name().map(|n| n.to_owned()), base.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name);
                    base = parent.to_owned();
                }
                _ => break,
            }
        }
        let mut out = std::fs::canonicalize(&base)
            .or_else(|_| std::path::absolute(&base))
            .unwrap_or(base);
        out.extend(rest.iter().rev());
        out
    };
    real(path).starts_with(real(dir))
}

/// A checkpoint report as JSON (the `checkpoints` member of `verify --json`).
pub fn report_json(r: &CheckpointReport) -> serde_json::Value {
    serde_json::json!({
        "ok": r.ok(),
        "warnings": r.warnings,
        "partitions": r.partitions.iter().map(|p| serde_json::json!({
            "partition": p.partition,
            "origin": p.origin,
            "entries": p.entries,
            "seen": p.seen,
            "untrusted": p.untrusted,
            "newest": p.newest.as_ref().map(|t| serde_json::json!({
                "size": t.checkpoint.size(),
                "root": kchain_core::to_hex(t.checkpoint.root()),
                "writers": t.writers,
                "cosigners": t.cosigners.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            })),
            "remembered": p.remembered.as_ref().map(|c| c.size()),
            "finding": p.finding.as_ref().map(|f| serde_json::json!({
                "kind": f.kind.as_str(),
                "offset": f.offset,
                "detail": f.detail,
                "evidence": f.evidence.iter().map(|n| n.to_text()).collect::<Vec<_>>(),
            })),
        })).collect::<Vec<_>>(),
    })
}

/// The most bytes of a proof file read: a proof holds at most 64 hashes and two notes, an
/// inclusion proof also the record itself (a Kafka record is at most a few MiB).
pub const MAX_PROOF_FILE_BYTES: u64 = 64 << 20;

fn read_note(path: &Path) -> Result<SignedNote> {
    let bytes = read_capped(path, "checkpoint", kchain_topic::MAX_CHECKPOINT_FILE_BYTES)?;
    SignedNote::parse(&bytes).with_context(|| format!("checkpoint {}", path.display()))
}

fn write_output(path: &Path, text: &str) -> Result<()> {
    if path == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
