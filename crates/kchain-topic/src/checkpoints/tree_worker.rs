//! A writer's chain tree, grown on a thread of its own so that hashing entries into the
//! checkpoint tree overlaps with the writer's log appends instead of adding to them.
//!
//! ```text
//! writer thread:  a batch's entry hashes, just before its log append ──> channel ──> tree thread
//!                 root() ──> "root please" ──> waits ──> (size, root) of every hash sent
//! ```
//!
//! Messages are handled in order, so a root answers for exactly the hashes pushed before it.

use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{chain_leaf, Hash};

use crate::error::TopicError;

enum Msg {
    Entries(Vec<Hash>),
    Root(Sender<(u64, Hash)>),
}

/// The chain tree of one writer: entry hashes in, roots out.
pub(crate) struct BackgroundTree {
    size: u64,
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundTree {
    /// Starts the tree thread from `tree` (the entries already in the chain).
    pub(crate) fn start(mut tree: TreeBuilder) -> Result<Self, TopicError> {
        let size = tree.size();
        let (tx, rx) = channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("kchain-chain-tree".into())
            .spawn(move || {
                let mut leaves = Vec::new();
                for msg in rx {
                    match msg {
                        Msg::Entries(hashes) => push_entries(&mut tree, &hashes, &mut leaves),
                        Msg::Root(reply) => {
                            let _ = reply.send((tree.size(), tree.root()));
                        }
                    }
                }
            })
            .map_err(|e| TopicError::io("starting the chain-tree thread".to_owned(), e))?;
        Ok(BackgroundTree {
            size,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Entries in the tree once everything pushed is hashed.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Hands the next entries (the first at height [`BackgroundTree::size`]) to the tree
    /// thread.
    pub(crate) fn push_all(&mut self, entry_hashes: Vec<Hash>) {
        if entry_hashes.is_empty() {
            return;
        }
        self.size += entry_hashes.len() as u64;
        if let Some(tx) = &self.tx {
            // A dead tree thread is reported by root(), which every checkpoint needs.
            let _ = tx.send(Msg::Entries(entry_hashes));
        }
    }

    /// The size and root of the tree of every entry pushed so far, once hashed.
    pub(crate) fn root(&mut self) -> Result<(u64, Hash), TopicError> {
        let dead = || TopicError::Invalid("the chain-tree thread stopped".into());
        let (reply, answer) = channel();
        self.tx
            .as_ref()
            .ok_or_else(dead)?
            .send(Msg::Root(reply))
            .map_err(|_| dead())?;
        let (size, root) = answer.recv().map_err(|_| dead())?;
        if size != self.size {
            return Err(TopicError::Invalid(format!(
                "the chain tree holds {size} entries, {} were pushed",
                self.size
            )));
        }
        Ok((size, root))
    }
}

/// Appends the chain leaves of `entry_hashes` (each [`chain_leaf`]) to `tree`: the leaves
/// computed two at a time into `leaves` (scratch space), then the nodes above them a level
/// at a time, two at a time ([`TreeBuilder::extend`]).
fn push_entries(tree: &mut TreeBuilder, entry_hashes: &[Hash], leaves: &mut Vec<Hash>) {
    leaves.clear();
    let mut pairs = entry_hashes.chunks_exact(2);
    for p in &mut pairs {
        // The chain leaf is the Merkle leaf hash of the entry hash.
        leaves.extend(merkle::leaf_hash_x2(&p[0], &p[1]));
    }
    leaves.extend(pairs.remainder().iter().map(chain_leaf));
    tree.extend(leaves);
}

impl Drop for BackgroundTree {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_match_a_tree_built_in_place_at_every_size_asked() {
        let hashes: Vec<Hash> = (0..10_000u32)
            .map(|i| kchain_core::sha256(&i.to_le_bytes()))
            .collect();
        let mut start = TreeBuilder::new();
        for h in &hashes[..3] {
            start.push(&chain_leaf(h));
        }
        let mut bg = BackgroundTree::start(start).unwrap();
        let mut reference = TreeBuilder::new();
        for (i, h) in hashes.iter().enumerate() {
            reference.push(&chain_leaf(h));
            if i >= 3 {
                bg.push_all(vec![*h]);
            }
            if [2, 3, 4095, 4096, 4100, 8192, 9999].contains(&i) {
                assert_eq!(
                    bg.root().unwrap(),
                    (reference.size(), reference.root()),
                    "{i}"
                );
            }
        }
        let leaves: Vec<Hash> = hashes.iter().map(chain_leaf).collect();
        assert_eq!(bg.root().unwrap().1, merkle::root(&leaves));
    }

    /// Entries pushed in runs of odd and even lengths (their leaves two at a time, the odd
    /// one alone) give the tree of their chain leaves.
    #[test]
    fn runs_of_any_length_give_the_tree_of_their_leaves() {
        let hashes: Vec<Hash> = (0..300u32)
            .map(|i| kchain_core::sha256(&i.to_be_bytes()))
            .collect();
        let mut bg = BackgroundTree::start(TreeBuilder::new()).unwrap();
        let (mut at, mut run) = (0, 0);
        while at < hashes.len() {
            run = run % 6 + 1;
            let end = (at + run).min(hashes.len());
            bg.push_all(hashes[at..end].to_vec());
            at = end;
            let leaves: Vec<Hash> = hashes[..at].iter().map(chain_leaf).collect();
            assert_eq!(
                bg.root().unwrap(),
                (at as u64, merkle::root(&leaves)),
                "{at}"
            );
        }
    }
}
