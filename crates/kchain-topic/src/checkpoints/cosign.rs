//! A witness's work on one origin, for chained topics (`witness_pass`) and the ledger's
//! blocks chain alike: offer each checkpoint newer than the one it last cosigned, in size
//! order, with a consistency proof built from its frontier and the log's new leaves.
//!
//! ```text
//!  stopped before (marker) ──► Alarm          log shorter than the cosigned ──► Alarm
//!  fresh notes (larger, or same size and other text), by size:
//!    frontier (or tree rebuilt) + new leaves ──► root at the note's size = its root?
//!      yes ──► proof ──► Witness::observe ──► cosigned: publish, save note and frontier
//!                                         └─► fork / inconsistent: mark, stop
//!      no  ──► the log rewritten beneath the cosigned one? ──► Alarm, else Skipped
//! ```

use std::path::{Path, PathBuf};

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{
    Checkpoint, Cosignature, Hash, NoteVerifier, SignedNote, Witness, WitnessRefusal,
};

use super::topic::merge_verified_notes;
use super::witness_state::{
    frontier_text, read_frontier, read_marker, read_state, write_file, StateFiles,
};
use crate::error::TopicError;

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

/// A source of leaf hashes: those of heights `from..to`, or none when the log lacks them.
type Leaves<'a> = &'a mut dyn FnMut(u64, u64) -> Result<Vec<Hash>, TopicError>;

/// Hands a cosigned note to wherever the witness publishes it.
type Publish<'a> = &'a mut dyn FnMut(&SignedNote) -> Result<(), TopicError>;

/// A witness's work on one origin (see the module documentation): offers every checkpoint
/// larger than the one it last cosigned to `witness`, in size order, with a consistency proof
/// built from its frontier and the log's new leaves, and hands each cosigned note to
/// `publish`. Chained topics (`witness_pass`) and the ledger's blocks chain use it alike.
pub fn witness_origin(
    log: OriginLog<'_>,
    witness: &Witness,
    state_dir: &Path,
    now: u64,
    publish: Publish<'_>,
) -> Result<Vec<WitnessEvent>, TopicError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| TopicError::io(format!("creating {}", state_dir.display()), e))?;
    let files = StateFiles::new(state_dir, log.origin);
    let last = read_state(&files.note)?;
    let (notes, writers, name) = (log.notes, log.writers, log.origin);
    let cosigned_size = last.as_ref().map_or(0, |(_, c)| c.size());
    let mut origin = Origin {
        origin: log.origin.to_owned(),
        have: log.entries,
        leaves_of: log.leaves,
        evidence: StateFiles::evidence(state_dir, log.origin, cosigned_size),
        files,
        last,
        events: Vec::new(),
    };
    let fresh = fresh_notes(notes, writers, name, origin.last.as_ref());
    if !origin.stopped()? && !fresh.is_empty() {
        origin.offer_all(fresh, witness, now, publish)?;
    }
    Ok(origin.events)
}

/// The checkpoints of `origin` among `notes` with a verified signature by one of `writers`, newer than `last`
/// (larger, or of its size with another text), in size order.
fn fresh_notes(
    notes: &[&SignedNote],
    writers: &[NoteVerifier],
    origin: &str,
    last: Option<&(SignedNote, Checkpoint)>,
) -> Vec<(SignedNote, Checkpoint)> {
    let mut notes: Vec<(SignedNote, Checkpoint)> =
        merge_verified_notes(notes.iter().copied(), writers)
            .into_iter()
            .filter_map(|n| {
                let c = Checkpoint::parse(n.text()).ok()?;
                (c.origin() == origin).then_some((n, c))
            })
            .collect();
    notes.sort_by_key(|(_, c)| c.size());
    notes
        .into_iter()
        .filter(|(n, c)| match last {
            None => true,
            Some((l, lc)) => {
                c.size() > lc.size() || (c.size() == lc.size() && n.text() != l.text())
            }
        })
        .collect()
}

/// One origin during a witness's work on it.
struct Origin<'a> {
    origin: String,
    /// Entries the log holds now.
    have: u64,
    leaves_of: Leaves<'a>,
    files: StateFiles,
    /// Where the evidence of a contradiction of the checkpoint cosigned before goes.
    evidence: PathBuf,
    /// The last checkpoint cosigned.
    last: Option<(SignedNote, Checkpoint)>,
    events: Vec<WitnessEvent>,
}

impl Origin<'_> {
    /// Whether the witness no longer cosigns for this origin: it stopped before (a fork or a
    /// contradiction), or the log is shorter than what it cosigned (truncated, whatever the
    /// checkpoints topic shows now). Either way, an alarm is the event.
    fn stopped(&mut self) -> Result<bool, TopicError> {
        if let Some(detail) = read_marker(&self.files.forked)? {
            let evidence = self.evidence.exists().then(|| self.evidence.clone());
            self.events.push(WitnessEvent::Alarm {
                origin: self.origin.clone(),
                size: self.last.as_ref().map_or(0, |(_, c)| c.size()),
                detail,
                evidence,
            });
            return Ok(true);
        }
        let Some(cosigned) = self.last.as_ref().map(|(_, c)| c.size()) else {
            return Ok(false);
        };
        if self.have >= cosigned {
            return Ok(false);
        }
        let detail = format!(
            "the log has {} entries, fewer than the {cosigned} of the checkpoint this witness \
             cosigned (truncated)",
            self.have
        );
        self.contradicted(None, "truncated", detail)?;
        Ok(true)
    }

    /// Offers each of `fresh` (in size order) to `witness`, until a fork or a contradiction.
    fn offer_all(
        &mut self,
        fresh: Vec<(SignedNote, Checkpoint)>,
        witness: &Witness,
        now: u64,
        publish: Publish<'_>,
    ) -> Result<(), TopicError> {
        let mut tree = self.cosigned_tree()?;
        let max = fresh.iter().map(|(_, c)| c.size()).max().unwrap_or(0);
        let base = tree.as_ref().map_or(0, TreeBuilder::size);
        let leaves = match &tree {
            Some(_) if max.min(self.have) > base => (self.leaves_of)(base, max.min(self.have))?,
            _ => Vec::new(),
        };
        let mut beneath_checked = false;
        for (note, c) in fresh {
            let size = c.size();
            let same_size = self.last.as_ref().is_some_and(|(_, lc)| lc.size() == size);
            let grown = grow(tree.as_ref(), base, &leaves, &c);
            let proof = if same_size || self.last.is_none() {
                Vec::new()
            } else if let (Some(t), Some((_, appended))) = (&tree, &grown) {
                merkle::consistency_proof_extending(t, appended).unwrap_or_default()
            } else {
                // Does the log still hold what this witness cosigned? If its tree at that
                // size has another root, the log was rewritten beneath it.
                if !beneath_checked {
                    beneath_checked = true;
                    if self.rewritten_beneath()? {
                        break;
                    }
                }
                self.events.push(WitnessEvent::Skipped {
                    origin: self.origin.clone(),
                    size,
                    reason: "the log's chain does not match this checkpoint; no proof".into(),
                });
                continue;
            };
            let grown = grown.map(|(g, _)| g);
            match witness.observe(self.last.as_ref().map(|(n, _)| n), &note, &proof, now) {
                Ok(cosignature) => tree = self.cosigned(note, c, cosignature, grown, publish)?,
                Err(refusal) => {
                    if self.refused(size, refusal)? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// The tree of what was last cosigned: its saved frontier, else rebuilt from the log;
    /// `None` when the log does not give it.
    fn cosigned_tree(&mut self) -> Result<Option<TreeBuilder>, TopicError> {
        let Some((size, root)) = self.last.as_ref().map(|(_, c)| (c.size(), *c.root())) else {
            return Ok(Some(TreeBuilder::new()));
        };
        let matches = |t: &TreeBuilder| t.size() == size && t.root() == root;
        if let Some(t) = read_frontier(&self.files.frontier).filter(matches) {
            return Ok(Some(t));
        }
        Ok(self.rebuild(size.min(self.have))?.filter(matches))
    }

    /// The tree of the log's first `count` entries, if the log gives all their leaves.
    fn rebuild(&mut self, count: u64) -> Result<Option<TreeBuilder>, TopicError> {
        let leaves = (self.leaves_of)(0, count)?;
        if leaves.len() as u64 != count {
            return Ok(None);
        }
        let mut tree = TreeBuilder::new();
        leaves.iter().for_each(|l| tree.push(l));
        Ok(Some(tree))
    }

    /// Whether the log's tree at the size last cosigned has another root (rewritten); if
    /// so, the contradiction is recorded.
    fn rewritten_beneath(&mut self) -> Result<bool, TopicError> {
        let Some((size, root)) = self.last.as_ref().map(|(_, c)| (c.size(), *c.root())) else {
            return Ok(false);
        };
        let log_root = self.rebuild(size)?.map(|t| t.root());
        if log_root.is_none_or(|r| r == root) {
            return Ok(false);
        }
        let detail = format!(
            "the log's first {size} entries have tree root {}, not the {} this witness \
             cosigned (rewritten)",
            log_root.map(hex::encode).unwrap_or_default(),
            hex::encode(root)
        );
        self.contradicted(log_root, "rewritten", detail)?;
        Ok(true)
    }

    /// Publishes `note` with `cosignature` added, keeps it (and the frontier of `grown`, the
    /// tree at its size when the log gave it) as the last cosigned; returns the tree.
    fn cosigned(
        &mut self,
        note: SignedNote,
        c: Checkpoint,
        cosignature: Cosignature,
        grown: Option<TreeBuilder>,
        publish: Publish<'_>,
    ) -> Result<Option<TreeBuilder>, TopicError> {
        let mut cosigned = note.clone();
        cosigned.add_signature(cosignature.to_note_signature());
        publish(&cosigned)?;
        // The note is kept with this witness's cosignature: `kchain witness export` hands it
        // to verifiers as a checkpoint outside the log.
        write_file(&self.files.note, cosigned.to_text().as_bytes())?;
        match &grown {
            Some(g) => write_file(&self.files.frontier, frontier_text(g).as_bytes())?,
            // Cosigned with no proof (the first, or one of the same size): the log does not
            // give its tree, so the next pass rebuilds.
            None => {
                let _ = std::fs::remove_file(&self.files.frontier);
            }
        }
        self.events.push(WitnessEvent::Cosigned {
            origin: self.origin.clone(),
            size: c.size(),
        });
        self.last = Some((note, c));
        Ok(grown)
    }

    /// Records a refusal; after a fork or an inconsistency, marks the origin (never
    /// cosigned again) and returns true.
    fn refused(&mut self, size: u64, refusal: WitnessRefusal) -> Result<bool, TopicError> {
        let fork = matches!(
            refusal,
            WitnessRefusal::Fork { .. } | WitnessRefusal::Inconsistent { .. }
        );
        self.events.push(WitnessEvent::Refused {
            origin: self.origin.clone(),
            size,
            refusal,
        });
        if fork {
            let marker = format!("the writer signed a fork at size {size}\n");
            write_file(&self.files.forked, marker.as_bytes())?;
        }
        Ok(fork)
    }

    /// Records that the log contradicts the checkpoint this witness cosigned: writes the
    /// evidence file, marks the origin (never cosigned again), and raises the alarm.
    fn contradicted(
        &mut self,
        log_root: Option<Hash>,
        kind: &str,
        detail: String,
    ) -> Result<(), TopicError> {
        let (cosigned, c) = self
            .last
            .as_ref()
            .expect("a contradiction of a cosigned note");
        let evidence = kchain_core::WitnessEvidence {
            format: kchain_core::WITNESS_EVIDENCE_FORMAT.to_owned(),
            kind: kind.to_owned(),
            origin: self.origin.clone(),
            cosigned: cosigned.to_text(),
            log_entries: self.have,
            log_root: log_root.map(hex::encode),
            detail: detail.clone(),
        };
        write_file(&self.evidence, evidence.to_json().as_bytes())?;
        write_file(&self.files.forked, format!("{detail}\n").as_bytes())?;
        self.events.push(WitnessEvent::Alarm {
            origin: self.origin.clone(),
            size: c.size(),
            detail,
            evidence: Some(self.evidence.clone()),
        });
        Ok(())
    }
}

/// The tree at `c`'s size, grown from `tree` with the log's `leaves` (those from height
/// `base`), with the leaves it appended, if its root is `c`'s.
fn grow<'l>(
    tree: Option<&TreeBuilder>,
    base: u64,
    leaves: &'l [Hash],
    c: &Checkpoint,
) -> Option<(TreeBuilder, &'l [Hash])> {
    let t = tree?;
    let upto = usize::try_from(c.size().checked_sub(base)?).ok()?;
    let from = (t.size() - base) as usize;
    let appended = leaves.get(from..upto)?;
    let mut g = t.clone();
    appended.iter().for_each(|l| g.push(l));
    (g.root() == *c.root()).then_some((g, appended))
}
