//! The verifier's decisions on the record at the front of its window, with the next two in
//! view: genesis, a broken link (which record changed), a height gap, an inserted record,
//! and accepting a record into the chain (signatures, pins, unsigned runs).

use super::finding::FindingKind;
use super::observe::{Observation, Observed, SigCheck};
use super::verifier::{ChainVerifier, Link};
use crate::chain::MetaError;
use crate::hash::ZERO_HASH;
use crate::hex::to_hex;
use crate::keys::KeyId;

impl ChainVerifier {
    pub(super) fn decide_front(&mut self) {
        // The usual record: it links to the tip, and the next one does not claim its place
        // (such a sibling has its height; see `sibling_inserted`). It is read where it is
        // and accepted without copying the records in view, which only the other decisions
        // read. (Popped first, the record's copy on the stack was read back before its
        // stores could be forwarded: most of this function's time.)
        if let (Some(Observation::Entry(r)), Some(t)) = (self.window.front(), &self.tip) {
            let sibling = |n: &Observation| n.entry().is_some_and(|n| n.height == r.height);
            if extends_link(t, r) && !self.window.get(1).is_some_and(sibling) {
                let r = *r;
                self.window.pop_front();
                return self.accept(r);
            }
        }
        let Some(front) = self.window.pop_front() else {
            return;
        };
        let n1 = self.window.front().and_then(Observation::entry).copied();
        let n2 = self.window.get(1).and_then(Observation::entry).copied();
        let expected = self.tip.map_or(0, |t| t.height + 1);
        let r = match front {
            Observation::Entry(r) => r,
            Observation::Malformed { offset, error } => {
                let kind = match error {
                    MetaError::NotChained => FindingKind::ForeignWriter,
                    _ => FindingKind::Malformed,
                };
                return self.fail(offset, expected, kind, error.to_string());
            }
        };
        let Some(t) = self.tip else {
            return self.decide_genesis(r, n1, n2);
        };
        if extends_link(&t, &r) {
            if sibling_inserted(&r, n1.as_ref(), n2.as_ref()) {
                return self.inserted(r, n1.map(|n| n.offset));
            }
            return self.accept(r);
        }
        if r.hash == t.hash {
            return self.fail(
                r.offset,
                r.height,
                FindingKind::Duplicate,
                format!(
                    "an exact copy of the record at offset {} (height {})",
                    t.offset, t.height
                ),
            );
        }
        if r.height == expected {
            self.decide_broken_link(t, r, n1)
        } else if r.height > expected {
            self.decide_gap(t, r, n1)
        } else if r.height == t.height && r.prev == t.prev {
            let kind = match r.sig {
                SigCheck::Valid(_) | SigCheck::OtherTopics(_) => FindingKind::ForeignWriter,
                _ => FindingKind::Inserted,
            };
            self.fail(
                r.offset,
                r.height,
                kind,
                format!(
                    "a second record for height {} (the first is at offset {}): inserted, or \
                     appended by a second writer",
                    r.height, t.offset
                ),
            );
        } else if n1.is_some_and(|n| extends(&r, &n)) {
            // A run of linked records restarting below the tip: another chain interleaved.
            self.fail(
                r.offset,
                expected,
                FindingKind::ForeignWriter,
                format!(
                    "a run of linked records restarts at height {} after height {}: a second \
                     writer appending from a stale tip, or replayed records",
                    r.height, t.height
                ),
            );
        } else {
            self.fail(
                r.offset,
                expected,
                FindingKind::Reordered,
                format!(
                    "height {} appears after height {} (moved, replayed or duplicated)",
                    r.height, t.height
                ),
            );
        }
    }

    fn decide_genesis(&mut self, r: Observed, n1: Option<Observed>, n2: Option<Observed>) {
        if r.height == 0 && r.prev == ZERO_HASH {
            if sibling_inserted(&r, n1.as_ref(), n2.as_ref()) {
                return self.inserted(r, n1.map(|n| n.offset));
            }
            if let Some(g) = self.expect.genesis {
                if g != r.hash {
                    return self.fail(
                        r.offset,
                        0,
                        FindingKind::GenesisMismatch,
                        format!(
                            "genesis hash is {} but the trusted genesis is {}",
                            to_hex(&r.hash),
                            to_hex(&g)
                        ),
                    );
                }
            }
            self.accept(r)
        } else if r.height == 0 {
            self.fail(
                r.offset,
                0,
                FindingKind::LinkBroken,
                "the genesis record's previous hash is not zero".into(),
            )
        } else {
            self.fail(
                r.offset,
                0,
                FindingKind::Missing,
                format!(
                    "the chain does not start at genesis: its first record has height {}, so \
                     heights 0..={} are missing",
                    r.height,
                    r.height - 1
                ),
            )
        }
    }

    /// `r` claims the next height but does not link to the tip `t`.
    fn decide_broken_link(&mut self, t: Link, r: Observed, n1: Option<Observed>) {
        if n1.is_some_and(|n| extends_link(&t, &n)) {
            // The record after `r` links to the tip: `r` does not belong here.
            return self.inserted(r, n1.map(|n| n.offset));
        }
        // Is `r`'s hash vouched for: by its successor's link, or (at the end) a signature?
        let r_is_intact = match n1 {
            Some(n) => extends(&r, &n),
            None => matches!(r.sig, SigCheck::Valid(_)),
        };
        if t.signed {
            // A signature vouches for the tip, so `r` is what changed (its link, or all of it).
            return self.fail(
                r.offset,
                r.height,
                FindingKind::LinkBroken,
                format!(
                    "previous hash is {} but the signed record at offset {} (height {}) \
                     hashes to {}",
                    to_hex(&r.prev),
                    t.offset,
                    t.height,
                    to_hex(&t.hash)
                ),
            );
        }
        if r_is_intact {
            // `r` and its successor agree with each other, so `r` is original and the tip it
            // should link to is the record that changed.
            let (kind, what) = if t.height == 0 {
                (
                    FindingKind::GenesisMismatch,
                    "the genesis record was replaced or changed",
                )
            } else {
                (
                    FindingKind::PayloadChanged,
                    "the record's content was changed",
                )
            };
            return self.fail(
                t.offset,
                t.height,
                kind,
                format!(
                    "{what}: its hash is {} but the next record (offset {}) links to {}",
                    to_hex(&t.hash),
                    r.offset,
                    to_hex(&r.prev)
                ),
            );
        }
        // Nothing vouches for `r` nor for the tip: either `r`'s link alone was changed, or
        // both records were. The tip is the earliest record that could have changed.
        let after = match n1 {
            Some(n) => format!("the next record (offset {}) does not link to it", n.offset),
            None => "no signature covers it".to_owned(),
        };
        self.fail(
            t.offset,
            t.height,
            FindingKind::LinkBroken,
            format!(
                "offsets {}..={} changed: the record at offset {} links to {} but this record \
                 hashes to {}, and {after} (its link was changed, or both records were)",
                t.offset,
                r.offset,
                r.offset,
                to_hex(&r.prev),
                to_hex(&t.hash)
            ),
        )
    }

    /// `r` claims a height above the next one.
    fn decide_gap(&mut self, t: Link, r: Observed, n1: Option<Observed>) {
        let expected = t.height + 1;
        if n1.is_some_and(|n| n.height == expected) {
            return self.fail(
                r.offset,
                expected,
                FindingKind::Reordered,
                format!(
                    "height {} appears before height {} (offset {})",
                    r.height,
                    expected,
                    n1.map_or(0, |n| n.offset)
                ),
            );
        }
        if r.prev == t.hash {
            return self.fail(
                r.offset,
                expected,
                FindingKind::HeaderChanged,
                format!(
                    "the record links to height {} (offset {}) but its kchain.height says {}",
                    t.height, t.offset, r.height
                ),
            );
        }
        self.fail(
            r.offset,
            expected,
            FindingKind::Missing,
            format!(
                "heights {}..={} are missing between offset {} and this record (height {})",
                expected,
                r.height - 1,
                t.offset,
                r.height
            ),
        )
    }

    fn inserted(&mut self, r: Observed, next: Option<u64>) {
        let next = next.map_or(String::new(), |o| {
            format!(" (the record at offset {o} continues the chain instead)")
        });
        let kind = match r.sig {
            SigCheck::OtherTopics(_) => FindingKind::ForeignWriter,
            _ => FindingKind::Inserted,
        };
        self.fail(
            r.offset,
            r.height,
            kind,
            format!("a record that is not part of the chain was inserted{next}"),
        )
    }

    /// Accepts `r`, the record taken from the front of the window, into the chain (the
    /// record after it, if any, is now the window's front).
    fn accept(&mut self, r: Observed) {
        if let Some((h, pinned)) = self.expect.tip {
            if r.height == h && r.hash != pinned {
                return self.fail(
                    r.offset,
                    r.height,
                    FindingKind::TipMismatch,
                    format!(
                        "the trusted tip at height {h} is {} but the chain has {}: history was \
                         rewritten",
                        to_hex(&pinned),
                        to_hex(&r.hash)
                    ),
                );
            }
        }
        let link = Link {
            offset: r.offset,
            height: r.height,
            hash: r.hash,
            prev: r.prev,
            signed: matches!(r.sig, SigCheck::Valid(_)),
        };
        let first = *self.first_unsigned.get_or_insert(link);
        let covered = || format!("offsets {}..={}", first.offset, r.offset);
        match r.sig {
            SigCheck::None if self.accepted + 1 - self.signed > self.limits.records => {
                let n = self.accepted + 1 - self.signed;
                return self.fail(
                    first.offset,
                    first.height,
                    FindingKind::Unsigned,
                    format!(
                        "{n} records from offset {} are not covered by a writer signature, \
                         more than any writer's batch ({} records)",
                        first.offset, self.limits.records
                    ),
                );
            }
            SigCheck::None => {}
            SigCheck::Valid(_) => {
                self.first_unsigned = None;
                self.signed = self.accepted + 1;
                self.signed_tip = Some(link);
            }
            SigCheck::Invalid(id) => {
                let n1 = self.window.front().and_then(Observation::entry).copied();
                return self.bad_signature(&r, n1, first, id);
            }
            SigCheck::Unknown(id) => {
                return self.fail(
                    first.offset,
                    first.height,
                    FindingKind::UnknownKey,
                    format!(
                        "{} are signed by key {id}, which the trust file does not list",
                        covered()
                    ),
                )
            }
            SigCheck::OtherTopics(id) => {
                return self.fail(
                    first.offset,
                    first.height,
                    FindingKind::ForeignWriter,
                    format!(
                        "{} are signed by key {id}, which is not trusted for this topic",
                        covered()
                    ),
                )
            }
        }
        self.accepted += 1;
        self.tip = Some(link);
    }

    /// A signature by a trusted key that does not verify over `r`'s hash: names `r`, and
    /// says whether its content or its signature changed when the next record (`n1`) tells.
    /// `first` is the first record of the unsigned run that `r` was to cover.
    fn bad_signature(&mut self, r: &Observed, n1: Option<Observed>, first: Link, id: KeyId) {
        // The records before `r` link to it, so (edited in place) none of them can
        // have changed without breaking a link: `r` is the earliest suspect.
        let successor = n1.filter(|n| n.height == r.height + 1);
        let (kind, what) = match successor {
            Some(n) if n.prev != r.hash => (
                FindingKind::PayloadChanged,
                format!(
                    "the record's content was changed: it matches neither its \
                     signature (key {id}) nor the link in the next record (offset {})",
                    n.offset
                ),
            ),
            Some(n) => (
                FindingKind::BadSignature,
                format!(
                    "the next record (offset {}) links to this record's hash, but its \
                     signature (key {id}) does not verify: the signature was changed \
                     or forged",
                    n.offset
                ),
            ),
            None => (
                FindingKind::BadSignature,
                format!(
                    "the signature (key {id}) does not verify: this record's content \
                     or its signature was changed"
                ),
            ),
        };
        let range = if first.offset < r.offset {
            format!(
                " (or an earlier one with the links after it recomputed: offsets {}..={} lose \
                 their cover)",
                first.offset, r.offset
            )
        } else {
            String::new()
        };
        self.fail(r.offset, r.height, kind, format!("{what}{range}"));
    }
}

fn extends(a: &Observed, b: &Observed) -> bool {
    b.height == a.height + 1 && b.prev == a.hash
}

fn extends_link(a: &Link, b: &Observed) -> bool {
    b.height == a.height + 1 && b.prev == a.hash
}

/// `r` fits where it is, but the next record claims the same place and the chain continues
/// from that one: `r` is the intruder.
fn sibling_inserted(r: &Observed, n1: Option<&Observed>, n2: Option<&Observed>) -> bool {
    let Some(n) = n1 else { return false };
    let sibling = n.height == r.height && n.prev == r.prev && n.hash != r.hash;
    sibling
        && match n2 {
            Some(m) => extends(n, m),
            None => matches!(n.sig, SigCheck::Valid(_)),
        }
}
