//! The trust file: what a verifier believes without asking the log.
//!
//! ```text
//! [[writer]]                       # a key allowed to sign chained topics
//! name = "acme-orders"
//! public_key = "<64 hex digits>"
//! topics = ["orders"]              # optional: absent means any topic
//!
//! [[pin]]                          # optional anchors for one partition
//! topic = "orders"
//! partition = 0
//! genesis = "<64 hex digits>"      # optional: the entry hash at height 0
//! height = 99999                   # optional, with `hash`: a trusted tip
//! hash = "<64 hex digits>"
//! log = "kafka:<cluster id>"       # the log it was taken on (`embedded:<dir>`); absent:
//!                                  # any log (pins written before pins named their log)
//!
//! [[topic]]                        # optional: the pinned shape of a topic
//! name = "orders"
//! partitions = 3                   # a partition below this that the log lacks is a finding
//! log = "kafka:<cluster id>"       # as in [[pin]]
//!
//! [[witness]]                      # optional: a witness's C2SP verifier key (type 0x04)
//! key = "witness.example/w1+0df7cdec+BIE5dw6o..."
//!
//! [policy]                         # optional: checkpoints must meet this policy
//! witnesses = 2                    # cosignatures needed from distinct listed witnesses
//! namespace = "kchain"             # origin namespace: origins are <namespace>/<topic>/<p>
//! max_age = 3600                   # optional: entries past the newest checkpoint need one
//!                                  # a witness cosigned within this many seconds
//!
//! [[ledger]]                       # optional: a ledger's chain, genesis and sealers,
//! chain = "bank"                   # read by kchain-ledger and kept here as written
//! ```
//!
//! The file is parsed once, into a [`TrustFile`] whose parts are what each verifier needs:
//!
//! ```text
//! TrustFile ─┬─ trust: Trust                         [[writer]] [[pin]] [[topic]]  → chain verifier
//!            ├─ checkpoints: Option<CheckpointTrust> [[witness]] [policy]          → checkpoint judge
//!            └─ ledgers: Vec<toml::Table>            [[ledger]]                    → kchain-ledger
//! ```
//!
//! A pinned tip lets a verifier catch truncation (the chain ends below it) and a rewrite (the
//! entry at that height differs), which links and signatures alone cannot. A pinned partition
//! count catches a partition hidden by the log's metadata (a `topic.json` edited on disk, a
//! topic deleted and recreated with fewer partitions), which no record can show.
//!
//! Pins name the log they were taken on: a topic `orders` on the embedded log and one on a
//! Kafka cluster are different chains, and [`Trust::on_log`] keeps only the pins of the log
//! being verified.

mod anchors;
mod checkpoints;
mod error;
mod file;
#[cfg(test)]
mod tests;

pub use anchors::{KeyStanding, Pin, TopicPin, Trust, TrustedWriter};
pub use checkpoints::{is_witness_url, CheckpointTrust, WitnessEndpoint};
pub use error::TrustError;
pub use file::TrustFile;
