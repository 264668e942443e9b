//! Inspecting a partition record by record: heights, hashes and whether each link holds.
//! This shows what is stored; it does not judge signatures (that is `verify`).

use std::time::Duration;

use kchain_core::{to_hex, ChainContext, ChainId, Hash, Observation, SigCheck, Trust};
use kchain_log::Log;

use crate::error::TopicError;
use crate::scan::observe_record;

/// One row of an inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InspectRow {
    pub offset: u64,
    /// `None` when the record's kchain headers do not parse (`problem` says why).
    pub height: Option<u64>,
    pub prev: Option<Hash>,
    /// The recomputed entry hash.
    pub hash: Option<Hash>,
    /// Does `prev` equal the previous record's recomputed hash (or zeros at genesis)?
    pub link_ok: Option<bool>,
    /// Key id of the signature this record carries (batch ends only).
    pub signed_by: Option<String>,
    pub problem: Option<String>,
}

/// Inspects up to `count` records of a partition from offset `from`.
pub fn inspect(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    from: u64,
    count: usize,
) -> Result<Vec<InspectRow>, TopicError> {
    let start = log.start_offset(topic, partition)?;
    let end = log.end_offset(topic, partition)?;
    let from = from.max(start);
    let trust = Trust::default();
    let ctx = ChainContext {
        topic,
        chain: ChainId::for_partition(topic, partition),
        trust: &trust,
    };
    let first = if from > start { from - 1 } else { from };
    let mut reader = log.reader(topic, partition, first)?;
    let mut scratch = Vec::new();
    let mut prev_hash: Option<Hash> = None;
    let mut rows = Vec::new();
    while reader.position() < end && rows.len() < count {
        let want = (count - rows.len() + 1).min(4096);
        let recs = reader.poll(want, Duration::from_millis(500))?;
        if recs.is_empty() {
            break;
        }
        for r in recs {
            if rows.len() >= count || r.offset >= end {
                break;
            }
            let obs = observe_record(&ctx, &r, &mut scratch);
            let row = match obs {
                Observation::Entry(o) => {
                    let link_ok = if o.height == 0 {
                        Some(o.prev == [0; 32])
                    } else {
                        prev_hash.map(|p| p == o.prev)
                    };
                    prev_hash = Some(o.hash);
                    InspectRow {
                        offset: o.offset,
                        height: Some(o.height),
                        prev: Some(o.prev),
                        hash: Some(o.hash),
                        link_ok,
                        signed_by: match o.sig {
                            SigCheck::None => None,
                            SigCheck::Valid(id)
                            | SigCheck::Invalid(id)
                            | SigCheck::Unknown(id)
                            | SigCheck::OtherTopics(id) => Some(id.to_string()),
                        },
                        problem: None,
                    }
                }
                Observation::Malformed { offset, error } => {
                    prev_hash = None;
                    InspectRow {
                        offset,
                        height: None,
                        prev: None,
                        hash: None,
                        link_ok: None,
                        signed_by: None,
                        problem: Some(error.to_string()),
                    }
                }
            };
            if row.offset >= from {
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// Formats a hash for a table: the first 16 hex digits.
pub fn short(h: &Hash) -> String {
    to_hex(h)[..16].to_owned()
}
