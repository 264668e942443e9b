//! Where a restarted bridge resumes: the tail of a chained partition, read back and held
//! against the raw partition it was copied from.
//!
//! ```text
//!  chained p  ... [src=41][src=42 sig][src=43][src=44]  <- end offset
//!                          ^ last record signed   ^^^^^^^^^^^^^^^ a batch a crash cut short
//!                            by the bridge's key    (Kafka only): links checked, each record
//!                                                   equal to the raw record at its src, adopted
//!  raw p      ... 41  42  43  44 | 45  46 ...
//!                                  ^ resume: the first append is one record, which signs
//!                                    the adopted run; then whole batches again
//! ```
//!
//! The resume position is the `kchain.src` of the chained tip plus one: the source offsets
//! travel in the chain, under the writer's signature, as the ledger's blocks carry theirs, so
//! no Kafka transaction and no offset committed anywhere else is needed. The tip is also held
//! against the raw partition: a raw partition that ends before it, or holds another record
//! at its source offset, was recreated, and the bridge stops.

use std::time::Duration;

use kchain_core::{
    is_chain_header, observe, ChainContext, ChainId, Hash, Observation, Observed, PendingLimits,
    SigCheck, Trust, TrustedWriter, WriterKey, ZERO_HASH,
};
use kchain_log::{Log, Record, StoredRecord};

use super::error::BridgeError;
use super::options::SRC_HEADER;

/// What the bridge found at the tail of one chained partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Height and entry hash of the chain's last record, `None` for an empty chain.
    pub tip: Option<(u64, Hash)>,
    /// The raw offset the last chained record was copied from.
    pub last_src: Option<u64>,
    /// Records at the tip that no signature covers yet (a batch cut short by a crash), each
    /// checked against the raw record it claims to copy; the next append signs them.
    pub adopted: u64,
}

/// One partition of a bridge: where it reads, where it writes, and with which key.
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    pub log: &'a dyn Log,
    pub raw: &'a str,
    pub chained: &'a str,
    pub partition: u32,
    pub key: &'a WriterKey,
}

impl Place<'_> {
    fn not_bridged(&self, offset: u64, detail: impl Into<String>) -> BridgeError {
        BridgeError::NotBridged {
            chained: self.chained.to_owned(),
            partition: self.partition,
            offset,
            detail: detail.into(),
        }
    }
}

/// How long one read of the tail waits for a record the log says it holds.
const READ_WAIT: Duration = Duration::from_secs(10);

/// Reads the tail of the chained partition, whose records lie in `start..end`, and checks
/// it against the raw partition (see the module diagram).
pub(crate) fn read_tail(place: &Place<'_>, start: u64, end: u64) -> Result<Tail, BridgeError> {
    if end == start {
        if start > 0 {
            return Err(place.not_bridged(start, "the partition is empty after retention"));
        }
        return Ok(Tail::default());
    }
    // The usual case: the last record is signed by the bridge's key.
    let last = read_range(place.log, place.chained, place.partition, end - 1, end)?;
    let mut window = observed(place, &last)?;
    if !matches!(window.first(), Some((o, _)) if signed_by(o, place.key)) {
        // A run no signature covers is at most one batch long (docs/pending.md).
        let from = end
            .saturating_sub(PendingLimits::default().records + 1)
            .max(start);
        let recs = read_range(place.log, place.chained, place.partition, from, end)?;
        window = observed(place, &recs)?;
    }
    let signed = window.iter().rposition(|(o, _)| signed_by(o, place.key));
    let (anchor, run) = match signed {
        Some(i) => (Some(&window[i]), &window[i + 1..]),
        None if window.first().is_some_and(|(o, _)| o.offset == start) => (None, &window[..]),
        None => {
            return Err(place.not_bridged(
                end - 1,
                format!(
                    "no record signed by the key '{}' near the tip",
                    place.key.name()
                ),
            ))
        }
    };
    check_links(place, anchor.map(|(o, _)| o), run)?;
    if !run.is_empty() {
        check_run(place, anchor.map(|(_, r)| r), run)?;
    }
    let (tip, tip_record) = window.last().expect("the window holds the last record");
    let last_src = src_of(place, tip_record)?;
    check_raw_tip(place, last_src, &tip_record.record)?;
    Ok(Tail {
        tip: Some((tip.height, tip.hash)),
        last_src: Some(last_src),
        adopted: run.len() as u64,
    })
}

/// Whether `o` carries a valid signature by `key`.
fn signed_by(o: &Observed, key: &WriterKey) -> bool {
    o.sig == SigCheck::Valid(key.id())
}

/// The chain fields of `records`, recomputed; a malformed record is not the bridge's.
fn observed(
    place: &Place<'_>,
    records: &[StoredRecord],
) -> Result<Vec<(Observed, StoredRecord)>, BridgeError> {
    let trust = Trust {
        writers: vec![TrustedWriter {
            name: place.key.name().to_owned(),
            key: place.key.public(),
            topics: Vec::new(),
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    };
    let ctx = ChainContext {
        topic: place.chained,
        chain: ChainId::for_partition(place.chained, place.partition),
        trust: &trust,
    };
    let mut scratch = Vec::new();
    records
        .iter()
        .map(|s| {
            let r = &s.record;
            let headers = r.headers.iter().map(|h| (h.name.as_str(), &h.value[..]));
            match observe(
                &ctx,
                s.offset,
                r.key.as_deref(),
                r.value.as_deref(),
                headers,
                r.timestamp_ms,
                &mut scratch,
            ) {
                Observation::Entry(o) => Ok((o, s.clone())),
                Observation::Malformed { offset, error } => {
                    Err(place.not_bridged(offset, error.to_string()))
                }
            }
        })
        .collect()
}

/// Checks that the unsigned `run` links on from `anchor` (or from genesis without one) and
/// that none of its records carries a signature the bridge did not make.
fn check_links(
    place: &Place<'_>,
    anchor: Option<&Observed>,
    run: &[(Observed, StoredRecord)],
) -> Result<(), BridgeError> {
    let (mut height, mut prev) = match anchor {
        Some(a) => (a.height + 1, a.hash),
        None => (0, ZERO_HASH),
    };
    for (o, _) in run {
        if o.sig != SigCheck::None {
            return Err(place.not_bridged(o.offset, "a record signed by another key"));
        }
        if o.height != height || o.prev != prev {
            return Err(
                place.not_bridged(o.offset, "a record that does not link to the one before")
            );
        }
        (height, prev) = (height + 1, o.hash);
    }
    Ok(())
}

/// Checks that the unsigned `run` copies the raw records that follow the anchor's source, one
/// for one, unchanged: then it is exactly what the bridge would write, and may be adopted.
fn check_run(
    place: &Place<'_>,
    anchor: Option<&StoredRecord>,
    run: &[(Observed, StoredRecord)],
) -> Result<(), BridgeError> {
    let first = src_of(place, &run[0].1)?;
    let from = match anchor {
        Some(a) => src_of(place, a)? + 1,
        None => first,
    };
    let last = src_of(place, &run[run.len() - 1].1)?;
    if last < from {
        return Err(place.not_bridged(run[0].0.offset, "source offsets that go backwards"));
    }
    let raw = read_range(place.log, place.raw, place.partition, from, last + 1)?;
    if raw.len() != run.len() {
        return Err(place.not_bridged(
            run[0].0.offset,
            format!(
                "{} unsigned record(s) for the {} raw record(s) at offsets {from}..={last}",
                run.len(),
                raw.len()
            ),
        ));
    }
    for ((o, chained), raw) in run.iter().zip(&raw) {
        if src_of(place, chained)? != raw.offset || !same_content(&chained.record, &raw.record) {
            return Err(place.not_bridged(
                o.offset,
                format!(
                    "an unsigned record that is not a copy of raw offset {}",
                    raw.offset
                ),
            ));
        }
    }
    Ok(())
}

/// Holds the chained tip, a copy of raw offset `src`, against the raw partition now.
fn check_raw_tip(place: &Place<'_>, src: u64, tip: &Record) -> Result<(), BridgeError> {
    let raw_end = place.log.end_offset(place.raw, place.partition)?;
    if raw_end <= src {
        return Err(BridgeError::AheadOfRaw {
            raw: place.raw.to_owned(),
            chained: place.chained.to_owned(),
            partition: place.partition,
            copied: src,
            raw_end,
        });
    }
    let raw_start = place.log.start_offset(place.raw, place.partition)?;
    if raw_start > src + 1 {
        return Err(BridgeError::RawGap {
            raw: place.raw.to_owned(),
            partition: place.partition,
            next: src + 1,
            start: raw_start,
        });
    }
    if raw_start <= src {
        let raw = read_range(place.log, place.raw, place.partition, src, src + 1)?;
        if raw
            .first()
            .is_none_or(|r| r.offset != src || !same_content(tip, &r.record))
        {
            return Err(BridgeError::RawChanged {
                raw: place.raw.to_owned(),
                chained: place.chained.to_owned(),
                partition: place.partition,
                offset: src,
            });
        }
    }
    Ok(())
}

/// The raw offset a chained record was copied from (its `kchain.src` header).
fn src_of(place: &Place<'_>, s: &StoredRecord) -> Result<u64, BridgeError> {
    parse_src(&s.record).ok_or_else(|| {
        place.not_bridged(
            s.offset,
            format!("the record has no valid {SRC_HEADER} header"),
        )
    })
}

/// The value of a record's `kchain.src` header: a canonical decimal.
pub(crate) fn parse_src(r: &Record) -> Option<u64> {
    let v = std::str::from_utf8(r.header(SRC_HEADER)?).ok()?;
    let n: u64 = v.parse().ok()?;
    (n.to_string() == v).then_some(n)
}

/// Whether a chained record holds exactly the raw record's key, value, headers and
/// timestamp (its own `kchain.src` and chain headers aside).
pub(crate) fn same_content(chained: &Record, raw: &Record) -> bool {
    let app = chained
        .headers
        .iter()
        .filter(|h| !is_chain_header(&h.name) && h.name != SRC_HEADER);
    chained.key == raw.key
        && chained.value == raw.value
        && chained.timestamp_ms == raw.timestamp_ms
        && app.eq(raw.headers.iter())
}

/// The records of `topic`/`partition` at offsets `from..to` (fewer when the log holds
/// fewer: offsets may have gaps). Requires `to` to be at most the partition's end offset.
pub(crate) fn read_range(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    from: u64,
    to: u64,
) -> Result<Vec<StoredRecord>, BridgeError> {
    let mut reader = log.reader(topic, partition, from)?;
    let mut out = Vec::new();
    while reader.position() < to {
        let want = (to - reader.position()).min(8192) as usize;
        let got = reader.poll(want, READ_WAIT)?;
        if got.is_empty() {
            return Err(BridgeError::Stalled {
                topic: topic.to_owned(),
                partition,
                offset: reader.position(),
                end: to,
                waited: READ_WAIT,
            });
        }
        out.extend(got.into_iter().filter(|r| r.offset < to));
    }
    Ok(out)
}
