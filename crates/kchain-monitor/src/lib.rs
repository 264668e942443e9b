//! kchain-monitor: a long-running auditor of chained topics and ledgers. It verifies each
//! partition (and each ledger's blocks chain, by the ledger's consensus rules)
//! incrementally (resuming from its own state, never from genesis again), holds every new
//! checkpoint (from the checkpoints topic and from witnesses over HTTP) to the chain tree it
//! built, and raises an alert within seconds of a tamper, a fork, a rollback or a stalled
//! writer: a JSON line, an optional webhook POST, and Prometheus metrics.
//!
//! ```text
//!  Log ──► chain  (PartitionWatch: reader, ChainVerifier, TreeBuilder) ─┐
//!  Log ──► ledger (LedgerWatch: reader, ledger Chain, TreeBuilder) ─────┤
//!  <topic>.checkpoints ──► feed ──┐                                     ├─► monitor ──► alert
//!  witnesses (RemoteWitness) ─────┴──► book (checkpoints vs the tree) ──┘      │   ──► state
//!                                                                              └──► metrics
//! ```
//!
//! See `docs/monitor.md` for what it checks, its alerts, metrics and state.
//!
//! | module    | what                                                        |
//! |-----------|-------------------------------------------------------------|
//! | `monitor` | [`Monitor`]: a pass, the loop, `--once`                      |
//! | `options` | [`MonitorOptions`]                                          |
//! | `targets` | what is watched, opened from the options and the state      |
//! | `watch`   | what the monitor asks of a watched chain, and its events    |
//! | `chain`   | one partition verified incrementally                        |
//! | `ledger`  | one ledger's blocks chain verified incrementally            |
//! | `book`    | one partition's checkpoints against its tree (pure)         |
//! | `feed`    | a checkpoints topic read incrementally                      |
//! | `late`    | a late checkpoint's root, from the frontier and the log     |
//! | `fresh`   | the freshness rule (`max_age`) for one partition            |
//! | `alert`   | [`Alert`], [`Alerts`]: stdout lines and the webhook         |
//! | `state`   | [`MonitorState`]: the durable state file                    |
//! | `metrics` | the `/metrics` page and [`serve`]                            |

mod alert;
mod book;
mod chain;
mod error;
mod feed;
mod fresh;
mod late;
mod ledger;
mod metrics;
mod monitor;
mod options;
mod state;
mod targets;
mod watch;

pub use alert::{Alert, AlertKind, Alerts};
pub use error::MonitorError;
pub use metrics::serve;
pub use monitor::Monitor;
pub use options::MonitorOptions;
pub use state::{LedgerTip, MonitorState, PartitionState, STATE_FILE};
