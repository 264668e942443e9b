//! The bridge's items for a writer that builds in place (the embedded log's): the records
//! of one poll copied into one buffer, which the writer reads through views
//! ([`ItemFields`]). An owned [`kchain_core::Item`] costs five allocations a record (key,
//! value, the header vector, `kchain.src`'s name and value), made on the reader's thread and
//! freed on another; a [`FlatBatch`] costs four a batch, and none once it is recycled.
//!
//! ```text
//!  bytes:   key₀ value₀ hname₀ hval₀ src₀ │ key₁ value₁ src₁ │ ...
//!  headers: (name, value) spans of every record's application headers, in order
//!  records: per record: key, value, its headers, src (the raw offset in decimal), timestamp
//! ```

use std::ops::Range;

use kchain_log::RecordView;

use super::options::SRC_HEADER;
use crate::batches::ItemFields;
use crate::inplace::{decimal_len, write_decimal};

/// The raw records of one poll, whole: their fields in one buffer, and where each lies.
#[derive(Default)]
pub(crate) struct FlatBatch {
    bytes: Vec<u8>,
    /// The application headers' names, so that they are `&str` again without a second
    /// UTF-8 check.
    names: String,
    /// (name in `names`, value in `bytes`) of each application header.
    headers: Vec<(Range<usize>, Range<usize>)>,
    records: Vec<FlatRecord>,
}

/// Where one record's fields lie in its [`FlatBatch`].
struct FlatRecord {
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    /// Its application headers in [`FlatBatch::headers`].
    headers: Range<usize>,
    /// `kchain.src`'s value: the raw offset in decimal.
    src: Range<usize>,
    timestamp_ms: i64,
}

impl FlatBatch {
    /// Empties the batch, keeping its buffers (a recycled batch allocates nothing).
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.names.clear();
        self.headers.clear();
        self.records.clear();
    }

    /// An empty batch with room for one the size of `like` (a fresh batch grown by doubling
    /// would copy itself and touch fresh pages as it grows).
    pub(crate) fn sized_like(like: (usize, usize)) -> FlatBatch {
        FlatBatch {
            bytes: Vec::with_capacity(like.1),
            records: Vec::with_capacity(like.0),
            ..FlatBatch::default()
        }
    }

    /// Records and bytes held: what [`FlatBatch::sized_like`] takes.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.records.len(), self.bytes.len())
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Copies `r` in: key, value, headers and timestamp as they are, and its offset as
    /// `kchain.src`'s value (the caller has checked its headers).
    pub(crate) fn push(&mut self, r: &RecordView<'_>) {
        let key = r.key.map(|k| self.put(k));
        let value = r.value.map(|v| self.put(v));
        let first_header = self.headers.len();
        for (name, v) in r.headers.iter() {
            let start = self.names.len();
            self.names.push_str(name);
            let v = self.put(v);
            self.headers.push((start..self.names.len(), v));
        }
        let start = self.bytes.len();
        self.bytes.resize(start + decimal_len(r.offset), 0);
        write_decimal(&mut self.bytes[start..], r.offset);
        self.records.push(FlatRecord {
            key,
            value,
            headers: first_header..self.headers.len(),
            src: start..self.bytes.len(),
            timestamp_ms: r.timestamp_ms,
        });
    }

    /// Appends `b` to the bytes; where it lies.
    fn put(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }

    /// The records, as the writer reads them.
    pub(crate) fn items(&self) -> impl Iterator<Item = FlatItem<'_>> {
        self.records.iter().map(|record| FlatItem {
            batch: self,
            record,
        })
    }
}

/// One record of a [`FlatBatch`], as an item: its fields, and `kchain.src` after its own
/// headers.
#[derive(Clone, Copy)]
pub(crate) struct FlatItem<'a> {
    batch: &'a FlatBatch,
    record: &'a FlatRecord,
}

impl ItemFields for FlatItem<'_> {
    fn key(&self) -> Option<&[u8]> {
        self.record.key.clone().map(|k| &self.batch.bytes[k])
    }

    fn value(&self) -> Option<&[u8]> {
        self.record.value.clone().map(|v| &self.batch.bytes[v])
    }

    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone {
        let b = self.batch;
        b.headers[self.record.headers.clone()]
            .iter()
            .map(|(n, v)| (&b.names[n.clone()], &b.bytes[v.clone()]))
            .chain(std::iter::once((
                SRC_HEADER,
                &b.bytes[self.record.src.clone()],
            )))
    }

    fn header_count(&self) -> usize {
        self.record.headers.len() + 1
    }

    fn timestamp_ms(&self) -> i64 {
        self.record.timestamp_ms
    }
}

#[cfg(test)]
mod tests {
    use kchain_core::Item;
    use kchain_log::{Header, HeadersRef};

    use super::super::copy::to_item;
    use super::*;

    fn fields(it: &impl ItemFields) -> Item {
        let headers: Vec<(String, Vec<u8>)> = it
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_vec()))
            .collect();
        assert_eq!(headers.len(), it.header_count());
        Item {
            key: it.key().map(<[u8]>::to_vec),
            value: it.value().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: it.timestamp_ms(),
        }
    }

    #[test]
    fn views_read_as_the_owned_items_and_a_recycled_batch_as_a_fresh_one() {
        let hs = [
            Vec::new(),
            vec![Header {
                name: "trace-id".into(),
                value: b"abc".to_vec(),
            }],
            vec![
                Header {
                    name: "é".into(),
                    value: Vec::new(),
                },
                Header {
                    name: String::new(),
                    value: vec![0, 255],
                },
            ],
        ];
        let vals: [Option<&[u8]>; 3] = [None, Some(b""), Some(b"value")];
        let mut views = Vec::new();
        for (i, h) in hs.iter().enumerate() {
            for (j, v) in vals.iter().enumerate() {
                views.push(RecordView {
                    offset: [0, 9, 10, u64::MAX][(i + j) % 4],
                    key: vals[(j + 1) % 3],
                    value: *v,
                    headers: HeadersRef::owned(h),
                    timestamp_ms: -(i as i64) * 1000 + j as i64,
                });
            }
        }
        let mut batch = FlatBatch::default();
        for round in 0..2 {
            batch.clear();
            assert_eq!(batch.len(), 0);
            for r in &views[round..] {
                batch.push(r);
            }
            assert_eq!(batch.len(), views.len() - round);
            let got: Vec<Item> = batch.items().map(|it| fields(&it)).collect();
            // What the owned path (Kafka's) makes of the same records.
            let want: Vec<Item> = views[round..].iter().map(to_item).collect();
            assert_eq!(got, want);
        }
    }
}
