//! A chained writer's log thread: it owns the appender of an embedded partition and writes the
//! batches the writer hands over, so that the writer builds the next batch (hashing, linking,
//! signing, on the other cores) while the log copies this one into the page cache.
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
//! handed over. Dropping the thread's handle lets it finish the batches it holds, then joins it
//! (the appender, and with it the partition's lock, go with the thread).

use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use kchain_log::{Appender, EncodedRecords, LogError};

enum Job {
    Append(EncodedRecords),
    Flush,
}

enum Done {
    /// The offsets the batch got (or why it failed), and the batch back for its buffer.
    Appended(Result<Vec<u64>, LogError>, EncodedRecords),
    Flushed(Result<(), LogError>),
}

/// The handle of one partition's log thread.
pub(crate) struct LogThread {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

/// The batch a collect returns: its offsets (or why it failed) and its buffer, for reuse.
pub(crate) type Written = (Result<Vec<u64>, LogError>, Vec<u8>);

impl LogThread {
    /// Starts the log thread of `appender` (an appender that takes encoded batches).
    pub(crate) fn start(mut appender: Box<dyn Appender>, name: String) -> std::io::Result<Self> {
        let (jobs, job_rx) = sync_channel::<Job>(1);
        let (done_tx, done) = channel::<Done>();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            for job in job_rx {
                let answer = match job {
                    Job::Append(mut records) => {
                        let written = appender.append_encoded(&mut records);
                        Done::Appended(written, records)
                    }
                    Job::Flush => Done::Flushed(appender.flush()),
                };
                if done_tx.send(answer).is_err() {
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
        self.send(Job::Append(records))
    }

    /// Waits for the oldest batch handed over and not collected yet.
    pub(crate) fn collect(&mut self) -> Written {
        match self.done.recv() {
            Ok(Done::Appended(written, records)) => (written, records.into_buffer()),
            Ok(Done::Flushed(_)) => (Err(out_of_order()), Vec::new()),
            Err(_) => (Err(gone()), Vec::new()),
        }
    }

    /// Forces everything appended to stable storage. Call with nothing left to collect.
    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        self.send(Job::Flush)?;
        match self.done.recv() {
            Ok(Done::Flushed(result)) => result,
            Ok(Done::Appended(..)) => Err(out_of_order()),
            Err(_) => Err(gone()),
        }
    }

    fn send(&mut self, job: Job) -> Result<(), LogError> {
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(job).map_err(|_| gone())
    }
}

fn gone() -> LogError {
    LogError::Backend {
        backend: "embedded",
        detail: "the writer's log thread stopped".into(),
    }
}

fn out_of_order() -> LogError {
    LogError::Backend {
        backend: "embedded",
        detail: "the writer's log thread answered out of order".into(),
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

/// What a writer keeps in place of an appender it moved to its log thread: it refuses
/// everything (the writer appends through the thread).
pub(crate) struct OnLogThread;

impl Appender for OnLogThread {
    fn append(&mut self, _: &[kchain_log::Record]) -> Result<Vec<u64>, LogError> {
        Err(LogError::Unsupported(
            "this partition's appender is on the writer's log thread".into(),
        ))
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.append(&[]).map(|_| ())
    }

    fn next_offset(&self) -> u64 {
        0
    }
}
