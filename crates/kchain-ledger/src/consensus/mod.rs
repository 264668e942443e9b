//! The consensus rules of the ledger, pure: what a transaction, a block and a genesis are and
//! how they are encoded and hashed, the state they drive, which block extends the chain, and
//! how a transaction is proved. Nothing here reads a log or a file; the node and the client
//! feed it the records they read ([`crate::node`]).
//!
//! ```text
//! encoding ─> tx ─> block ─> genesis_block      sig ─> validate ─> chain
//!                     │         ▲                         ▲          │
//!                     └─> genesis     state ──────────────┘          │
//!                                                       proof <──────┘ (by the caller)
//! ```

pub(crate) mod block;
pub(crate) mod chain;
pub(crate) mod encoding;
pub(crate) mod error;
pub(crate) mod finding;
pub(crate) mod genesis;
mod genesis_block;
pub(crate) mod proof;
pub(crate) mod reject;
pub(crate) mod sig;
pub(crate) mod state;
pub(crate) mod tx;
pub(crate) mod validate;
