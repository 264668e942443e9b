//! kchain-topic: chained topics over any [`kchain_log::Log`] (the embedded log or Kafka).
//!
//! Every record a chained topic holds is hash-linked to the one before it in its partition;
//! the last record of each batch carries the writer's Ed25519 signature over its entry hash,
//! which covers the whole batch; signed checkpoints on a companion topic pin the chain's
//! tip, so that truncation and rewriting are caught too, not only edits.
//!
//! ```text
//!  offset  0          1          2 (batch end)   3 ...
//!        [h=0      ][h=1      ][h=2           ][h=3 ...
//!        [prev=0   ][prev=E0  ][prev=E1       ][prev=E2
//!                              [key, sig(E2)  ]
//! ```
//!
//! The record layout is in `docs/format.md`, the checkpoints in `docs/checkpoints.md`.
//!
//! An application produces with a [`TopicProducer`] and verifies with a [`TopicVerifier`]:
//!
//! ```
//! # use kchain_core::{Trust, TrustedWriter, WriterKey};
//! # use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
//! use kchain_topic::{ProducerOptions, TopicProducer, TopicVerifier};
//! # let dir = tempfile::tempdir().unwrap();
//! let log = EmbeddedLog::create(dir.path(), EmbeddedOptions::default())?;
//! log.create_topic("orders", &TopicConfig { partitions: 3, retention_ms: None })?;
//! let key = WriterKey::generate("shop");
//! let mut producer = TopicProducer::open(&log, "orders", &key, ProducerOptions::default())?;
//! producer.send(Some(b"customer-7".to_vec()), Some(b"2 apples".to_vec()), vec![], 1)?;
//! producer.flush()?;
//! # let trust = Trust { writers: vec![TrustedWriter { name: "shop".into(),
//! #     key: key.public(), topics: vec![] }], pins: vec![], topics: vec![] };
//! let report = TopicVerifier::new(&trust).verify(&log, "orders")?;
//! assert!(report.ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | module        | what                                                             |
//! |---------------|------------------------------------------------------------------|
//! | `writer`      | [`ChainWriter`]: the one writer of a partition                   |
//! | `producer`    | [`TopicProducer`]: partitioner, batches, a pool of writers       |
//! | `reader`      | [`VerifyingReader`]: yields records once verified; [`PausedReader`] |
//! | `verify`      | the parallel verifier of partitions and topics                   |
//! | `observe`     | its reading: serial, chunked, on several readers at once         |
//! | `verifier`    | [`TopicVerifier`]: the builder over it, with checkpoints         |
//! | `report`      | [`TopicReport`], [`PartitionReport`]                             |
//! | `bridge`      | [`Bridge`]: chains a plain topic, exactly once across crashes    |
//! | [`checkpoints`] | the companion topic: publish, check, prove, witness            |
//! | [`files`]     | keys, trust, keyring and remembered checkpoints; [`DataDir`]     |
//! | `scan`        | reading a chain back in order (shared by the above)              |
//! | `mapping`, `partitioner`, `decrypt`, `inspect`, `error` | small pieces       |
//! | `inplace`, `batches` | the writer's batches: built in place, cut to its limits |
//! | `records`     | the writer's batches as `Record`s (for Kafka)                    |
//! | `log_thread`, `tip` | the writer's log thread (pipelined appends), its tip on opening |
//! | `tamper`      | an attacker's tools, for tests and demos (feature `testing`)     |

mod batches;
mod bridge;
pub mod checkpoints;
mod decrypt;
mod error;
pub mod files;
mod inplace;
mod inspect;
mod log_thread;
mod mapping;
mod observe;
mod partitioner;
mod producer;
mod reader;
mod records;
mod report;
mod scan;
#[cfg(feature = "testing")]
pub mod tamper;
mod tip;
mod verifier;
mod verify;
mod writer;

pub use bridge::{Bridge, BridgeError, BridgeOptions, PartitionStatus, SRC_HEADER};
pub use checkpoints::{CheckOptions, CheckpointOptions, CheckpointReport};
pub use decrypt::EncryptionSummary;
pub use error::TopicError;
pub use files::DataDir;
pub use inspect::{inspect, short, InspectRow};
pub use observe::{map_parallel, EachRecord};
pub use partitioner::partition_for_key;
pub use producer::{
    PartitionReceipt, ProducerOptions, TopicProducer, WriterOpenError, WriterOpenStage,
};
pub use reader::paused::PausedReader;
pub use reader::{VerifiedRecord, VerifyingReader, DEFAULT_GRACE};
pub use report::{PartitionReport, TopicReport};
pub use scan::{set_stall_timeout, stall_timeout};
pub use verifier::{describe_log, TopicVerifier, VerifyReport};
pub use verify::VerifyOptions;
pub use writer::{AppendReceipt, ChainWriter, WriterOptions};

// Small pieces of private modules that other crates' tools and tests use.
#[doc(hidden)]
pub use mapping::{item_of, meta_of};
#[doc(hidden)]
pub use partitioner::murmur2;
#[doc(hidden)]
pub use scan::expectations;
#[doc(hidden)]
pub use verify::verify_partition;
