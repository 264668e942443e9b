//! Copying one raw partition into its chained partition: a reader thread and the writer.
//!
//! ```text
//!  raw p ──poll (up to a batch)──► reader thread: check headers, add kchain.src ──► channel
//!                                                                    (4 batches) │
//!  chained p ◄── ChainWriter::append (hash-link, sign; the batches waiting, at once) ◄─┘
//! ```
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
use super::options::{BridgeOptions, PartitionStatus, SRC_HEADER};
use super::tail::{read_tail, Place, Tail};
use crate::writer::ChainWriter;

/// A batch of items to append and the raw offset of its last record.
type Batch = (Vec<Item>, u64);

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
    // Set once the writer's side has ended, however: a reader of an idle raw partition sends
    // nothing, so it would never learn that from a failed send, and the scope would wait
    // for it until `stop`.
    let writer_done = AtomicBool::new(false);
    let read_stop = || stop() || writer_done.load(Ordering::Relaxed);
    std::thread::scope(|scope| {
        // Named, so that a profile tells the reader from the writer.
        std::thread::Builder::new()
            .name("kchain-bridge-read".into())
            .spawn_scoped(scope, || read_loop(place, next, options, &read_stop, tx))
            .expect("spawn the bridge's reader thread");
        let written = write_side(place, options, writer, &tail, next, rx, status);
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
    rx: Receiver<Result<Batch, BridgeError>>,
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
    let written = write_loop(&mut writer, rx, &mut unsigned, status);
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
/// `unsigned` (an adopted run waits for a signature), which it then clears.
fn write_loop(
    writer: &mut ChainWriter<'_>,
    rx: Receiver<Result<Batch, BridgeError>>,
    unsigned: &mut bool,
    status: &Mutex<PartitionStatus>,
) -> Result<(), BridgeError> {
    while let Ok(batch) = rx.recv() {
        let (mut items, mut last) = batch?;
        // A read that failed after batches that did not: those are appended first.
        let mut failed = None;
        for _ in 1..MAX_BATCHES_PER_APPEND {
            match rx.try_recv() {
                Ok(Ok((more, more_last))) => {
                    items.extend(more);
                    last = more_last;
                }
                Ok(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        let n = items.len() as u64;
        if *unsigned {
            let rest = items.split_off(1);
            writer.append(items)?;
            items = rest;
            *unsigned = false;
        }
        if !items.is_empty() {
            writer.append(items)?;
        }
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

/// Reads the raw partition from `next` and sends its records as items, batch by batch,
/// until `stop`, an error, the writer hanging up, or (until idle) the end of the partition.
fn read_loop(
    place: &Place<'_>,
    next: u64,
    options: &BridgeOptions,
    stop: &(dyn Fn() -> bool + Sync),
    tx: SyncSender<Result<Batch, BridgeError>>,
) {
    let run = || -> Result<(), BridgeError> {
        let mut reader = place.log.reader(place.raw, place.partition, next)?;
        let max = options.writer.max_batch_records.max(1);
        while !stop() {
            // Each record is lent and copied once, straight into its item: no owned record
            // in between (which cost a second allocation of its headers and a vector of
            // records per batch).
            let mut items = Vec::new();
            let (mut last, mut refused) = (0, None);
            reader.poll_visit(max, options.poll_wait, &mut |r| {
                if refused.is_none() {
                    last = r.offset;
                    match to_item(place, r) {
                        Ok(item) => items.push(item),
                        Err(e) => refused = Some(e),
                    }
                }
            })?;
            if let Some(e) = refused {
                return Err(e);
            }
            if items.is_empty() {
                let end = place.log.end_offset(place.raw, place.partition)?;
                if options.until_idle && reader.position() >= end {
                    return Ok(());
                }
                continue;
            }
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

/// The chained item of a raw record: key, value, headers and timestamp as they are, and
/// the record's raw offset in a `kchain.src` header after its own headers.
fn to_item(place: &Place<'_>, r: &RecordView<'_>) -> Result<Item, BridgeError> {
    let mut headers = Vec::with_capacity(r.headers.iter().count() + 1);
    for (name, value) in r.headers.iter() {
        if name.starts_with(HEADER_PREFIX) {
            return Err(BridgeError::ReservedHeader {
                raw: place.raw.to_owned(),
                partition: place.partition,
                offset: r.offset,
                name: name.to_owned(),
            });
        }
        headers.push((name.to_owned(), value.to_vec()));
    }
    headers.push((SRC_HEADER.to_owned(), r.offset.to_string().into_bytes()));
    Ok(Item {
        key: r.key.map(<[u8]>::to_vec),
        value: r.value.map(<[u8]>::to_vec),
        headers,
        timestamp_ms: r.timestamp_ms,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
