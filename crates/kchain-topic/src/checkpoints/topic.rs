//! The companion `<topic>.checkpoints` topic: its name, the origins of the chains it
//! covers, reading and merging the signed notes on it, and appending one.
//!
//! The checkpoints of partition `p` go to partition `p % n` of the checkpoints topic (created
//! with the topic's partition count), so the writers of different partitions never contend
//! for one appender. Readers read every partition and go by the record key.

use std::time::Duration;

use kchain_core::{chain_origin, Checkpoint, NoteVerifier, SignedNote};
use kchain_log::{Appender, Log, LogError, Record, StoredRecord, TopicConfig};

use crate::error::TopicError;
use crate::scan::Chunks;

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

/// The topic and partition an origin of `namespace` names, if it is one (the rule is
/// core's, shared with proof files).
pub use kchain_core::checkpoint::split_origin;

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
/// checkpoints topic if missing), forces it to disk, and returns its offset there. Waits
/// briefly for an appender another process holds (a writer or a witness appending at the
/// same moment).
pub fn publish_note(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    note: &SignedNote,
) -> Result<u64, TopicError> {
    let mut appender = note_appender(log, topic, partition)?;
    append_note(appender.as_mut(), partition, note)
}

/// The appender of the checkpoints partition that takes the notes of partition `partition`
/// of `topic` (creating the checkpoints topic if missing), waiting briefly for one another
/// process holds. Drop it soon: witnesses append to the same partition.
pub(crate) fn note_appender(
    log: &dyn Log,
    topic: &str,
    partition: u32,
) -> Result<Box<dyn Appender>, TopicError> {
    let (name, partitions) = ensure_checkpoints_topic(log, topic)?;
    let target = partition % partitions.max(1);
    let mut tries = 0;
    loop {
        match log.appender(&name, target) {
            Ok(a) => return Ok(a),
            Err(LogError::Locked { .. }) if tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Appends `note` as the checkpoint of chain partition `partition` through `appender` (from
/// [`note_appender`]) and forces it to disk; returns its offset.
pub(crate) fn append_note(
    appender: &mut dyn Appender,
    partition: u32,
    note: &SignedNote,
) -> Result<u64, TopicError> {
    let record = Record {
        key: Some(partition.to_string().into_bytes()),
        value: Some(note.to_text().into_bytes()),
        headers: Vec::new(),
        timestamp_ms: kchain_core::time::now_ms().max(1),
    };
    let offsets = appender.append(std::slice::from_ref(&record))?;
    appender.flush()?;
    Ok(offsets[0])
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
