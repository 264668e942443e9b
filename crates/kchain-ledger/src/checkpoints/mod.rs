//! Signed checkpoints of a ledger's blocks chain: the sealers' side ([`publish`]: a chain
//! tree kept as blocks become canonical, a signed checkpoint every N blocks or T seconds and
//! when the node stops), the verifier's side ([`check`]: the canonical chain against the
//! newest trusted checkpoint), proofs that a transaction is in a checkpoint ([`prove`]), and
//! a witness that cosigns them ([`witness`]).
//!
//! ```text
//! chain tree   leaf h = chain_leaf(hash of the canonical block at height h), h = 0 (genesis) ..
//! checkpoint   origin "<namespace>/<blocks topic>", size n (covers heights 0..n-1), root
//!
//!  Node ── Event::Canonical ──► TreeBuilder ──► every N blocks / T seconds / run() returns:
//!                                               sign (sealer key, note key name = the
//!                                               sealer's name in the genesis)
//!                                                   │
//!  <blocks topic>.checkpoints ◄── record: key "0", value: signed note (witnesses append
//!        │                        the same text with their cosignatures)
//!        ▼
//!  ledger verify: merge the notes of one text, keep those that meet the policy (a genesis
//!  sealer signed it, k listed witnesses cosigned it), hold the canonical chain against them:
//!    chain shorter ──► checkpoint_truncated    root differs ──► checkpoint_rewritten
//! ```
//!
//! The records use the companion-topic layout of chained topics
//! (`kchain_topic::checkpoints::publish_note`, partition 0), so the same readers and witnesses' append
//! path work; only the origin differs (no `/<partition>` suffix: a blocks topic has one).

mod check;
mod leaves;
mod prove;
mod publish;
mod witness;

pub(crate) use check::check;
pub use check::{ledger_policy, CheckpointAnchors, CheckpointFinding, CheckpointStatus};
pub use prove::prove_tx;
pub use publish::CheckpointOptions;
pub(crate) use publish::Publisher;
pub use witness::witness_ledger_pass;
