//! Observing records two at a time: [`PairObserver`] gives the same observations as
//! [`observe`](super::observe) record by record, in the same order, but hashes two records'
//! leaves at once and then their entries at once (as [`crate::sha256_x2`] does).
//!
//! A record's hashes do not depend on any other record's: its entry hash covers the
//! previous hash its `kchain.prev` header *claims*, and the link to the previous record's
//! recomputed hash is checked later, in order, by [`ChainVerifier`](super::ChainVerifier).
//!
//! ```text
//!  push(r0) ─► parse headers, leaf message of r0 into buffer 0 ─► held
//!  push(r1) ─► parse headers, leaf message of r1 into buffer 1
//!             ─► leaf hashes of r0, r1 at once ─► entry hashes at once
//!             ─► signatures ─► sink(r0), sink(r1)
//!  flush()  ─► a record still held, alone
//! ```
//!
//! A record whose chain headers do not parse has no hash to compute: the held record (if
//! any) goes out alone before it.

use super::observe::{concluded, entry_header, prepare, ChainContext, Observation, NO_META};
use crate::chain::ChainMeta;
use crate::entry::EntryHeader;
use crate::sha::{compress_padded_x2, pad_in_place, sha256_in_place};

/// Observes records two at a time, each with a value of the caller's (`T`, for example the
/// outcome of a check of its own) handed back beside its observation. Every record pushed
/// comes out of a later [`push`](Self::push) or of [`flush`](Self::flush), in the order the
/// records went in: call `flush` after the last record of a run, before acting on what
/// came out.
#[derive(Debug)]
pub struct PairObserver<T> {
    held: Option<Held<T>>,
    /// The held record's leaf message, and the next record's.
    bufs: [Vec<u8>; 2],
    /// The held record's chain headers, and the next record's: parsed in place (a
    /// ChainMeta is 120 bytes, moved per record it cost more than parsing it).
    metas: [ChainMeta; 2],
}

/// A record whose leaf message waits in `bufs[0]` (its chain headers in `metas[0]`) for a
/// second record.
#[derive(Debug)]
struct Held<T> {
    offset: u64,
    timestamp_ms: i64,
    extra: T,
}

impl<T> Default for PairObserver<T> {
    fn default() -> Self {
        PairObserver {
            held: None,
            bufs: [Vec::new(), Vec::new()],
            metas: [NO_META; 2],
        }
    }
}

impl<T> PairObserver<T> {
    /// An observer holding nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Observes one record (the arguments of [`observe`](super::observe) but the scratch
    /// space). `extra` is called at once, with the record's height when its chain headers
    /// parse (`None` when it is malformed); what it returns comes back with the record's
    /// observation through `sink`, now or on a later call.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn push<'a, H>(
        &mut self,
        ctx: &ChainContext<'_>,
        offset: u64,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        headers: H,
        timestamp_ms: i64,
        extra: impl FnOnce(Option<u64>) -> T,
        sink: &mut dyn FnMut(Observation, T),
    ) where
        H: Iterator<Item = (&'a str, &'a [u8])>,
    {
        let slot = usize::from(self.held.is_some());
        let (buf, meta) = (&mut self.bufs[slot], &mut self.metas[slot]);
        match prepare(buf, meta, key, value, headers, timestamp_ms) {
            Err(error) => {
                let extra = extra(None);
                self.flush(ctx, sink);
                sink(Observation::Malformed { offset, error }, extra);
            }
            Ok(()) => {
                let record = Held {
                    offset,
                    timestamp_ms,
                    extra: extra(Some(meta.height)),
                };
                match self.held.take() {
                    None => self.held = Some(record),
                    Some(first) => self.conclude_pair(ctx, first, record, sink),
                }
            }
        }
    }

    /// Hands out the record still held, if there is one.
    pub fn flush(&mut self, ctx: &ChainContext<'_>, sink: &mut dyn FnMut(Observation, T)) {
        if let Some(r) = self.held.take() {
            let meta = &self.metas[0];
            let leaf = sha256_in_place(&mut self.bufs[0]);
            let hash = entry_header(ctx, meta, r.timestamp_ms, leaf).hash();
            sink(concluded(ctx, r.offset, meta, hash), r.extra);
        }
    }

    /// Both records' hashes at once, then both observations in order.
    fn conclude_pair(
        &mut self,
        ctx: &ChainContext<'_>,
        a: Held<T>,
        b: Held<T>,
        sink: &mut dyn FnMut(Observation, T),
    ) {
        let [a_leaf, b_leaf] = &mut self.bufs;
        let [a_meta, b_meta] = &self.metas;
        pad_in_place(a_leaf);
        pad_in_place(b_leaf);
        let [la, lb] = compress_padded_x2(a_leaf, b_leaf);
        let ea = entry_header(ctx, a_meta, a.timestamp_ms, la);
        let eb = entry_header(ctx, b_meta, b.timestamp_ms, lb);
        let [ha, hb] = EntryHeader::hash_x2(&ea, &eb);
        sink(concluded(ctx, a.offset, a_meta, ha), a.extra);
        sink(concluded(ctx, b.offset, b_meta, hb), b.extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ChainId;
    use crate::trust::Trust;
    use crate::verify::observe;
    use proptest::prelude::*;

    type Record = (Vec<(String, Vec<u8>)>, Option<Vec<u8>>);

    /// A record: chain headers of a well-formed record most of the time, sometimes missing,
    /// repeated or garbled (a malformed record), with application headers and a value.
    fn record() -> impl Strategy<Value = Record> {
        let prev = "ab".repeat(32).into_bytes();
        let chain = prop_oneof![
            8 => Just(vec![
                ("kchain.v".to_owned(), b"1".to_vec()),
                ("kchain.height".to_owned(), b"7".to_vec()),
                ("kchain.prev".to_owned(), prev),
            ]),
            2 => Just(vec![
                ("kchain.v".to_owned(), b"1".to_vec()),
                ("kchain.height".to_owned(), b"8".to_vec()),
                ("kchain.prev".to_owned(), "cd".repeat(32).into_bytes()),
                ("kchain.key".to_owned(), b"0123456789abcdef".to_vec()),
                ("kchain.sig".to_owned(), vec![b'0'; 128]),
            ]),
            1 => Just(vec![("kchain.height".to_owned(), b"007".to_vec())]),
            1 => Just(vec![]),
        ];
        let app = proptest::collection::vec(
            ("[a-z.]{0,9}", proptest::collection::vec(any::<u8>(), 0..40)),
            0..3,
        );
        let value = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..400));
        (chain, app, value).prop_map(|(mut c, a, v)| {
            c.extend(a);
            (c, v)
        })
    }

    proptest! {
        /// Pushed in any mix of well-formed and malformed records, the pair observer hands
        /// out what `observe` gives record by record, in order, each with its own extra.
        #[test]
        fn pairs_observe_what_observe_does(
            records in proptest::collection::vec(record(), 0..9),
        ) {
            let trust = Trust::default();
            let ctx = ChainContext { topic: "t", chain: ChainId::from_name("t/0"), trust: &trust };
            let mut got = Vec::new();
            let mut pairs = PairObserver::new();
            for (i, (headers, value)) in records.iter().enumerate() {
                let h = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
                pairs.push(&ctx, i as u64, None, value.as_deref(), h, 5, |height| (i, height),
                    &mut |o, x| got.push((o, x)));
            }
            pairs.flush(&ctx, &mut |o, x| got.push((o, x)));
            let want: Vec<_> = records.iter().enumerate().map(|(i, (headers, value))| {
                let h = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
                let o = observe(&ctx, i as u64, None, value.as_deref(), h, 5, &mut Vec::new());
                let height = o.entry().map(|e| e.height);
                (o, (i, height))
            }).collect();
            prop_assert_eq!(got, want);
        }
    }
}
