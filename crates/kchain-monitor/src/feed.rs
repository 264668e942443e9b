//! A topic's checkpoints topic, read incrementally: each pass returns the signed notes
//! appended since the last (by chain partition), and the offsets it reached go into the
//! monitor's state, so that no note is judged twice across restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use kchain_core::SignedNote;
use kchain_log::{Log, LogError, Reader};
use kchain_topic::checkpoints::checkpoints_topic;

/// The most records one pass reads of one checkpoints partition.
const PASS_BUDGET: usize = 16 * 1024;

/// The readers of one topic's checkpoints topic.
pub(crate) struct Feed {
    name: String,
    readers: BTreeMap<u32, Box<dyn Reader>>,
}

impl Feed {
    pub(crate) fn new(topic: &str) -> Feed {
        Feed {
            name: checkpoints_topic(topic),
            readers: BTreeMap::new(),
        }
    }

    /// The notes appended since the last pass, as (chain partition, note), going on from
    /// `offsets` (keyed `"<checkpoints topic>/<partition>"`, updated).
    pub(crate) fn pass(
        &mut self,
        log: &dyn Log,
        offsets: &mut BTreeMap<String, u64>,
    ) -> Result<Vec<(u32, SignedNote)>, LogError> {
        let info = match log.topic(&self.name) {
            Ok(info) => info,
            Err(LogError::NoSuchTopic(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for p in 0..info.partitions {
            let key = format!("{}/{p}", self.name);
            let r = self.read_partition(log, p, offsets.get(&key).copied(), &mut out);
            match r {
                Ok(next) => {
                    offsets.insert(key, next);
                }
                Err(e) => {
                    self.readers.remove(&p);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    fn read_partition(
        &mut self,
        log: &dyn Log,
        p: u32,
        saved: Option<u64>,
        out: &mut Vec<(u32, SignedNote)>,
    ) -> Result<u64, LogError> {
        let end = log.end_offset(&self.name, p)?;
        if !self.readers.contains_key(&p) {
            let from = match saved {
                Some(o) => o,
                None => log.start_offset(&self.name, p)?,
            };
            self.readers.insert(p, log.reader(&self.name, p, from)?);
        }
        let reader = self.readers.get_mut(&p).expect("inserted above");
        let mut budget = PASS_BUDGET;
        while reader.position() < end && budget > 0 {
            let recs = reader.poll(1024.min(budget), Duration::from_millis(200))?;
            if recs.is_empty() {
                break;
            }
            budget = budget.saturating_sub(recs.len());
            out.extend(recs.into_iter().filter_map(|r| {
                let key = std::str::from_utf8(r.record.key.as_deref()?).ok()?;
                let note = SignedNote::parse(r.record.value.as_deref()?).ok()?;
                Some((key.parse().ok()?, note))
            }));
        }
        Ok(reader.position())
    }
}
