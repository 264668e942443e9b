//! Checkpoints of chained topics on the log: the companion `<topic>.checkpoints` topic, the
//! writer's side (an incremental chain tree, signed checkpoints every N entries or T seconds
//! and on flush), the verifier's side (the chain against its trusted checkpoints) and proofs.
//!
//! ```text
//!  ChainWriter ── entry hashes ──► TreeBuilder ──► every N entries / T seconds / flush:
//!                                                  sign "origin\nsize\nroot\n" (writer key)
//!                                                      │
//!  <topic>.checkpoints  ◄── record: key = partition ("0"), value = signed note text
//!        │        ▲
//!        │        └── witnesses append the same text with their cosignatures added
//!        ▼
//!  check_checkpoints: merge the notes of one text (union of signatures), keep those that
//!  meet the trust file's policy, hold the chain of the log against them:
//!    chain shorter ──► truncated     root differs ──► rewritten     two roots ──► fork
//! ```
//!
//! The checkpoints of partition `p` go to partition `p % n` of the checkpoints topic (created
//! with the topic's partition count), so the writers of different partitions never contend
//! for one appender. Readers read every partition and go by the record key.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{
    chain_leaf, chain_origin, record_entry_header, ChainCheckpoints, ChainContext, ChainId,
    Checkpoint, CheckpointTrust, ConsistencyProofFile, EntryHeader, Hash, InclusionProofFile, Item,
    NoteSigner, NoteVerifier, Observation, SignedNote, Trust, TrustedCheckpoint, WriterKey,
    DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_log::{Log, LogError, Record, StoredRecord, TopicConfig};

use crate::error::TopicError;
use crate::files::CheckpointStore;
use crate::mapping::{item_of, meta_of};
use crate::verify::{observe_record, Chunks, TopicReport};

/// The suffix of a topic's companion checkpoints topic.
pub const CHECKPOINTS_SUFFIX: &str = ".checkpoints";

/// The name of `topic`'s checkpoints topic: `<topic>.checkpoints`.
pub fn checkpoints_topic(topic: &str) -> String {
    format!("{topic}{CHECKPOINTS_SUFFIX}")
}

/// The origin of partition `partition` of `topic` under `namespace`:
/// `<namespace>/<topic>/<partition>`.
pub fn partition_origin(namespace: &str, topic: &str, partition: u32) -> String {
    chain_origin(namespace, &format!("{topic}/{partition}"))
}

/// The topic and partition an origin of `namespace` names, if it is one.
pub fn split_origin<'o>(namespace: &str, origin: &'o str) -> Option<(&'o str, u32)> {
    let rest = origin.strip_prefix(namespace)?.strip_prefix('/')?;
    let (topic, p) = rest.rsplit_once('/')?;
    let canonical = !p.is_empty() && (p == "0" || !p.starts_with('0'));
    (!topic.is_empty() && canonical)
        .then(|| p.parse().ok().map(|p| (topic, p)))
        .flatten()
}

/// When a writer publishes checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// Publish once this many entries were appended since the last checkpoint.
    pub every_entries: u64,
    /// Publish once this long has passed since the last checkpoint (checked on append).
    pub every: Duration,
    /// The origin namespace (see [`partition_origin`]).
    pub namespace: String,
    /// Where the writer remembers the newest checkpoint it signed, outside the log (by
    /// default beside its key file). With it, a writer whose log was truncated or rewritten
    /// below what it signed refuses to sign, even when the checkpoints topic was emptied too.
    pub store: Option<CheckpointStore>,
    /// The identity of the log (see [`CheckpointStore`]).
    pub backend: String,
}

impl Default for CheckpointOptions {
    /// Every 100,000 entries or 10 seconds: one small record and one signature per interval,
    /// far below 1% of produce throughput.
    fn default() -> Self {
        CheckpointOptions {
            every_entries: 100_000,
            every: Duration::from_secs(10),
            namespace: DEFAULT_ORIGIN_NAMESPACE.to_owned(),
            store: None,
            backend: String::new(),
        }
    }
}

/// One signed note read from a checkpoints topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// The partition of the chained topic it is for (the record key).
    pub chain_partition: u32,
    /// Where it is in the checkpoints topic.
    pub partition: u32,
    pub offset: u64,
    pub note: SignedNote,
}

/// Reads every well-formed checkpoint record of `topic`'s checkpoints topic, in offset order
/// per partition; none when the topic does not exist. Records whose key is not a partition
/// number or whose value is not a signed note are skipped: they prove nothing.
pub fn read_checkpoints(log: &dyn Log, topic: &str) -> Result<Vec<CheckpointRecord>, TopicError> {
    let name = checkpoints_topic(topic);
    let info = match log.topic(&name) {
        Ok(info) => info,
        Err(LogError::NoSuchTopic(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for p in 0..info.partitions {
        let start = log.start_offset(&name, p)?;
        let end = log.end_offset(&name, p)?;
        let mut chunks = Chunks::new(log.reader(&name, p, start)?, end, 1024);
        while let Some(recs) = chunks.next_chunk()? {
            out.extend(recs.into_iter().filter_map(|r| parse_record(p, r)));
        }
    }
    Ok(out)
}

fn parse_record(partition: u32, r: StoredRecord) -> Option<CheckpointRecord> {
    let key = std::str::from_utf8(r.record.key.as_deref()?).ok()?;
    let chain_partition = key.parse().ok()?;
    let note = SignedNote::parse(r.record.value.as_deref()?).ok()?;
    Some(CheckpointRecord {
        chain_partition,
        partition,
        offset: r.offset,
        note,
    })
}

/// The distinct checkpoint texts of `notes`, each with the union of the signatures it was
/// seen with (a witness appends the text again with its cosignature), in order of first
/// appearance. Linear ([`kchain_core::merge_unverified`]); for display and export, not trust.
pub fn merge_notes<'a>(notes: impl IntoIterator<Item = &'a SignedNote>) -> Vec<SignedNote> {
    kchain_core::merge_unverified(notes)
}

/// Like [`merge_notes`], but keeping only signature lines by `known` keys that verify, and
/// only notes with at least one ([`kchain_core::merge_verified`]). Anyone who can append to
/// the checkpoints topic can append a checkpoint's text with a bogus line under a witness's
/// or writer's name; without this, that line would make a valid checkpoint fail its policy.
pub fn merge_verified_notes<'a>(
    notes: impl IntoIterator<Item = &'a SignedNote>,
    known: &[NoteVerifier],
) -> Vec<SignedNote> {
    kchain_core::merge_verified(notes, known).notes
}

/// The merged checkpoints (see [`merge_notes`]) of partition `partition` of `topic` under
/// `namespace`, each with its parsed checkpoint.
pub fn partition_checkpoints(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    namespace: &str,
) -> Result<Vec<(SignedNote, Checkpoint)>, TopicError> {
    let origin = partition_origin(namespace, topic, partition);
    let records = read_checkpoints(log, topic)?;
    let merged = merge_notes(
        records
            .iter()
            .filter(|r| r.chain_partition == partition)
            .map(|r| &r.note),
    );
    Ok(merged
        .into_iter()
        .filter_map(|n| {
            let c = Checkpoint::parse(n.text()).ok()?;
            (c.origin() == origin).then_some((n, c))
        })
        .collect())
}

/// The newest checkpoint of a partition: the largest size, and at that size the text with the
/// most signatures. Not checked against any policy.
pub fn newest_checkpoint(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    namespace: &str,
) -> Result<Option<SignedNote>, TopicError> {
    Ok(partition_checkpoints(log, topic, partition, namespace)?
        .into_iter()
        .max_by_key(|(n, c)| (c.size(), n.signatures().len()))
        .map(|(n, _)| n))
}

/// Creates `topic`'s checkpoints topic (with `topic`'s partition count) unless it exists, and
/// returns its name and partition count.
pub fn ensure_checkpoints_topic(log: &dyn Log, topic: &str) -> Result<(String, u32), TopicError> {
    let name = checkpoints_topic(topic);
    if let Ok(info) = log.topic(&name) {
        return Ok((name, info.partitions));
    }
    let partitions = log.topic(topic)?.partitions;
    match log.create_topic(
        &name,
        &TopicConfig {
            partitions,
            retention_ms: None,
        },
    ) {
        Ok(()) | Err(LogError::TopicExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let partitions = log.topic(&name)?.partitions;
    Ok((name, partitions))
}

/// Appends `note` as the checkpoint of partition `partition` of `topic` (creating the
/// checkpoints topic if missing) and returns its offset there. Waits briefly for an appender
/// another process holds (a writer or a witness appending at the same moment).
pub fn publish_note(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    note: &SignedNote,
) -> Result<u64, TopicError> {
    let (name, partitions) = ensure_checkpoints_topic(log, topic)?;
    let target = partition % partitions.max(1);
    let record = Record {
        key: Some(partition.to_string().into_bytes()),
        value: Some(note.to_text().into_bytes()),
        headers: Vec::new(),
        timestamp_ms: now_ms(),
    };
    let mut tries = 0;
    let mut appender = loop {
        match log.appender(&name, target) {
            Ok(a) => break a,
            Err(LogError::Locked { .. }) if tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(e.into()),
        }
    };
    let offsets = appender.append(std::slice::from_ref(&record))?;
    appender.flush()?;
    Ok(offsets[0])
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as i64)
        .max(1)
}

/// Reads the entries at heights `0..count` of a partition in order, checking that heights
/// are contiguous from the partition's start and that each links to the one before, and
/// hands each (height, entry hash, record) to `visit`. A chain that is not intact up to
/// `count` is an error: `kchain verify` says what is wrong with it.
pub(crate) fn read_chain(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    count: u64,
    visit: &mut dyn FnMut(u64, &Hash, &StoredRecord),
) -> Result<(), TopicError> {
    if count == 0 {
        return Ok(());
    }
    let start = log.start_offset(topic, partition)?;
    let trust = Trust::default();
    let ctx = ChainContext {
        topic,
        chain: ChainId::for_partition(topic, partition),
        trust: &trust,
    };
    let mut chunks = Chunks::new(log.reader(topic, partition, start)?, start + count, 4096);
    let mut scratch = Vec::new();
    let mut next = 0u64;
    let mut prev = kchain_core::ZERO_HASH;
    let broken = |offset: u64, why: &str| {
        TopicError::Invalid(format!(
            "{topic}/{partition}: the chain is not intact at offset {offset} ({why}); run \
             `kchain verify {topic}`"
        ))
    };
    while let Some(recs) = chunks.next_chunk()? {
        for r in &recs {
            match observe_record(&ctx, r, &mut scratch) {
                Observation::Entry(o) if o.height == next && o.prev == prev => {
                    visit(o.height, &o.hash, r);
                    prev = o.hash;
                    next += 1;
                }
                Observation::Entry(o) => {
                    return Err(broken(
                        r.offset,
                        &format!("height {} expected {next}", o.height),
                    ))
                }
                Observation::Malformed { error, .. } => {
                    return Err(broken(r.offset, &error.to_string()))
                }
            }
        }
    }
    if next < count {
        return Err(TopicError::Invalid(format!(
            "{topic}/{partition}: the chain has {next} entries, fewer than {count}"
        )));
    }
    Ok(())
}

/// The chain-tree leaves of heights `0..count`.
pub(crate) fn chain_leaves(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    count: u64,
) -> Result<Vec<Hash>, TopicError> {
    let mut leaves = Vec::with_capacity(count as usize);
    read_chain(log, topic, partition, count, &mut |_, h, _| {
        leaves.push(chain_leaf(h))
    })?;
    Ok(leaves)
}

// ---------------------------------------------------------------------------------------
// The writer's side.

#[path = "tree_worker.rs"]
mod tree_worker;
use tree_worker::BackgroundTree;

/// What a [`crate::ChainWriter`] keeps to publish checkpoints: its chain tree, its note key
/// and the last checkpoint it signed.
pub(crate) struct CheckpointState<'l> {
    log: &'l dyn Log,
    topic: String,
    partition: u32,
    origin: String,
    signer: NoteSigner,
    options: CheckpointOptions,
    tree: BackgroundTree,
    last: Option<(SignedNote, Checkpoint)>,
    last_time: Instant,
}

impl<'l> CheckpointState<'l> {
    /// Rebuilds the chain tree of a partition whose chain ends at `tip` (reading the chain
    /// once) and checks it against the newest checkpoint this key signed for it: a writer
    /// never signs a checkpoint inconsistent with one it signed before.
    pub(crate) fn open(
        log: &'l dyn Log,
        topic: &str,
        partition: u32,
        key: &WriterKey,
        tip: Option<(u64, Hash)>,
        options: CheckpointOptions,
    ) -> Result<Self, TopicError> {
        let signer = key.note_signer().map_err(|e| {
            TopicError::Invalid(format!(
                "writer key '{}' cannot sign checkpoints: {e}",
                key.name()
            ))
        })?;
        let origin = partition_origin(&options.namespace, topic, partition);
        let (last, source) = last_signed(log, topic, partition, &origin, &signer, &options)?;
        let count = tip.map_or(0, |(h, _)| h + 1);
        let mut tree = TreeBuilder::new();
        let last_size = last.as_ref().map(|(_, c)| c.size());
        let mut root_at_last = (last_size == Some(0)).then(merkle::empty_root);
        read_chain(log, topic, partition, count, &mut |_, h, _| {
            tree.push(&chain_leaf(h));
            if Some(tree.size()) == last_size {
                root_at_last = Some(tree.root());
            }
        })?;
        if let Some((_, c)) = &last {
            if let Some(why) = kchain_core::signer_contradiction(c, count, root_at_last.as_ref()) {
                return Err(TopicError::Invalid(format!(
                    "{origin}: refusing to sign: {why}; this writer signed size {} with root {} \
                     ({source}) and never signs two inconsistent checkpoints",
                    c.size(),
                    hex::encode(c.root())
                )));
            }
        }
        Ok(CheckpointState {
            log,
            topic: topic.to_owned(),
            partition,
            origin,
            signer,
            options,
            tree: BackgroundTree::start(tree)?,
            last,
            last_time: Instant::now(),
        })
    }

    /// Adds the next entries (the first at height = the tree's size) to the chain tree.
    pub(crate) fn push_all(&mut self, entry_hashes: Vec<Hash>) {
        self.tree.push_all(entry_hashes);
    }

    /// Whether a checkpoint is due: enough entries or time since the last.
    pub(crate) fn due(&self) -> bool {
        let signed = self.last.as_ref().map_or(0, |(_, c)| c.size());
        let pending = self.tree.size() - signed;
        pending > 0
            && (pending >= self.options.every_entries.max(1)
                || self.last_time.elapsed() >= self.options.every)
    }

    pub(crate) fn last(&self) -> Option<&SignedNote> {
        self.last.as_ref().map(|(n, _)| n)
    }

    /// Signs and publishes a checkpoint of the tree as it is, unless the last one already
    /// covers it. The tree only grows by this writer's own entries after it was checked
    /// against the last signed checkpoint, so the new one extends the last.
    pub(crate) fn publish(&mut self) -> Result<Option<SignedNote>, TopicError> {
        let (size, root) = self.tree.root()?;
        if let Some((_, c)) = &self.last {
            if size < c.size() || (size == c.size() && root != *c.root()) {
                return Err(TopicError::Invalid(format!(
                    "{}: refusing to sign size {size}: it contradicts the signed size {}",
                    self.origin,
                    c.size()
                )));
            }
            if size == c.size() {
                return Ok(None);
            }
        }
        if size == 0 {
            return Ok(None);
        }
        let checkpoint = Checkpoint::new(&self.origin, size, root)
            .map_err(|e| TopicError::Invalid(format!("{}: {e}", self.origin)))?;
        let note = checkpoint.sign(&self.signer);
        // Remembered before it is published: the writer's memory is never behind the log.
        if let Some(store) = &self.options.store {
            store.save(&self.options.backend, &self.origin, &note)?;
        }
        publish_note(self.log, &self.topic, self.partition, &note)?;
        self.last = Some((note.clone(), checkpoint));
        self.last_time = Instant::now();
        Ok(Some(note))
    }
}

/// The newest checkpoint `signer` signed for `origin`: on the checkpoints topic, or in the
/// writer's own memory (`options.store`), whichever is larger, with where it was found.
/// Refuses when the key signed two roots for one size (its key was used elsewhere).
fn last_signed(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    origin: &str,
    signer: &NoteSigner,
    options: &CheckpointOptions,
) -> Result<(Option<(SignedNote, Checkpoint)>, String), TopicError> {
    let own = [signer.verifier()];
    let records = read_checkpoints(log, topic)?;
    let mine = origin_notes(
        records
            .iter()
            .filter(|r| r.chain_partition == partition)
            .map(|r| &r.note),
        &own,
        origin,
    );
    let remembered = match &options.store {
        Some(store) => store.load(&options.backend, origin)?,
        None => None,
    };
    let mut by_size: HashMap<u64, Hash> = HashMap::new();
    let mut newest: Option<(SignedNote, Checkpoint)> = None;
    for (n, from_memory) in mine
        .iter()
        .map(|n| (n, false))
        .chain(remembered.iter().map(|n| (n, true)))
    {
        let Ok(c) = Checkpoint::parse(n.text()) else {
            continue;
        };
        if by_size
            .insert(c.size(), *c.root())
            .is_some_and(|r| r != *c.root())
        {
            return Err(TopicError::Invalid(format!(
                "{origin}: this key already signed two checkpoints of size {}; refusing to \
                 sign more",
                c.size()
            )));
        }
        let newer = newest.as_ref().is_none_or(|(_, b)| c.size() > b.size());
        if newer || (from_memory && newest.as_ref().is_some_and(|(_, b)| b.size() == c.size())) {
            newest = Some((n.clone(), c));
        }
    }
    let source = match (&options.store, &newest, &remembered) {
        (Some(store), Some((n, _)), Some(r)) if n == r => format!(
            "remembered in {}",
            store.path(&options.backend, origin).display()
        ),
        _ => format!("on {}", checkpoints_topic(topic)),
    };
    // The memory catches up with what the topic shows this key signed.
    if let (Some(store), Some((n, _))) = (&options.store, &newest) {
        if remembered.as_ref() != Some(n) {
            store.save(&options.backend, origin, n)?;
        }
    }
    Ok((newest, source))
}

// ---------------------------------------------------------------------------------------
// The verifier's side.

pub use kchain_core::CheckpointFindingKind;

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
    /// The identity of the log (see [`CheckpointStore`]): `embedded:<abs path>` or
    /// `kafka:<bootstrap list>`.
    pub backend: String,
    /// Checkpoints handed over outside the log (`--checkpoint FILE`, from a witness): they
    /// count as if read from the checkpoints topic, and must meet the policy like those.
    pub handed: Vec<SignedNote>,
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
    let topic = report.topic.as_str();
    let invalid = |e: kchain_core::TrustError| TopicError::Invalid(e.to_string());
    let mut by_partition: HashMap<u32, Vec<&SignedNote>> = HashMap::new();
    for r in records {
        by_partition
            .entry(r.chain_partition)
            .or_default()
            .push(&r.note);
    }
    let mut partitions = Vec::new();
    for pr in &report.partitions {
        let p = pr.partition;
        let origin = checkpoint_trust.origin(topic, p);
        let policy = checkpoint_trust.policy(trust, topic, p).map_err(invalid)?;
        let writer_policy = checkpoint_trust
            .writer_policy(trust, topic, p)
            .map_err(invalid)?;
        let known: Vec<NoteVerifier> = policy
            .writers()
            .iter()
            .chain(policy.witnesses())
            .cloned()
            .collect();
        let from_log = by_partition.get(&p).map(Vec::as_slice).unwrap_or_default();
        let notes = origin_notes(
            from_log.iter().copied().chain(&options.handed),
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
            &mut |sizes| roots_at(log, topic, p, sizes),
        )?;
        if let (Some(store), Some(note)) = (&options.store, &judgement.remember) {
            store.save(&options.backend, &origin, note)?;
        }
        partitions.push(PartitionCheckpoints {
            partition: p,
            origin,
            entries,
            newest: judgement.newest.map(|(_, t)| t),
            remembered: judgement.remembered_newer,
            seen: judgement.seen,
            untrusted: judgement.untrusted,
            finding: judgement.finding.map(|f| CheckpointFinding {
                kind: f.kind,
                offset: f.height.map(|h| pr.start_offset + h),
                detail: f.detail,
                evidence: f.evidence,
            }),
        });
    }
    Ok(CheckpointReport {
        topic: topic.to_owned(),
        partitions,
        warnings: Vec::new(),
    })
}

/// The checkpoints of `origin` among `notes`, merged by text with only verified lines by
/// `known` keys ([`kchain_core::merge_verified`]: linear, whatever was appended).
pub(crate) fn origin_notes<'a>(
    notes: impl IntoIterator<Item = &'a SignedNote>,
    known: &[NoteVerifier],
    origin: &str,
) -> Vec<SignedNote> {
    kchain_core::merge_verified(notes, known)
        .notes
        .into_iter()
        .filter(|n| Checkpoint::parse(n.text()).is_ok_and(|c| c.origin() == origin))
        .collect()
}

/// The chain tree's roots at `sizes` (ascending), reading the chain once up to the largest.
fn roots_at(
    log: &dyn Log,
    topic: &str,
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
    read_chain(log, topic, partition, max, &mut |_, h, _| {
        tree.push(&chain_leaf(h));
        while wanted.next_if_eq(&tree.size()).is_some() {
            roots.push(tree.root());
        }
    })?;
    Ok(roots)
}

// ---------------------------------------------------------------------------------------
// Proofs.

/// A proof that the record at `offset` of `topic`/`partition` is in the newest checkpoint of
/// its chain that covers it, with the record itself (its entry header and item). Fails when no
/// checkpoint covers the record yet, or when the chain does not match the checkpoint.
pub fn prove_inclusion(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    offset: u64,
    namespace: &str,
) -> Result<InclusionProofFile, TopicError> {
    let start = log.start_offset(topic, partition)?;
    if offset < start || offset >= log.end_offset(topic, partition)? {
        return Err(TopicError::Invalid(format!(
            "{topic}/{partition}: no record at offset {offset}"
        )));
    }
    let height = offset - start;
    let (note, checkpoint) = partition_checkpoints(log, topic, partition, namespace)?
        .into_iter()
        .max_by_key(|(n, c)| (c.size(), n.signatures().len()))
        .filter(|(_, c)| c.size() > height)
        .ok_or_else(|| {
            TopicError::Invalid(format!(
                "{topic}/{partition}: no checkpoint covers offset {offset} yet (the writer \
                 publishes one every few seconds and when it stops)"
            ))
        })?;
    let mut leaves = Vec::with_capacity(checkpoint.size() as usize);
    let mut record = None;
    read_chain(
        log,
        topic,
        partition,
        checkpoint.size(),
        &mut |h, hash, r| {
            leaves.push(chain_leaf(hash));
            if h == height {
                record = Some((*hash, r.record.clone()));
            }
        },
    )?;
    check_root(topic, partition, &leaves, &checkpoint)?;
    let (entry_hash, record) = record.expect("the chain reached the record's height");
    let item = item_of(&record);
    let header = entry_header(topic, partition, &record, &item)?;
    if header.hash() != entry_hash {
        return Err(TopicError::Invalid(format!(
            "{topic}/{partition}: the record at offset {offset} does not hash to its entry"
        )));
    }
    let proof = merkle::inclusion_proof(&leaves, height)
        .map_err(|e| TopicError::Invalid(format!("{topic}/{partition}: {e}")))?;
    Ok(InclusionProofFile::new(height, &entry_hash, &proof, &note)
        .with_entry(&header, Some((&item, 0, &[]))))
}

fn entry_header(
    topic: &str,
    partition: u32,
    record: &Record,
    item: &Item,
) -> Result<EntryHeader, TopicError> {
    let meta =
        meta_of(record).map_err(|e| TopicError::Invalid(format!("{topic}/{partition}: {e}")))?;
    Ok(record_entry_header(
        ChainId::for_partition(topic, partition),
        meta.height,
        meta.prev,
        &item.as_ref(),
        &mut Vec::new(),
    ))
}

fn check_root(
    topic: &str,
    partition: u32,
    leaves: &[Hash],
    checkpoint: &Checkpoint,
) -> Result<(), TopicError> {
    let root = merkle::root(leaves);
    if root != *checkpoint.root() {
        return Err(TopicError::Invalid(format!(
            "{topic}/{partition}: the chain's tree at size {} does not match the checkpoint \
             (rewritten history?); run `kchain verify {topic} --trust FILE`",
            checkpoint.size()
        )));
    }
    Ok(())
}

/// A proof that checkpoint `old` is a prefix of checkpoint `new` (both of one chain of
/// `log`, named by their origin under `namespace`), computed from the chain. Fails when
/// either does not match the chain. Requires `old`'s size <= `new`'s.
pub fn prove_consistency(
    log: &dyn Log,
    old: &SignedNote,
    new: &SignedNote,
    namespace: &str,
) -> Result<ConsistencyProofFile, TopicError> {
    let parse = |n: &SignedNote, which: &str| {
        Checkpoint::parse(n.text())
            .map_err(|e| TopicError::Invalid(format!("{which} checkpoint: {e}")))
    };
    let (o, n) = (parse(old, "old")?, parse(new, "new")?);
    if o.origin() != n.origin() {
        return Err(TopicError::Invalid(format!(
            "the checkpoints are of different chains: {} and {}",
            o.origin(),
            n.origin()
        )));
    }
    if o.size() > n.size() {
        return Err(TopicError::Invalid(format!(
            "the old checkpoint (size {}) is larger than the new one (size {})",
            o.size(),
            n.size()
        )));
    }
    let (topic, partition) = split_origin(namespace, n.origin()).ok_or_else(|| {
        TopicError::Invalid(format!(
            "origin {} is not <{namespace}>/<topic>/<partition>",
            n.origin()
        ))
    })?;
    let leaves = chain_leaves(log, topic, partition, n.size())?;
    check_root(topic, partition, &leaves[..o.size() as usize], &o)?;
    check_root(topic, partition, &leaves, &n)?;
    let proof = if o.size() == 0 || o.size() == n.size() {
        Vec::new()
    } else {
        merkle::consistency_proof(&leaves, o.size())
            .map_err(|e| TopicError::Invalid(format!("{topic}/{partition}: {e}")))?
    };
    Ok(ConsistencyProofFile::new(old, new, &proof))
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

// ---------------------------------------------------------------------------------------
// The witness's side.

#[path = "witness.rs"]
mod witness;
pub use witness::{witness_export, witness_origin, witness_pass, OriginLog, WitnessEvent};
