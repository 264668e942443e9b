//! Presentation: what commands print for people (text) and machines (`--json`, one object
//! per line). Pure formatting over library types; nothing here reads the log.

mod kcat;
mod ledger;
mod output;
mod record;
mod topic;

pub use kcat::{Shown, TextFormat};
pub use ledger::{block_row, blocks_header, rejected_header, rejected_row, sealer_name};
pub use output::{note_once, proof_outcome, quiet, set_quiet, utc, write_output};
pub use record::{placeholder, record_json, unverified_json};
pub use topic::{checkpoint_json, finding_json, topic_json, topic_text};
