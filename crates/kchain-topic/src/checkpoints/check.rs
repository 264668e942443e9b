//! The verifier's side of checkpoints: a verified chain held against the signed checkpoints
//! of its checkpoints topic, those handed over outside the log, those fetched from the
//! witnesses, and the one remembered from an earlier run, by the one judge
//! ([`kchain_core::judge`]), then the freshness and reachability rules (`fetch.rs`).
//!
//! ```text
//!  notes of one text merged (union of verified signatures) ──► those meeting the policy
//!    chain shorter ──► truncated     root differs ──► rewritten     two roots ──► fork
//!    chain inconsistent with the remembered checkpoint ──► rollback
//!    entries past a checkpoint not cosigned within max_age ──► stale
//!    too few witnesses answered, nothing remembered ──► witnesses_unreachable
//! ```
//!
//! The chain tree's roots the judge asks for are grown during the chain pass itself
//! ([`ChainTree`], fed in log order beside the chain verifier, at the sizes the checkpoints
//! known before the pass name), so that a verification reads the log once; a size no
//! checkpoint known then named (one a witness answered with) is grown by reading the chain
//! again.

use std::collections::HashMap;

use kchain_core::checkpoint::MAX_NOTES_PER_CHAIN;
use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{
    chain_leaf, ChainCheckpoints, Checkpoint, CheckpointTrust, Hash, NoteVerifier, Observation,
    SignedNote, Trust, TrustedCheckpoint,
};
use kchain_log::Log;

pub use kchain_core::CheckpointFindingKind;

use super::fetch::{after_judge, fetch_latest, unix_now, AfterJudge, RemoteWitnesses};
use super::topic::{origin_notes, read_checkpoints, CheckpointRecord};
use crate::error::TopicError;
use crate::files::CheckpointStore;
use crate::report::{PartitionReport, TopicReport};
use crate::scan::read_chain_named;

/// A contradiction between a partition's chain and its signed checkpoints, with the signed
/// notes that prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFinding {
    pub kind: CheckpointFindingKind,
    /// The offset of the first record that a checkpoint vouches for and the chain lacks or
    /// changed (see [`kchain_core::Judged::height`]), when there is one.
    pub offset: Option<u64>,
    pub detail: String,
    /// The signed checkpoint notes (one, or two for a fork), whole.
    pub evidence: Vec<SignedNote>,
}

impl std::fmt::Display for CheckpointFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(o) = self.offset {
            write!(f, " at offset {o}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// How one partition stands against its checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionCheckpoints {
    pub partition: u32,
    pub origin: String,
    /// Entries of the chain that verified.
    pub entries: u64,
    /// The newest checkpoint that met the policy.
    pub newest: Option<TrustedCheckpoint>,
    /// The checkpoint remembered from an earlier run, when it is newer than every trusted
    /// one the log shows (and the chain is consistent with it).
    pub remembered: Option<Checkpoint>,
    /// Distinct checkpoints on the topic for this origin (with a signature by a key of the
    /// policy).
    pub seen: usize,
    /// Of those, how many did not meet the policy (unknown key, too few cosignatures, a bad
    /// signature): ignored.
    pub untrusted: usize,
    pub finding: Option<CheckpointFinding>,
}

/// The checkpoint check of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointReport {
    pub topic: String,
    pub partitions: Vec<PartitionCheckpoints>,
    /// Things a person should know that are not findings (an anchor kept where the log's
    /// attacker can reach it).
    pub warnings: Vec<String>,
}

impl CheckpointReport {
    /// True when no partition has a finding.
    pub fn ok(&self) -> bool {
        self.partitions.iter().all(|p| p.finding.is_none())
    }

    /// A short text report, one line per partition.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for p in &self.partitions {
            let newest = p.newest.as_ref().map_or("none".to_owned(), |t| {
                format!(
                    "size {} cosigned by {}",
                    t.checkpoint.size(),
                    t.cosigners.len()
                )
            });
            out.push_str(&format!(
                "{}/{} checkpoints: {} seen, {} untrusted, newest trusted {newest}",
                self.topic, p.partition, p.seen, p.untrusted
            ));
            if let Some(r) = &p.remembered {
                out.push_str(&format!(" (remembered size {}, newer)", r.size()));
            }
            match &p.finding {
                None => out.push_str(": ok\n"),
                Some(f) => {
                    out.push_str(&format!(": FINDING {f}\n"));
                    for n in &f.evidence {
                        out.push_str("  evidence:\n");
                        for line in n.to_text().lines() {
                            out.push_str(&format!("    {line}\n"));
                        }
                    }
                }
            }
        }
        for w in &self.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        out
    }
}

/// What `check_checkpoints_with` holds a topic against besides its checkpoints topic.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Where this verifier remembers, per chain, the newest checkpoint that met its policy
    /// (`None`: no memory, as before). Every run must find the chain consistent with it; a
    /// run with no finding remembers the newest trusted checkpoint it saw.
    pub store: Option<CheckpointStore>,
    /// The identity of the log (see [`CheckpointStore`]): `embedded:<canonical path>`, or
    /// `kafka:<cluster id>` ([`kchain_log::Log::identity`]), else `kafka:<bootstrap list>`.
    pub backend: String,
    /// Checkpoints handed over outside the log (`--checkpoint FILE`, from a witness): they
    /// count as if read from the checkpoints topic, and must meet the policy like those.
    pub handed: Vec<SignedNote>,
    /// Witnesses to fetch each partition's newest cosigned checkpoint from (see
    /// [`fetch_latest`](super::fetch_latest)); none: nothing is fetched.
    pub witnesses: RemoteWitnesses,
    /// Do not read the checkpoints topic (an outsider verifying from witnesses and handed
    /// checkpoints alone): [`crate::TopicVerifier`] then never reads it.
    pub ignore_topic: bool,
    /// The time the freshness rule (`[policy] max_age`) is judged at, Unix seconds
    /// (`None`: now).
    pub now: Option<u64>,
}

/// Checks each partition of a verified topic against the checkpoints on its checkpoints
/// topic (see [`check_checkpoints_with`]), with no remembered state.
pub fn check_checkpoints(
    log: &dyn Log,
    report: &TopicReport,
    trust: &Trust,
    checkpoint_trust: &CheckpointTrust,
) -> Result<CheckpointReport, TopicError> {
    let records = read_checkpoints(log, &report.topic)?;
    check_checkpoints_with(
        log,
        report,
        trust,
        checkpoint_trust,
        &records,
        &CheckOptions::default(),
    )
}

/// Checks each partition of a verified topic against its checkpoints with the one judge
/// ([`kchain_core::judge`]): `records` (read with [`read_checkpoints`] *before* the chain was
/// verified, so that none covers more than the chain read later, unless it was truncated),
/// the checkpoints handed over in `options`, and the checkpoint remembered in
/// `options.store`. The newest trusted checkpoint must not be longer than the verified chain
/// (truncation), every trusted checkpoint's root must be the chain tree's root at its size
/// (rewrite), no trusted writer may have signed two roots for one size (fork), the chain
/// must be consistent with the remembered checkpoint (rollback), and a chain with entries
/// must have a trusted checkpoint. A partition with no finding remembers its newest trusted
/// checkpoint.
///
/// Reads each partition's chain once more, up to the newest trusted checkpoint.
pub fn check_checkpoints_with(
    log: &dyn Log,
    report: &TopicReport,
    trust: &Trust,
    checkpoint_trust: &CheckpointTrust,
    records: &[CheckpointRecord],
    options: &CheckOptions,
) -> Result<CheckpointReport, TopicError> {
    let none = HashMap::new();
    check_grown(
        log,
        report,
        (trust, checkpoint_trust),
        records,
        options,
        &none,
    )
}

/// [`check_checkpoints_with`], taking the chain tree's roots from `trees` (grown during the
/// chain pass, by partition) where they hold the sizes the judge asks for.
pub(crate) fn check_grown(
    log: &dyn Log,
    report: &TopicReport,
    (trust, checkpoint_trust): (&Trust, &CheckpointTrust),
    records: &[CheckpointRecord],
    options: &CheckOptions,
    trees: &HashMap<u32, ChainTree>,
) -> Result<CheckpointReport, TopicError> {
    let topic = report.topic.as_str();
    let by_partition = notes_by_partition(records);
    let mut partitions = Vec::new();
    let mut warnings = Vec::new();
    for pr in &report.partitions {
        let from_log = by_partition.get(&pr.partition).map(Vec::as_slice);
        let one = Partition {
            log,
            topic,
            trust,
            checkpoint_trust,
            tree: trees.get(&pr.partition),
        };
        partitions.push(one.check(pr, from_log.unwrap_or_default(), options, &mut warnings)?);
    }
    Ok(CheckpointReport {
        topic: topic.to_owned(),
        partitions,
        warnings,
    })
}

fn notes_by_partition(records: &[CheckpointRecord]) -> HashMap<u32, Vec<&SignedNote>> {
    let mut by_partition: HashMap<u32, Vec<&SignedNote>> = HashMap::new();
    for r in records {
        by_partition
            .entry(r.chain_partition)
            .or_default()
            .push(&r.note);
    }
    by_partition
}

/// What names the chain-tree sizes to grow during the chain pass: the checkpoints known
/// before it (`records` of the checkpoints topic, those handed over in `options`, the one
/// remembered in `options.store`).
pub(crate) struct Known<'a> {
    topic: &'a str,
    trust: &'a Trust,
    checkpoint_trust: &'a CheckpointTrust,
    /// The checkpoints topic's notes, by the partition of the chain they name.
    from_log: HashMap<u32, Vec<&'a SignedNote>>,
    options: &'a CheckOptions,
}

impl<'a> Known<'a> {
    pub(crate) fn new(
        topic: &'a str,
        trust: &'a Trust,
        checkpoint_trust: &'a CheckpointTrust,
        records: &'a [CheckpointRecord],
        options: &'a CheckOptions,
    ) -> Self {
        Known {
            topic,
            trust,
            checkpoint_trust,
            from_log: notes_by_partition(records),
            options,
        }
    }

    /// The sizes the known checkpoints of `partition`'s origin name, ascending: the roots
    /// [`check_grown`] will ask for, unless a witness answers with another size. At most
    /// [`MAX_NOTES_PER_CHAIN`] (the judge keeps no more texts), so that a flood of
    /// checkpoint records costs bounded hashing.
    pub(crate) fn sizes(&self, partition: u32) -> Result<Vec<u64>, TopicError> {
        let name = self.trust.chain_name(self.topic);
        let origin = self.checkpoint_trust.origin(name, partition);
        let remembered = match &self.options.store {
            Some(store) => store.load(&self.options.backend, &origin)?,
            None => None,
        };
        let from_log = self.from_log.get(&partition).into_iter().flatten().copied();
        let notes = from_log.chain(&self.options.handed).chain(&remembered);
        let mut sizes: Vec<u64> = notes
            .filter_map(|n| Checkpoint::parse(n.text()).ok())
            .filter(|c| c.origin() == origin)
            .map(|c| c.size())
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes.truncate(MAX_NOTES_PER_CHAIN);
        Ok(sizes)
    }
}

/// A partition's chain tree, grown from the verifier's observations in log order during the
/// chain pass, remembering its roots at the sizes checkpoints name. It grows while the
/// entries are the chain from genesis (heights 0, 1, ... each linking to the one before, as
/// [`read_chain`](crate::scan::read_chain) requires) and stops past the largest size wanted.
pub(crate) struct ChainTree {
    /// Sizes still to reach, ascending.
    wanted: std::vec::IntoIter<u64>,
    next: Option<u64>,
    tree: TreeBuilder,
    prev: Hash,
    broken: bool,
    roots: HashMap<u64, Hash>,
}

impl ChainTree {
    /// A tree that remembers its roots at `sizes` (ascending).
    pub(crate) fn new(sizes: Vec<u64>) -> Self {
        let mut roots = HashMap::new();
        if sizes.first() == Some(&0) {
            roots.insert(0, merkle::empty_root());
        }
        let mut wanted = sizes.into_iter();
        let next = wanted.find(|&s| s > 0);
        ChainTree {
            wanted,
            next,
            tree: TreeBuilder::new(),
            prev: kchain_core::ZERO_HASH,
            broken: false,
            roots,
        }
    }

    /// Takes the next observation of the partition, in log order.
    pub(crate) fn push(&mut self, o: &Observation) {
        let Some(want) = self.next.filter(|_| !self.broken) else {
            return;
        };
        match o {
            Observation::Entry(e) if e.height == self.tree.size() && e.prev == self.prev => {
                self.tree.push(&chain_leaf(&e.hash));
                self.prev = e.hash;
                if self.tree.size() == want {
                    self.roots.insert(want, self.tree.root());
                    self.next = self.wanted.next();
                }
            }
            _ => self.broken = true,
        }
    }

    /// The roots at `sizes`, when the pass reached every one of them.
    fn roots(&self, sizes: &[u64]) -> Option<Vec<Hash>> {
        sizes.iter().map(|s| self.roots.get(s).copied()).collect()
    }
}

/// One topic's chain and trust, for checking its partitions one by one.
struct Partition<'a> {
    log: &'a dyn Log,
    topic: &'a str,
    trust: &'a Trust,
    checkpoint_trust: &'a CheckpointTrust,
    /// The chain tree grown during the chain pass, if it was.
    tree: Option<&'a ChainTree>,
}

impl Partition<'_> {
    /// Judges the verified partition `pr` against the notes for it on the log (`from_log`),
    /// those handed over, those fetched from the witnesses and the remembered one; then the
    /// freshness and reachability rules; remembers the newest trusted checkpoint when there
    /// is no finding. Warnings (a witness unreachable or answering garbage) go to `warnings`.
    fn check(
        &self,
        pr: &PartitionReport,
        from_log: &[&SignedNote],
        options: &CheckOptions,
        warnings: &mut Vec<String>,
    ) -> Result<PartitionCheckpoints, TopicError> {
        let (log, topic, trust, checkpoint_trust) =
            (self.log, self.topic, self.trust, self.checkpoint_trust);
        let invalid = |e: kchain_core::TrustError| TopicError::Invalid(e.to_string());
        let p = pr.partition;
        // Checkpoints name the chain (its chain name), not the topic it is read from.
        let name = trust.chain_name(topic);
        let origin = checkpoint_trust.origin(name, p);
        let policy = checkpoint_trust.policy(trust, name, p).map_err(invalid)?;
        let writer_policy = checkpoint_trust
            .writer_policy(trust, name, p)
            .map_err(invalid)?;
        let known: Vec<NoteVerifier> = policy
            .writers()
            .iter()
            .chain(policy.witnesses())
            .cloned()
            .collect();
        let fetched = (!options.witnesses.is_empty())
            .then(|| fetch_latest(&options.witnesses, &origin, &writer_policy));
        if let Some(f) = &fetched {
            warnings.extend(f.warnings.iter().cloned());
        }
        let notes = origin_notes(
            from_log
                .iter()
                .copied()
                .chain(&options.handed)
                .chain(fetched.iter().flat_map(|f| &f.notes)),
            &known,
            &origin,
        );
        let remembered = match &options.store {
            Some(store) => store.load(&options.backend, &origin)?,
            None => None,
        };
        let entries = pr.summary.tip.map_or(0, |t| t.height + 1);
        let judgement = kchain_core::judge(
            ChainCheckpoints {
                policy: &policy,
                writer_policy: &writer_policy,
                notes: &notes,
                entries,
                intact: pr.summary.ok(),
                remembered: remembered.as_ref(),
                required: true,
            },
            &mut |sizes| match self.tree.and_then(|t| t.roots(sizes)) {
                Some(roots) => Ok(roots),
                None => roots_at(log, (topic, name), p, sizes),
            },
        )?;
        let finding = after_judge(
            &AfterJudge {
                origin: &origin,
                policy: &policy,
                judgement: &judgement,
                remembered: remembered.as_ref(),
                entries,
                max_age: checkpoint_trust.max_age,
                now: options.now.unwrap_or_else(unix_now),
                fetched: fetched.as_ref(),
            },
            warnings,
        );
        if let (Some(store), Some(note), None) = (&options.store, &judgement.remember, &finding) {
            store.save(&options.backend, &origin, note)?;
        }
        Ok(PartitionCheckpoints {
            partition: p,
            origin,
            entries,
            newest: judgement.newest.map(|(_, t)| t),
            remembered: judgement.remembered_newer,
            seen: judgement.seen,
            untrusted: judgement.untrusted,
            finding: finding.map(|f| CheckpointFinding {
                kind: f.kind,
                offset: f.height.map(|h| pr.start_offset + h),
                detail: f.detail,
                evidence: f.evidence,
            }),
        })
    }
}

/// The chain tree's roots at `sizes` (ascending), reading the chain once up to the largest.
fn roots_at(
    log: &dyn Log,
    (topic, name): (&str, &str),
    partition: u32,
    sizes: &[u64],
) -> Result<Vec<Hash>, TopicError> {
    let mut roots = Vec::with_capacity(sizes.len());
    let mut wanted = sizes.iter().copied().peekable();
    while wanted.next_if_eq(&0).is_some() {
        roots.push(merkle::empty_root());
    }
    let mut tree = TreeBuilder::new();
    let max = sizes.last().copied().unwrap_or(0);
    read_chain_named(log, topic, name, partition, max, &mut |_, h, _| {
        tree.push(&chain_leaf(h));
        while wanted.next_if_eq(&tree.size()).is_some() {
            roots.push(tree.root());
        }
    })?;
    Ok(roots)
}

/// The note verifiers of the writers `trust` allows for `topic`, named as in the trust file.
pub fn writer_verifiers(trust: &Trust, topic: &str) -> Vec<NoteVerifier> {
    trust
        .writers
        .iter()
        .filter(|w| w.topics.is_empty() || w.topics.iter().any(|t| t == topic))
        .filter_map(|w| w.key.note_verifier(&w.name).ok())
        .collect()
}
