//! kchain's files on disk: where they live ([`DataDir`]), and reading and writing each kind.
//!
//! | module    | what                                                          |
//! |-----------|---------------------------------------------------------------|
//! | `datadir` | the layout of the data and configuration directories          |
//! | `disk`    | private, atomic and capped file primitives                    |
//! | `keys`    | secret files and writer key files (mode 0600)                 |
//! | `keyring` | keyring files of data keys (mode 0600, locked, atomic)        |
//! | `trust`   | trust files (thin wrappers over `kchain_core`'s parser)       |
//! | `store`   | checkpoints remembered outside the log, checkpoint files      |
//!
//! The anchors (keys, trust file, remembered checkpoints) vouch for the log, so they live
//! where whoever can change the log cannot change them: outside the data directory.

mod datadir;
mod disk;
mod keyring;
mod keys;
mod store;
mod trust;

pub use datadir::{AnchorFile, DataDir};
pub use disk::{read_capped, write_atomic};
pub use keyring::{read_keyring_file, update_keyring_file, write_keyring_file};
pub use keys::{read_key_file, read_secret_file, write_key_file, write_secret_file};
pub use store::{read_checkpoint_file, CheckpointStore, MAX_CHECKPOINT_FILE_BYTES};
pub use trust::{read_trust_file, write_trust_file};
