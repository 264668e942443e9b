//! The interval fsync of an appender, off its write path.
//!
//! Under `FsyncPolicy::IntervalMs` an append is acknowledged before its bytes are forced to
//! disk, and the appender forces them at most an interval later. Forcing them on the
//! appender's own thread made every append that crossed an interval wait for the disk (on
//! the reference machine, 60-75% of a raw append's wall time went into `fdatasync`), so the
//! appender hands the segment to this thread instead and writes on:
//!
//! ```text
//! appender:  write ─ write ─ (interval passed) request ─ write ─ write ─ ... flush: fdatasync
//!                                                  │                                (inline)
//! sync thread:                                     └─► fdatasync(segment) ─► error? kept
//! ```
//!
//! At most one request waits while one runs: a disk slower than the appends gets one sync
//! after another, never a queue. A failed sync is kept and fails the appender's next
//! `append` or `flush` (the kernel may have dropped the pages, and reports the error only
//! once per open file). `flush`, rolling a segment and `EveryBatch` still sync inline.

use std::fs::File;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The sync thread of one appender, started by its first request.
#[derive(Default)]
pub(crate) struct Syncer {
    requests: Option<SyncSender<(Arc<File>, String)>>,
    thread: Option<JoinHandle<()>>,
    /// The first sync that failed: what and why.
    failed: Arc<Mutex<Option<String>>>,
}

impl Syncer {
    /// Asks for `file` to be synced (`what` names it in an error), unless a request already
    /// waits. Syncs inline if the thread cannot be started.
    pub fn request(&mut self, file: &Arc<File>, what: &str) {
        if self.requests.is_none() {
            let (tx, rx) = sync_channel::<(Arc<File>, String)>(1);
            let failed = self.failed.clone();
            let spawned = std::thread::Builder::new()
                .name("kchain-fsync".into())
                .spawn(move || {
                    for (file, named) in rx {
                        if let Err(e) = file.sync_data() {
                            let mut slot = failed.lock().unwrap_or_else(|p| p.into_inner());
                            slot.get_or_insert(format!("syncing {named} in the background: {e}"));
                        }
                    }
                });
            match spawned {
                Ok(thread) => (self.requests, self.thread) = (Some(tx), Some(thread)),
                Err(_) => return self.sync_inline(file, what),
            }
        }
        if let Some(tx) = &self.requests {
            match tx.try_send((file.clone(), what.to_owned())) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => self.sync_inline(file, what),
            }
        }
    }

    fn sync_inline(&self, file: &File, what: &str) {
        if let Err(e) = file.sync_data() {
            let mut slot = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(format!("syncing {what}: {e}"));
        }
    }

    /// Why a sync failed, if one did (the same answer every time after).
    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether a sync was requested of the thread.
    #[cfg(test)]
    pub fn started(&self) -> bool {
        self.thread.is_some()
    }

    /// Makes the syncs look failed, as a disk error would.
    #[cfg(test)]
    pub fn fail_for_test(&self, why: &str) {
        *self.failed.lock().unwrap() = Some(why.to_owned());
    }

    /// Waits for the syncs requested so far, then stops the thread.
    pub fn stop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop();
    }
}
