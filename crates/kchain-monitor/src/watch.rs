//! What the monitor asks of one watched chain, whatever it is: a partition of a chained
//! topic (`chain`) or a ledger's blocks chain (`ledger`). The monitor drives every watch the
//! same way: a pass reads what was appended and says what it found ([`Event`]); the chain
//! tree the watch grows is what the checkpoints are held to.
//!
//! ```text
//!  Monitor::pass ──► Watch::pass ──► Event::Tamper ────────────────► tamper
//!                                    Event::EndBelow / ResumePointChanged ──► rollback
//!                                    Event::Root (the tree at a signed end) ──► Book::reached
//!  checkpoints ──► Book::observe(size, root, Watch::tree_size, Watch::root_at)
//! ```

use std::path::Path;

use kchain_core::{Hash, Trust};
use kchain_log::{Log, LogError};

use crate::error::MonitorError;
use crate::metrics::LedgerFigures;
use crate::state::PartitionState;

/// What a watch's pass found that the monitor must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A record (or block) failed verification: the offset of the record that shows it, and
    /// why (`<finding kind>: <detail>`).
    Tamper { offset: u64, detail: String },
    /// The log ends below what was verified (end offset, the next offset after what was
    /// verified).
    EndBelow { end: u64, verified: u64 },
    /// The record at the resume point no longer hashes as it did.
    ResumePointChanged { offset: u64 },
    /// The tree reached `size` at a signed end (a writer's signed record, a sealed block),
    /// with `root`.
    Root { size: u64, root: Hash },
}

/// One watched chain, verified incrementally.
pub(crate) trait Watch {
    /// The chain's name in alerts, metrics and the state: the chained topic, or the
    /// ledger's blocks topic.
    fn chain(&self) -> &str;
    fn partition(&self) -> u32;
    /// One pass: reads what was appended since the last (up to a budget) and verifies it.
    /// An error is the log's: the next pass goes on from the same place.
    fn pass(&mut self, log: &dyn Log, trust: &Trust) -> Result<Vec<Event>, LogError>;
    /// The chain tree's size: the entries verified.
    fn tree_size(&self) -> u64;
    /// The chain tree's root at `size` (at most the tree's size), when it can be told: kept,
    /// or rebuilt from what the watch holds and the log.
    fn root_at(&self, log: &dyn Log, trust: &Trust, size: u64) -> Option<Hash>;
    /// Entries verified, over every run.
    fn entries(&self) -> u64;
    /// Records read by this process.
    fn read(&self) -> u64;
    /// Records in the log not yet verified, and the timestamp of the newest verified one
    /// (ms since the epoch; 0: unknown).
    fn lag(&self) -> (u64, i64);
    /// Whether a finding stopped verification (for good).
    fn stopped(&self) -> bool;
    /// Whether records below the end seen last wait to be read (the pass's budget ran out).
    fn behind(&self) -> bool;
    /// Stopped, or read to the end seen last with nothing waiting.
    fn settled(&self) -> bool;
    /// Writes what a restart needs into `into` (and into files of its own under `dir`, the
    /// monitor's state directory, before the state file is written); `last`: the monitor
    /// stops.
    fn save(&self, into: &mut PartitionState, dir: &Path, last: bool) -> Result<(), MonitorError>;
    /// The ledger's name, when the chain is a ledger's blocks chain.
    fn ledger(&self) -> Option<&str> {
        None
    }
    /// A ledger's own figures for the metrics page (none for a chained topic).
    fn ledger_figures(&self) -> Option<LedgerFigures> {
        None
    }
}
