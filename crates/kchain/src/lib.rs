//! kchain makes Apache Kafka tamper-evident: records on a topic (or on kchain's embedded log)
//! are hash-linked to the record before them in their partition and signed by their writer in
//! batches, so that anyone holding the writer's public key can verify a partition from genesis
//! to tip and is told the exact offset of the first record that was changed, removed,
//! inserted, reordered or forged. Signed checkpoints (C2SP tlog-checkpoint), cosigned by
//! witnesses, catch truncation and wholesale rewriting too. A small permissioned ledger
//! (transactions in, blocks out) runs on the same logs: [`ledger`].
//!
//! This crate is the one an application depends on. It re-exports the friendly API of the
//! crates below it and adds nothing of its own:
//!
//! ```text
//!   kchain (this facade)
//!     |
//!     +-- kchain-ledger   transactions, blocks, sealer, node, ledger verify   -> kchain::ledger
//!     +-- kchain-topic    TopicProducer, TopicVerifier, ChainWriter, reader, checkpoints, files
//!     +-- kchain-log      the Log trait; EmbeddedLog (segment files), KafkaLog (rdkafka)
//!     +-- kchain-core     formats, hashing, Merkle trees, keys, trust, the pure verifier
//! ```
//!
//! # Produce, then verify
//!
//! Open a log, a [`TopicProducer`] with a writer key, `send`, `flush`; then a
//! [`TopicVerifier`] that holds the topic to a trust (the writers' public keys) and returns a
//! report:
//!
//! ```
//! use kchain::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig, TopicProducer, TopicVerifier, Trust, WriterKey};
//! # let dir = tempfile::tempdir()?;
//! let log = EmbeddedLog::create(dir.path(), EmbeddedOptions::default())?; // or KafkaLog::connect
//! log.create_topic("orders", &TopicConfig { partitions: 3, retention_ms: None })?;
//! let key = WriterKey::generate("shop");
//! let mut producer = TopicProducer::open(&log, "orders", &key, Default::default())?;
//! producer.send(Some(b"customer-7".to_vec()), Some(b"2 apples".to_vec()), vec![], kchain::now_ms())?;
//! producer.flush()?;
//!
//! let trust = Trust::for_writer("shop", key.public()); // what an auditor holds
//! let report = TopicVerifier::new(&trust).verify(&log, "orders")?;
//! assert!(report.ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same code runs on Kafka with `KafkaLog::connect("broker:9092", KafkaOptions::default())`
//! (feature `kafka`, on by default). Runnable versions: `cargo run -p kchain --example produce`
//! and `--example verify`.
//!
//! # What a report tells
//!
//! A finding names its partition, offset, height and kind (`payload_changed`, `missing`,
//! `inserted`, `bad_signature`, `truncated`, ...). Without an anchor held outside the log, a
//! verifier cannot tell a topic that was cut short from one that never grew: pin the tips
//! ([`Trust`]'s pins, `kchain trust pin`), require checkpoints cosigned by witnesses
//! ([`TopicVerifier::checkpoints`]) and remember the newest one
//! ([`TopicVerifier::remember`]). `docs/threat-model.md` lists every attack and its anchor.
//!
//! # Where to go further
//!
//! - [`ChainWriter`] and [`VerifyingReader`]: one partition, by hand.
//! - [`checkpoints`]: publishing checkpoints, inclusion and consistency proofs, witnesses.
//! - [`files`]: key, trust and keyring files, and the data directory's layout ([`DataDir`]).
//! - [`ledger`]: genesis, transactions, the sealer and node, `verify_ledger`, transaction proofs.
//! - The crates themselves, for what the facade leaves out: [`kchain_core`], [`kchain_log`],
//!   [`kchain_topic`], [`kchain_ledger`].

pub use kchain_core;
pub use kchain_ledger;
pub use kchain_log;
pub use kchain_topic;

// Logs: where records live.
pub use kchain_log::{
    EmbeddedLog, EmbeddedOptions, FsyncPolicy, Header, Log, LogError, Record, TopicConfig,
};
#[cfg(feature = "kafka")]
pub use kchain_log::{KafkaLog, KafkaOptions};

// Keys and trust: who may write, and what a verifier holds the log to.
pub use kchain_core::time::now_ms;
pub use kchain_core::{
    DataKey, Finding, FindingKind, Keyring, PublicKey, Trust, TrustFile, TrustedWriter, WriterKey,
};

// Chained topics: producing, reading and verifying.
pub use kchain_topic::{
    checkpoints, files, ChainWriter, DataDir, PartitionReceipt, PartitionReport, ProducerOptions,
    TopicError, TopicProducer, TopicReport, TopicVerifier, VerifiedRecord, VerifyReport,
    VerifyingReader, WriterOptions,
};

/// The ledger: a permissioned blockchain on the same logs (transactions in, blocks out).
pub mod ledger {
    pub use kchain_ledger::*;
}
