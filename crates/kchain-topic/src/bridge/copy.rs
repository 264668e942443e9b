//! Copying one raw partition into its chained partition: a reader thread and the writer.
//!
//! ```text
//!  raw p ──poll (up to a batch)──► reader thread: check headers, add kchain.src ──► channel
//!                                                                    (4 batches) │
//!  chained p ◄── ChainWriter::append (hash-link, sign; the batches waiting, at once) ◄─┘
//!                          └── an emptied FlatBatch back to the reader ──► (reused)
//! ```
//!
//! On a writer that builds in place (the embedded log) a batch is one [`FlatBatch`]: the
//! records copied into one buffer, read by the writer without an owned copy of each field;
//! the writer sends each back emptied once appended, so that the reader refills its
//! buffers instead of allocating (and first touching) fresh ones. On Kafka a batch is the
//! items the writer's record path takes.
//!
//! Reading the next batch while the last one is hashed and appended keeps the writer, the
//! slower stage, busy. When the reader is ahead, the writer takes every batch waiting (up to
//! [`MAX_BATCHES_PER_APPEND`]) in one append, so that on Kafka it builds and signs one
//! batch while the one before it travels to the broker; a batch counts as copied only once
//! that append returned. The writer cuts signed batches by its own bounds; the first
//! append after adopting an unsigned tail is a single record (atomic on every backend), so
//! that the run it signs never passes a verifier's limit on unsigned runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use kchain_core::{Item, HEADER_PREFIX};
use kchain_log::RecordView;

use super::error::BridgeError;
use super::flat::{FlatBatch, FlatItem};
use super::options::{BridgeOptions, PartitionStatus, SRC_HEADER};
use super::tail::{read_tail, Place, Tail};
use crate::writer::ChainWriter;

/// A batch of items to append and the raw offset of its last record.
type Batch = (Items, u64);

/// The records of one poll, as the writer takes them.
enum Items {
    Owned(Vec<Item>),
    Flat(FlatBatch),
}

impl Items {
    fn len(&self) -> usize {
        match self {
            Items::Owned(items) => items.len(),
            Items::Flat(batch) => batch.len(),
        }
    }
}

/// Batches read ahead of the writer.
const READ_AHEAD: usize = 4;

/// The most batches read ahead that one append takes.
const MAX_BATCHES_PER_APPEND: usize = 4;

/// Copies `place`'s raw partition into its chained partition until `stop` says so (or,
/// with [`BridgeOptions::until_idle`], until the raw partition is copied to its end),
/// keeping `status` up to date. Flushes (and checkpoints) before it returns.
///
/// The reader starts as soon as the tail says where to resume, before the writer's
/// checkpoint state is rebuilt (which reads the whole chained partition when resuming), so
/// that connecting to the raw partition and its first fetches overlap the writer's open.
pub(crate) fn copy_partition(
    place: &Place<'_>,
    options: &BridgeOptions,
    stop: &(dyn Fn() -> bool + Sync),
    status: &Mutex<PartitionStatus>,
) -> Result<(), BridgeError> {
    let mut tail = Tail::default();
    let writer = ChainWriter::open_with(
        place.log,
        place.chained,
        place.partition,
        place.key,
        options.writer,
        |start, end| {
            tail = read_tail(place, start, end)?;
            Ok::<_, BridgeError>(tail.tip)
        },
    )?;
    let next = match tail.last_src {
        Some(src) => src + 1,
        None => place.log.start_offset(place.raw, place.partition)?,
    };
    let (tx, rx) = sync_channel(READ_AHEAD);
    // Emptied batches back to the reader, which fills one a poll: a shelf of two keeps it
    // supplied without holding many batches' memory while the raw partition is idle.
    let (give_back, recycled) = sync_channel(2);
    let flat = writer.builds_in_place();
    // Set once the writer's side has ended, however: a reader of an idle raw partition sends
    // nothing, so it would never learn that from a failed send, and the scope would wait
    // for it until `stop`.
    let writer_done = AtomicBool::new(false);
    let read_stop = || stop() || writer_done.load(Ordering::Relaxed);
    std::thread::scope(|scope| {
        // Named, so that a profile tells the reader from the writer.
        std::thread::Builder::new()
            .name("kchain-bridge-read".into())
            .spawn_scoped(scope, || {
                let source = Source {
                    flat,
                    recycled,
                    next,
                };
                read_loop(place, source, options, &read_stop, tx)
            })
            .expect("spawn the bridge's reader thread");
        let written = write_side(place, options, writer, &tail, next, (rx, give_back), status);
        writer_done.store(true, Ordering::Relaxed);
        written
    })
}

/// The writer's side of [`copy_partition`]: opens the checkpoint state, reports the
/// partition open (resuming at `next`), appends what `rx` brings, then flushes.
fn write_side(
    place: &Place<'_>,
    options: &BridgeOptions,
    writer: ChainWriter<'_>,
    tail: &Tail,
    next: u64,
    channels: (Receiver<Result<Batch, BridgeError>>, SyncSender<FlatBatch>),
    status: &Mutex<PartitionStatus>,
) -> Result<(), BridgeError> {
    let mut writer = match &options.checkpoints {
        Some(c) => writer.with_checkpoints(place.log, c.clone())?,
        None => writer,
    };
    {
        let mut s = lock(status);
        s.open = true;
        s.resumed_at = next;
        s.next_raw = next;
        s.adopted = tail.adopted;
        s.tip_height = tail.tip.map(|(h, _)| h);
    }
    let mut unsigned = tail.adopted > 0;
    let written = write_loop(&mut writer, channels, &mut unsigned, status);
    // Whatever stopped the loop, what was appended is flushed and checkpointed; but no
    // checkpoint is signed over an adopted run that no append has signed yet (stopped
    // before the next raw record came): the next run signs it.
    if unsigned {
        return written;
    }
    let flushed = writer.flush().map_err(BridgeError::from);
    written.and(flushed)
}

/// Appends the batches that arrive, those waiting together, the first record alone while
/// `unsigned` (an adopted run waits for a signature), which it then clears; sends each
/// [`FlatBatch`] back to the reader once appended.
fn write_loop(
    writer: &mut ChainWriter<'_>,
    (rx, give_back): (Receiver<Result<Batch, BridgeError>>, SyncSender<FlatBatch>),
    unsigned: &mut bool,
    status: &Mutex<PartitionStatus>,
) -> Result<(), BridgeError> {
    while let Ok(batch) = rx.recv() {
        let (first, mut last) = batch?;
        let mut batches = vec![first];
        // A read that failed after batches that did not: those are appended first.
        let mut failed = None;
        for _ in 1..MAX_BATCHES_PER_APPEND {
            match rx.try_recv() {
                Ok(Ok((more, more_last))) => {
                    batches.push(more);
                    last = more_last;
                }
                Ok(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        let n = batches.iter().map(Items::len).sum::<usize>() as u64;
        append_batches(writer, batches, unsigned, &give_back)?;
        let mut s = lock(status);
        s.copied += n;
        s.next_raw = last + 1;
        s.tip_height = writer.tip().map(|(h, _)| h);
        drop(s);
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(())
}

/// Appends `batches` (all read the same way) in one append, the first record alone while
/// `unsigned`; gives the flat ones back emptied.
fn append_batches(
    writer: &mut ChainWriter<'_>,
    batches: Vec<Items>,
    unsigned: &mut bool,
    give_back: &SyncSender<FlatBatch>,
) -> Result<(), BridgeError> {
    // Cleared once an append has signed the adopted run, not before: a failed append leaves
    // it unsigned, and the writer's side then signs no checkpoint over it.
    let alone = usize::from(*unsigned);
    // One vector for the owned batches, sized once (not grown by each batch in turn).
    let owned_len: usize = (batches.iter())
        .map(|b| match b {
            Items::Owned(items) => items.len(),
            Items::Flat(_) => 0,
        })
        .sum();
    let mut owned = Vec::new();
    let mut flat = Vec::new();
    for b in batches {
        match b {
            Items::Owned(items) if owned.is_empty() => {
                owned = items;
                owned.reserve_exact(owned_len - owned.len());
            }
            Items::Owned(items) => owned.extend(items),
            Items::Flat(batch) => flat.push(batch),
        }
    }
    if alone > 0 && owned.len() > alone {
        let rest = owned.split_off(alone);
        writer.append(owned)?;
        *unsigned = false;
        owned = rest;
    }
    if !owned.is_empty() {
        writer.append(owned)?;
        *unsigned = false;
    }
    if !flat.is_empty() {
        let views: Vec<FlatItem<'_>> = flat.iter().flat_map(FlatBatch::items).collect();
        let (first, rest) = views.split_at(alone.min(views.len()));
        for items in [first, rest] {
            if !items.is_empty() {
                writer.append_fields(items)?;
                *unsigned = false;
            }
        }
        drop(views);
        for mut batch in flat {
            batch.clear();
            // The reader gone or its shelf full: this one is freed.
            let _ = give_back.try_send(batch);
        }
    }
    Ok(())
}

/// Where the reader starts and how it hands records over.
struct Source {
    /// Flat batches (a writer that builds in place) or owned items.
    flat: bool,
    /// Emptied flat batches, to refill.
    recycled: Receiver<FlatBatch>,
    /// The raw offset to read from.
    next: u64,
}

/// Reads the raw partition from `source.next` and sends its records as items, batch by
/// batch, until `stop`, an error, the writer hanging up, or (until idle) the end of the
/// partition.
fn read_loop(
    place: &Place<'_>,
    source: Source,
    options: &BridgeOptions,
    stop: &(dyn Fn() -> bool + Sync),
    tx: SyncSender<Result<Batch, BridgeError>>,
) {
    let run = || -> Result<(), BridgeError> {
        let mut reader = place.log.reader(place.raw, place.partition, source.next)?;
        let max = options.writer.max_batch_records.max(1);
        // A flat batch a poll left empty, for the next; the largest batch yet, to size a
        // fresh one by.
        let (mut spare, mut largest): (Option<FlatBatch>, _) = (None, (0, 0));
        while !stop() {
            // Each record is lent and copied once, straight into its batch: no owned record
            // in between.
            let mut items = match source.flat {
                true => Items::Flat(
                    (spare.take())
                        .or_else(|| source.recycled.try_recv().ok())
                        .unwrap_or_else(|| FlatBatch::sized_like(largest)),
                ),
                // Room for the largest poll yet: a vector grown by doubling to a batch of
                // thousands would copy itself and touch fresh pages as it grows.
                false => Items::Owned(Vec::with_capacity(largest.0)),
            };
            let (mut last, mut refused) = (0, None);
            reader.poll_visit(max, options.poll_wait, &mut |r| {
                if refused.is_some() {
                    return;
                }
                last = r.offset;
                if let Err(e) = check_headers(place, r) {
                    refused = Some(e);
                    return;
                }
                match &mut items {
                    Items::Owned(v) => v.push(to_item(r)),
                    Items::Flat(batch) => batch.push(r),
                }
            })?;
            if let Some(e) = refused {
                return Err(e);
            }
            if items.len() == 0 {
                if let Items::Flat(batch) = items {
                    spare = Some(batch);
                }
                let end = place.log.end_offset(place.raw, place.partition)?;
                if options.until_idle && reader.position() >= end {
                    return Ok(());
                }
                continue;
            }
            let (records, bytes) = match &items {
                Items::Flat(batch) => batch.size(),
                Items::Owned(v) => (v.len(), 0),
            };
            largest = (largest.0.max(records), largest.1.max(bytes));
            if tx.send(Ok((items, last))).is_err() {
                return Ok(());
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = tx.send(Err(e));
    }
}

/// Refuses a raw record that carries a header in kchain's reserved namespace: its chained
/// copy could not keep it unchanged.
fn check_headers(place: &Place<'_>, r: &RecordView<'_>) -> Result<(), BridgeError> {
    match r
        .headers
        .iter()
        .find(|(name, _)| name.starts_with(HEADER_PREFIX))
    {
        Some((name, _)) => Err(BridgeError::ReservedHeader {
            raw: place.raw.to_owned(),
            partition: place.partition,
            offset: r.offset,
            name: name.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The chained item of a raw record (its headers checked): key, value, headers and
/// timestamp as they are, and the record's raw offset in a `kchain.src` header after its
/// own headers.
pub(super) fn to_item(r: &RecordView<'_>) -> Item {
    let mut headers = Vec::with_capacity(r.headers.iter().count() + 1);
    for (name, value) in r.headers.iter() {
        headers.push((name.to_owned(), value.to_vec()));
    }
    headers.push((SRC_HEADER.to_owned(), r.offset.to_string().into_bytes()));
    Item {
        key: r.key.map(<[u8]>::to_vec),
        value: r.value.map(<[u8]>::to_vec),
        headers,
        timestamp_ms: r.timestamp_ms,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
