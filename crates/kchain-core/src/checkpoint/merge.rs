//! Checkpoint notes merged by text: from the log and handed over alike, one note per text with
//! the union of its signature lines, each line by a known key verified once.
//!
//! Every input is hostile: a note that carries no line by a known key costs a lookup and is
//! dropped, a line by a listed key is verified at most once per text, and at most
//! [`MAX_NOTES_PER_CHAIN`] distinct texts are kept, so that anyone who can append to the
//! checkpoints topic can make the judge do no more than linear work.

use std::collections::HashMap;

use super::note::{SignedNote, MAX_SIGNATURES};
use super::note_key::{NoteSignature, NoteVerifier};

/// The most distinct checkpoint texts kept per chain. Only texts with a verified signature by
/// a key of the policy count, so only a holder of such a key can reach it (a writer publishing
/// every 10 seconds takes more than a week).
pub const MAX_NOTES_PER_CHAIN: usize = 100_000;

/// Notes merged by text: one note per distinct text with the union of its signature lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergedNotes {
    /// One note per text, in order of first appearance.
    pub notes: Vec<SignedNote>,
    /// Notes that carried no verified signature by a known key (ignored).
    pub ignored: u64,
    /// Distinct texts left out because [`MAX_NOTES_PER_CHAIN`] were kept already.
    pub dropped: u64,
}

/// Merges notes by text, keeping only signature lines by `known` keys that verify (each
/// verified once per text); a note with none is ignored. Linear in the input: anyone who can
/// append to a checkpoints topic can add notes, but cannot make a valid checkpoint fail its
/// policy (a bogus line under a listed key's name is dropped) nor make merging quadratic.
pub fn merge_verified<'a>(
    notes: impl IntoIterator<Item = &'a SignedNote>,
    known: &[NoteVerifier],
) -> MergedNotes {
    merge(notes, known, false)
}

/// Like [`merge_verified`], but also keeping the lines by keys not in `known` (the first
/// line seen for each key name and id, at most [`MAX_SIGNATURES`] lines per note), for a
/// checkpoint handed on to parties who trust other keys too (a proof file carries the
/// witnesses' cosignatures, which its maker does not check). A text still needs a verified
/// line by a known key to be kept; later notes of a kept text add their lines, known or not.
pub fn merge_keeping_unknown<'a>(
    notes: impl IntoIterator<Item = &'a SignedNote>,
    known: &[NoteVerifier],
) -> MergedNotes {
    merge(notes, known, true)
}

fn merge<'a>(
    notes: impl IntoIterator<Item = &'a SignedNote>,
    known: &[NoteVerifier],
    keep_unknown: bool,
) -> MergedNotes {
    let keys: HashMap<(&str, u32), &NoteVerifier> =
        known.iter().map(|v| ((v.name(), v.key_id()), v)).collect();
    let mut out = MergedNotes::default();
    let mut by_text: HashMap<String, usize> = HashMap::new();
    for note in notes {
        let claimed: Vec<(&NoteSignature, &NoteVerifier)> = note
            .signatures()
            .iter()
            .filter_map(|s| keys.get(&(s.name(), s.key_id())).map(|v| (s, *v)))
            .collect();
        let existing = by_text.get(note.text()).copied();
        if claimed.is_empty() && !(keep_unknown && existing.is_some()) {
            out.ignored += 1;
            continue;
        }
        if existing.is_none() && out.notes.len() >= MAX_NOTES_PER_CHAIN {
            out.dropped += 1;
            continue;
        }
        let mut added: Vec<NoteSignature> = Vec::new();
        for (sig, v) in claimed {
            let have = existing.is_some_and(|i| has_signature(&out.notes[i], sig))
                || added
                    .iter()
                    .any(|s| s.name() == sig.name() && s.key_id() == sig.key_id());
            if !have && v.verify(note.text(), sig.signature()) {
                added.push(sig.clone());
            }
        }
        let unknown = |s: &&NoteSignature| !keys.contains_key(&(s.name(), s.key_id()));
        let others: Vec<&NoteSignature> = if keep_unknown {
            note.signatures().iter().filter(unknown).collect()
        } else {
            Vec::new()
        };
        let i = match existing {
            Some(i) => i,
            None if added.is_empty() => {
                out.ignored += 1;
                continue;
            }
            None => {
                let Ok(merged) = SignedNote::new(note.text()) else {
                    out.ignored += 1;
                    continue;
                };
                by_text.insert(note.text().to_owned(), out.notes.len());
                out.notes.push(merged);
                out.notes.len() - 1
            }
        };
        let merged = &mut out.notes[i];
        added.into_iter().for_each(|s| merged.add_signature(s));
        for s in others {
            if merged.signatures().len() < MAX_SIGNATURES && !has_signature(merged, s) {
                merged.add_signature(s.clone());
            }
        }
    }
    out
}

/// Merges notes by text with the union of their signature lines, verified or not (at most
/// [`MAX_SIGNATURES`] per note, and [`MAX_NOTES_PER_CHAIN`] texts), in order of first
/// appearance. Linear in the input. For display and export, not for trust: see
/// [`merge_verified`].
pub fn merge_unverified<'a>(notes: impl IntoIterator<Item = &'a SignedNote>) -> Vec<SignedNote> {
    let mut out: Vec<SignedNote> = Vec::new();
    let mut by_text: HashMap<String, usize> = HashMap::new();
    for note in notes {
        match by_text.get(note.text()) {
            Some(&i) => {
                let merged = &mut out[i];
                for sig in note.signatures() {
                    if merged.signatures().len() >= MAX_SIGNATURES {
                        break;
                    }
                    if !has_signature(merged, sig) {
                        merged.add_signature(sig.clone());
                    }
                }
            }
            None if out.len() >= MAX_NOTES_PER_CHAIN => {}
            None => {
                by_text.insert(note.text().to_owned(), out.len());
                out.push(note.clone());
            }
        }
    }
    out
}

fn has_signature(note: &SignedNote, sig: &NoteSignature) -> bool {
    note.signatures()
        .iter()
        .any(|s| s.name() == sig.name() && s.key_id() == sig.key_id())
}
