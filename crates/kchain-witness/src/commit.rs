//! Group commit of the witness's state files: requests of any origins share the cost of
//! making their new states durable, and no answer leaves before its state is durable.
//!
//! ```text
//!  request (under its origin's lock)          committer thread (one per state directory)
//!   write <file>.gc<n>, fdatasync ──► queue ──► take every queued write (a batch)
//!   ◄── Ticket(seq)                             rename each temp file over its file, in order
//!  unlock the origin                            fsync the directory: the renames durable
//!  Ticket::wait ◄── committed >= seq ◄───────── (one directory fsync per batch)
//! ```
//!
//! A request's own data sync runs beside other requests' (the file system joins them in one
//! journal commit); the directory's fsync, which made every write cost two syncs, is one
//! per batch. The renames run
//! in queue order, so of two writes of one file in a batch the later wins. A crash before
//! the directory's fsync leaves each file old or new (a rename is atomic), and no answer of
//! that batch has left. Temp files a crash leaves behind are removed at the next start.
//! If a batch fails, the store refuses every later write (the states in memory may be
//! ahead of the disk's, and answering from them could roll an origin back after a restart).

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::ServeError;

/// The suffix of a state file's temp file: `<file>.gc<n>`.
const TEMP_MARK: &str = ".gc";

/// The queue a committer thread drains, shared with the writers.
struct Shared {
    dir: PathBuf,
    queue: Mutex<Queue>,
    /// Signalled when writes are queued or the store closes.
    work: Condvar,
    /// Signalled when a batch is durable (or failed).
    done: Condvar,
    temp_names: AtomicU64,
    /// Batches committed (for tests and diagnostics).
    batches: AtomicU64,
}

#[derive(Default)]
struct Queue {
    writes: VecDeque<(u64, PathBuf, PathBuf)>,
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
    /// Starts the committer of `dir`, first removing the temp files a crash left there.
    pub(crate) fn start(dir: &Path) -> Result<Committer, ServeError> {
        remove_temp_files(dir)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            queue: Mutex::new(Queue {
                next: 1,
                ..Queue::default()
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            temp_names: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        });
        let thread = std::thread::Builder::new()
            .name("witness-commit".into())
            .spawn({
                let shared = shared.clone();
                move || run(&shared)
            })
            .map_err(|source| io_error(dir, source))?;
        Ok(Committer {
            shared,
            thread: Some(thread),
        })
    }

    /// Writes `bytes` durably to a temp file beside `path` and queues its rename over
    /// `path`. Call it under the lock of the state `path` holds, so that its writes queue in
    /// order. (Concurrent fdatasyncs of different files share the file system's journal
    /// commits; a `syncfs` per batch instead would also flush every other writer's data.)
    pub(crate) fn write(&self, path: &Path, bytes: &[u8]) -> Result<Ticket, ServeError> {
        let n = self.shared.temp_names.fetch_add(1, Ordering::Relaxed);
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(format!("{TEMP_MARK}{n}"));
        let temp = path.with_file_name(name);
        fs::File::create(&temp)
            .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_data()))
            .map_err(|source| io_error(&temp, source))?;
        let mut queue = self.shared.lock();
        if let Some(why) = &queue.failed {
            let _ = fs::remove_file(&temp);
            return Err(failed(&self.shared.dir, why));
        }
        let seq = queue.next;
        queue.next += 1;
        queue.writes.push_back((seq, temp, path.to_owned()));
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

/// The committer thread: a batch of every queued write at a time, until the store closes.
fn run(shared: &Shared) {
    loop {
        let batch: Vec<_> = {
            let mut queue = shared.lock();
            while queue.writes.is_empty() && !queue.closing {
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
            if queue.writes.is_empty() {
                return;
            }
            queue.writes.drain(..).collect()
        };
        let last = batch.last().map_or(0, |(seq, _, _)| *seq);
        let outcome = commit(&shared.dir, &batch);
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
    }
}

/// Makes one batch durable: the renames of its (durable) temp files, then the directory.
fn commit(dir: &Path, batch: &[(u64, PathBuf, PathBuf)]) -> std::io::Result<()> {
    for (_, temp, path) in batch {
        fs::rename(temp, path)?;
    }
    fs::File::open(dir)?.sync_all()
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
                        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{i}"));
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
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!names.iter().any(|p| is_temp(p)), "{names:?}");
    }
}
