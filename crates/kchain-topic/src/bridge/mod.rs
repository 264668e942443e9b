//! The bridge: chains a plain topic, so that producers that know nothing of kchain (any
//! Kafka client, any language) get tamper evidence by producing to the raw topic.
//!
//! ```text
//!  producers ──► RAW/p ──► reader thread ──► ChainWriter ──► CHAINED/p   (p = 0, 1, ...)
//!                          key, value, headers, timestamp unchanged;
//!                          + kchain.src = the raw offset;   + kchain.* chain headers
//! ```
//!
//! Raw partition p goes to chained partition p, in order, one thread pair per partition
//! (`copy`). **Exactly once across crashes, without Kafka transactions**: every chained
//! record carries its raw offset ([`SRC_HEADER`]), committed to by its entry hash and covered
//! by the batch signature, so a restarted bridge reads the chained tail of each partition and
//! resumes after the source offset of its tip (`tail`). A batch that a crash cut short (a
//! Kafka producer sends one batch in several requests) is checked record by record against
//! the raw records it copies and signed over by the next append, never written again. A
//! chained tail ahead of the raw partition, or holding another record than the raw one at its
//! source offset, means the raw topic was recreated: the bridge stops ([`BridgeError`]).
//! `docs/bridge.md` has the argument in full.
//!
//! | module    | what                                                         |
//! |-----------|--------------------------------------------------------------|
//! | `options` | [`BridgeOptions`], [`PartitionStatus`], [`SRC_HEADER`]       |
//! | `tail`    | where a restarted bridge resumes, and the checks on the tail |
//! | `copy`    | one partition: the reader thread and the writer              |
//! | `error`   | [`BridgeError`]                                              |

mod copy;
mod error;
mod flat;
mod options;
mod tail;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kchain_core::WriterKey;
use kchain_log::{Log, LogError, TopicConfig};

pub use error::BridgeError;
pub use options::{BridgeOptions, PartitionStatus, SRC_HEADER};
use tail::Place;

/// A bridge from the plain topic `raw` to the chained topic `chained`, signing as a writer
/// with its key (the one writer of every chained partition).
pub struct Bridge<'a> {
    log: &'a dyn Log,
    raw: String,
    chained: String,
    key: &'a WriterKey,
    options: BridgeOptions,
    partitions: u32,
}

impl<'a> Bridge<'a> {
    /// The bridge from `raw` (which must exist) to `chained`, which is created with the raw
    /// topic's partition count when missing, and refused with
    /// [`BridgeError::TooFewPartitions`] when it has fewer partitions than `raw`.
    pub fn open(
        log: &'a dyn Log,
        raw: &str,
        chained: &str,
        key: &'a WriterKey,
        options: BridgeOptions,
    ) -> Result<Self, BridgeError> {
        let partitions = log.topic(raw)?.partitions;
        match log.topic(chained) {
            Ok(info) if info.partitions < partitions => {
                return Err(BridgeError::TooFewPartitions {
                    raw: raw.to_owned(),
                    raw_partitions: partitions,
                    chained: chained.to_owned(),
                    chained_partitions: info.partitions,
                })
            }
            Ok(_) => {}
            Err(LogError::NoSuchTopic(_)) => log.create_topic(
                chained,
                &TopicConfig {
                    partitions,
                    ..TopicConfig::default()
                },
            )?,
            Err(e) => return Err(e.into()),
        }
        Ok(Bridge {
            log,
            raw: raw.to_owned(),
            chained: chained.to_owned(),
            key,
            options,
            partitions,
        })
    }

    /// The raw topic's partition count: the partitions the bridge copies.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Copies every partition, each on threads of its own, until `stop` returns true (or,
    /// with [`BridgeOptions::until_idle`], until every raw partition is copied to its end),
    /// calling `on_status` once every partition has found where it resumes and then every
    /// [`BridgeOptions::status_every`]. Returns the status of each
    /// partition once every one has flushed. The first partition that fails stops the others
    /// (each flushes what it appended), and its error is returned.
    pub fn run(
        &self,
        stop: &(dyn Fn() -> bool + Sync),
        on_status: &mut dyn FnMut(&[PartitionStatus]),
    ) -> Result<Vec<PartitionStatus>, BridgeError> {
        let status: Vec<Mutex<PartitionStatus>> = (0..self.partitions)
            .map(|partition| {
                Mutex::new(PartitionStatus {
                    partition,
                    ..PartitionStatus::default()
                })
            })
            .collect();
        let failed = AtomicBool::new(false);
        let halt = || failed.load(Ordering::Relaxed) || stop();
        let results = std::thread::scope(|s| {
            let workers: Vec<_> = status
                .iter()
                .enumerate()
                .map(|(p, st)| {
                    let (halt, failed) = (&halt, &failed);
                    s.spawn(move || {
                        let r =
                            copy::copy_partition(&self.place(p as u32), &self.options, halt, st);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        r
                    })
                })
                .collect();
            let (mut last, mut opened) = (Instant::now(), false);
            while !workers.iter().all(|w| w.is_finished()) {
                std::thread::sleep(self.options.status_every.min(Duration::from_millis(20)));
                let now_open = !opened && snapshot(&status).iter().all(|p| p.open);
                if now_open || last.elapsed() >= self.options.status_every {
                    opened |= now_open;
                    on_status(&snapshot(&status));
                    last = Instant::now();
                }
            }
            workers
                .into_iter()
                .map(|w| w.join().expect("a bridge worker panicked"))
                .collect::<Vec<_>>()
        });
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(snapshot(&status))
    }

    fn place(&self, partition: u32) -> Place<'_> {
        Place {
            log: self.log,
            raw: &self.raw,
            chained: &self.chained,
            partition,
            key: self.key,
        }
    }
}

fn snapshot(status: &[Mutex<PartitionStatus>]) -> Vec<PartitionStatus> {
    status
        .iter()
        .map(|m| *m.lock().unwrap_or_else(|e| e.into_inner()))
        .collect()
}
