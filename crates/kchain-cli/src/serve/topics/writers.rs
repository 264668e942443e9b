//! The server's chained writers: one per partition written through the API, opened on the
//! first record and kept open across requests (a chained partition has one writer, and
//! reopening one reads the chain back to its tip), behind one mutex per topic. Requests that
//! arrive while an append is in progress wait, and the next append takes them all (group
//! commit): one signature and one fsync per partition for many small requests, which is
//! what keeps single-record latency low when every append is fsynced. Flushed (fsync and a
//! last checkpoint) when the server stops.
//!
//! ```text
//!  request ──► Producers::topic(t) ──► Topic::append: queue ──► the first request that
//!                                        finds no append in progress takes every waiting
//!                                        one ──► Mutex<TopicWriters>
//!                                        records grouped by partition, in request order
//!                                        ChainWriter p .append (hash-link, sign, one batch,
//!                                          durable as --fsync says; checkpoint when due)
//!                                      ◄── each request's records: partition, offset, height
//!  every second ──► Producers::tick ──► a checkpoint of partitions not covered for 10 s
//!  shutdown ──► Producers::close ──► every ChainWriter::flush
//! ```
//!
//! A writer borrows the log and the writer key for its whole life; both live as long as the
//! server, so they are leaked once (the log's handle, the key and the checkpoint options),
//! not per request.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use kchain_core::{Item, WriterKey, DEFAULT_ORIGIN_NAMESPACE};
use kchain_log::Log;
use kchain_topic::files::read_key_file;
use kchain_topic::{partition_for_key, ChainWriter, CheckpointOptions, WriterOptions};
use serde::Serialize;

use super::lookup::topic_error;
use crate::global::{backend_identity, signer_store, Global};
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::sync::lock;

/// A writer publishes a checkpoint once this many of its entries are not covered by one...
const CHECKPOINT_EVERY: u64 = 100_000;
/// ... or on its first append this long after the last one (and [`Producers::tick`] signs
/// one this long after the first record it does not cover, when no append came since).
const CHECKPOINT_SECS: u64 = 10;

/// The open writers of every topic written through the server.
#[derive(Default)]
pub struct Producers {
    topics: Mutex<BTreeMap<String, Arc<Topic>>>,
    shared: OnceLock<&'static Shared>,
}

/// What every writer borrows for the server's life.
struct Shared {
    log: &'static dyn Log,
    key: &'static WriterKey,
    checkpoints: CheckpointOptions,
}

/// One topic's writers and the requests waiting for them. Requests that arrive while an
/// append is in progress are appended together by the next one (group commit): one signed
/// batch and one fsync per partition for all of them, so that many small requests cost
/// about what one does.
pub struct Topic {
    writers: Mutex<TopicWriters>,
    queue: Mutex<Queue>,
    done: Condvar,
}

/// The requests of a topic waiting to be appended, and the answers of those appended.
#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<(u64, Vec<NewItem>)>,
    answers: BTreeMap<u64, ApiResult<Vec<Placed>>>,
    /// An append is in progress (by the request that took the waiting ones).
    busy: bool,
}

impl Topic {
    /// Appends `items` (one request's, in order) together with whatever other requests wait
    /// meanwhile; answers where each of them landed, once they are appended.
    pub fn append(&self, items: Vec<NewItem>) -> ApiResult<Vec<Placed>> {
        let mut q = lock(&self.queue);
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push((ticket, items));
        loop {
            if let Some(answer) = q.answers.remove(&ticket) {
                return answer;
            }
            if q.busy {
                q = self.done.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // This request appends every waiting one, its own among them.
            q.busy = true;
            let group = std::mem::take(&mut q.waiting);
            drop(q);
            let answers = self.append_group(group);
            q = lock(&self.queue);
            q.answers.extend(answers);
            q.busy = false;
            self.done.notify_all();
        }
    }

    /// Appends the requests of `group` as one, and splits the answer by request.
    fn append_group(&self, group: Vec<(u64, Vec<NewItem>)>) -> Vec<(u64, ApiResult<Vec<Placed>>)> {
        let sizes: Vec<(u64, usize)> = group.iter().map(|(t, items)| (*t, items.len())).collect();
        let all: Vec<NewItem> = group.into_iter().flat_map(|(_, items)| items).collect();
        match self.writers().append(all) {
            Ok(placed) => {
                let mut placed = placed.into_iter();
                sizes
                    .into_iter()
                    .map(|(t, n)| (t, Ok(placed.by_ref().take(n).collect())))
                    .collect()
            }
            Err(e) => sizes
                .into_iter()
                .map(|(t, _)| (t, Err(e.clone())))
                .collect(),
        }
    }

    /// The writers, locked (for a checkpoint now).
    pub fn writers(&self) -> MutexGuard<'_, TopicWriters> {
        lock(&self.writers)
    }
}

/// The writers of one topic.
pub struct TopicWriters {
    topic: String,
    partitions: u32,
    shared: &'static Shared,
    writers: BTreeMap<u32, ChainWriter<'static>>,
    /// Where the records of a request that have neither key nor partition go; moves on
    /// with every such request, as Kafka's sticky partitioner moves on with every batch.
    sticky: u32,
    /// The partitions appended to since [`Producers::tick`] last checkpointed them, and
    /// since when.
    uncovered: BTreeMap<u32, Instant>,
}

/// One record to append: its partition if the request gave one, and the item.
pub struct NewItem {
    pub partition: Option<u32>,
    pub item: Item,
}

/// Where a record landed.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Placed {
    pub partition: u32,
    pub offset: u64,
    pub height: u64,
}

impl Producers {
    /// The writers of `topic` (with `partitions` partitions), locked by the caller. The
    /// first call reads the writer key: 503 when there is none.
    pub fn topic(
        &self,
        g: &Global,
        log: &Arc<dyn Log>,
        topic: &str,
        partitions: u32,
    ) -> ApiResult<Arc<Topic>> {
        let shared = self.shared(g, log)?;
        let mut topics = lock(&self.topics);
        let entry = topics.entry(topic.to_owned()).or_insert_with(|| {
            Arc::new(Topic {
                writers: Mutex::new(TopicWriters {
                    topic: topic.to_owned(),
                    partitions,
                    shared,
                    writers: BTreeMap::new(),
                    sticky: 0,
                    uncovered: BTreeMap::new(),
                }),
                queue: Mutex::default(),
                done: Condvar::new(),
            })
        });
        Ok(entry.clone())
    }

    fn shared(&self, g: &Global, log: &Arc<dyn Log>) -> ApiResult<&'static Shared> {
        if self.shared.get().is_none() {
            let path = g.key_path();
            if !path.exists() {
                return Err(ApiError::unavailable(format!(
                    "this server has no writer key ({}): run `kchain keygen` and restart it",
                    path.display()
                )));
            }
            let key = read_key_file(&path).map_err(ApiError::internal)?;
            let checkpoints = CheckpointOptions {
                every_entries: CHECKPOINT_EVERY,
                every: Duration::from_secs(CHECKPOINT_SECS),
                namespace: DEFAULT_ORIGIN_NAMESPACE.to_owned(),
                store: Some(signer_store(&path)),
                backend: backend_identity(g),
                push: crate::cmd::checkpoint::push_options(g, false)?,
            };
            let log: &'static Arc<dyn Log> = Box::leak(Box::new(log.clone()));
            let shared = Shared {
                log: log.as_ref(),
                key: Box::leak(Box::new(key)),
                checkpoints,
            };
            // A race of two first requests leaks a second one, harmlessly.
            let _ = self.shared.set(Box::leak(Box::new(shared)));
        }
        Ok(self.shared.get().expect("set above"))
    }

    /// Signs a checkpoint of every partition whose oldest record not covered by one was
    /// appended [`CHECKPOINT_SECS`] ago or more: a writer checks that on its appends, and a
    /// topic that falls quiet has none. The server calls it about once a second.
    pub fn tick(&self) {
        let topics: Vec<_> = lock(&self.topics).values().cloned().collect();
        for topic in topics {
            let mut w = topic.writers();
            let due: Vec<u32> = w
                .uncovered
                .iter()
                .filter(|(_, since)| since.elapsed() >= Duration::from_secs(CHECKPOINT_SECS))
                .map(|(p, _)| *p)
                .collect();
            for p in due {
                w.uncovered.remove(&p);
                if let Some(writer) = w.writers.get_mut(&p) {
                    if let Err(e) = writer.checkpoint() {
                        eprintln!("kchain: checkpoint of {}/{p}: {e}", w.topic);
                    }
                }
            }
        }
    }

    /// Flushes every writer: its appends forced to stable storage and a checkpoint of what
    /// it appended since the last one. Failures are printed: the server is stopping.
    pub fn close(&self) {
        for (topic, t) in lock(&self.topics).iter() {
            let mut w = t.writers();
            for (p, writer) in w.writers.iter_mut() {
                if let Err(e) = writer.flush() {
                    eprintln!("kchain: flushing the writer of {topic}/{p}: {e}");
                }
            }
        }
    }
}

impl TopicWriters {
    /// Appends `items` in order, each to its partition (given, else by key as Kafka does,
    /// else the sticky one), one signed batch per partition; answers where each landed.
    /// Requires every given partition `< partitions` (checked by the caller).
    pub fn append(&mut self, items: Vec<NewItem>) -> ApiResult<Vec<Placed>> {
        let total = items.len();
        let mut by_partition: BTreeMap<u32, (Vec<usize>, Vec<Item>)> = BTreeMap::new();
        for (i, it) in items.into_iter().enumerate() {
            let p = match (it.partition, it.item.key.as_deref()) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, self.partitions),
                (None, None) => self.sticky,
            };
            let slot = by_partition.entry(p).or_default();
            slot.0.push(i);
            slot.1.push(it.item);
        }
        self.sticky = (self.sticky + 1) % self.partitions;
        let mut placed = vec![None; total];
        for (p, (indexes, items)) in by_partition {
            let n = items.len() as u64;
            let writer = self.writer(p)?;
            let receipt = match writer.append(items) {
                Ok(r) => r,
                Err(e) => {
                    // A failed append poisons the writer: the next request opens a new one,
                    // which reads the chain back and checks its tip.
                    self.writers.remove(&p);
                    return Err(topic_error(e, &self.topic));
                }
            };
            self.uncovered.entry(p).or_insert_with(Instant::now);
            let first_height = receipt.tip_height + 1 - n;
            for (j, i) in indexes.into_iter().enumerate() {
                placed[i] = Some(Placed {
                    partition: p,
                    offset: receipt.first_offset + j as u64,
                    height: first_height + j as u64,
                });
            }
        }
        Ok(placed.into_iter().flatten().collect())
    }

    /// Signs and publishes a checkpoint of every partition that has records, unless its
    /// newest covers it already.
    pub fn checkpoint(&mut self) -> ApiResult<()> {
        for p in 0..self.partitions {
            let topic = self.topic.clone();
            self.writer(p)?
                .checkpoint()
                .map_err(|e| topic_error(e, &topic))?;
        }
        self.uncovered.clear();
        Ok(())
    }

    /// The writer of partition `p`, opened unless it is.
    fn writer(&mut self, p: u32) -> ApiResult<&mut ChainWriter<'static>> {
        if !self.writers.contains_key(&p) {
            let s = self.shared;
            let w = ChainWriter::open(s.log, &self.topic, p, s.key, WriterOptions::default())
                .and_then(|w| w.with_checkpoints(s.log, s.checkpoints.clone()))
                .map_err(|e| topic_error(e, &self.topic))?;
            self.writers.insert(p, w);
        }
        Ok(self.writers.get_mut(&p).expect("opened above"))
    }
}
