//! Tools that act as an attacker (or as a producer that knows nothing of kchain): copy a
//! partition's raw records, change them, and write them back without the chained writer.
//! The demo and the tamper tests use them to show what the verifier catches.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kchain_core::{
    record_entry_header, ChainId, ChainMeta, EntryHeader, Hash, Item, WriterKey, ENTRY_VERSION,
};
use kchain_log::{Log, Record, TopicConfig};

use crate::error::TopicError;
use crate::mapping::{meta_of, record_headers};
use crate::scan::{stall_timeout, stalled};

/// Reads every record of a partition, as stored.
pub fn read_all(log: &dyn Log, topic: &str, partition: u32) -> Result<Vec<Record>, TopicError> {
    let start = log.start_offset(topic, partition)?;
    let end = log.end_offset(topic, partition)?;
    let mut reader = log.reader(topic, partition, start)?;
    let mut out = Vec::new();
    let mut since = Instant::now();
    while reader.position() < end {
        let recs = reader.poll(65536, Duration::from_millis(500))?;
        // A slow broker may send nothing for a while: a copy cut short would be a lie.
        if recs.is_empty() {
            if since.elapsed() > stall_timeout() {
                return Err(stalled(reader.position(), end));
            }
            continue;
        }
        since = Instant::now();
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

/// An attacker with disk access to an embedded log: replaces the batch that starts at
/// `offset` of `topic`/`partition` with `mutate`d copies of its records, hides the original
/// batch's bytes at the very end of the new one (the value of an extra header of its last
/// record, so the hidden copy ends exactly where the new batch ends), computes every CRC
/// with kchain's own encoder, and rewrites the segment's `.index` with an entry for `offset`
/// that points at the hidden copy. A reader that trusted the index would see the original
/// records at `offset`; one that walks the segment sees the changed ones. Returns the byte
/// position of the hidden copy. Requires a batch to start at `offset`.
pub fn hide_batch_behind_index(
    log: &kchain_log::EmbeddedLog,
    topic: &str,
    partition: u32,
    offset: u64,
    mutate: impl FnOnce(&mut [Record]),
) -> Result<u64, TopicError> {
    let dir = log
        .path()
        .join("topics")
        .join(topic)
        .join(partition.to_string());
    let (base, seg_path) = segment_holding(&dir, offset)?;
    let seg = fs::read(&seg_path).map_err(io)?;
    let (pos, len, _, count) = batches(&seg)
        .into_iter()
        .find(|b| b.2 == offset)
        .ok_or_else(|| bad(format!("no batch starts at offset {offset}")))?;
    let original = &seg[pos as usize..(pos + len) as usize];
    let mut records = read_batch(log, topic, partition, offset, count as usize)?;
    mutate(&mut records);
    if let Some(last) = records.last_mut() {
        last.headers
            .push(kchain_log::Header::new("x-padding", original.to_vec()));
    }
    let tampered = encode_at(offset, &records)?;
    let mut new_seg = seg[..pos as usize].to_vec();
    new_seg.extend_from_slice(&tampered);
    new_seg.extend_from_slice(&seg[(pos + len) as usize..]);
    let hidden = pos + tampered.len() as u64 - len;
    let mut index = Vec::new();
    for (at, _, first, _) in batches(&new_seg) {
        let at = if first == offset { hidden } else { at };
        if at > 0 {
            index.extend_from_slice(&((first - base) as u32).to_be_bytes());
            index.extend_from_slice(&(at as u32).to_be_bytes());
        }
    }
    fs::write(&seg_path, &new_seg).map_err(io)?;
    fs::write(dir.join(format!("{base:020}.index")), &index).map_err(io)?;
    Ok(hidden)
}

fn bad(what: String) -> TopicError {
    TopicError::Invalid(what)
}

fn io(e: std::io::Error) -> TopicError {
    TopicError::Invalid(format!("attacker I/O: {e}"))
}

/// The base offset and file of the segment of partition directory `dir` that holds `offset`.
fn segment_holding(dir: &Path, offset: u64) -> Result<(u64, PathBuf), TopicError> {
    let mut bases: Vec<u64> = fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    let base = *bases
        .iter()
        .rev()
        .find(|&&b| b <= offset)
        .ok_or_else(|| bad(format!("no segment holds offset {offset}")))?;
    Ok((base, dir.join(format!("{base:020}.log"))))
}

/// The batches of a segment: (byte position, length, first offset, record count). Batch
/// headers: base_offset at bytes 8..16, record_count 16..20, payload_len 20..24.
fn batches(bytes: &[u8]) -> Vec<(u64, u64, u64, u32)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 40 <= bytes.len() {
        let h = &bytes[pos..pos + 40];
        let first = u64::from_be_bytes(h[8..16].try_into().expect("8 bytes"));
        let count = u32::from_be_bytes(h[16..20].try_into().expect("4 bytes"));
        let len = 40 + u32::from_be_bytes(h[20..24].try_into().expect("4 bytes")) as usize;
        out.push((pos as u64, len as u64, first, count));
        pos += len;
    }
    out
}

/// The `count` records from `offset` of a partition.
fn read_batch(
    log: &kchain_log::EmbeddedLog,
    topic: &str,
    partition: u32,
    offset: u64,
    count: usize,
) -> Result<Vec<Record>, TopicError> {
    let mut records = Vec::with_capacity(count);
    let mut reader = log.reader(topic, partition, offset)?;
    while records.len() < count {
        let got = reader.poll(count - records.len(), Duration::from_millis(500))?;
        if got.is_empty() {
            return Err(bad(format!("the batch at offset {offset} is not readable")));
        }
        records.extend(got.into_iter().map(|r| r.record));
    }
    Ok(records)
}

/// `records` encoded as one embedded-log batch at base offset `offset`, by kchain's own
/// encoder: appended to a scratch log after `offset` filler records.
fn encode_at(offset: u64, records: &[Record]) -> Result<Vec<u8>, TopicError> {
    let scratch = std::env::temp_dir().join(format!(
        "kchain-attacker-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let encoded = (|| -> Result<Vec<u8>, TopicError> {
        let opts = kchain_log::EmbeddedOptions {
            fsync: kchain_log::FsyncPolicy::Never,
            segment_bytes: u64::from(u32::MAX),
            max_record_bytes: i32::MAX as usize,
            ..kchain_log::EmbeddedOptions::default()
        };
        let scratch_log = kchain_log::EmbeddedLog::create(&scratch, opts)?;
        scratch_log.create_topic("scratch", &TopicConfig::default())?;
        let mut app = scratch_log.appender("scratch", 0)?;
        if offset > 0 {
            app.append(&vec![Record::default(); offset as usize])?;
        }
        let scratch_seg = scratch
            .join("topics/scratch/0")
            .join(format!("{:020}.log", 0));
        let filler_len = fs::metadata(&scratch_seg).map_err(io)?.len() as usize;
        app.append(records)?;
        drop(app);
        let bytes = fs::read(&scratch_seg).map_err(io)?;
        Ok(bytes[filler_len..].to_vec())
    })();
    let _ = fs::remove_dir_all(&scratch);
    encoded
}
