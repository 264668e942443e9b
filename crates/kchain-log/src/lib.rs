//! kchain's log layer: an ordered, partitioned, append-only [`Log`] and its backends.
//!
//! The core of kchain never talks to storage directly: it appends batches to a partition,
//! learns their offsets, and reads them back in order. Two backends implement [`Log`]:
//!
//! - [`EmbeddedLog`] (the default, no server): segment files in a data directory, see
//!   `docs/log-format.md` for the byte layout.
//! - `KafkaLog` (feature `kafka`): any Kafka-API broker through `rdkafka` (librdkafka), see
//!   `docs/kafka.md`.
//!
//! One conformance suite (`tests/support/suite.rs`) runs against every backend
//! (`tests/conformance.rs`, `tests/kafka_conformance.rs`).

mod api;
pub mod cpu;
mod embedded;
mod encoded;
mod error;
#[cfg(feature = "kafka")]
mod kafka;

pub use api::{
    Appender, FsyncPolicy, Header, HeaderIter, HeadersRef, Log, Partition, Reader, Record,
    RecordView, StoredRecord, TopicConfig, TopicInfo,
};
/// Decoder entry points for the fuzz targets (`fuzz/`) and their corpus replay; not a stable API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use embedded::internals;
pub use embedded::{EmbeddedLog, EmbeddedOptions};
pub use encoded::{EncodedRecords, Finished, RecordEncoder, RecordSlot};
pub use error::LogError;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaLog, KafkaOptions};
