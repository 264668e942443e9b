//! The witness's side of checkpoints: one pass over a chained topic's checkpoints topic,
//! cosigning each new checkpoint that extends the last one this witness cosigned.
//!
//! ```text
//! state dir, per origin:  <hex origin>.note      the last checkpoint cosigned
//!                         <hex origin>.frontier  its tree's frontier (one hash per set bit
//!                                                of its size), so a pass reads only the
//!                                                entries appended since
//!                         <hex origin>.forked    present once a fork was seen: never again
//!
//! pass:  fresh checkpoints (larger than the last, or same size and other text), by size
//!        leaves since the last: entry hashes from the `kchain.prev` headers of the records
//!        after them (no hashing); if the log does not look like a chain there, from the
//!        chain read and hashed record by record
//!        frontier + leaves ──► root at the checkpoint's size = its root?
//!            yes ──► consistency proof from the frontier and the leaves ──► Witness::observe
//!            no  ──► skipped (the log's chain does not match it; nothing to prove with)
//! ```
//!
//! The leaves come from the log, which the witness does not trust: they only serve to build
//! a proof, and a proof made of wrong leaves fails against the roots the writer signed.

use std::collections::BTreeMap;
use std::path::Path;

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{
    chain_leaf, ChainContext, ChainId, ChainMeta, Checkpoint, Hash, NoteVerifier, Observation,
    SignedNote, Trust, Witness, WitnessRefusal, ZERO_HASH,
};
use kchain_log::Log;

use super::topic::{merge_verified_notes, partition_origin, publish_note, read_checkpoints};
use crate::error::TopicError;
use crate::scan::{observe_record, read_chain, Chunks};

/// What a witness did with one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WitnessEvent {
    /// Cosigned, and appended the cosigned note to the checkpoints topic.
    Cosigned { origin: String, size: u64 },
    /// Refused: the writer signed something that contradicts what the witness cosigned
    /// (`Fork`, `Inconsistent`: the refusal carries the evidence), or that it does not trust.
    Refused {
        origin: String,
        size: u64,
        refusal: WitnessRefusal,
    },
    /// Not offered to the witness: the log's chain does not (yet) match the checkpoint, so
    /// no consistency proof can be built from it.
    Skipped {
        origin: String,
        size: u64,
        reason: String,
    },
    /// The log contradicts what this witness cosigned (it is shorter than the cosigned
    /// checkpoint, or its tree has another root at that size), or a fork was refused before:
    /// the witness never cosigns for the origin again. `evidence` is the file that proves it
    /// (written when the contradiction was first seen).
    Alarm {
        origin: String,
        size: u64,
        detail: String,
        evidence: Option<std::path::PathBuf>,
    },
}

/// One pass of a witness over the checkpoints of `topic`: for each partition, offers every
/// checkpoint larger than the one it last cosigned (kept in `state_dir`, see the module
/// documentation) to `witness` (whose writer keys are `writers`), in size order, with a
/// consistency proof built from the log, and appends each cosigned note to the checkpoints
/// topic. After a fork or an inconsistency the witness marks the origin and never cosigns
/// for it again. `now` is POSIX seconds.
pub fn witness_pass(
    log: &dyn Log,
    topic: &str,
    witness: &Witness,
    writers: &[NoteVerifier],
    state_dir: &Path,
    namespace: &str,
    now: u64,
) -> Result<Vec<WitnessEvent>, TopicError> {
    let records = read_checkpoints(log, topic)?;
    // Grouped by partition in one pass; a record key naming a partition the topic does not
    // have proves nothing (anyone can append one).
    let count = log.topic(topic)?.partitions;
    let mut by_partition: BTreeMap<u32, Vec<&SignedNote>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.chain_partition < count) {
        by_partition
            .entry(r.chain_partition)
            .or_default()
            .push(&r.note);
    }
    let mut events = Vec::new();
    for (p, notes) in by_partition {
        let origin = partition_origin(namespace, topic, p);
        let have = log.end_offset(topic, p)? - log.start_offset(topic, p)?;
        let mut leaves = |from: u64, to: u64| leaves_between(log, topic, p, from, to);
        let origin_log = OriginLog {
            origin: &origin,
            notes: &notes,
            writers,
            entries: have,
            leaves: &mut leaves,
        };
        events.extend(witness_origin(
            origin_log,
            witness,
            state_dir,
            now,
            &mut |note| publish_note(log, topic, p, note).map(drop),
        )?);
    }
    Ok(events)
}

/// What a witness needs of one origin's log: the checkpoint notes published for it, the
/// writers allowed to sign them, how many entries the log holds, and a source of its leaf
/// hashes (`chain_leaf` of entry hashes).
pub struct OriginLog<'a> {
    pub origin: &'a str,
    pub notes: &'a [&'a SignedNote],
    pub writers: &'a [NoteVerifier],
    /// Entries the log holds now.
    pub entries: u64,
    /// The leaf hashes of heights `from..to` (`to <= entries`), or an empty vector when the
    /// log does not give them. Untrusted: a wrong leaf only makes a proof fail.
    pub leaves: &'a mut dyn FnMut(u64, u64) -> Result<Vec<Hash>, TopicError>,
}

/// A witness's work on one origin (see the module documentation): offers every checkpoint
/// larger than the one it last cosigned to `witness`, in size order, with a consistency proof
/// built from its frontier and the log's new leaves, and hands each cosigned note to
/// `publish`. Chained topics (`witness_pass`) and the ledger's blocks chain use it alike.
pub fn witness_origin(
    log: OriginLog<'_>,
    witness: &Witness,
    state_dir: &Path,
    now: u64,
    publish: &mut dyn FnMut(&SignedNote) -> Result<(), TopicError>,
) -> Result<Vec<WitnessEvent>, TopicError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| TopicError::io(format!("creating {}", state_dir.display()), e))?;
    let mut events = Vec::new();
    let origin = log.origin.to_owned();
    let have = log.entries;
    let leaves_of = log.leaves;
    let state = state_dir.join(format!("{}.note", hex::encode(&origin)));
    let frontier_file = state.with_extension("frontier");
    let forked = state.with_extension("forked");
    let rebuild = |leaves_of: &mut dyn FnMut(u64, u64) -> Result<Vec<Hash>, TopicError>,
                   count: u64|
     -> Result<Option<TreeBuilder>, TopicError> {
        let leaves = leaves_of(0, count)?;
        if leaves.len() as u64 != count {
            return Ok(None);
        }
        let mut tree = TreeBuilder::new();
        leaves.iter().for_each(|l| tree.push(l));
        Ok(Some(tree))
    };
    let mut notes: Vec<(SignedNote, Checkpoint)> =
        merge_verified_notes(log.notes.iter().copied(), log.writers)
            .into_iter()
            .filter_map(|n| {
                let c = Checkpoint::parse(n.text()).ok()?;
                (c.origin() == origin).then_some((n, c))
            })
            .collect();
    notes.sort_by_key(|(_, c)| c.size());
    let mut last = read_state(&state)?;
    let fresh: Vec<_> = notes
        .into_iter()
        .filter(|(n, c)| match &last {
            None => true,
            Some((l, lc)) => {
                c.size() > lc.size() || (c.size() == lc.size() && n.text() != l.text())
            }
        })
        .collect();
    let evidence_file = state_dir.join(format!("evidence-{}-{}.json", file_safe(&origin), {
        last.as_ref().map_or(0, |(_, c)| c.size())
    }));
    if let Some(detail) = read_marker(&forked)? {
        events.push(WitnessEvent::Alarm {
            origin: origin.clone(),
            size: last.as_ref().map_or(0, |(_, c)| c.size()),
            detail,
            evidence: evidence_file.exists().then_some(evidence_file),
        });
        return Ok(events);
    }
    // What the witness cosigned must still be in the log: a log shorter than it is
    // truncated, whatever its checkpoints topic shows now.
    if let Some((ln, lc)) = &last {
        if have < lc.size() {
            let detail = format!(
                "the log has {have} entries, fewer than the {} of the checkpoint this witness \
                 cosigned (truncated)",
                lc.size()
            );
            events.push(contradicted(
                &origin,
                ln,
                lc,
                have,
                None,
                "truncated",
                detail,
                &forked,
                &evidence_file,
            )?);
            return Ok(events);
        }
    }
    if fresh.is_empty() {
        return Ok(events);
    }
    let skip = |events: &mut Vec<WitnessEvent>, size: u64, reason: &str| {
        events.push(WitnessEvent::Skipped {
            origin: origin.clone(),
            size,
            reason: reason.to_owned(),
        })
    };
    // The tree of what was last cosigned: its saved frontier, else rebuilt from the log.
    let mut tree = match &last {
        None => Some(TreeBuilder::new()),
        Some((_, lc)) => match read_frontier(&frontier_file) {
            Some(t) if t.size() == lc.size() && t.root() == *lc.root() => Some(t),
            _ => rebuild(leaves_of, lc.size().min(have))?
                .filter(|t| t.size() == lc.size() && t.root() == *lc.root()),
        },
    };
    let max = fresh.iter().map(|(_, c)| c.size()).max().unwrap_or(0);
    let base = tree.as_ref().map_or(0, TreeBuilder::size);
    let leaves = match &tree {
        Some(_) if max.min(have) > base => leaves_of(base, max.min(have))?,
        _ => Vec::new(),
    };
    let mut beneath_checked = false;
    for (note, c) in fresh {
        let size = c.size();
        let same_size = last.as_ref().is_some_and(|(_, lc)| lc.size() == size);
        // The tree at this checkpoint's size, if the log's leaves give its root.
        let grown = tree.as_ref().and_then(|t| {
            let upto = usize::try_from(size.checked_sub(base)?).ok()?;
            let from = (t.size() - base) as usize;
            let appended = leaves.get(from..upto)?;
            let mut g = t.clone();
            appended.iter().for_each(|l| g.push(l));
            (g.root() == *c.root()).then_some((g, appended))
        });
        let proof = if same_size || last.is_none() {
            Vec::new()
        } else {
            match (&tree, &grown) {
                (Some(t), Some((_, appended))) => {
                    merkle::consistency_proof_extending(t, appended).unwrap_or_default()
                }
                _ => {
                    // Does the log still hold what this witness cosigned? If its tree at
                    // that size has another root, the log was rewritten beneath it.
                    if let Some((ln, lc)) = last.as_ref().filter(|_| !beneath_checked) {
                        beneath_checked = true;
                        let log_root = rebuild(leaves_of, lc.size())?.map(|t| t.root());
                        if log_root.is_some_and(|r| r != *lc.root()) {
                            let detail = format!(
                                "the log's first {} entries have tree root {}, not the {} this \
                                 witness cosigned (rewritten)",
                                lc.size(),
                                log_root.map(hex::encode).unwrap_or_default(),
                                hex::encode(lc.root())
                            );
                            events.push(contradicted(
                                &origin,
                                ln,
                                lc,
                                have,
                                log_root,
                                "rewritten",
                                detail,
                                &forked,
                                &evidence_file,
                            )?);
                            break;
                        }
                    }
                    skip(
                        &mut events,
                        size,
                        "the log's chain does not match this checkpoint; no proof",
                    );
                    continue;
                }
            }
        };
        match witness.observe(last.as_ref().map(|(n, _)| n), &note, &proof, now) {
            Ok(cosignature) => {
                let mut cosigned = note.clone();
                cosigned.add_signature(cosignature.to_note_signature());
                publish(&cosigned)?;
                // The note is kept with this witness's cosignature: `kchain witness export`
                // hands it to verifiers as a checkpoint outside the log.
                write_file(&state, cosigned.to_text().as_bytes())?;
                match grown {
                    Some((g, _)) => {
                        write_file(&frontier_file, frontier_text(&g).as_bytes())?;
                        tree = Some(g);
                    }
                    None => {
                        // Cosigned with no proof (the first, or one of the same size):
                        // the log does not give its tree, so the next pass rebuilds.
                        let _ = std::fs::remove_file(&frontier_file);
                        tree = None;
                    }
                }
                events.push(WitnessEvent::Cosigned {
                    origin: origin.clone(),
                    size,
                });
                last = Some((note, c));
            }
            Err(refusal) => {
                let fork = matches!(
                    refusal,
                    WitnessRefusal::Fork { .. } | WitnessRefusal::Inconsistent { .. }
                );
                events.push(WitnessEvent::Refused {
                    origin: origin.clone(),
                    size,
                    refusal,
                });
                if fork {
                    write_file(
                        &forked,
                        format!("the writer signed a fork at size {size}\n").as_bytes(),
                    )?;
                    break;
                }
            }
        }
    }
    Ok(events)
}

/// The chain-tree leaves of heights `from..to`. Fast path: entry hash `h` is the
/// `kchain.prev` of the record at height `h + 1`, so only the record at height `to - 1`,
/// when it is the last, is hashed. Falls back to reading and hashing the whole chain when the
/// records are not at the offsets their heights imply (foreign records, a damaged chain).
fn leaves_between(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, TopicError> {
    let start = log.start_offset(topic, partition)?;
    let end = log.end_offset(topic, partition)?;
    let mut leaves = Vec::with_capacity((to - from) as usize);
    let mut fast = true;
    // Records at heights from+1 ..= to give the entry hashes of heights from .. to.
    let last = (start + to + 1).min(end);
    let mut chunks = Chunks::new(log.reader(topic, partition, start + from + 1)?, last, 4096);
    'read: while let Some(recs) = chunks.next_chunk()? {
        for r in &recs {
            let meta = ChainMeta::parse(
                r.record
                    .headers
                    .iter()
                    .map(|h| (h.name.as_str(), &h.value[..])),
            );
            match meta {
                Ok(m) if m.height == r.offset - start && m.prev != ZERO_HASH => {
                    leaves.push(chain_leaf(&m.prev))
                }
                _ => {
                    fast = false;
                    break 'read;
                }
            }
        }
    }
    if fast && leaves.len() as u64 + 1 == to - from {
        // The tip itself: nothing after it names its hash yet.
        match entry_hash_at(log, topic, partition, to - 1)? {
            Some(h) => leaves.push(chain_leaf(&h)),
            None => fast = false,
        }
    }
    if fast && leaves.len() as u64 == to - from {
        return Ok(leaves);
    }
    let mut all = Vec::new();
    if read_chain(log, topic, partition, to, &mut |height, h, _| {
        if height >= from {
            all.push(chain_leaf(h))
        }
    })
    .is_err()
    {
        all.clear();
    }
    Ok(all)
}

/// The entry hash of the record at `height`, computed from the record, if it is one.
fn entry_hash_at(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    height: u64,
) -> Result<Option<Hash>, TopicError> {
    let offset = log.start_offset(topic, partition)? + height;
    let mut chunks = Chunks::new(log.reader(topic, partition, offset)?, offset + 1, 1);
    let trust = Trust::default();
    let ctx = ChainContext {
        topic,
        chain: ChainId::for_partition(topic, partition),
        trust: &trust,
    };
    let recs = chunks.next_chunk()?.unwrap_or_default();
    Ok(
        match recs
            .first()
            .map(|r| observe_record(&ctx, r, &mut Vec::new()))
        {
            Some(Observation::Entry(o)) if o.height == height => Some(o.hash),
            _ => None,
        },
    )
}

fn frontier_text(t: &TreeBuilder) -> String {
    let mut s = format!("{}\n", t.size());
    for p in t.peaks() {
        s += &hex::encode(p);
        s.push('\n');
    }
    s
}

fn read_frontier(path: &Path) -> Option<TreeBuilder> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let size = lines.next()?.parse().ok()?;
    let peaks = lines
        .map(|l| hex::decode(l).ok()?.try_into().ok())
        .collect::<Option<Vec<Hash>>>()?;
    TreeBuilder::from_peaks(size, peaks)
}

fn read_state(path: &Path) -> Result<Option<(SignedNote, Checkpoint)>, TopicError> {
    let bytes = match crate::files::read_capped(
        path,
        "witness state",
        crate::files::MAX_CHECKPOINT_FILE_BYTES,
    ) {
        Ok(b) => b,
        Err(TopicError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let bad = |why: String| TopicError::Invalid(format!("witness state {}: {why}", path.display()));
    let note = SignedNote::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    let c = Checkpoint::parse(note.text()).map_err(|e| bad(e.to_string()))?;
    Ok(Some((note, c)))
}

/// Replaces a state file atomically and durably: a witness that crashes keeps the old or
/// the new state.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TopicError> {
    crate::files::write_atomic(path, bytes)
}

/// The reason a witness stopped cosigning for an origin, if it did (its marker file).
fn read_marker(path: &Path) -> Result<Option<String>, TopicError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(
            String::from_utf8_lossy(&b[..b.len().min(4096)])
                .trim()
                .to_owned(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TopicError::io(format!("reading {}", path.display()), e)),
    }
}

/// Records that the log contradicts the checkpoint this witness cosigned: writes the
/// evidence file, marks the origin (never cosigned again), and returns the alarm.
#[allow(clippy::too_many_arguments)]
fn contradicted(
    origin: &str,
    cosigned: &SignedNote,
    c: &Checkpoint,
    have: u64,
    log_root: Option<Hash>,
    kind: &str,
    detail: String,
    marker: &Path,
    evidence_file: &Path,
) -> Result<WitnessEvent, TopicError> {
    let evidence = kchain_core::WitnessEvidence {
        format: kchain_core::WITNESS_EVIDENCE_FORMAT.to_owned(),
        kind: kind.to_owned(),
        origin: origin.to_owned(),
        cosigned: cosigned.to_text(),
        log_entries: have,
        log_root: log_root.map(hex::encode),
        detail: detail.clone(),
    };
    write_file(evidence_file, evidence.to_json().as_bytes())?;
    write_file(marker, format!("{detail}\n").as_bytes())?;
    Ok(WitnessEvent::Alarm {
        origin: origin.to_owned(),
        size: c.size(),
        detail,
        evidence: Some(evidence_file.to_owned()),
    })
}

/// `origin` as a file name part: letters, digits, '.' and '-' kept, the rest '_'.
pub(crate) fn file_safe(origin: &str) -> String {
    origin
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '_',
        })
        .collect()
}

/// The checkpoints a witness cosigned, one per origin, each carrying its cosignature (the
/// `.note` files of its state directory), sorted by origin: what `kchain witness export`
/// hands to verifiers.
pub fn witness_export(state_dir: &Path) -> Result<Vec<SignedNote>, TopicError> {
    let io = |e| TopicError::io(format!("reading {}", state_dir.display()), e);
    let mut notes = Vec::new();
    for entry in std::fs::read_dir(state_dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "note") {
            if let Some((note, _)) = read_state(&path)? {
                notes.push(note);
            }
        }
    }
    notes.sort_by(|a, b| a.text().cmp(b.text()));
    Ok(notes)
}
