//! kchain-topic: chained topics over any [`kchain_log::Log`].
//!
//! - [`ChainWriter`]: the one writer of a partition. Each record it appends carries
//!   `kchain.*` headers linking it to the record before; the last record of each batch
//!   carries an Ed25519 signature over its entry hash, which covers the whole batch.
//! - [`VerifyingReader`]: yields records only once verified, stops at the first finding.
//! - [`verify_topic`]: verifies partitions in parallel, and hashes in parallel within each.
//! - Encrypted payloads: [`ChainWriter::with_encryption`] encrypts values (AES-256-GCM)
//!   before they are hashed; [`VerifyingReader::with_keyring`] decrypts them;
//!   [`verify_topic_decrypting`] also checks that every one decrypts. Keyring files:
//!   [`read_keyring_file`], [`write_keyring_file`].
//!
//! ```text
//!  offset  0          1          2 (batch end)   3 ...
//!        [h=0      ][h=1      ][h=2           ][h=3 ...
//!        [prev=0   ][prev=E0  ][prev=E1       ][prev=E2
//!                              [key, sig(E2)  ]
//! ```
//!
//! The record layout is in `docs/format.md`.

mod checkpoints;
mod decrypt;
mod error;
mod files;
mod inspect;
mod mapping;
mod partitioner;
mod producer;
mod reader;
mod report;
mod scan;
#[cfg(feature = "testing")]
pub mod tamper;
mod verifier;
mod verify;
mod writer;

pub use checkpoints::{
    check_checkpoints, check_checkpoints_with, checkpoints_topic, ensure_checkpoints_topic,
    merge_notes, merge_verified_notes, newest_checkpoint, partition_checkpoints, partition_origin,
    prove_consistency, prove_inclusion, publish_note, read_checkpoints, split_origin,
    witness_export, witness_origin, witness_pass, writer_verifiers, CheckOptions,
    CheckpointFinding, CheckpointFindingKind, CheckpointOptions, CheckpointRecord,
    CheckpointReport, OriginLog, PartitionCheckpoints, WitnessEvent, CHECKPOINTS_SUFFIX,
};
pub use decrypt::EncryptionSummary;
pub use error::TopicError;
pub use files::{
    read_capped, read_checkpoint_file, read_key_file, read_keyring_file, read_secret_file,
    read_trust_file, update_keyring_file, write_atomic, write_key_file, write_keyring_file,
    write_secret_file, write_trust_file, AnchorFile, CheckpointStore, DataDir,
    MAX_CHECKPOINT_FILE_BYTES,
};
pub use inspect::{inspect, short, InspectRow};
pub use mapping::{item_of, meta_of};
pub use partitioner::{murmur2, partition_for_key};
pub use producer::{PartitionReceipt, ProducerOptions, TopicProducer};
pub use reader::{VerifiedRecord, VerifyingReader};
pub use report::{PartitionReport, TopicReport};
pub use scan::expectations;
pub use verifier::{
    anchor_warnings, verify_topic, verify_topic_decrypting, TopicVerifier, VerifyReport,
};
pub use verify::{verify_partition, VerifyOptions};
pub use writer::{AppendReceipt, ChainWriter, WriterOptions};
