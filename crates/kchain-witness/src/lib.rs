//! kchain's witnesses over HTTP, as c2sp.org/tlog-witness specifies them.
//!
//! ```text
//!  writer / sealer ──POST /add-checkpoint──►  witness server ──► cosignature lines
//!  verifier / monitor ──GET /checkpoint/<origin>──► the newest cosigned checkpoint
//! ```
//!
//! [`HttpWitness`] is the client side: it implements kchain-core's [`RemoteWitness`], which
//! the writer, the sealer, the verifier and the monitor use.
//!
//! [`RemoteWitness`]: kchain_core::RemoteWitness

mod client;

pub use client::{checkpoint_path, HttpWitness};
