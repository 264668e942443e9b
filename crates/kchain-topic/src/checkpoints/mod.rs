//! Checkpoints of chained topics on the log: the companion `<topic>.checkpoints` topic, the
//! writer's side (an incremental chain tree, signed checkpoints every N entries or T seconds
//! and on flush), the verifier's side (the chain against its trusted checkpoints), proofs,
//! and the witness's side.
//!
//! ```text
//!  ChainWriter ── entry hashes ──► tree_worker ──► publish: every N entries / T seconds /
//!                                                  flush, sign "origin\nsize\nroot\n"
//!                                                      │
//!  <topic>.checkpoints  ◄── record: key = partition ("0"), value = signed note text (topic)
//!        │        ▲
//!        │        └── witness: appends the same text with its cosignature added
//!        ▼
//!  check: merge the notes of one text (union of signatures), keep those that meet the
//!  trust file's policy, hold the chain of the log against them:
//!    chain shorter ──► truncated     root differs ──► rewritten     two roots ──► fork
//!  prove: inclusion of an entry in a checkpoint, consistency of two checkpoints
//! ```
//!
//! | module        | what                                                        | I/O  |
//! |---------------|-------------------------------------------------------------|------|
//! | `topic`       | names and origins; read, merge, append notes                | log  |
//! | `tree_worker` | the writer's chain tree, on a thread of its own             | none |
//! | `publish`     | the writer's side: when and what to sign                    | log  |
//! | `push`        | push mode: checkpoints to witnesses over the network        | net  |
//! | `memory_witness` | a witness in memory behind `RemoteWitness` (feature testing) | none |
//! | `check`       | the verifier's side: the one judge over a verified chain    | log  |
//! | `fetch`       | checkpoints fetched from witnesses; freshness, reachability | net  |
//! | `prove`       | inclusion and consistency proofs from the chain             | log  |
//! | `witness`     | one witness pass over a topic's checkpoints                 | log  |
//! | `cosign`      | the witness's work on one origin (topics and the ledger)    | files |
//! | `witness_state` | the witness's state files                                 | files |

mod check;
mod cosign;
mod fetch;
#[cfg(feature = "testing")]
mod memory_witness;
mod prove;
mod publish;
mod push;
mod topic;
mod tree_worker;
mod witness;
pub mod witness_state;

pub use check::{
    check_checkpoints, check_checkpoints_with, writer_verifiers, CheckOptions, CheckpointFinding,
    CheckpointFindingKind, CheckpointReport, PartitionCheckpoints,
};
pub(crate) use check::{check_grown, ChainTree, Known};
pub use cosign::{witness_origin, OriginLog, WitnessEvent};
pub use fetch::{after_judge, fetch_latest, unix_now, AfterJudge, Fetched, RemoteWitnesses};
/// A witness in memory, for tests of push mode and of what fetches from witnesses.
#[cfg(feature = "testing")]
pub use memory_witness::{Behaviour, MemoryWitness};
pub use prove::{prove_consistency, prove_inclusion};
pub use publish::CheckpointOptions;
pub(crate) use publish::CheckpointState;
pub use push::{PushEvent, PushEvents, PushOptions, PushWitness, Pusher};
pub use topic::{
    checkpoints_topic, ensure_checkpoints_topic, merge_notes, merge_verified_notes,
    newest_checkpoint, partition_checkpoints, partition_origin, publish_note, read_checkpoints,
    split_origin, CheckpointRecord, CHECKPOINTS_SUFFIX,
};
pub use witness::witness_pass;
pub use witness_state::witness_export;
