//! The writer's side of checkpoints: an incremental chain tree beside the chain, and a
//! signed checkpoint every N entries or T seconds and on flush.
//!
//! ```text
//!  ChainWriter ── entry hashes ──► BackgroundTree ──► every N entries / T seconds / flush:
//!                                                     ask for the root (the writer goes on;
//!                                                     a flush or wait waits for it), then
//!                                                     sign "origin\nsize\nroot\n" (writer key)
//!                                                     remember it (CheckpointStore), then
//!                                                     hand it to the note thread, which
//!                                                     appends it to <topic>.checkpoints
//!                                                     and forces it to disk (push mode: once
//!                                                     the witnesses cosigned it, see `push`)
//! ```
//!
//! A writer never signs a checkpoint inconsistent with one it signed before: on opening, it
//! rebuilds the tree from the chain and holds it against the newest checkpoint its key
//! signed, on the checkpoints topic or in its own memory.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{
    chain_leaf, Checkpoint, Hash, NoteSigner, SignedNote, WriterKey, DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_log::{Appender, Log};

use super::push::{PushOptions, Pusher};
use super::topic::{
    append_note, checkpoints_topic, ensure_checkpoints_topic, note_appender, origin_notes,
    partition_origin, read_checkpoints,
};
use super::tree_worker::BackgroundTree;
use crate::error::TopicError;
use crate::files::CheckpointStore;
use crate::scan::{chain_leaves, read_chain};

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
    /// Push mode: submit every checkpoint to these witnesses and publish it with their
    /// cosignatures (see [`super::Pusher`]); `None`: publish it as signed.
    pub push: Option<PushOptions>,
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
            push: None,
        }
    }
}

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
    pusher: Option<Pusher>,
    notes: NoteThread,
    /// The last note handed to `notes` could not be published: the next `publish` hands the
    /// last checkpoint over again, even if the chain did not grow.
    unpublished: bool,
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
        // Created now rather than by the first checkpoint, which would otherwise wait for it
        // (directories made durable: 15 ms on the embedded log) in the middle of the appends;
        // and a log that cannot hold checkpoints fails the open.
        ensure_checkpoints_topic(log, topic)?;
        let count = tip.map_or(0, |(h, _)| h + 1);
        let mut tree = TreeBuilder::new();
        let last_size = last.as_ref().map(|(_, c)| c.size());
        let mut root_at_last = (last_size == Some(0)).then(merkle::empty_root);
        // Push mode: the frontier at the last signed checkpoint and the entries since, so
        // that witnesses at that size get their proofs without reading the log again.
        let pushing = options.push.is_some();
        let bound = options.every_entries.max(1).saturating_mul(4) as usize;
        let (mut frontier, mut after) = (TreeBuilder::new(), Vec::new());
        read_chain(log, topic, partition, count, &mut |_, h, _| {
            tree.push(&chain_leaf(h));
            if Some(tree.size()) == last_size {
                root_at_last = Some(tree.root());
            }
            if pushing {
                after.push(*h);
                if Some(tree.size()) == last_size || after.len() > bound {
                    (frontier, after) = (tree.clone(), Vec::new());
                }
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
        let pusher = match &options.push {
            Some(push) => {
                let mut p = Pusher::start(push.clone(), frontier)?;
                p.add_entries(after);
                Some(p)
            }
            None => None,
        };
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
            pusher,
            notes: NoteThread::start()?,
            unpublished: false,
        })
    }

    /// Adds the next entries (the first at height = the tree's size) to the chain tree.
    pub(crate) fn push_all(&mut self, entry_hashes: Vec<Hash>) {
        if let Some(p) = &mut self.pusher {
            p.add_entries(entry_hashes.clone());
        }
        self.tree.push_all(entry_hashes);
    }

    /// Publishes the checkpoints whose pushes to the witnesses are over; never waits.
    pub(crate) fn publish_pushed(&mut self) -> Result<(), TopicError> {
        let ready = self.pusher.as_mut().map(Pusher::ready).unwrap_or_default();
        self.publish_all(ready)
    }

    /// Waits (at most push mode's wait) for the pushes of the checkpoints signed so far, and
    /// publishes them with the cosignatures that came.
    pub(crate) fn settle(&mut self) -> Result<(), TopicError> {
        let (log, topic, partition) = (self.log, self.topic.as_str(), self.partition);
        let size = self.last.as_ref().map_or(0, |(_, c)| c.size());
        let prove = |old: u64| proof_from_log(log, topic, partition, old, size);
        let settled = match &mut self.pusher {
            Some(p) => p.settle(&prove),
            None => Vec::new(),
        };
        self.publish_all(settled)
    }

    fn publish_all(&mut self, notes: Vec<SignedNote>) -> Result<(), TopicError> {
        for note in notes {
            self.hand_over(note)?;
        }
        Ok(())
    }

    /// Hands `note` to the note thread to publish, once the note before is published (its
    /// appender holds the checkpoints partition's lock): fails if that one failed.
    fn hand_over(&mut self, note: SignedNote) -> Result<(), TopicError> {
        self.wait_published()?;
        let appender = note_appender(self.log, &self.topic, self.partition)?;
        self.notes.hand_over(appender, self.partition, note)
    }

    /// Waits until every checkpoint handed to the note thread is on the checkpoints topic and
    /// on disk; fails if one could not be published (and the next `publish` publishes the
    /// last checkpoint again).
    pub(crate) fn wait_published(&mut self) -> Result<(), TopicError> {
        self.notes.wait().inspect_err(|_| self.unpublished = true)
    }

    /// Whether a checkpoint is due: enough entries or time since the last.
    fn due(&self) -> bool {
        let signed = self.last.as_ref().map_or(0, |(_, c)| c.size());
        let pending = self.tree.size() - signed;
        pending > 0
            && (pending >= self.options.every_entries.max(1)
                || self.last_time.elapsed() >= self.options.every)
    }

    pub(crate) fn last(&self) -> Option<&SignedNote> {
        self.last.as_ref().map(|(n, _)| n)
    }

    /// Signs and publishes the checkpoints whose roots the tree thread has answered, then asks
    /// it for the root of the tree as it is if a checkpoint is due and none is asked for;
    /// never waits for the tree thread. The root asked for is signed by a later call, by
    /// [`CheckpointState::sign_asked`] or by [`CheckpointState::publish`]: of the size asked,
    /// so that a checkpoint signs what the tree held then (records the log holds) even when
    /// more entries were pushed since.
    pub(crate) fn publish_if_due(&mut self) -> Result<(), TopicError> {
        while let Some((size, root)) = self.tree.try_root()? {
            self.sign(size, root)?;
        }
        if self.due() && !self.tree.asking() {
            self.tree.ask()?;
        }
        Ok(())
    }

    /// Signs and publishes the checkpoints asked for by [`CheckpointState::publish_if_due`],
    /// waiting for the tree thread to hash the entries they cover.
    pub(crate) fn sign_asked(&mut self) -> Result<(), TopicError> {
        while let Some((size, root)) = self.tree.wait_root()? {
            self.sign(size, root)?;
        }
        Ok(())
    }

    /// Signs and publishes a checkpoint of the tree as it is (after those asked for before),
    /// unless the last one already covers it; waits for the tree thread.
    pub(crate) fn publish(&mut self) -> Result<Option<SignedNote>, TopicError> {
        self.sign_asked()?;
        let (size, root) = self.tree.root()?;
        self.sign(size, root)
    }

    /// Signs a checkpoint of size `size` and root `root` and publishes it, unless the last
    /// one already covers it. The tree only grows by this writer's own entries after it was
    /// checked against the last signed checkpoint, so the new one extends the last.
    fn sign(&mut self, size: u64, root: Hash) -> Result<Option<SignedNote>, TopicError> {
        if let Some((_, c)) = &self.last {
            if size < c.size() || (size == c.size() && root != *c.root()) {
                return Err(TopicError::Invalid(format!(
                    "{}: refusing to sign size {size}: it contradicts the signed size {}",
                    self.origin,
                    c.size()
                )));
            }
            if size == c.size() && !self.unpublished {
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
        match &mut self.pusher {
            Some(p) => {
                let (log, topic, partition) = (self.log, self.topic.as_str(), self.partition);
                let prove = |old: u64| proof_from_log(log, topic, partition, old, size);
                p.submit(note.clone(), size, &prove);
            }
            None => self.hand_over(note.clone())?,
        }
        self.unpublished = false;
        self.publish_pushed()?;
        self.last = Some((note.clone(), checkpoint));
        self.last_time = Instant::now();
        Ok(Some(note))
    }
}

/// A checkpoint on its way to the checkpoints topic: the appender of its partition (opened,
/// and so locked, by the writer), the chain partition it is for, and the note.
type NoteJob = (Box<dyn Appender>, u32, SignedNote);

/// The thread that appends a writer's signed checkpoints to the checkpoints topic and forces
/// them to disk, so that the writer goes on with its chain instead of waiting for that fsync
/// (6-7 ms a checkpoint on the reference machine, about 10 per million entries).
///
/// ```text
/// writer:       sign ──► remember ──► wait for the note before ──► open the partition's
///               appender ──► hand over ──► build and append the next batches ...
/// note thread:                               append, fsync, drop the appender ──► done
/// ```
///
/// One note at a time, in the order signed. What a checkpoint signs is unchanged (records the
/// log holds); only its own record reaches the topic and the disk a little later, and
/// [`CheckpointState::wait_published`] waits for it (the writer's `checkpoint`, `flush` and
/// `wait_written` do). A failed publication fails the next hand-over or wait.
struct NoteThread {
    jobs: Option<Sender<NoteJob>>,
    done: Receiver<Result<u64, TopicError>>,
    /// A note was handed over and its outcome not collected yet.
    in_flight: bool,
    thread: Option<JoinHandle<()>>,
}

impl NoteThread {
    fn start() -> Result<Self, TopicError> {
        let (jobs, job_rx) = channel::<NoteJob>();
        let (done_tx, done) = channel();
        let thread = std::thread::Builder::new()
            .name("kchain-checkpoints".into())
            .spawn(move || {
                for (mut appender, partition, note) in job_rx {
                    let published = append_note(appender.as_mut(), partition, &note);
                    // Unlocks the partition for the next note or a witness.
                    drop(appender);
                    if done_tx.send(published).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| TopicError::io("starting the checkpoint note thread".to_owned(), e))?;
        Ok(NoteThread {
            jobs: Some(jobs),
            done,
            in_flight: false,
            thread: Some(thread),
        })
    }

    /// Hands `note` over with the `appender` of its checkpoints partition. Requires nothing
    /// in flight ([`NoteThread::wait`]).
    fn hand_over(
        &mut self,
        appender: Box<dyn Appender>,
        partition: u32,
        note: SignedNote,
    ) -> Result<(), TopicError> {
        debug_assert!(!self.in_flight, "one note at a time");
        let jobs = self.jobs.as_ref().ok_or_else(note_thread_gone)?;
        jobs.send((appender, partition, note))
            .map_err(|_| note_thread_gone())?;
        self.in_flight = true;
        Ok(())
    }

    /// Waits for the note in flight, if any: whether it was published.
    fn wait(&mut self) -> Result<(), TopicError> {
        if !std::mem::take(&mut self.in_flight) {
            return Ok(());
        }
        match self.done.recv() {
            Ok(published) => published.map(drop),
            Err(_) => Err(note_thread_gone()),
        }
    }
}

fn note_thread_gone() -> TopicError {
    TopicError::Invalid("the checkpoint note thread stopped".into())
}

impl Drop for NoteThread {
    /// Publishes the note in flight, then joins the thread.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The consistency proof from `old` to `size` entries of the chain, read from the log: for a
/// witness that lags behind what the push thread holds.
fn proof_from_log(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    old: u64,
    size: u64,
) -> Result<Vec<Hash>, String> {
    let leaves = chain_leaves(log, topic, partition, size).map_err(|e| e.to_string())?;
    merkle::consistency_proof(&leaves, old).map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::thread::sleep;

    use kchain_core::WriterKey;
    use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, TopicConfig};

    use super::*;

    fn size(note: &SignedNote) -> u64 {
        Checkpoint::parse(note.text()).unwrap().size()
    }

    /// Holds the tree thread of `state` until `release` is sent, or for 10 s; the thread
    /// says whether it released on time.
    fn held(state: &CheckpointState) -> (Sender<()>, JoinHandle<bool>) {
        let release = state.tree.hold();
        let (early, wait) = channel::<()>();
        let holder = std::thread::spawn(move || {
            let late = wait.recv_timeout(Duration::from_secs(10)).is_err();
            drop(release);
            !late
        });
        (early, holder)
    }

    /// A due checkpoint does not wait for the tree thread: the call that finds it due asks
    /// for the root and returns, a later call signs it once the tree thread has answered,
    /// and `sign_asked` waits for it. What is signed is the tree asked for (the records the
    /// log held then), not the entries pushed since.
    #[test]
    fn a_due_checkpoint_is_signed_once_the_tree_thread_answers() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            fsync: FsyncPolicy::Never,
            ..EmbeddedOptions::default()
        };
        let log = EmbeddedLog::create(dir.path(), options).unwrap();
        log.create_topic("orders", &TopicConfig::default()).unwrap();
        let key = WriterKey::from_seed("acme", [3; 32]);
        let options = CheckpointOptions {
            every_entries: 10,
            every: Duration::from_secs(3600),
            ..CheckpointOptions::default()
        };
        let mut state = CheckpointState::open(&log, "orders", 0, &key, None, options).unwrap();
        let hashes: Vec<Hash> = (0..30u32)
            .map(|i| kchain_core::sha256(&i.to_le_bytes()))
            .collect();
        let root_of =
            |n: usize| merkle::root(&hashes[..n].iter().map(chain_leaf).collect::<Vec<_>>());
        let on_topic = |log: &EmbeddedLog| -> Vec<u64> {
            let records = read_checkpoints(log, "orders").unwrap();
            records.iter().map(|r| size(&r.note)).collect()
        };

        state.push_all(hashes[..12].to_vec());
        let (release, holder) = held(&state);
        state.publish_if_due().unwrap();
        assert!(state.last().is_none(), "signed with the tree thread held");
        state.push_all(hashes[12..17].to_vec());
        state.publish_if_due().unwrap();
        release.send(()).unwrap();
        assert!(
            holder.join().unwrap(),
            "publish_if_due waited for the tree thread"
        );
        let t = Instant::now();
        while state.last().is_none() && t.elapsed() < Duration::from_secs(10) {
            sleep(Duration::from_millis(1));
            state.publish_if_due().unwrap();
        }
        let signed = Checkpoint::parse(state.last().expect("signed").text()).unwrap();
        assert_eq!((signed.size(), *signed.root()), (12, root_of(12)));
        state.wait_published().unwrap();
        assert_eq!(on_topic(&log), vec![12]);

        // Due again at 22: asked with the thread held, signed by sign_asked once it answers.
        state.push_all(hashes[17..22].to_vec());
        let (release, holder) = held(&state);
        state.publish_if_due().unwrap();
        state.push_all(hashes[22..30].to_vec());
        assert_eq!(state.last().map(size), Some(12));
        let releaser = std::thread::spawn(move || {
            sleep(Duration::from_millis(50));
            release.send(()).unwrap();
        });
        state.sign_asked().unwrap();
        assert!(holder.join().unwrap());
        releaser.join().unwrap();
        let signed = Checkpoint::parse(state.last().unwrap().text()).unwrap();
        assert_eq!((signed.size(), *signed.root()), (22, root_of(22)));
        assert_eq!(state.publish().unwrap().map(|n| size(&n)), Some(30));
        state.wait_published().unwrap();
        assert_eq!(on_topic(&log), vec![12, 22, 30]);
    }
}
