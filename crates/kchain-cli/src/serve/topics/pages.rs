//! Readers paused between the pages of `GET .../records`, so that the next page verifies on
//! from where the last one stopped instead of from genesis: paging through a partition of
//! N records costs one reading of it, not one per page (N²/page).
//!
//! ```text
//!  page k:   find(topic, p, trust, from) ─► a copy of the kept reader with the greatest
//!                                          │  next <= from ─► resume
//!                                          └─ none ─► VerifyingReader::open (from genesis)
//!            ready(): verified up to `from` ─► keep(snapshot)   (the same page again)
//!            ... the page's records ...
//!            keep(reader.pause())                                (the page after it)
//!            (nothing is kept after a finding: a finding is final)
//! ```
//!
//! `find` hands out a copy, so any number of requests go on from one kept reader at once.
//!
//! A paused reader is verification state this server computed itself and holds in memory,
//! so it vouches for the records before its position as a remembered checkpoint does (see
//! kchain-topic's `PausedReader`). It is bound to the trust it verified under: after the
//! trust file changes, the next page verifies from genesis again. What it holds is bounded:
//! [`KEEP`] readers and [`BUDGET`] bytes of held records in all, the oldest dropped first.

use std::collections::VecDeque;
use std::sync::Mutex;

use kchain_core::Trust;
use kchain_topic::PausedReader;

use crate::serve::sync::lock;

/// The most paused readers kept.
pub const KEEP: usize = 32;
/// The most bytes of held records kept in all.
pub const BUDGET: u64 = 64 << 20;

/// The paused readers, the most recently kept last.
#[derive(Default)]
pub struct Pages {
    paused: Mutex<VecDeque<PausedReader>>,
}

impl Pages {
    /// A copy of the paused reader that can deliver `topic`/`partition` from `from` under
    /// `trust` with the least reading (the greatest `next` not after `from`).
    pub fn find(
        &self,
        topic: &str,
        partition: u32,
        trust: &Trust,
        from: u64,
    ) -> Option<PausedReader> {
        let paused = lock(&self.paused);
        (paused.iter())
            .filter(|r| r.can_serve(topic, partition, trust, from))
            .max_by_key(|r| r.next())
            .cloned()
    }

    /// Keeps `reader` for a later page, in place of one kept for the same place, dropping
    /// the least recently kept past [`KEEP`] or [`BUDGET`].
    pub fn keep(&self, reader: PausedReader) {
        if reader.held_bytes() > BUDGET {
            return;
        }
        let mut paused = lock(&self.paused);
        paused.retain(|r| r.partition() != reader.partition() || r.next() != reader.next());
        paused.push_back(reader);
        let mut bytes: u64 = paused.iter().map(PausedReader::held_bytes).sum();
        while paused.len() > KEEP || bytes > BUDGET {
            let Some(old) = paused.pop_front() else { break };
            bytes -= old.held_bytes();
        }
    }
}
