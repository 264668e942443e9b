//! The consensus rules of the ledger, pure: what a transaction, a block and a genesis are and
//! how they are encoded and hashed, the state they drive, which block extends the chain, and
//! how a transaction is proved. Nothing here reads a log or a file; the node and the client
//! feed it the records they read.
//!
//! ```text
//! formats   encoding, transfer_json ──> tx ──> genesis ──> block ──> genesis_block (block 0 <-> genesis)
//! rules     reject, sig, state ──> validate (one block on the tip) ──> finding ──> chain
//!           (chain: which record extends the canonical chain, which is tampering)
//! proofs    proof (a transaction in its block, the block in a signed checkpoint)
//! errors    error (a genesis not acceptable, a topic without one)
//! ```
//!
//! An arrow reads "is used by"; nothing here uses a module outside `consensus/`.

pub(crate) mod block;
pub(crate) mod chain;
mod digest_map;
pub(crate) mod encoding;
pub(crate) mod error;
pub(crate) mod finding;
pub(crate) mod genesis;
mod genesis_block;
pub(crate) mod proof;
pub(crate) mod reject;
pub(crate) mod sig;
pub(crate) mod state;
mod transfer_json;
pub(crate) mod tx;
pub(crate) mod validate;
