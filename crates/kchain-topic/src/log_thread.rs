//! A chained writer's log thread: it writes the batches the writer hands over, so that the
//! writer builds the next batch (hashing, linking, signing, on the other cores) while the log
//! copies this one into the page cache. The appender is shared ([`SharedAppender`]): the
//! writer appends on its own thread when nothing would overlap (a call's last batch, unless
//! the writer is pipelined), so that a small append costs no thread hop, and the thread is
//! started only when a batch is handed over.
//!
//! ```text
//! writer thread:  build batch k ──► collect k-1 (offsets, buffer) ──► hand over k ──► build k+1
//!                                          ▲                              │
//!                                          │ done channel                 ▼ job channel (1 deep)
//! log thread:                      ... append_encoded(k-1) ... ──► append_encoded(k) (fsync by
//!                                                                  the log's policy) ──► done
//! ```
//!
//! Jobs are handled in order and every job answers, so the writer collects exactly what it
//! handed over. Dropping the thread's handle lets it finish the batches it holds, then joins it.

use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use kchain_log::{Appender, EncodedRecords, LogError, Record};

/// An appender shared by a writer and its log thread, one at a time (the writer appends
/// itself only with nothing in flight, so the lock is never contended).
#[derive(Clone)]
pub(crate) struct SharedAppender(Arc<Mutex<Box<dyn Appender>>>);

impl SharedAppender {
    pub(crate) fn new(appender: Box<dyn Appender>) -> Self {
        SharedAppender(Arc::new(Mutex::new(appender)))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Box<dyn Appender>>, LogError> {
        self.0.lock().map_err(|_| LogError::Backend {
            backend: "embedded",
            detail: "the writer's log thread failed in the middle of an append".into(),
        })
    }
}

impl Appender for SharedAppender {
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError> {
        self.lock()?.append(records)
    }

    fn takes_encoded(&self) -> bool {
        self.lock().is_ok_and(|a| a.takes_encoded())
    }

    fn append_encoded(&mut self, records: &mut EncodedRecords) -> Result<Vec<u64>, LogError> {
        self.lock()?.append_encoded(records)
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.lock()?.flush()
    }

    fn next_offset(&self) -> u64 {
        self.lock().map_or(0, |a| a.next_offset())
    }
}

/// The offsets a batch got (or why it failed), and the batch back for its buffer.
type Done = (Result<Vec<u64>, LogError>, EncodedRecords);

/// The handle of one partition's log thread.
pub(crate) struct LogThread {
    jobs: Option<SyncSender<EncodedRecords>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

impl LogThread {
    /// Starts the log thread of `appender` (an appender that takes encoded batches).
    pub(crate) fn start(mut appender: SharedAppender, name: String) -> std::io::Result<Self> {
        let (jobs, job_rx) = sync_channel::<EncodedRecords>(1);
        let (done_tx, done) = channel::<Done>();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            for mut records in job_rx {
                let written = appender.append_encoded(&mut records);
                if done_tx.send((written, records)).is_err() {
                    break;
                }
            }
        })?;
        Ok(LogThread {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Hands `records` to the log thread to append as one batch; [`LogThread::collect`] gives
    /// its outcome. Fails only when the thread is gone.
    pub(crate) fn hand_over(&mut self, records: EncodedRecords) -> Result<(), LogError> {
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(records).map_err(|_| gone())
    }

    /// Waits for the oldest batch handed over and not collected yet: its offsets (or why it
    /// failed) and its buffer, for reuse.
    pub(crate) fn collect(&mut self) -> (Result<Vec<u64>, LogError>, Vec<u8>) {
        match self.done.recv() {
            Ok((written, records)) => (written, records.into_buffer()),
            Err(_) => (Err(gone()), Vec::new()),
        }
    }
}

fn gone() -> LogError {
    LogError::Backend {
        backend: "embedded",
        detail: "the writer's log thread stopped".into(),
    }
}

impl Drop for LogThread {
    fn drop(&mut self) {
        // Closing the job channel ends the thread once it has written what it holds.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
