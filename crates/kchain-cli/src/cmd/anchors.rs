//! The anchors of `verify` and `ledger verify` outside the log: the trust file's checkpoint
//! half, checkpoints handed over as files, and the checkpoint a verifier remembers.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use kchain_core::{CheckpointTrust, SignedNote};
use kchain_topic::files::read_checkpoint_file;
use kchain_topic::CheckOptions;

use crate::global::{backend_identity, verifier_store, Global};

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
    /// Where to take checkpoints from, comma-separated: `topic` (the checkpoints topic),
    /// `witnesses` (each trust file witness with a url), `files` (--checkpoint FILE)
    /// [default: every one available].
    #[arg(
        long = "checkpoints-from",
        value_name = "SOURCES",
        value_delimiter = ',',
        value_enum
    )]
    pub checkpoints_from: Vec<CheckpointSource>,
}

/// A place checkpoints come from (`--checkpoints-from`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckpointSource {
    // The log's checkpoints topic, which its operator controls. (Plain comments: doc
    // comments here would turn `--help` into the long layout for every option.)
    Topic,
    // The witnesses of the trust file that have a url, over HTTP(S).
    Witnesses,
    // The files given with --checkpoint.
    Files,
}

/// What `--checkpoints-from` selects: the witnesses to fetch from and whether to leave the
/// checkpoints topic unread (files left out and given are refused). With no selection,
/// every source available: the topic, the witnesses with a url, the files given.
pub struct Sources {
    pub witnesses: Vec<std::sync::Arc<dyn kchain_core::RemoteWitness>>,
    pub ignore_topic: bool,
}

/// Resolves `--checkpoints-from` against the trust file's checkpoint half `ct` and the
/// `--checkpoint` files given.
pub fn checkpoint_sources(
    g: &Global,
    ct: Option<&CheckpointTrust>,
    from: &[CheckpointSource],
    files: &[PathBuf],
) -> Result<Sources> {
    let chosen = |s| from.is_empty() || from.contains(&s);
    let urls: Vec<String> = ct.map_or(Vec::new(), |c| {
        c.endpoints.iter().map(|e| e.url.clone()).collect()
    });
    if from.contains(&CheckpointSource::Witnesses) && urls.is_empty() {
        anyhow::bail!(
            "--checkpoints-from witnesses: no witness of the trust file has a url (`kchain              trust add-witness VKEY --url URL`)"
        );
    }
    if !chosen(CheckpointSource::Files) && !files.is_empty() {
        anyhow::bail!("--checkpoint FILE given, but --checkpoints-from leaves out files");
    }
    let witnesses = match chosen(CheckpointSource::Witnesses) && !urls.is_empty() {
        true => g.remote_witnesses(&urls)?,
        false => Vec::new(),
    };
    Ok(Sources {
        witnesses,
        ignore_topic: !chosen(CheckpointSource::Topic),
    })
}

/// The anchors of `ledger verify`: the remembered checkpoint (with `--trust FILE` or
/// `--state DIR`), the handed-over checkpoints, the witnesses to fetch from and whether to
/// read the checkpoints topic (`--checkpoints-from`), and whether a trusted checkpoint is
/// required (the trust file has a checkpoint policy).
pub fn ledger_anchors(g: &Global, a: &AnchorArgs) -> Result<kchain_ledger::CheckpointAnchors> {
    let ct = match &g.trust {
        Some(path) => read_checkpoint_trust(path)?.1,
        None => None,
    };
    let required = ct.is_some();
    let sources = checkpoint_sources(g, ct.as_ref(), &a.checkpoints_from, &a.checkpoints)?;
    let store =
        (g.trust.is_some() || a.state.is_some()).then(|| verifier_store(g, a.state.as_deref()));
    Ok(kchain_ledger::CheckpointAnchors {
        store,
        backend: backend_identity(g),
        handed: handed_checkpoints(&a.checkpoints)?,
        required,
        witnesses: kchain_topic::checkpoints::RemoteWitnesses(sources.witnesses),
        ignore_topic: sources.ignore_topic,
        now: None,
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

/// What `verify` holds a topic's chains to besides the trust file's writers and pins: the
/// checkpoint policy (`None` when the trust file has no `[[witness]]` or `[policy]` and no
/// `--checkpoint` was given), the remembered and handed-over checkpoints, and warnings about
/// where the remembered ones live.
pub struct VerifyAnchors {
    pub policy: Option<CheckpointTrust>,
    pub check: CheckOptions,
    pub warnings: Vec<String>,
}

/// The anchors of `kchain verify` on the log whose identity is `log_id`: the trust file's
/// checkpoint half, the checkpoints handed over (`--checkpoint FILE`) and the checkpoint
/// this verifier remembers (`--state DIR`).
pub fn verify_anchors(
    g: &Global,
    log_id: &str,
    state: Option<&Path>,
    handed: &[PathBuf],
) -> Result<VerifyAnchors> {
    let policy = match read_checkpoint_trust(&g.trust_path())?.1 {
        Some(ct) => Some(ct),
        None if !handed.is_empty() => Some(CheckpointTrust::default()),
        None => None,
    };
    let store = verifier_store(g, state);
    let mut warnings = Vec::new();
    if policy.is_some() && g.brokers.is_none() && is_inside(store.dir(), &g.data_dir) {
        warnings.push(format!(
            "the remembered checkpoints ({}) lie inside the data directory they protect: \
             whoever can roll the log back can roll them back too; keep them elsewhere \
             (--state DIR, or a trust file outside the data directory)",
            store.dir().display()
        ));
    }
    let check = CheckOptions {
        store: Some(store),
        backend: log_id.to_owned(),
        handed: handed_checkpoints(handed)?,
        ..CheckOptions::default()
    };
    Ok(VerifyAnchors {
        policy,
        check,
        warnings,
    })
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
