//! The checkpoints of one chain partition as the monitor holds them against its own tree:
//! each new writer-signed checkpoint is compared with the tree's root at its size (now, or
//! when the tree gets there), with the other checkpoints of the same size, and with the
//! largest seen before. Pure: the caller reads the notes and grows the tree.
//!
//! ```text
//!  checkpoint (size, root) ──► seen at this size? same root: a copy (a witness's); other: fork
//!        │ new
//!        ├─ smaller than the largest seen ──► rollback
//!        ├─ size <= tree ──► root_at(size) (kept, or read back): differs ──► fork; unknown ──► unchecked
//!        └─ size >  tree ──► waiting, until the tree reaches it (Book::reached)
//! ```

use std::collections::BTreeMap;

use kchain_core::{to_hex, Hash};

use crate::state::PartitionState;

/// Checkpoint sizes remembered (newest kept) and waiting, per partition: memory stays
/// bounded whatever the checkpoints topic holds.
const SEEN_KEPT: usize = 256;
const WAITING_KEPT: usize = 1024;

/// What a checkpoint says against the monitor's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing wrong (or nothing to say yet).
    Fine,
    /// A copy of a checkpoint already seen.
    Copy,
    Fork(String),
    Rollback(String),
    /// The tree passed its size somewhere the monitor kept no root.
    Unchecked,
}

/// One partition's checkpoints.
#[derive(Clone, Debug, Default)]
pub(crate) struct Book {
    seen: BTreeMap<u64, Hash>,
    waiting: BTreeMap<u64, Hash>,
    pub(crate) newest: u64,
    /// When the newest new checkpoint arrived (ms since the epoch; 0: none yet).
    pub(crate) at_ms: i64,
    pub(crate) unchecked: u64,
}

impl Book {
    pub(crate) fn load(s: &PartitionState) -> Book {
        let parse = |v: &[(u64, String)]| {
            v.iter()
                .filter_map(|(n, r)| Some((*n, kchain_core::from_hex(r)?)))
                .collect()
        };
        Book {
            seen: parse(&s.checkpoints),
            waiting: parse(&s.waiting),
            newest: s.newest_checkpoint,
            at_ms: s.checkpoint_at_ms,
            unchecked: 0,
        }
    }

    pub(crate) fn save(&self, into: &mut PartitionState) {
        let hex = |m: &BTreeMap<u64, Hash>| m.iter().map(|(n, r)| (*n, to_hex(r))).collect();
        into.checkpoints = hex(&self.seen);
        into.waiting = hex(&self.waiting);
        into.newest_checkpoint = self.newest;
        into.checkpoint_at_ms = self.at_ms;
    }

    /// Judges a writer-signed checkpoint of `size` and `root`, given the tree's size and its
    /// root at a size when known (`root_at`), at `now_ms`.
    pub(crate) fn observe(
        &mut self,
        size: u64,
        root: Hash,
        tree_size: u64,
        root_at: impl Fn(u64) -> Option<Hash>,
        now_ms: i64,
    ) -> Verdict {
        if let Some(other) = self.seen.get(&size) {
            if *other == root {
                return Verdict::Copy;
            }
            return Verdict::Fork(format!(
                "two checkpoints of size {size} with different roots: {} and {}",
                to_hex(other),
                to_hex(&root)
            ));
        }
        let newest = self.newest;
        self.seen.insert(size, root);
        while self.seen.len() > SEEN_KEPT {
            self.seen.pop_first();
        }
        self.newest = self.newest.max(size);
        self.at_ms = now_ms;
        if size < newest {
            return Verdict::Rollback(format!(
                "a new checkpoint of size {size} after one of size {newest}"
            ));
        }
        if size > tree_size {
            self.waiting.insert(size, root);
            while self.waiting.len() > WAITING_KEPT {
                self.waiting.pop_first();
            }
            return Verdict::Fine;
        }
        self.against_tree(size, root, root_at(size))
    }

    /// The tree reached `size` with `root`: judges the checkpoints that waited for it (those
    /// of smaller sizes against `root_at`).
    pub(crate) fn reached(
        &mut self,
        size: u64,
        root: Hash,
        root_at: impl Fn(u64) -> Option<Hash>,
    ) -> Vec<(u64, Verdict)> {
        let mut out = Vec::new();
        while let Some((&s, &r)) = self.waiting.first_key_value() {
            if s > size {
                break;
            }
            self.waiting.pop_first();
            let known = if s == size { Some(root) } else { root_at(s) };
            out.push((s, self.against_tree(s, r, known)));
        }
        out
    }

    fn against_tree(&mut self, size: u64, root: Hash, ours: Option<Hash>) -> Verdict {
        match ours {
            Some(o) if o == root => Verdict::Fine,
            Some(o) => Verdict::Fork(format!(
                "the writer's checkpoint of size {size} has root {}, but the verified chain's \
                 tree at that size has root {}",
                to_hex(&root),
                to_hex(&o)
            )),
            None => {
                self.unchecked += 1;
                Verdict::Unchecked
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_held_to_the_tree_now_or_when_it_gets_there() {
        let mut b = Book::default();
        let ours = |s: u64| (s == 4).then_some([4; 32]);
        assert_eq!(b.observe(4, [4; 32], 10, ours, 1), Verdict::Fine);
        assert_eq!(b.observe(4, [4; 32], 10, ours, 2), Verdict::Copy);
        assert!(matches!(
            b.observe(4, [5; 32], 10, ours, 3),
            Verdict::Fork(_)
        ));
        assert_eq!(b.observe(20, [20; 32], 10, ours, 4), Verdict::Fine);
        assert_eq!(b.reached(19, [0; 32], |_| None), vec![]);
        assert!(matches!(
            b.reached(20, [21; 32], |_| None)[..],
            [(20, Verdict::Fork(_))]
        ));
        assert!(matches!(
            b.observe(8, [8; 32], 20, ours, 5),
            Verdict::Rollback(_)
        ));
    }

    #[test]
    fn a_checkpoint_the_tree_passed_without_a_root_is_unchecked() {
        let mut b = Book::default();
        assert_eq!(b.observe(30, [1; 32], 10, |_| None, 1), Verdict::Fine);
        assert_eq!(
            b.reached(40, [2; 32], |_| None),
            vec![(30, Verdict::Unchecked)]
        );
        assert_eq!(b.unchecked, 1);
    }
}
