//! Why a bridge stopped.

use kchain_log::LogError;

use crate::error::TopicError;

/// What stops a [`super::Bridge`]. Every variant that concerns one partition names it, with
/// the raw offset at stake, so that an operator knows what to look at; none of them is ever
/// resolved by copying a record twice or skipping one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    #[error(transparent)]
    Topic(#[from] TopicError),

    #[error(transparent)]
    Log(#[from] LogError),

    #[error(
        "the chained topic {chained} has {chained_partitions} partition(s), fewer than the \
         {raw_partitions} of the raw topic {raw}: raw partition p goes to chained partition p, \
         so the chained topic needs at least as many"
    )]
    TooFewPartitions {
        raw: String,
        raw_partitions: u32,
        chained: String,
        chained_partitions: u32,
    },

    #[error(
        "{chained}/{partition} already holds raw offset {copied} of {raw}/{partition}, but that \
         partition ends at offset {raw_end}: the raw topic was recreated or truncated; the \
         bridge stops rather than copy records again (bridge into a new chained topic)"
    )]
    AheadOfRaw {
        raw: String,
        chained: String,
        partition: u32,
        copied: u64,
        raw_end: u64,
    },

    #[error(
        "{chained}/{partition} holds raw offset {offset} of {raw}/{partition} with another \
         content than the raw record at that offset has now: the raw topic was recreated; the \
         bridge stops rather than mix two topics in one chain (bridge into a new chained topic)"
    )]
    RawChanged {
        raw: String,
        chained: String,
        partition: u32,
        offset: u64,
    },

    #[error(
        "{raw}/{partition}: the next record to copy is at offset {next}, but the partition now \
         starts at offset {start}: retention deleted records the bridge had not copied yet"
    )]
    RawGap {
        raw: String,
        partition: u32,
        next: u64,
        start: u64,
    },

    #[error(
        "{raw}/{partition} offset {offset}: header '{name}' starts with 'kchain.', which kchain \
         reserves for its own headers; the bridge cannot copy this record unchanged"
    )]
    ReservedHeader {
        raw: String,
        partition: u32,
        offset: u64,
        name: String,
    },

    #[error(
        "{chained}/{partition} offset {offset}: {detail}; the bridge resumes only a chain it \
         wrote itself (a chained topic written by `produce` cannot be a bridge's target)"
    )]
    NotBridged {
        chained: String,
        partition: u32,
        offset: u64,
        detail: String,
    },

    #[error(
        "{topic}/{partition}: no record came at offset {offset} within {waited:?}, though the \
         partition's end offset is {end}"
    )]
    Stalled {
        topic: String,
        partition: u32,
        offset: u64,
        end: u64,
        waited: std::time::Duration,
    },
}
