//! Tools that act as an attacker (or as a producer that knows nothing of kchain): copy a
//! partition's raw records, change them, and write them back without the chained writer.
//! The demo and the tamper tests use them to show what the verifier catches.

use std::time::Duration;

use kchain_core::{
    record_entry_header, ChainId, ChainMeta, EntryHeader, Hash, Item, WriterKey, ENTRY_VERSION,
};
use kchain_log::{Log, Record, TopicConfig};

use crate::error::TopicError;
use crate::mapping::{meta_of, record_headers};

/// Reads every record of a partition, as stored.
pub fn read_all(log: &dyn Log, topic: &str, partition: u32) -> Result<Vec<Record>, TopicError> {
    let start = log.start_offset(topic, partition)?;
    let end = log.end_offset(topic, partition)?;
    let mut reader = log.reader(topic, partition, start)?;
    let mut out = Vec::new();
    while reader.position() < end {
        let recs = reader.poll(65536, Duration::from_millis(500))?;
        if recs.is_empty() {
            break;
        }
        out.extend(
            recs.into_iter()
                .filter(|r| r.offset < end)
                .map(|r| r.record),
        );
    }
    Ok(out)
}

/// Copies `topic` from `src` into `dst` (same name, so the chain ids agree), letting `mutate`
/// change each partition's records first. The copy is written with a raw appender, exactly as
/// an attacker with write access to the log could.
pub fn copy_topic_with(
    src: &dyn Log,
    dst: &dyn Log,
    topic: &str,
    mut mutate: impl FnMut(u32, &mut Vec<Record>),
) -> Result<(), TopicError> {
    let info = src.topic(topic)?;
    dst.create_topic(
        topic,
        &TopicConfig {
            partitions: info.partitions,
            ..TopicConfig::default()
        },
    )?;
    for p in 0..info.partitions {
        let mut records = read_all(src, topic, p)?;
        mutate(p, &mut records);
        let mut app = dst.appender(topic, p)?;
        for chunk in records.chunks(8192) {
            app.append(chunk)?;
        }
        app.flush()?;
    }
    Ok(())
}

/// Builds a record that extends the chain after `prev_record` with a correctly computed
/// height, link and entry hash, signed by `signer` if given (an attacker's own key) or not
/// signed at all.
pub fn forge_after(
    topic: &str,
    partition: u32,
    prev_record: &Record,
    item: Item,
    signer: Option<&WriterKey>,
) -> Result<Record, TopicError> {
    let meta = meta_of(prev_record).map_err(|e| TopicError::Invalid(e.to_string()))?;
    let prev_hash = entry_hash_of(topic, partition, prev_record)?;
    Ok(forge(
        topic,
        partition,
        meta.height + 1,
        prev_hash,
        item,
        signer,
    ))
}

/// Builds a chained record at `height` linking to `prev` (zeros for a genesis), with a
/// correctly computed entry hash, signed by `signer` or not signed.
pub fn forge(
    topic: &str,
    partition: u32,
    height: u64,
    prev: Hash,
    item: Item,
    signer: Option<&WriterKey>,
) -> Record {
    let header = EntryHeader {
        version: ENTRY_VERSION,
        chain: ChainId::for_partition(topic, partition),
        height,
        prev,
        timestamp_ms: item.timestamp_ms,
        items_root: item.leaf_hash(),
        item_count: 1,
    };
    let hash = header.hash();
    let meta = ChainMeta {
        version: ENTRY_VERSION,
        height,
        prev,
        signature: signer.map(|k| (k.id(), k.sign_entry(&hash))),
    };
    Record {
        key: item.key,
        value: item.value,
        timestamp_ms: item.timestamp_ms,
        headers: record_headers(&meta, item.headers),
    }
}

/// The entry hash of a stored record, recomputed from its content.
pub fn entry_hash_of(topic: &str, partition: u32, record: &Record) -> Result<Hash, TopicError> {
    let meta = meta_of(record).map_err(|e| TopicError::Invalid(e.to_string()))?;
    let item = crate::mapping::item_of(record);
    let chain = ChainId::for_partition(topic, partition);
    let header = record_entry_header(
        chain,
        meta.height,
        meta.prev,
        &item.as_ref(),
        &mut Vec::new(),
    );
    Ok(header.hash())
}
