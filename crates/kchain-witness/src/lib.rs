//! kchain's witnesses over HTTP, as c2sp.org/tlog-witness specifies them.
//!
//! ```text
//!  writer / sealer ──POST /add-checkpoint──►  witness server ──► cosignature lines
//!  verifier / monitor ──GET /checkpoint/<origin>──► the newest cosigned checkpoint
//!
//!  server:  router (HTTP) ──► WitnessService (the checks, in the spec's order)
//!                               ├─ KnownLogs   which origins, which keys
//!                               └─ StateStore  per-origin lock, durable state files
//! ```
//!
//! [`HttpWitness`] is the client side: it implements kchain-core's [`RemoteWitness`], which
//! the writer, the sealer, the verifier and the monitor use. [`serve`] runs the server side
//! (`kchain witness serve`).
//!
//! [`RemoteWitness`]: kchain_core::RemoteWitness

mod client;
mod commit;
mod error;
mod logs;
mod server;
mod service;
mod state;

pub use client::{checkpoint_path, HttpWitness};
pub use commit::Ticket;
pub use error::ServeError;
pub use logs::KnownLogs;
pub use server::{router, serve, MAX_BODY_BYTES};
pub use service::{Reply, WitnessService};
pub use state::{OriginGuard, OriginState, StateStore};
