//! Checkpoints fetched from witnesses over their own channel (c2sp.org/tlog-witness, through
//! [`RemoteWitness::latest`]), and the two rules that come after the judge: freshness
//! (`[policy] max_age`) and reachability. Shared by `verify` (chained topics) and `ledger
//! verify` (the blocks chain).
//!
//! ```text
//!  witness 1 ── latest(origin) ──┐  unreachable / refused / garbage ──► warning naming it
//!  witness 2 ── latest(origin) ──┼─► signed by a trusted writer, of this origin? ── no ──► warning
//!  ...        (in parallel)      │                    │ yes
//!                                └────────────────────▼
//!                            Fetched { notes, answered } ──► merged with the log's and the
//!                                                            handed notes, then the judge
//!  after the judge (no finding yet):
//!    entries past the newest trusted checkpoint, no cosignature within max_age ──► stale
//!    fewer witnesses answered than the threshold ──► finding when nothing this verifier
//!                                                    remembers vouches for the chain, else warning
//! ```
//!
//! Every fetched note is hostile until the policy accepts it: a witness that answers another
//! origin's note, a note no trusted writer signed, or a cosignature that does not verify is
//! named in a warning and its note dropped, never trusted and never a crash.

use std::sync::Arc;

use kchain_core::checkpoint::stale;
use kchain_core::{
    CheckpointFindingKind, Judged, Judgement, Policy, RemoteWitness, RemoteWitnessError, SignedNote,
};

/// The witnesses a verifier fetches checkpoints from (the trust file's `[[witness]]` with a
/// `url`, reached over HTTP by kchain-witness; in memory in tests).
#[derive(Clone, Default)]
pub struct RemoteWitnesses(pub Vec<Arc<dyn RemoteWitness>>);

impl std::fmt::Debug for RemoteWitnesses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|w| w.describe()))
            .finish()
    }
}

impl RemoteWitnesses {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the witnesses answered for one origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The notes that a trusted writer signed for the origin (their cosignatures not yet
    /// counted: the judge holds them to the policy).
    pub notes: Vec<SignedNote>,
    /// Witnesses asked.
    pub asked: usize,
    /// Witnesses that answered usefully: a checkpoint the writer policy accepts, or "none
    /// cosigned yet".
    pub answered: usize,
    /// One line per witness that was unreachable, refused or answered garbage, naming it.
    pub warnings: Vec<String>,
}

/// Asks every witness (in parallel) for the newest checkpoint it cosigned for `origin`, and
/// keeps those `writer_policy` (bound to `origin`, threshold 0) accepts.
pub fn fetch_latest(witnesses: &RemoteWitnesses, origin: &str, writer_policy: &Policy) -> Fetched {
    let answers: Vec<(String, Result<Option<SignedNote>, RemoteWitnessError>)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = witnesses
                .0
                .iter()
                .map(|w| s.spawn(move || (w.describe(), w.latest(origin))))
                .collect();
            handles
                .into_iter()
                .zip(&witnesses.0)
                .map(|(h, w)| {
                    h.join().unwrap_or_else(|_| {
                        let why = "the witness client panicked".to_owned();
                        let e = RemoteWitnessError::Malformed {
                            witness: w.describe(),
                            why,
                        };
                        (w.describe(), Err(e))
                    })
                })
                .collect()
        });
    let mut fetched = Fetched {
        asked: answers.len(),
        ..Fetched::default()
    };
    for (who, answer) in answers {
        match answer {
            Ok(None) => fetched.answered += 1,
            Ok(Some(note)) => match writer_policy.check(&note) {
                Ok(_) => {
                    fetched.answered += 1;
                    fetched.notes.push(note);
                }
                Err(e) => fetched.warnings.push(format!(
                    "witness {who}: its checkpoint for {origin} is not trusted, ignored: {e}"
                )),
            },
            Err(e) => fetched
                .warnings
                .push(format!("witness {who}: no checkpoint for {origin}: {e}")),
        }
    }
    fetched
}

/// What the rules after the judge are given about one chain, and the judge's verdict.
pub struct AfterJudge<'a> {
    pub origin: &'a str,
    /// The chain's policy (its threshold is what the witnesses must reach).
    pub policy: &'a Policy,
    pub judgement: &'a Judgement,
    /// The checkpoint this verifier remembered before this run.
    pub remembered: Option<&'a SignedNote>,
    pub entries: u64,
    /// `[policy] max_age`, seconds.
    pub max_age: Option<u64>,
    /// Unix seconds.
    pub now: u64,
    /// What the witnesses answered, when they were asked.
    pub fetched: Option<&'a Fetched>,
}

/// The chain's finding, the judge's and the rules that come after it: the judge's finding
/// first, then a stale checkpoint ([`kchain_core::checkpoint::stale`] on the newest trusted
/// or remembered checkpoint), then too few witnesses answering for the policy's threshold
/// with nothing remembered vouching for the chain (which also explains, and replaces, the
/// judge's "no trusted checkpoint"). Too few answering with a remembered checkpoint is a
/// warning, pushed to `warnings`.
pub fn after_judge(input: &AfterJudge<'_>, warnings: &mut Vec<String>) -> Option<Judged> {
    let judged = input.judgement.finding.clone();
    if judged
        .as_ref()
        .is_some_and(|f| f.kind != CheckpointFindingKind::NoTrustedCheckpoint)
    {
        return judged;
    }
    if judged.is_none() {
        if let Some(f) = stale_finding(input) {
            return Some(f);
        }
    }
    reach_finding(input, warnings).or(judged)
}

/// The freshness rule on the newest of the trusted and the remembered checkpoints.
fn stale_finding(input: &AfterJudge<'_>) -> Option<Judged> {
    let max_age = input.max_age?;
    let remembered = input
        .remembered
        .and_then(|n| input.policy.check(n).ok().map(|t| (n.clone(), t)));
    let (note, t) = [input.judgement.newest.clone(), remembered]
        .into_iter()
        .flatten()
        .max_by_key(|(_, t)| t.checkpoint.size())?;
    stale(&note, &t, input.entries, input.now, max_age)
}

/// Too few witnesses answered: a finding when nothing remembered vouches for a chain with
/// entries, else a warning.
fn reach_finding(input: &AfterJudge<'_>, warnings: &mut Vec<String>) -> Option<Judged> {
    let fetched = input.fetched?;
    let need = input.policy.threshold();
    if fetched.answered >= need {
        return None;
    }
    let what = format!(
        "{} of {} witnesses answered for {}, the policy needs {need} cosignatures",
        fetched.answered, fetched.asked, input.origin
    );
    if input.remembered.is_some() || input.entries == 0 {
        warnings.push(format!(
            "{what} (the checkpoint this verifier remembers still anchors the chain)"
        ));
        return None;
    }
    Some(Judged {
        kind: CheckpointFindingKind::WitnessesUnreachable,
        height: None,
        detail: format!(
            "{what}, and this verifier remembers no checkpoint of the chain: nothing outside \
             the log vouches for it"
        ),
        evidence: Vec::new(),
    })
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
