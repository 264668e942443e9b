//! The verifier's side: the canonical chain held against the newest checkpoint that meets
//! the policy, those handed over, those fetched from the witnesses and the one the verifier
//! remembers, with the one judge of kchain-core, then the freshness and reachability rules
//! (kchain-topic's `checkpoints::after_judge`, shared with chained topics).

use kchain_core::merkle;
use kchain_core::{
    ChainCheckpoints, Checkpoint, CheckpointTrust, NoteVerifier, Policy, SignedNote,
    TrustedCheckpoint,
};
use kchain_topic::{
    checkpoints::{
        after_judge, fetch_latest, unix_now, AfterJudge, CheckpointFindingKind, CheckpointRecord,
        RemoteWitnesses,
    },
    files::CheckpointStore,
};

use super::leaves::{chain_leaves, chain_len, BLOCKS_PARTITION};
use crate::consensus::chain::Chain;
use crate::consensus::genesis::{sealer_verifiers, Genesis};
use crate::consensus::proof::ledger_origin;
use crate::error::LedgerError;

/// A contradiction between the canonical chain and a trusted checkpoint, with the signed
/// notes that prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFinding {
    pub kind: CheckpointFindingKind,
    /// Offset in the blocks topic: its end for a truncation, the first canonical block the
    /// checkpoint does not vouch for, for a rewrite.
    pub offset: u64,
    pub height: Option<u64>,
    pub detail: String,
    /// The signed checkpoint notes, whole (two for a fork).
    pub evidence: Vec<SignedNote>,
}

impl std::fmt::Display for CheckpointFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.kind, self.offset)?;
        if let Some(h) = self.height {
            write!(f, " (height {h})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// How the canonical chain stands against its checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStatus {
    pub origin: String,
    /// Distinct checkpoint texts on the topic for the origin.
    pub seen: usize,
    /// Of those, how many did not meet the policy (ignored).
    pub untrusted: usize,
    /// The newest checkpoint that met the policy, and its note.
    pub newest: Option<(SignedNote, TrustedCheckpoint)>,
    /// Things a person should know that are not findings: a witness unreachable or
    /// answering garbage, too few witnesses while a remembered checkpoint vouches.
    pub warnings: Vec<String>,
}

/// The policy for a ledger's checkpoints: signed by one of the genesis's sealers (under its
/// name in the genesis) and cosigned by `trust`'s threshold of its witnesses, for the origin
/// `<namespace>/<blocks topic>`. `threshold` overrides `trust`'s (0: the sealers alone).
pub fn ledger_policy(
    genesis: &Genesis,
    blocks_topic: &str,
    trust: &CheckpointTrust,
    threshold: Option<usize>,
) -> Result<Policy, LedgerError> {
    let threshold = threshold.unwrap_or(trust.threshold);
    Policy::new(
        sealer_verifiers(genesis),
        trust.witnesses.clone(),
        threshold,
    )
    .map(|p| p.for_origin(&ledger_origin(&trust.namespace, blocks_topic)))
    .map_err(|e| LedgerError::Invalid(e.to_string()))
}

/// What `ledger verify` holds the canonical chain against besides the checkpoints topic.
#[derive(Clone, Debug, Default)]
pub struct CheckpointAnchors {
    /// Where this verifier remembers the newest checkpoint that met its policy (`None`: no
    /// memory). Every run must find the chain consistent with it.
    pub store: Option<CheckpointStore>,
    /// The identity of the log (see [`CheckpointStore`]).
    pub backend: String,
    /// Checkpoints handed over outside the log (`--checkpoint FILE`, from a witness): they
    /// count as if read from the checkpoints topic.
    pub handed: Vec<SignedNote>,
    /// Whether a chain with blocks after genesis must have a trusted checkpoint (a trust
    /// file with a checkpoint policy was given).
    pub required: bool,
    /// Witnesses to fetch the newest cosigned checkpoint of the blocks chain from; none:
    /// nothing is fetched.
    pub witnesses: RemoteWitnesses,
    /// Do not read the checkpoints topic (an outsider verifying from witnesses, handed and
    /// remembered checkpoints alone).
    pub ignore_topic: bool,
    /// The time the freshness rule (`[policy] max_age`) is judged at, Unix seconds (`None`:
    /// now).
    pub now: Option<u64>,
}

/// Holds a replayed canonical chain against the checkpoints in `records` (read from the
/// checkpoints topic *before* the blocks topic's end was taken, so that none covers a block
/// the replay did not reach), those handed over in `anchors` and the one it remembers, with
/// the one judge ([`kchain_core::judge`]). `end` is the end offset of the blocks topic. With
/// no finding, the newest trusted checkpoint is remembered.
pub(crate) fn check(
    chain: &Chain,
    blocks_topic: &str,
    records: &[CheckpointRecord],
    trust: &CheckpointTrust,
    end: u64,
    anchors: &CheckpointAnchors,
) -> Result<(CheckpointStatus, Option<CheckpointFinding>), LedgerError> {
    let origin = ledger_origin(&trust.namespace, blocks_topic);
    let policy = ledger_policy(chain.genesis(), blocks_topic, trust, None)?;
    let sealers_only = ledger_policy(chain.genesis(), blocks_topic, trust, Some(0))?;
    let fetched = (!anchors.witnesses.is_empty())
        .then(|| fetch_latest(&anchors.witnesses, &origin, &sealers_only));
    let mut warnings = fetched.as_ref().map_or(Vec::new(), |f| f.warnings.clone());
    let mut handed = anchors.handed.clone();
    handed.extend(fetched.iter().flat_map(|f| f.notes.iter().cloned()));
    let notes = trusted_notes(records, &handed, &policy, &origin);
    let remembered = match &anchors.store {
        Some(store) => store.load(&anchors.backend, &origin)?,
        None => None,
    };
    let len = chain_len(chain);
    let judgement = kchain_core::judge::<LedgerError>(
        ChainCheckpoints {
            policy: &policy,
            writer_policy: &sealers_only,
            notes: &notes,
            entries: len,
            intact: true,
            remembered: remembered.as_ref(),
            // Genesis alone is not worth a checkpoint.
            required: anchors.required && len > 1,
        },
        &mut |sizes| {
            let max = sizes.last().copied().unwrap_or(0);
            let leaves = chain_leaves(chain, max);
            Ok(sizes
                .iter()
                .map(|&s| merkle::root(&leaves[..s as usize]))
                .collect())
        },
    )?;
    let finding = after_judge(
        &AfterJudge {
            origin: &origin,
            policy: &policy,
            judgement: &judgement,
            remembered: remembered.as_ref(),
            entries: len,
            max_age: trust.max_age,
            now: anchors.now.unwrap_or_else(unix_now),
            fetched: fetched.as_ref(),
        },
        &mut warnings,
    );
    if let (Some(store), Some(note), None) = (&anchors.store, &judgement.remember, &finding) {
        store.save(&anchors.backend, &origin, note)?;
    }
    let finding = finding.map(|f| CheckpointFinding {
        kind: f.kind,
        offset: finding_offset(chain, f.kind, f.height, end),
        height: f.height,
        detail: f.detail.replace("entries", "blocks"),
        evidence: f.evidence,
    });
    let status = CheckpointStatus {
        origin,
        seen: judgement.seen,
        untrusted: judgement.untrusted,
        newest: judgement.newest,
        warnings,
    };
    Ok((status, finding))
}

/// The notes of `origin` among the blocks partition's `records` and the `handed` ones, one
/// per text with the union of its signatures, keeping only lines that verify by a key of
/// `policy` (its sealers and witnesses).
fn trusted_notes(
    records: &[CheckpointRecord],
    handed: &[SignedNote],
    policy: &Policy,
    origin: &str,
) -> Vec<SignedNote> {
    let known: Vec<NoteVerifier> = policy
        .writers()
        .iter()
        .chain(policy.witnesses())
        .cloned()
        .collect();
    let from_log = records
        .iter()
        .filter(|r| r.chain_partition == BLOCKS_PARTITION)
        .map(|r| &r.note);
    kchain_core::merge_verified(from_log.chain(handed), &known)
        .notes
        .into_iter()
        .filter(|n| Checkpoint::parse(n.text()).is_ok_and(|c| c.origin() == origin))
        .collect()
}

/// Where the judge's finding of `kind` at `height` is in the blocks topic: a rewrite or
/// rollback at the canonical block of its height, anything else at `end` (the topic's end
/// offset).
fn finding_offset(
    chain: &Chain,
    kind: CheckpointFindingKind,
    height: Option<u64>,
    end: u64,
) -> u64 {
    match (kind, height) {
        (CheckpointFindingKind::Rewritten, Some(h))
        | (CheckpointFindingKind::Rollback, Some(h))
            if h < chain_len(chain) =>
        {
            chain.block_at(h).map_or(end, |(_, o)| o)
        }
        _ => end,
    }
}
