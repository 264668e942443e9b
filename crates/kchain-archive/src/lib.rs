//! kchain-archive: chained topics archived on object storage in the C2SP tlog-tiles layout,
//! and verified from the archive alone (no broker, no data directory: read access to the
//! bucket and a trust file).
//!
//! ```text
//! <url>/<topic>/<partition>/checkpoint                 signed checkpoint, with cosignatures
//! <url>/<topic>/<partition>/tile/<L>/<N>[.p/<W>]       Merkle tiles of the chain tree
//! <url>/<topic>/<partition>/tile/entries/<N>[.p/<W>]   tlog entries: the entry hashes
//! <url>/<topic>/<partition>/kchain/records/<N>[.p/<W>] the records (key, value, headers,
//!                                                      timestamp, chain headers)
//! chain tree leaf i = SHA-256(0x00 || entry hash at height i)     (kchain_core::chain_leaf)
//! ```
//!
//! The tlog entry is the 32-byte entry hash, so any tlog-tiles client recomputes the tree from
//! the entry bundles and checks it against the checkpoint; kchain's verifier goes on to
//! recompute each entry hash from its record. Layout and reasons: `docs/archive.md`.
//!
//! Beside the archive, the log: [`apply_retention`] deletes from the log what the archive
//! holds under a trusted checkpoint and the topic's retention lets go, [`verify_log_after`]
//! verifies what the log still holds as the continuation of the archive (one chain from
//! genesis), and [`restore_topic`] appends a verified archive back into an empty topic.
//! [`prove_inclusion`] proves an archived record from the archive alone, and
//! [`prove_consistency`] two of its checkpoints, from the tiles on the proofs' paths.
//!
//! A ledger's blocks chain is archived the same way under `<url>/<blocks topic>/`
//! ([`archive_ledger`], [`verify_ledger_archive`]): entry hash = block hash, checkpoint =
//! the sealers' (origin `<namespace>/<blocks topic>`).
//!
//! ```
//! use kchain_archive::path::{tile_path, entries_path};
//! assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
//! assert_eq!(entries_path(0, 7), "tile/entries/000.p/7");
//! ```
//!
//! References: [c2sp.org/tlog-tiles](https://c2sp.org/tlog-tiles),
//! [c2sp.org/tlog-checkpoint](https://c2sp.org/tlog-checkpoint), RFC 6962 section 2.1.

// Pure: names, encodings, tiles.
pub mod bundle;
pub mod path;
mod tiles;
// The object store.
mod error;
mod store;
// Writing and verifying.
mod archived;
mod check;
mod finding;
mod write;
// A ledger's blocks chain, archived and verified through the same code.
mod ledger;
// The archive and the log: retention, and the log verified after its archive; proofs.
mod prove;
mod restore;
mod retention;
mod seam;
mod tile_proof;

pub use check::{archived_partitions, verify_archive, verify_chain, REMEMBERED_BACKEND};
pub use error::ArchiveError;
pub use finding::{ArchiveFinding, ArchiveFindingKind, ArchiveVerifyReport, ChainVerified};
pub use ledger::{archive_ledger, verify_ledger_archive, GenesisAnchor};
pub use prove::{prove_consistency, prove_inclusion};
pub use restore::{restore_topic, ChainRestored};
pub use retention::{apply_retention, RetentionApplied};
pub use seam::{verify_log_after, LogVerified};
pub use store::Store;
pub use tiles::TreeTiles;
pub use write::{archive_topic, ArchiveReport, ChainArchived};
