//! kchain-monitor: a long-running auditor of chained topics. It verifies each partition
//! incrementally (resuming from its own state, never from genesis again), holds every new
//! checkpoint (from the checkpoints topic and from witnesses over HTTP) to the chain tree it
//! built, and raises an alert within seconds of a tamper, a fork, a rollback or a stalled
//! writer: a JSON line, an optional webhook POST, and Prometheus metrics.
//!
//! ```text
//!  Log ──► chain (PartitionWatch: reader, ChainVerifier, TreeBuilder) ──┐
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
//! | `chain`   | one partition verified incrementally                        |
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
mod metrics;
mod monitor;
mod state;

pub use alert::{Alert, AlertKind, Alerts};
pub use error::MonitorError;
pub use metrics::serve;
pub use monitor::{Monitor, MonitorOptions};
pub use state::{MonitorState, PartitionState, STATE_FILE};
