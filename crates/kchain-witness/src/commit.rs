//! Group commit of the witness's state: requests of any origins share one sync of an
//! append-only journal, and no answer leaves before its state is durable.
//!
//! ```text
//!  request (under its origin's lock)      committer thread (one per state directory)
//!   queue (file, contents) ──► Ticket ──► take every queued write (a batch)
//!  unlock the origin                       append one record per write to `journal`,
//!                                          fdatasync it once: the batch is durable
//!  Ticket::wait ◄── committed >= seq ◄────
//!                                          journal > 8 MiB, or the store closes: write the
//!                                          newest contents of each file it holds, durably,
//!                                          then empty the journal
//! ```
//!
//! The state files lag behind the journal between compactions: the states in memory and the
//! journal are the truth (`StateStore` answers from memory; `witness export` and the origin
//! list read the journal over the files). Replacing a file per answer (a create, a write and
//! a rename) cost ten times the journal's sync on ext4 (514 against 5,059 requests/s, 16
//! clients over 32 origins, release build).
//!
//! On start, the journal's records (up to a torn tail: writes never answered) are written to
//! their files durably and the journal is emptied, so a crash at any point leaves every
//! answered state on disk. `kchain witness export` reads the journal over the state files
//! too (kchain-topic `witness_state::read_journal`), so it is right even on a state
//! directory whose witness crashed and was not restarted. If a batch fails, the store
//! refuses every later write (the states in memory may be ahead of the disk's, and
//! answering from them could roll an origin back after a restart).

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::Write;

use kchain_topic::checkpoints::witness_state::{
    journal_record, read_journal, write_file, JOURNAL_FILE,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::ServeError;

/// The suffix of a state file's temp file: `<file>.gc<n>`.
const TEMP_MARK: &str = ".gc";

/// The journal's size past which the files it vouches for are synced and it is emptied.
const COMPACT_AT: u64 = 8 << 20;

/// A queued write: its sequence number, the state file, its new contents.
type Queued = (u64, PathBuf, Vec<u8>);

/// The queue a committer thread drains, shared with the writers.
struct Shared {
    dir: PathBuf,
    queue: Mutex<Queue>,
    /// Signalled when writes are queued or the store closes.
    work: Condvar,
    /// Signalled when a batch is durable (or failed).
    done: Condvar,
    /// Batches committed (for tests and diagnostics).
    batches: AtomicU64,
}

#[derive(Default)]
struct Queue {
    writes: VecDeque<Queued>,
    /// The sequence number of the next queued write (the first is 1).
    next: u64,
    /// Every write up to this sequence number is durable.
    committed: u64,
    failed: Option<String>,
    closing: bool,
}

/// A write made durable with others: the handle of its committer thread.
pub(crate) struct Committer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A queued write; [`Ticket::wait`] returns once it is durable.
#[derive(Clone)]
#[must_use = "an answer must wait for its state to be durable"]
pub struct Ticket {
    seq: u64,
    shared: Arc<Shared>,
}

impl Committer {
    /// Starts the committer of `dir`, first removing the temp files a crash left there and
    /// writing the journal's states to their files.
    pub(crate) fn start(dir: &Path) -> Result<Committer, ServeError> {
        remove_temp_files(dir)?;
        let journal = replay_journal(dir)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            queue: Mutex::new(Queue {
                next: 1,
                ..Queue::default()
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            batches: AtomicU64::new(0),
        });
        let thread = std::thread::Builder::new()
            .name("witness-commit".into())
            .spawn({
                let shared = shared.clone();
                move || run(&shared, journal)
            })
            .map_err(|source| io_error(dir, source))?;
        Ok(Committer {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `bytes` as the new contents of the state file `path` (in the state
    /// directory). Call it under the lock of the state `path` holds, so that its writes
    /// queue in order; wait for the ticket after unlocking.
    pub(crate) fn write(&self, path: &Path, bytes: &[u8]) -> Result<Ticket, ServeError> {
        let mut queue = self.shared.lock();
        if let Some(why) = &queue.failed {
            return Err(failed(&self.shared.dir, why));
        }
        let seq = queue.next;
        queue.next += 1;
        queue
            .writes
            .push_back((seq, path.to_owned(), bytes.to_vec()));
        self.shared.work.notify_one();
        Ok(Ticket {
            seq,
            shared: self.shared.clone(),
        })
    }
}

impl Drop for Committer {
    /// Commits what is queued, then stops the thread.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("seq", &self.seq).finish()
    }
}

impl Ticket {
    /// Waits until the write is durable (or its batch failed).
    pub fn wait(&self) -> Result<(), ServeError> {
        let mut queue = self.shared.lock();
        loop {
            if queue.committed >= self.seq {
                return Ok(());
            }
            if let Some(why) = &queue.failed {
                return Err(failed(&self.shared.dir, why));
            }
            queue = self
                .shared
                .done
                .wait(queue)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The journal file, open for appending, and what it vouches for.
struct Journal {
    file: fs::File,
    len: u64,
    /// The newest contents of each state file the journal holds, not yet in the file.
    unsynced: HashMap<PathBuf, Vec<u8>>,
}

/// Writes the journal's states to their files durably and empties it; returns it open.
fn replay_journal(dir: &Path) -> Result<Journal, ServeError> {
    let path = dir.join(JOURNAL_FILE);
    let bad = |e: kchain_topic::TopicError| io_error(&path, std::io::Error::other(e.to_string()));
    for (name, contents) in read_journal(dir).map_err(bad)? {
        write_file(&dir.join(name), &contents).map_err(bad)?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| io_error(&path, source))?;
    file.set_len(0)
        .and_then(|_| file.sync_all())
        .and_then(|_| fs::File::open(dir)?.sync_all())
        .map_err(|source| io_error(&path, source))?;
    Ok(Journal {
        file,
        len: 0,
        unsynced: HashMap::new(),
    })
}

/// The committer thread: a batch of every queued write at a time, until the store closes.
fn run(shared: &Shared, mut journal: Journal) {
    loop {
        let batch: Vec<_> = {
            let mut queue = shared.lock();
            while queue.writes.is_empty() && !queue.closing {
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
            if queue.writes.is_empty() {
                drop(queue);
                // Closing: the files take the journal's states, and the journal empties.
                let _ = compact(&shared.dir, &mut journal);
                return;
            }
            queue.writes.drain(..).collect()
        };
        let last = batch.last().map_or(0, |(seq, _, _)| *seq);
        let outcome = commit(&mut journal, &batch);
        shared.batches.fetch_add(1, Ordering::Relaxed);
        let mut queue = shared.lock();
        match outcome {
            Ok(()) => queue.committed = last,
            Err(e) => queue.failed = Some(e.to_string()),
        }
        shared.done.notify_all();
        if queue.failed.is_some() {
            return;
        }
        drop(queue);
        if journal.len > COMPACT_AT {
            if let Err(e) = compact(&shared.dir, &mut journal) {
                shared.lock().failed = Some(e.to_string());
                shared.done.notify_all();
                return;
            }
        }
    }
}

/// Makes one batch durable: its journal records, one fdatasync. Of two writes of one file,
/// the later is the newest.
fn commit(journal: &mut Journal, batch: &[Queued]) -> std::io::Result<()> {
    let mut records = Vec::new();
    for (_, path, contents) in batch {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let record = journal_record(&name, contents)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        records.extend_from_slice(&record);
    }
    journal.file.write_all(&records)?;
    journal.file.sync_data()?;
    journal.len += records.len() as u64;
    for (_, path, contents) in batch {
        journal.unsynced.insert(path.clone(), contents.clone());
    }
    Ok(())
}

/// Writes the newest contents of each file the journal holds, durably, then empties it.
fn compact(dir: &Path, journal: &mut Journal) -> std::io::Result<()> {
    for (path, contents) in journal.unsynced.drain() {
        write_file(&path, &contents).map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    fs::File::open(dir)?.sync_all()?;
    journal.file.set_len(0)?;
    journal.file.sync_all()?;
    journal.len = 0;
    Ok(())
}

/// Removes `<file>.gc<n>` temp files: writes whose batch never committed.
fn remove_temp_files(dir: &Path) -> Result<(), ServeError> {
    let entries = fs::read_dir(dir).map_err(|source| io_error(dir, source))?;
    for entry in entries {
        let path = entry.map_err(|source| io_error(dir, source))?.path();
        if is_temp(&path) {
            fs::remove_file(&path).map_err(|source| io_error(&path, source))?;
        }
    }
    Ok(())
}

fn is_temp(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.rsplit_once(TEMP_MARK)
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn io_error(path: &Path, source: std::io::Error) -> ServeError {
    ServeError::Io {
        path: path.to_owned(),
        source,
    }
}

fn failed(dir: &Path, why: &str) -> ServeError {
    io_error(
        dir,
        std::io::Error::other(format!("a group commit failed, writes refused: {why}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writes_share_batches_and_the_last_write_of_a_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stale.note.gc7"), "torn").unwrap();
        let committer = Arc::new(Committer::start(dir.path()).unwrap());
        assert!(!dir.path().join("stale.note.gc7").exists());
        let (threads, writes) = (8, 40);
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let committer = committer.clone();
                let path = dir.path().join(format!("{t}.note"));
                std::thread::spawn(move || {
                    for i in 0..writes {
                        let ticket = committer.write(&path, format!("{i}").as_bytes()).unwrap();
                        ticket.wait().unwrap();
                        // Durable: in the journal, whose newest record of the file is it.
                        let newest = read_journal(path.parent().unwrap())
                            .unwrap()
                            .into_iter()
                            .rev()
                            .find(|(n, _)| n == &format!("{t}.note"))
                            .map(|(_, c)| c);
                        assert_eq!(newest, Some(format!("{i}").into_bytes()));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let batches = committer.shared.batches.load(Ordering::Relaxed);
        assert!(batches < threads * writes, "{batches} batches: none shared");
        // Two queued writes of one file before a wait: the later one stays.
        let path = dir.path().join("twice.note");
        let first = committer.write(&path, b"first").unwrap();
        let second = committer.write(&path, b"second").unwrap();
        second.wait().unwrap();
        first.wait().unwrap();
        // Closing the store writes the journal's newest states to their files.
        drop(Arc::into_inner(committer).expect("the threads are done"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(fs::read_to_string(dir.path().join("0.note")).unwrap(), "39");
        assert_eq!(
            fs::metadata(dir.path().join(JOURNAL_FILE)).unwrap().len(),
            0
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!names.iter().any(|p| is_temp(p)), "{names:?}");
    }

    #[test]
    fn a_journal_left_by_a_crash_is_written_to_its_files_and_emptied_at_start() {
        let dir = tempfile::tempdir().unwrap();
        // A crash after the journal's sync, before the files were replaced: the journal holds
        // the newer state, the file the older one; then a torn record (never answered).
        fs::write(dir.path().join("a.note"), "old").unwrap();
        let mut journal = journal_record("a.note", b"new").unwrap();
        journal.extend_from_slice(&journal_record("b.note", b"b1").unwrap());
        journal.extend_from_slice(&journal_record("b.note", b"b2").unwrap());
        let torn = journal_record("a.note", b"never answered").unwrap();
        assert!(journal_record(&"n".repeat(70_000), b"").is_err());
        journal.extend_from_slice(&torn[..torn.len() - 3]);
        fs::write(dir.path().join(JOURNAL_FILE), &journal).unwrap();
        assert_eq!(
            read_journal(dir.path()).unwrap(),
            vec![
                ("a.note".to_string(), b"new".to_vec()),
                ("b.note".to_string(), b"b1".to_vec()),
                ("b.note".to_string(), b"b2".to_vec()),
            ]
        );
        let committer = Committer::start(dir.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("a.note")).unwrap(),
            "new"
        );
        assert_eq!(fs::read_to_string(dir.path().join("b.note")).unwrap(), "b2");
        assert_eq!(
            fs::metadata(dir.path().join(JOURNAL_FILE)).unwrap().len(),
            0
        );
        // Writes after the restart go to the journal; the files take them at closing.
        let path = dir.path().join("a.note");
        committer.write(&path, b"newer").unwrap().wait().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(read_journal(dir.path()).unwrap().len(), 1);
        drop(committer);
        assert_eq!(fs::read_to_string(&path).unwrap(), "newer");
    }
}
