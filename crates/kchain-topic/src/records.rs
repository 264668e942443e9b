//! A signed batch as [`Record`]s, for an appender that does not take encoded batches
//! (Kafka's): the writer's record path.
//!
//! ```text
//!  items ──► [encrypt values] + leaf hashes (parallel) ──► entry hashes (in order: each needs
//!        the previous) ──► sign the last entry hash ──► Records with kchain.* headers
//! ```
//!
//! A [`Builder`] (the one `inplace` builds with) holds nothing of the writer's own state, so
//! that the writer can build one batch while its appender sends another. With an appender that
//! keeps batches in flight (Kafka's), [`append_pipelined`] does so:
//!
//! ```text
//!  build 0 ─ send 0 ─ build 1 ─ send 1 ─ receive 0 ─ build 2 ─ send 2 ─ receive 1 ─ ... receive n
//!                     └─ 0 travels to the broker and back while 1 is built ─┘
//! ```
//!
//! Receipts are taken in order: a batch counts as written only once its offsets are back and
//! checked ([`Landing::landed`]); a failed delivery ends the call with its error.

use kchain_core::{
    ChainId, ChainMeta, DataKey, Hash, Item, KeyId, RecordPlace, Signature, ENTRY_VERSION, H_ENC,
    NONCE_LEN,
};
use std::collections::VecDeque;

use kchain_log::{Appender, Record};
use rayon::prelude::*;

use crate::batches::Builder;
use crate::error::TopicError;
use crate::inplace::{link, nonces};
use crate::mapping::record_headers;

/// A batch ready to append: its records, whole and signed.
pub(crate) struct Built {
    pub records: Vec<Record>,
    pub first_height: u64,
    pub count: u64,
    pub tip_hash: Hash,
    /// The entry hashes, if the builder keeps them.
    pub entry_hashes: Vec<Hash>,
}

impl Builder<'_> {
    /// Builds the signed batch of `items` at `first_height` after `prev`: the stages of the
    /// module diagram, in order. `scratch` is reused for hashing a small batch.
    pub(crate) fn build(
        &self,
        mut items: Vec<Item>,
        first_height: u64,
        prev: Hash,
        scratch: &mut Vec<u8>,
    ) -> Result<Built, TopicError> {
        // Only the entry hashes form a sequence (each needs the one before); encryption, item
        // hashing and record building run in parallel around it.
        let parallel = items.len() >= 256;
        let count = items.len() as u64;
        let leaves = self.seal_and_hash(&mut items, first_height, parallel, scratch)?;
        let stamps: Vec<i64> = items.iter().map(|it| it.timestamp_ms).collect();
        let links = link(self.chain, first_height, prev, &stamps, &leaves);
        let tip_hash = links.last().map_or(prev, |(_, hash)| *hash);
        let signature = (self.key.id(), self.key.sign_entry(&tip_hash));
        let entry_hashes = match self.keep_hashes {
            true => links.iter().map(|(_, hash)| *hash).collect(),
            false => Vec::new(),
        };
        let records = build_records(items, links, first_height, signature, parallel);
        Ok(Built {
            records,
            first_height,
            count,
            tip_hash,
            entry_hashes,
        })
    }

    /// Encrypts the values of `items` (when this writer encrypts) and returns their leaf
    /// hashes, in parallel for a large batch.
    fn seal_and_hash(
        &self,
        items: &mut [Item],
        first_height: u64,
        parallel: bool,
        scratch: &mut Vec<u8>,
    ) -> Result<Vec<Hash>, TopicError> {
        let nonces = match self.encryption {
            Some(_) => nonces(items.len(), parallel).map_err(|e| {
                TopicError::Invalid(format!("{}/{}: {e}", self.topic, self.partition))
            })?,
            None => Vec::new(),
        };
        let seal = Sealer {
            key: self.encryption,
            header: self
                .encryption
                .map(DataKey::header_value)
                .unwrap_or_default(),
            chain: self.chain,
            partition: self.partition,
            first_height,
            nonces: &nonces,
        };
        // Two items at a time, their leaves hashed at once (two SHA-256 lanes).
        let pair = |bufs: &mut [Vec<u8>; 2], (p, two): (usize, &mut [Item])| -> [Option<Hash>; 2] {
            for (i, it) in two.iter_mut().enumerate() {
                seal.apply(2 * p + i, it);
            }
            match two {
                [a, b] => a.as_ref().leaf_hash_x2(&b.as_ref(), bufs).map(Some),
                [a] => [Some(a.as_ref().leaf_hash(&mut bufs[0])), None],
                _ => unreachable!("chunks of one or two"),
            }
        };
        let pairs: Vec<[Option<Hash>; 2]> = if parallel {
            (items.par_chunks_mut(2).enumerate())
                .map_init(<[Vec<u8>; 2]>::default, pair)
                .collect()
        } else {
            let mut bufs = [std::mem::take(scratch), Vec::new()];
            let pairs = items
                .chunks_mut(2)
                .enumerate()
                .map(|x| pair(&mut bufs, x))
                .collect();
            *scratch = std::mem::take(&mut bufs[0]);
            pairs
        };
        Ok(pairs.into_iter().flatten().flatten().collect())
    }
}

/// Where [`append_pipelined`] sends batches and reports them: the writer.
pub(crate) trait Landing {
    /// The appender (one that [`Appender::pipelines`]).
    fn appender(&mut self) -> &mut dyn Appender;
    /// Hands a batch's entry hashes to the checkpoint tree (before the batch is sent).
    fn grow_tree(&mut self, entry_hashes: Vec<Hash>);
    /// Checks where a received batch landed and takes it as written.
    fn landed(&mut self, batch: &Landed, offsets: &[u64]) -> Result<(), TopicError>;
}

/// A batch sent: where its chain starts and ends.
pub(crate) struct Landed {
    pub first_height: u64,
    pub count: u64,
    pub tip_hash: Hash,
}

/// Batches a pipelined append keeps in flight: the one travelling while the next is built.
const IN_FLIGHT: usize = 2;

/// Appends `batches` (the items of each signed batch, in order) after the link `(height,
/// hash)` through `to`'s pipelining appender: each batch is built while the one before it
/// travels, and each is received and checked in order.
pub(crate) fn append_pipelined(
    builder: &Builder<'_>,
    to: &mut dyn Landing,
    batches: Vec<Vec<Item>>,
    (mut height, mut prev): (u64, Hash),
) -> Result<(), TopicError> {
    let mut scratch = Vec::new();
    let mut in_flight = VecDeque::with_capacity(IN_FLIGHT);
    for items in batches {
        let mut built = builder.build(items, height, prev, &mut scratch)?;
        (height, prev) = (built.first_height + built.count, built.tip_hash);
        to.grow_tree(std::mem::take(&mut built.entry_hashes));
        to.appender().send(built.records)?;
        in_flight.push_back(Landed {
            first_height: built.first_height,
            count: built.count,
            tip_hash: built.tip_hash,
        });
        if in_flight.len() >= IN_FLIGHT {
            receive(to, &mut in_flight)?;
        }
    }
    while !in_flight.is_empty() {
        receive(to, &mut in_flight)?;
    }
    Ok(())
}

/// Receives the oldest batch in flight and hands it to `to`.
fn receive(to: &mut dyn Landing, in_flight: &mut VecDeque<Landed>) -> Result<(), TopicError> {
    let batch = in_flight.pop_front().expect("a batch in flight");
    let offsets = to
        .appender()
        .receive()?
        .ok_or_else(|| TopicError::Invalid("the appender lost a batch it had been sent".into()))?;
    to.landed(&batch, &offsets)
}

/// The log records of a batch: each item with its `kchain.*` headers, the last one also
/// with `signature` over its entry hash.
fn build_records(
    items: Vec<Item>,
    links: Vec<(Hash, Hash)>,
    first_height: u64,
    signature: (KeyId, Signature),
    parallel: bool,
) -> Vec<Record> {
    let n = items.len();
    let build = |(i, (item, (prev, _))): (usize, (Item, (Hash, Hash)))| {
        let meta = ChainMeta {
            version: ENTRY_VERSION,
            height: first_height + i as u64,
            prev,
            signature: (i + 1 == n).then_some(signature),
        };
        Record {
            key: item.key,
            value: item.value,
            headers: record_headers(&meta, item.headers),
            timestamp_ms: item.timestamp_ms,
        }
    };
    if parallel {
        items
            .into_par_iter()
            .zip(links)
            .enumerate()
            .map(build)
            .collect()
    } else {
        items
            .into_iter()
            .zip(links)
            .enumerate()
            .map(build)
            .collect()
    }
}

/// Frees a batch's records, in parallel for a large one: freeing a batch's buffers is a
/// measurable share of append time.
pub(crate) fn drop_records(records: Vec<Record>) {
    if records.len() >= 256 {
        records.into_par_iter().for_each(drop);
    } else {
        drop(records);
    }
}

/// Encrypts the values of one batch in place (when the writer encrypts).
struct Sealer<'a> {
    key: Option<&'a DataKey>,
    /// The `kchain.enc` header value of `key`.
    header: Vec<u8>,
    chain: ChainId,
    partition: u32,
    first_height: u64,
    nonces: &'a [[u8; NONCE_LEN]],
}

impl Sealer<'_> {
    /// Encrypts the value of the batch's item `i` for its height and marks it with the
    /// `kchain.enc` header (an application header, so the entry hash commits to it).
    fn apply(&self, i: usize, item: &mut Item) {
        let Some(key) = self.key else { return };
        let Some(value) = &mut item.value else { return };
        let place = RecordPlace {
            chain: self.chain,
            partition: self.partition,
            height: self.first_height + i as u64,
        };
        key.seal_in_place(&place, self.nonces[i], value);
        item.headers.push((H_ENC.to_owned(), self.header.clone()));
    }
}
