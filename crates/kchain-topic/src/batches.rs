//! Cutting the items of one append into signed batches within the writer's limits, and what
//! a batch is built with.

use kchain_core::{ChainId, DataKey, Item, WriterKey};

/// What a writer needs to build its batches: in place in the log's encoding (`inplace`,
/// [`Builder::prepare`]) or as records (`records`, [`Builder::build`]). It holds nothing of
/// the writer's own state, so that the next batch is built while the writer's appender
/// writes or sends this one.
pub(crate) struct Builder<'k> {
    pub chain: ChainId,
    pub partition: u32,
    pub topic: String,
    pub key: &'k WriterKey,
    pub encryption: Option<&'k DataKey>,
    /// Keep the entry hashes (for the checkpoint tree).
    pub keep_hashes: bool,
}

/// The limits on one signed batch (the writer's `WriterOptions`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_batch_records: usize,
    pub max_batch_bytes: usize,
}

/// `items` in signed batches within `options`, in order. The vector of a batch is split off
/// the end of the one before, never grown item by item (a batch of 8,192 items would
/// reallocate its way through fresh pages), and a call that fits one batch is not copied.
pub(crate) fn split_batches(mut items: Vec<Item>, options: &Limits) -> Vec<Vec<Item>> {
    let ranges = batch_ranges(&items, options);
    let mut batches = Vec::with_capacity(ranges.len());
    for r in ranges.iter().skip(1).rev() {
        batches.push(items.split_off(r.start));
    }
    if !items.is_empty() {
        batches.push(items);
    }
    batches.reverse();
    batches
}

/// What a writer that builds in place reads of an item: an owned [`Item`], or a view of a
/// record in a batch read from another log (the bridge's `FlatBatch`), so that a copier need
/// not own a copy of every field of every record it copies.
pub(crate) trait ItemFields: Sync {
    fn key(&self) -> Option<&[u8]>;
    fn value(&self) -> Option<&[u8]>;
    /// The application's headers, in order.
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone;
    /// How many [`ItemFields::headers`] gives.
    fn header_count(&self) -> usize;
    fn timestamp_ms(&self) -> i64;
}

impl ItemFields for Item {
    fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }
    fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
    fn header_count(&self) -> usize {
        self.headers.len()
    }
    fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }
}

/// Where `items` are cut into signed batches within `options`: each batch's range, in order.
pub(crate) fn batch_ranges<F: ItemFields>(
    items: &[F],
    options: &Limits,
) -> Vec<std::ops::Range<usize>> {
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    let mut bytes = 0usize;
    for (i, it) in items.iter().enumerate() {
        let size = item_size(it);
        match ranges.last_mut() {
            Some(r)
                if r.len() < options.max_batch_records
                    && bytes + size <= options.max_batch_bytes =>
            {
                r.end = i + 1;
                bytes += size;
            }
            _ => {
                ranges.push(i..i + 1);
                bytes = size;
            }
        }
    }
    ranges
}

/// The bytes an item counts for against `max_batch_bytes` (a margin for the chain headers).
pub(crate) fn item_size(it: &impl ItemFields) -> usize {
    it.key().map_or(0, <[u8]>::len)
        + it.value().map_or(0, <[u8]>::len)
        + it.headers().map(|(n, v)| n.len() + v.len()).sum::<usize>()
        + 160
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batches as an item-by-item loop cuts them (the naive reference).
    fn reference(items: Vec<Item>, o: &Limits) -> Vec<Vec<Item>> {
        let mut out: Vec<Vec<Item>> = Vec::new();
        let mut bytes = 0;
        for it in items {
            let size = item_size(&it);
            match out.last_mut() {
                Some(b) if b.len() < o.max_batch_records && bytes + size <= o.max_batch_bytes => {
                    bytes += size;
                    b.push(it);
                }
                _ => {
                    bytes = size;
                    out.push(vec![it]);
                }
            }
        }
        out
    }

    #[test]
    fn batches_are_cut_where_the_limits_say() {
        let items: Vec<Item> = (0..200u64)
            .map(|i| Item {
                value: Some(vec![0; (i * 37 % 500) as usize]),
                timestamp_ms: i as i64,
                ..Item::default()
            })
            .collect();
        for (records, bytes) in [
            (1, 1 << 20),
            (7, 1 << 20),
            (200, 1 << 20),
            (50, 3000),
            (9, 1),
        ] {
            let o = Limits {
                max_batch_records: records,
                max_batch_bytes: bytes,
            };
            for n in [0, 1, 7, 200] {
                let got = split_batches(items[..n].to_vec(), &o);
                assert_eq!(
                    got,
                    reference(items[..n].to_vec(), &o),
                    "{records} {bytes} {n}"
                );
            }
        }
    }
}
