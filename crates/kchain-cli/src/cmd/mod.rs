//! One module per command group; each owns its clap arguments and runs its commands.
//! `anchors` and `ledger_args` hold what several groups share.

pub mod anchors;
pub mod archive;
pub mod bench;
pub mod bridge;
pub mod checkpoint;
pub mod consume;
pub mod crypt;
pub mod demo;
pub mod keys;
pub mod ledger;
pub mod ledger_args;
pub mod ledger_query;
pub mod monitor;
pub mod node;
pub mod produce;
pub mod prove;
pub mod topic;
pub mod trust;
pub mod tx;
pub mod verify;
pub mod wallet;
pub mod witness;
