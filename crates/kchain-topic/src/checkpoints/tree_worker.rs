//! A writer's chain tree, grown on a thread of its own so that hashing entries into the
//! checkpoint tree overlaps with the writer's log appends instead of adding to them.
//!
//! ```text
//! writer thread:  a batch's entry hashes, just before its log append ──> channel ──> tree thread
//!                 ask() ──> "root please" ──> goes on ...
//!                 try_root() (never waits) / wait_root() <── (size, root) of every hash sent
//!                                                            before the ask
//! ```
//!
//! Messages are handled in order, so a root answers for exactly the hashes pushed before it
//! was asked for, whatever was pushed after; a due checkpoint asks, and the writer signs the
//! answer at its next batch instead of waiting for the thread to catch up.

use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{chain_leaf, Hash};

use crate::error::TopicError;

enum Msg {
    Entries(Vec<Hash>),
    /// The size and root of the tree of every entry sent before, on the roots channel.
    Root,
    /// Stops the thread until the sender of this receiver sends or is dropped.
    #[cfg(test)]
    Hold(Receiver<()>),
}

/// The chain tree of one writer: entry hashes in, roots out.
pub(crate) struct BackgroundTree {
    size: u64,
    /// The sizes of the roots asked for and not received yet, oldest first.
    asked: VecDeque<u64>,
    tx: Option<Sender<Msg>>,
    roots: Receiver<(u64, Hash)>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundTree {
    /// Starts the tree thread from `tree` (the entries already in the chain).
    pub(crate) fn start(mut tree: TreeBuilder) -> Result<Self, TopicError> {
        let size = tree.size();
        let (tx, rx) = channel::<Msg>();
        let (roots_tx, roots) = channel();
        let thread = std::thread::Builder::new()
            .name("kchain-chain-tree".into())
            .spawn(move || {
                let mut leaves = Vec::new();
                for msg in rx {
                    match msg {
                        Msg::Entries(hashes) => push_entries(&mut tree, &hashes, &mut leaves),
                        Msg::Root => {
                            if roots_tx.send((tree.size(), tree.root())).is_err() {
                                break;
                            }
                        }
                        #[cfg(test)]
                        Msg::Hold(release) => drop(release.recv()),
                    }
                }
            })
            .map_err(|e| TopicError::io("starting the chain-tree thread".to_owned(), e))?;
        Ok(BackgroundTree {
            size,
            asked: VecDeque::new(),
            tx: Some(tx),
            roots,
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
            // A dead tree thread is reported by the next root asked, which every checkpoint
            // needs.
            let _ = tx.send(Msg::Entries(entry_hashes));
        }
    }

    /// Asks for the root of the tree of every entry pushed so far, without waiting for it:
    /// [`BackgroundTree::try_root`] or [`BackgroundTree::wait_root`] receive it.
    pub(crate) fn ask(&mut self) -> Result<(), TopicError> {
        self.tx
            .as_ref()
            .ok_or_else(dead)?
            .send(Msg::Root)
            .map_err(|_| dead())?;
        self.asked.push_back(self.size);
        Ok(())
    }

    /// Whether a root was asked for and not received yet.
    pub(crate) fn asking(&self) -> bool {
        !self.asked.is_empty()
    }

    /// The size and root of the oldest root asked for and not received yet, if the tree
    /// thread has answered; never waits.
    pub(crate) fn try_root(&mut self) -> Result<Option<(u64, Hash)>, TopicError> {
        if self.asked.is_empty() {
            return Ok(None);
        }
        match self.roots.try_recv() {
            Ok(answer) => self.received(answer).map(Some),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(dead()),
        }
    }

    /// The size and root of the oldest root asked for and not received yet, once the tree
    /// thread has hashed every entry pushed before it was asked; `None` if none was asked.
    pub(crate) fn wait_root(&mut self) -> Result<Option<(u64, Hash)>, TopicError> {
        if self.asked.is_empty() {
            return Ok(None);
        }
        let answer = self.roots.recv().map_err(|_| dead())?;
        self.received(answer).map(Some)
    }

    /// The size and root of the tree of every entry pushed so far, once hashed. Requires no
    /// root asked and not received ([`BackgroundTree::asking`]).
    pub(crate) fn root(&mut self) -> Result<(u64, Hash), TopicError> {
        debug_assert!(!self.asking(), "the roots asked before come first");
        self.ask()?;
        self.wait_root()?.ok_or_else(dead)
    }

    /// Checks that `answer` is of the size asked for.
    fn received(&mut self, (size, root): (u64, Hash)) -> Result<(u64, Hash), TopicError> {
        match self.asked.pop_front() {
            Some(asked) if asked == size => Ok((size, root)),
            asked => Err(TopicError::Invalid(format!(
                "the chain tree holds {size} entries, {asked:?} were pushed"
            ))),
        }
    }

    /// Stops the tree thread until the returned sender sends or is dropped: for tests of
    /// what does not wait for it.
    #[cfg(test)]
    pub(crate) fn hold(&self) -> Sender<()> {
        let (release, held) = channel();
        if let Some(tx) = &self.tx {
            tx.send(Msg::Hold(held)).expect("the tree thread runs");
        }
        release
    }
}

fn dead() -> TopicError {
    TopicError::Invalid("the chain-tree thread stopped".into())
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

    /// Roots asked for without waiting come back in the order asked, each of the tree as it
    /// was asked for, also when entries were pushed before the thread answered.
    #[test]
    fn roots_asked_come_back_in_order_of_the_sizes_asked() {
        let hashes: Vec<Hash> = (0..40u32)
            .map(|i| kchain_core::sha256(&i.to_be_bytes()))
            .collect();
        let root_of = |n: usize| {
            let leaves: Vec<Hash> = hashes[..n].iter().map(chain_leaf).collect();
            (n as u64, merkle::root(&leaves))
        };
        let mut bg = BackgroundTree::start(TreeBuilder::new()).unwrap();
        assert_eq!(bg.try_root().unwrap(), None, "nothing asked");
        assert_eq!(bg.wait_root().unwrap(), None, "nothing asked");
        let release = bg.hold();
        bg.push_all(hashes[..5].to_vec());
        bg.ask().unwrap();
        bg.push_all(hashes[5..31].to_vec());
        bg.ask().unwrap();
        bg.push_all(hashes[31..].to_vec());
        assert_eq!(bg.try_root().unwrap(), None, "the thread is held");
        assert!(bg.asking());
        drop(release);
        assert_eq!(bg.wait_root().unwrap(), Some(root_of(5)));
        assert_eq!(bg.wait_root().unwrap(), Some(root_of(31)));
        assert!(!bg.asking());
        assert_eq!(bg.root().unwrap(), root_of(40));
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
