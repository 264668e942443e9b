//! The checkpoint judge: one chain held against its signed checkpoints, written once for
//! chained topics and the ledger's blocks chain alike. Pure: the caller reads the notes, the
//! chain and its remembered state; the judge only decides.
//!
//! ```text
//!  notes from the log ─┐
//!  notes handed over ──┼─► merge by text (linear; only lines by known keys, verified once)
//!  (--checkpoint FILE) ┘        │
//!                               ▼
//!            trusted = those meeting the policy (k of n distinct witness keys)
//!                               │
//!   fork        two roots for one size, each signed by a trusted writer
//!   truncated   the newest trusted checkpoint covers more than the chain has
//!   rollback    the checkpoint this verifier remembers (state outside the log) is not
//!               consistent with the chain, and the log no longer shows one as new
//!   rewritten   the chain tree's root at a trusted size is not the signed root
//!   none        checkpoints are required, the chain has entries, and none is trusted
//! ```
//!
//! Every input is hostile except the policy and the remembered checkpoint: a record of the
//! checkpoints topic that carries no line by a key of the policy costs a lookup and is
//! dropped, a line by a listed key is verified at most once per text, and at most
//! [`MAX_NOTES_PER_CHAIN`] distinct texts are kept, so that anyone who can append to the
//! checkpoints topic can make the judge do no more than linear work.

use std::collections::HashMap;

use super::note::SignedNote;
use super::policy::{Policy, TrustedCheckpoint};
use super::text::Checkpoint;
use crate::hash::Hash;
use crate::hex::to_hex;

/// What is wrong between a chain and its checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckpointFindingKind {
    /// The chain is shorter than a trusted checkpoint: records were deleted from its end.
    Truncated,
    /// The chain's tree at a trusted checkpoint's size has another root: history was
    /// rewritten (even if every hash and signature was recomputed).
    Rewritten,
    /// A trusted writer signed two checkpoints of one chain that cannot both be true.
    Fork,
    /// The chain contradicts the checkpoint this verifier remembers from an earlier run (or
    /// one handed over by a witness), and the log no longer shows it: the log and its
    /// checkpoints were rolled back together.
    Rollback,
    /// Checkpoints are required, the chain has entries, and none meets the policy.
    NoTrustedCheckpoint,
    /// The chain holds entries past its newest trusted checkpoint, and no witness cosigned
    /// that checkpoint within the policy's `max_age`: checkpoints stopped reaching the
    /// witnesses (suppressed) while the chain grew. See [`stale`].
    Stale,
    /// Fewer witnesses answered than the policy's threshold, and nothing this verifier
    /// remembers vouches for the chain.
    WitnessesUnreachable,
}

impl CheckpointFindingKind {
    /// The stable machine name of this kind (used in `--json` output).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointFindingKind::Truncated => "checkpoint_truncated",
            CheckpointFindingKind::Rewritten => "checkpoint_rewritten",
            CheckpointFindingKind::Fork => "checkpoint_fork",
            CheckpointFindingKind::Rollback => "checkpoint_rollback",
            CheckpointFindingKind::NoTrustedCheckpoint => "no_trusted_checkpoint",
            CheckpointFindingKind::Stale => "checkpoint_stale",
            CheckpointFindingKind::WitnessesUnreachable => "witnesses_unreachable",
        }
    }
}

impl std::fmt::Display for CheckpointFindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A contradiction between a chain and its signed checkpoints, with the signed notes that
/// prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub kind: CheckpointFindingKind,
    /// The first height that a checkpoint vouches for and the chain lacks or changed: the
    /// chain's length for a truncation or rollback, the end of the largest matching smaller
    /// checkpoint for a rewrite; `None` for a fork or when nothing is trusted.
    pub height: Option<u64>,
    pub detail: String,
    /// The signed checkpoint notes (one, or two for a fork), whole.
    pub evidence: Vec<SignedNote>,
}

/// What the judge is given about one chain.
#[derive(Clone, Copy, Debug)]
pub struct ChainCheckpoints<'a> {
    /// The policy a checkpoint must meet to be trusted (bound to the chain's origin).
    pub policy: &'a Policy,
    /// The same writers with no cosignature needed: what proves a fork.
    pub writer_policy: &'a Policy,
    /// The chain's checkpoints, merged by text ([`merge_verified`](super::merge::merge_verified)), from the log and handed
    /// over alike.
    pub notes: &'a [SignedNote],
    /// Entries of the chain as read (verified).
    pub entries: u64,
    /// Whether the chain verified without a finding, so that its tree can be read.
    pub intact: bool,
    /// The newest checkpoint this verifier saw meet its policy before (state outside the log),
    /// if any. Trusted as it is.
    pub remembered: Option<&'a SignedNote>,
    /// Whether a chain with entries must have a trusted checkpoint.
    pub required: bool,
}

/// The judge's verdict on one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// Distinct checkpoint texts considered.
    pub seen: usize,
    /// Of those, how many did not meet the policy (ignored).
    pub untrusted: usize,
    /// The newest checkpoint that met the policy, and its note.
    pub newest: Option<(SignedNote, TrustedCheckpoint)>,
    /// The remembered checkpoint, when it is newer than every trusted one the log shows (and
    /// the chain is consistent with it).
    pub remembered_newer: Option<Checkpoint>,
    pub finding: Option<Judged>,
    /// The note to remember from now on: the newest trusted one, when there is no finding and
    /// it is newer than the remembered one.
    pub remember: Option<SignedNote>,
}

/// The chain tree's roots at the given sizes (ascending, distinct, each within the chain).
pub type RootsAt<'a, E> = dyn FnMut(&[u64]) -> Result<Vec<Hash>, E> + 'a;

/// Judges one chain against its checkpoints (see the module documentation). `roots_at` gives
/// the chain tree's roots at the given sizes (ascending, distinct, each `<= entries`); it is
/// called at most once, and only when the chain is intact.
///
/// The findings are looked for in order, the first found wins: fork, truncated, rollback,
/// rewritten (only for an intact chain), no trusted checkpoint.
pub fn judge<E>(
    input: ChainCheckpoints<'_>,
    roots_at: &mut RootsAt<'_, E>,
) -> Result<Judgement, E> {
    let trusted: Vec<(&SignedNote, TrustedCheckpoint)> = input
        .notes
        .iter()
        .filter_map(|n| input.policy.check(n).ok().map(|t| (n, t)))
        .collect();
    let newest = trusted
        .iter()
        .max_by_key(|(_, t)| (t.checkpoint.size(), t.cosigners.len()))
        .map(|(n, t)| ((*n).clone(), t.clone()));
    let newest_size = newest.as_ref().map(|(_, t)| t.checkpoint.size());
    let remembered = input
        .remembered
        .and_then(|n| Checkpoint::parse(n.text()).ok().map(|c| (n, c)));
    let mut judgement = Judgement {
        seen: input.notes.len(),
        untrusted: input.notes.len() - trusted.len(),
        newest,
        remembered_newer: None,
        finding: None,
        remember: None,
    };
    let remembered = remembered.as_ref();
    let finding = fork(input, remembered)
        .or_else(|| truncated(judgement.newest.as_ref(), input.entries))
        .or_else(|| rolled_back(remembered, newest_size, input.entries));
    let finding = match finding {
        Some(f) => Some(f),
        None if input.intact => rewritten(&trusted, remembered, newest_size, roots_at)?,
        None => None,
    };
    judgement.finding = finding.or_else(|| none_trusted(&input, &judgement, remembered));
    if judgement.finding.is_none() {
        settle(&mut judgement, remembered, newest_size);
    }
    Ok(judgement)
}

/// The freshness rule (`[policy] max_age`): a chain of `entries` entries whose newest
/// accepted checkpoint (`note`, as the policy accepted it in `trusted`) covers fewer entries
/// than it has, and whose newest witness cosignature is older than `max_age` seconds at
/// `now` (Unix seconds), is stale: the entries past the checkpoint are not covered by a
/// checkpoint cosigned within `max_age`, as happens when an operator stops checkpoints from
/// reaching the witnesses while appending. A chain with nothing past the checkpoint is clean
/// however old the checkpoint is (a quiet log), and a checkpoint no witness cosigned has no
/// age a witness vouches for: it is stale as soon as the chain holds more.
///
/// Pure: the same rule for `verify`, `ledger verify` and the monitor.
pub fn stale(
    note: &SignedNote,
    trusted: &TrustedCheckpoint,
    entries: u64,
    now: u64,
    max_age: u64,
) -> Option<Judged> {
    let size = trusted.checkpoint.size();
    if entries <= size {
        return None;
    }
    let cosigned = trusted.cosigners.iter().map(|(_, t)| *t).max();
    let age = cosigned.map(|t| now.saturating_sub(t));
    if age.is_some_and(|a| a <= max_age) {
        return None;
    }
    let when = match age {
        Some(a) => format!("its newest witness cosignature is {a} s old"),
        None => "no witness cosigned it".to_owned(),
    };
    Some(Judged {
        kind: CheckpointFindingKind::Stale,
        height: Some(size),
        detail: format!(
            "entries {size}.. are not covered by a checkpoint cosigned within {max_age} s: \
             the newest trusted checkpoint covers {size} of {entries} entries and {when}"
        ),
        evidence: vec![note.clone()],
    })
}

/// The newest trusted checkpoint covers more entries than the chain has.
fn truncated(newest: Option<&(SignedNote, TrustedCheckpoint)>, entries: u64) -> Option<Judged> {
    let (n, t) = newest?;
    let size = t.checkpoint.size();
    (size > entries).then(|| Judged {
        kind: CheckpointFindingKind::Truncated,
        height: Some(entries),
        detail: format!("a trusted checkpoint covers {size} entries, but the chain has {entries}"),
        evidence: vec![n.clone()],
    })
}

/// The remembered checkpoint covers more entries than the chain has (and, the truncation not
/// being found first, the log shows no trusted checkpoint that large: it was removed too).
fn rolled_back(
    remembered: Option<&(&SignedNote, Checkpoint)>,
    newest_size: Option<u64>,
    entries: u64,
) -> Option<Judged> {
    let (n, c) = remembered?;
    (c.size() > entries).then(|| Judged {
        kind: CheckpointFindingKind::Rollback,
        height: Some(entries),
        detail: format!(
            "this verifier saw a trusted checkpoint of size {} before, but the chain has \
             {entries} entries and the log's newest trusted checkpoint is {}: the log \
             was truncated and its checkpoints removed",
            c.size(),
            newest_size.map_or("none".to_owned(), |s| format!("size {s}"))
        ),
        evidence: vec![(*n).clone()],
    })
}

/// Checkpoints are required, the chain has entries, and nothing (neither the log nor this
/// verifier's memory) vouches for it.
fn none_trusted(
    input: &ChainCheckpoints<'_>,
    judgement: &Judgement,
    remembered: Option<&(&SignedNote, Checkpoint)>,
) -> Option<Judged> {
    let entries = input.entries;
    let vouched = judgement.newest.is_some() || remembered.is_some();
    (input.required && entries > 0 && !vouched).then(|| Judged {
        kind: CheckpointFindingKind::NoTrustedCheckpoint,
        height: None,
        detail: format!(
            "the chain has {entries} entries but no checkpoint meets the policy ({} \
             untrusted): nothing vouches that it was not truncated or rewritten",
            judgement.untrusted
        ),
        evidence: Vec::new(),
    })
}

/// With no finding: notes whether the remembered checkpoint is newer than anything the log
/// shows, and which note to remember from now on (the newest trusted one, when newer).
fn settle(
    judgement: &mut Judgement,
    remembered: Option<&(&SignedNote, Checkpoint)>,
    newest_size: Option<u64>,
) {
    if let Some((_, c)) = remembered {
        if newest_size.is_none_or(|s| s < c.size()) {
            judgement.remembered_newer = Some(c.clone());
        }
    }
    let remembered_size = remembered.map(|(_, c)| c.size());
    if let Some((n, t)) = &judgement.newest {
        if remembered_size.is_none_or(|s| s < t.checkpoint.size()) {
            judgement.remember = Some(n.clone());
        }
    }
}

/// Two checkpoints of one size with different roots, both signed by a trusted writer (the
/// remembered one counts as signed: it met the policy when it was remembered).
fn fork(
    input: ChainCheckpoints<'_>,
    remembered: Option<&(&SignedNote, Checkpoint)>,
) -> Option<Judged> {
    let mut by_size: HashMap<u64, (&SignedNote, Hash)> = HashMap::new();
    if let Some((n, c)) = remembered {
        by_size.insert(c.size(), (n, *c.root()));
    }
    for n in input.notes {
        let Ok(t) = input.writer_policy.check(n) else {
            continue;
        };
        let (size, root) = (t.checkpoint.size(), *t.checkpoint.root());
        match by_size.get(&size) {
            Some((other, r)) if *r != root => {
                return Some(Judged {
                    kind: CheckpointFindingKind::Fork,
                    height: None,
                    detail: format!(
                        "two checkpoints of size {size} with different roots, both signed by a \
                         trusted writer"
                    ),
                    evidence: vec![(*other).clone(), n.clone()],
                })
            }
            Some(_) => {}
            None => {
                by_size.insert(size, (n, root));
            }
        }
    }
    None
}

/// The smallest trusted (or remembered) checkpoint whose root is not the chain tree's root at
/// its size. Every size is within the chain (the larger ones were judged before).
fn rewritten<E>(
    trusted: &[(&SignedNote, TrustedCheckpoint)],
    remembered: Option<&(&SignedNote, Checkpoint)>,
    newest_size: Option<u64>,
    roots_at: &mut RootsAt<'_, E>,
) -> Result<Option<Judged>, E> {
    let mut claims: Vec<(&SignedNote, &Checkpoint, bool)> = trusted
        .iter()
        .map(|(n, t)| (*n, &t.checkpoint, false))
        .chain(remembered.map(|(n, c)| (*n, c, true)))
        .collect();
    if claims.is_empty() {
        return Ok(None);
    }
    claims.sort_by_key(|(_, c, _)| c.size());
    let mut sizes: Vec<u64> = claims.iter().map(|(_, c, _)| c.size()).collect();
    sizes.dedup();
    let roots: HashMap<u64, Hash> = sizes.iter().copied().zip(roots_at(&sizes)?).collect();
    let mut matched = 0u64;
    for (n, c, is_remembered) in claims {
        let root = roots[&c.size()];
        if root == *c.root() {
            matched = c.size();
            continue;
        }
        let rolled_back = is_remembered && newest_size.is_none_or(|s| s < c.size());
        return Ok(Some(Judged {
            kind: if rolled_back {
                CheckpointFindingKind::Rollback
            } else {
                CheckpointFindingKind::Rewritten
            },
            height: Some(matched),
            detail: format!(
                "the chain's first {} entries have tree root {}, but a {} checkpoint signed root \
                 {}: an entry at heights {matched}..{} was replaced",
                c.size(),
                to_hex(&root),
                if is_remembered {
                    "remembered"
                } else {
                    "trusted"
                },
                to_hex(c.root()),
                c.size().saturating_sub(1)
            ),
            evidence: vec![n.clone()],
        }));
    }
    Ok(None)
}

/// Why a writer or sealer must not sign on: the chain (`entries` long, with tree root
/// `root_at_signed` at `signed`'s size when it is that long) contradicts `signed`, the newest
/// checkpoint it signed. `None` when the chain extends it. A log must never sign two
/// inconsistent checkpoints, whatever its checkpoints topic still shows.
pub fn signer_contradiction(
    signed: &Checkpoint,
    entries: u64,
    root_at_signed: Option<&Hash>,
) -> Option<String> {
    if entries < signed.size() {
        return Some(format!(
            "the chain now has {entries} entries, fewer than the {} of the checkpoint signed \
             before (truncated)",
            signed.size()
        ));
    }
    match root_at_signed {
        Some(root) if root == signed.root() => None,
        Some(root) => Some(format!(
            "the chain's first {} entries now have tree root {}, not the signed {} (rewritten)",
            signed.size(),
            to_hex(root),
            to_hex(signed.root())
        )),
        None => Some(format!(
            "the chain's tree at size {} is unknown",
            signed.size()
        )),
    }
}
