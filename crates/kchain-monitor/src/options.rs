//! How the monitor runs: what it watches, how often, and the rules it holds the chains to.

use std::path::PathBuf;
use std::time::Duration;

use kchain_core::NoteVerifier;

/// How the monitor runs.
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    /// The chained topics to watch (every partition of each).
    pub topics: Vec<String>,
    /// The ledgers to watch, by name (their blocks topics are `<name>.blocks`).
    pub ledgers: Vec<String>,
    /// Where the state file lives.
    pub state_dir: PathBuf,
    /// Alert when no new checkpoint arrives for this long (none: never).
    pub stall_after: Option<Duration>,
    /// The pause between passes.
    pub interval: Duration,
    /// How long a tail may wait for its signature before it is `unsigned`.
    pub grace: Duration,
    /// How often the witnesses are asked for their newest checkpoints.
    pub witness_interval: Duration,
    /// The origin namespace of the checkpoints.
    pub namespace: String,
    /// The freshness rule (`[policy] max_age`, seconds): a `stale` alert when entries past
    /// the newest accepted checkpoint wait longer than this for a witness cosignature.
    pub max_age: Option<u64>,
    /// The witnesses of the trust policy (type 0x04 keys) and how many must cosign a
    /// checkpoint for the freshness rule to accept it.
    pub witnesses: Vec<NoteVerifier>,
    pub threshold: usize,
    /// The state is written at most this often (and always when an alert was raised, and
    /// when the monitor stops): every pass's fsync would cost a fast backlog much of its
    /// rate, and a restart re-reads at most this long's records (never counting one twice).
    pub save_every: Duration,
}

impl MonitorOptions {
    /// Defaults for `topics` and `state_dir`: no ledgers, a pass every 500 ms, a grace of
    /// 2 s, witnesses every 5 s, no stall limit, the default namespace, the state saved at
    /// most once a second.
    pub fn new(topics: Vec<String>, state_dir: PathBuf) -> MonitorOptions {
        MonitorOptions {
            topics,
            ledgers: Vec::new(),
            state_dir,
            stall_after: None,
            interval: Duration::from_millis(500),
            grace: Duration::from_secs(2),
            witness_interval: Duration::from_secs(5),
            namespace: kchain_core::DEFAULT_ORIGIN_NAMESPACE.to_owned(),
            max_age: None,
            witnesses: Vec::new(),
            threshold: 0,
            save_every: Duration::from_secs(1),
        }
    }
}
