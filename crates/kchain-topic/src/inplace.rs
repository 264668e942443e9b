//! A signed batch built in place in the log's record encoding, for an appender that takes
//! encoded records (the embedded log's): no [`kchain_log::Record`] per item, no copy from
//! records into the log's batch, no allocation per record.
//!
//! ```text
//! lengths (known before hashing: heights are known, hashes and hex have fixed widths)
//!   ──► one buffer, a slot per record
//!   ──► per record, in parallel: key, value (sealed in its slot when encrypting), the
//!       application headers, kchain.enc, kchain.v, kchain.height; leaf hashes from those
//!       bytes, two records at a time
//!   ──► entry hashes, in order ([`link`]); a large batch in chunks, each chunk linked
//!       while the next one is built and the one before gets its kchain.prev (parallel)
//!   ──► kchain.prev of the last chunk (parallel); kchain.key and kchain.sig of the last
//!       record
//! ```
//!
//! The bytes are those the writer's record path gives the log (the application's headers,
//! then `kchain.enc`, then the chain headers of `ChainMeta::to_headers`, in that order):
//! `tests/inplace.rs` checks both paths write the same segment. A [`Builder`] holds nothing of
//! the writer, so that the writer builds the next batch while its appender writes one.

use kchain_core::{
    fill_random_nonces, ChainId, DataKey, EntryHeader, Hash, ItemRef, RecordPlace, ENTRY_VERSION,
    H_ENC, NONCE_LEN,
};
use kchain_core::{H_HEIGHT, H_KEY, H_PREV, H_SIG, H_VERSION};
use kchain_log::{EncodedRecords, Finished, RecordEncoder, RecordSlot};
use rayon::prelude::*;

use crate::batches::{Builder, ItemFields};
use crate::error::TopicError;

/// A batch ready to append: its records, whole and signed.
pub(crate) struct Prepared {
    pub records: EncodedRecords,
    pub first_height: u64,
    pub count: u64,
    pub tip_hash: Hash,
    /// The entry hashes, if the builder keeps them.
    pub entry_hashes: Vec<Hash>,
}

impl Builder<'_> {
    /// Builds the batch of `items` at `first_height` after `prev` in `buf` (reused): the
    /// stages of the module diagram, then the signature.
    pub(crate) fn prepare<F: ItemFields>(
        &self,
        items: &[F],
        first_height: u64,
        prev: Hash,
        buf: Vec<u8>,
    ) -> Result<Prepared, TopicError> {
        let parallel = items.len() >= 256;
        let seal = match self.encryption {
            Some(key) => Some((
                key,
                key.header_value(),
                nonces(items.len(), parallel).map_err(|e| {
                    TopicError::Invalid(format!("{}/{}: {e}", self.topic, self.partition))
                })?,
            )),
            None => None,
        };
        let plan = Plan {
            chain: self.chain,
            partition: self.partition,
            first_height,
            seal,
        };
        let mut records = plan.layout(items, buf);
        let Linked {
            signature: slots,
            receipts,
            links,
        } = plan.build_and_link(items, &mut records, prev, parallel);
        let tip_hash = links.last().map_or(prev, |(_, hash)| *hash);
        if let Some((key, sig)) = slots {
            kchain_core::hex::encode_into(&self.key.id().0, key);
            kchain_core::hex::encode_into(&self.key.sign_entry(&tip_hash).0, sig);
        }
        // With a receipt for every record (each was written whole), the log skips checking
        // them again; a missing one makes it check them all.
        records.confirm(receipts.into_iter().flatten());
        let entry_hashes = match self.keep_hashes {
            true => links.iter().map(|(_, hash)| *hash).collect(),
            false => Vec::new(),
        };
        Ok(Prepared {
            records,
            first_height,
            count: items.len() as u64,
            tip_hash,
            entry_hashes,
        })
    }
}

/// A fresh random nonce per record: the kernel's random generator costs about 30 ns a
/// nonce, so a large batch fills them in parallel, off the sequential path.
pub(crate) fn nonces(
    n: usize,
    parallel: bool,
) -> Result<Vec<[u8; NONCE_LEN]>, kchain_core::CryptError> {
    let mut nonces = vec![[0u8; NONCE_LEN]; n];
    if parallel {
        nonces
            .par_chunks_mut(1024)
            .try_for_each(fill_random_nonces)?;
    } else {
        fill_random_nonces(&mut nonces)?;
    }
    Ok(nonces)
}

/// The links of a batch whose first entry is at `first_height` after `prev`: for each item,
/// (the entry hash before it, its own entry hash). The one sequential stage.
pub(crate) fn link(
    chain: ChainId,
    first_height: u64,
    mut prev: Hash,
    timestamps: &[i64],
    leaves: &[Hash],
) -> Vec<(Hash, Hash)> {
    let mut links = Vec::with_capacity(leaves.len());
    for (i, (&timestamp_ms, leaf)) in timestamps.iter().zip(leaves).enumerate() {
        let hash = EntryHeader {
            version: ENTRY_VERSION,
            chain,
            height: first_height + i as u64,
            prev,
            timestamp_ms,
            items_root: *leaf,
            item_count: 1,
        }
        .hash();
        links.push((prev, hash));
        prev = hash;
    }
    links
}

/// What a batch's records need besides the items: where they go and how values are sealed.
pub(crate) struct Plan<'a> {
    pub chain: ChainId,
    pub partition: u32,
    pub first_height: u64,
    pub seal: Option<Seal<'a>>,
}

/// The key values are sealed under, its `kchain.enc` header value, and a nonce per item.
type Seal<'a> = (&'a DataKey, Vec<u8>, Vec<[u8; NONCE_LEN]>);

/// A batch built and linked ([`Plan::build_and_link`]): all but its signature.
pub(crate) struct Linked<'b> {
    /// `kchain.key` and `kchain.sig` of the batch's last record.
    signature: Option<(&'b mut [u8], &'b mut [u8])>,
    /// The encoder's receipt of every record, in order.
    receipts: Vec<Option<Finished>>,
    /// For each record, (the entry hash before it, its own entry hash).
    links: Vec<(Hash, Hash)>,
}

/// The parts of a record filled after the sequential stage.
pub(crate) struct Pending<'b> {
    pub leaf: Hash,
    pub timestamp_ms: i64,
    prev: &'b mut [u8],
    /// `kchain.key` and `kchain.sig`: the batch's last record only.
    signature: Option<(&'b mut [u8], &'b mut [u8])>,
    /// The encoder's receipt that the record is whole (so the log need not check it).
    receipt: Option<Finished>,
}

/// Records of a chunk of a large batch (even, so that pairs do not straddle chunks).
const CHUNK: usize = 2048;

const HASH_HEX: usize = 64;
const KEY_HEX: usize = 16;
const SIG_HEX: usize = 128;

impl Plan<'_> {
    fn sealed(&self, item: &impl ItemFields) -> Option<(&DataKey, &[u8])> {
        match (&self.seal, item.value()) {
            (Some((key, header, _)), Some(_)) => Some((key, header.as_slice())),
            _ => None,
        }
    }

    /// Encoded length of record `i` of `n` (the last carries the signature).
    fn record_len(&self, i: usize, n: usize, item: &impl ItemFields) -> usize {
        let sealed = self.sealed(item);
        let value = item.value().map(|v| match sealed {
            Some(_) => DataKey::sealed_len(v.len()),
            None => v.len(),
        });
        let app = item.headers().map(|(n, v)| (n.len(), v.len()));
        let enc = sealed.map(|(_, h)| (H_ENC.len(), h.len()));
        let height = self.first_height + i as u64;
        let chain = [
            (H_VERSION.len(), decimal_len(u64::from(ENTRY_VERSION))),
            (H_HEIGHT.len(), decimal_len(height)),
            (H_PREV.len(), HASH_HEX),
        ];
        let sig = (i + 1 == n).then_some([(H_KEY.len(), KEY_HEX), (H_SIG.len(), SIG_HEX)]);
        RecordEncoder::len(
            item.key().map(<[u8]>::len),
            value,
            app.chain(enc).chain(chain).chain(sig.into_iter().flatten()),
        )
    }

    /// Writes `items` into `records` (laid out by [`Plan::layout`]) but the signature, and
    /// links them after `prev`: returns the last record's signature slots, every record's
    /// receipt and the links. A large batch goes in chunks of [`CHUNK`], so that the one
    /// sequential stage, linking a chunk, runs beside the parallel build of the next one
    /// and the filling of the `kchain.prev` of the one before (whose links are known),
    /// instead of leaving a core idle; only the last chunk's `kchain.prev` is filled after
    /// the last link.
    fn build_and_link<'b, F: ItemFields>(
        &self,
        items: &[F],
        records: &'b mut EncodedRecords,
        prev: Hash,
        parallel: bool,
    ) -> Linked<'b> {
        let n = items.len();
        let chunk = if parallel { CHUNK } else { n.max(1) };
        let mut slots = records.record_slots().into_iter();
        let mut take = |start: usize| {
            let end = (start + chunk).min(n);
            let slots: Vec<RecordSlot<'b>> = slots.by_ref().take(end - start).collect();
            (start..end, slots)
        };
        let link_chunk = |start: usize, prev: Hash, chunk: &[Pending<'_>]| {
            let (stamps, leaves): (Vec<i64>, Vec<Hash>) =
                chunk.iter().map(|p| (p.timestamp_ms, p.leaf)).unzip();
            link(
                self.chain,
                self.first_height + start as u64,
                prev,
                &stamps,
                &leaves,
            )
        };
        let (mut receipts, mut links) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (range, first) = take(0);
        let mut built = self.build(items, range, first, parallel);
        // The chunk linked last, whose `kchain.prev` are still to fill, and where it starts.
        let mut linked: Option<(Vec<Pending<'b>>, usize)> = None;
        let mut start = 0;
        loop {
            // The chunk just built starts where those before it end, and links after the
            // last of their entry hashes.
            let tip = links.last().map_or(prev, |&(_, hash)| hash);
            let next_start = start + built.len();
            let fill_linked = || match linked.take() {
                Some((chunk, at)) => fill_prevs(chunk, &links[at..], parallel),
                None => Vec::new(),
            };
            let (new_links, (next, filled)) = if next_start < n {
                let (range, slots) = take(next_start);
                rayon::join(
                    || link_chunk(start, tip, &built),
                    || {
                        let (next, filled) =
                            rayon::join(|| self.build(items, range, slots, parallel), fill_linked);
                        (Some(next), filled)
                    },
                )
            } else {
                let (new_links, filled) =
                    rayon::join(|| link_chunk(start, tip, &built), fill_linked);
                (new_links, (None, filled))
            };
            receipts.extend(filled);
            links.extend(new_links);
            linked = Some((built, start));
            start = next_start;
            match next {
                Some(next) => built = next,
                None => break,
            }
        }
        let (mut last, at) = linked.expect("the last chunk, linked");
        let signature = last.last_mut().and_then(|p| p.signature.take());
        receipts.extend(fill_prevs(last, &links[at..], parallel));
        Linked {
            signature,
            receipts,
            links,
        }
    }

    /// Writes the records `range` of `items` into their `slots` (see
    /// [`Plan::build_and_link`]); returns the slots left to fill of each and its leaf hash.
    /// Records go two at a time, so that their leaves are hashed at once (two SHA-256
    /// lanes).
    fn build<'b, F: ItemFields>(
        &self,
        items: &[F],
        range: std::ops::Range<usize>,
        slots: Vec<RecordSlot<'b>>,
        parallel: bool,
    ) -> Vec<Pending<'b>> {
        let (n, first) = (items.len(), range.start);
        let mut slots = slots.into_iter();
        let mut pairs = Vec::with_capacity(range.len().div_ceil(2));
        while let Some(a) = slots.next() {
            pairs.push((a, slots.next()));
        }
        let items = &items[range];
        let one = |bufs: &mut [Vec<u8>; 2], (p, (pair, slots)): (usize, (&[F], _))| {
            self.write_pair(first + 2 * p, n, pair, slots, bufs)
        };
        let built: Vec<(Pending<'b>, Option<Pending<'b>>)> = if parallel {
            pairs
                .into_par_iter()
                .zip(items.par_chunks(2))
                .map(|(slots, pair)| (pair, slots))
                .enumerate()
                .map_init(Default::default, one)
                .collect()
        } else {
            let mut bufs = Default::default();
            (pairs.into_iter().zip(items.chunks(2)))
                .map(|(slots, pair)| (pair, slots))
                .enumerate()
                .map(|x| one(&mut bufs, x))
                .collect()
        };
        let mut pending = Vec::with_capacity(items.len());
        for (a, b) in built {
            pending.push(a);
            pending.extend(b);
        }
        pending
    }

    /// Writes records `i` and `i + 1` of `n` (`pair`, or record `i` alone) into their
    /// slots and hashes their leaves at once.
    fn write_pair<'b>(
        &self,
        i: usize,
        n: usize,
        pair: &[impl ItemFields],
        (slot_a, slot_b): (RecordSlot<'b>, Option<RecordSlot<'b>>),
        bufs: &mut [Vec<u8>; 2],
    ) -> (Pending<'b>, Option<Pending<'b>>) {
        let (mut a, value_a) = self.write(i, n, &pair[0], slot_a);
        let leaf_a = self.item_ref(&pair[0], value_a);
        match (slot_b, pair.get(1)) {
            (Some(slot_b), Some(item_b)) => {
                let (mut b, value_b) = self.write(i + 1, n, item_b, slot_b);
                [a.leaf, b.leaf] = leaf_a.leaf_hash_x2(&self.item_ref(item_b, value_b), bufs);
                (a, Some(b))
            }
            _ => {
                a.leaf = leaf_a.leaf_hash(&mut bufs[0]);
                (a, None)
            }
        }
    }

    /// Room for the records of `items` in `buf` (reused).
    pub(crate) fn layout(&self, items: &[impl ItemFields], buf: Vec<u8>) -> EncodedRecords {
        let n = items.len();
        EncodedRecords::with_lengths(
            buf,
            items
                .iter()
                .enumerate()
                .map(|(i, it)| self.record_len(i, n, it)),
        )
    }

    /// Writes record `i` of `n` into `slot` (but its `kchain.prev` and signature); returns
    /// what is left to fill (its leaf hash too) and its value as stored (and hashed).
    fn write<'b>(
        &self,
        i: usize,
        n: usize,
        item: &impl ItemFields,
        slot: RecordSlot<'b>,
    ) -> (Pending<'b>, Option<&'b [u8]>) {
        let height = self.first_height + i as u64;
        let mut e = RecordEncoder::new(slot, item.timestamp_ms());
        e.key(item.key());
        let sealed = self.sealed(item);
        let value: Option<&[u8]> = match (sealed, item.value(), &self.seal) {
            (Some((key, _)), Some(v), Some((_, _, nonces))) => {
                let out = e
                    .value_slot(Some(DataKey::sealed_len(v.len())))
                    .expect("a value slot");
                let place = RecordPlace {
                    chain: self.chain,
                    partition: self.partition,
                    height,
                };
                key.seal_into(&place, nonces[i], v, out);
                Some(out)
            }
            _ => {
                let mut out = e.value_slot(item.value().map(<[u8]>::len));
                if let (Some(out), Some(v)) = (&mut out, item.value()) {
                    out.copy_from_slice(v);
                }
                out.map(|v| &*v)
            }
        };
        let enc = sealed.map(|(_, h)| (H_ENC, h));
        let last = i + 1 == n;
        e.header_count(
            item.header_count() + usize::from(enc.is_some()) + 3 + 2 * usize::from(last),
        );
        for (name, v) in item.headers() {
            e.header(name, v);
        }
        if let Some((name, v)) = enc {
            e.header(name, v);
        }
        write_decimal(
            e.header_slot(H_VERSION, decimal_len(u64::from(ENTRY_VERSION))),
            u64::from(ENTRY_VERSION),
        );
        write_decimal(e.header_slot(H_HEIGHT, decimal_len(height)), height);
        let prev = e.header_slot(H_PREV, HASH_HEX);
        let signature =
            last.then(|| (e.header_slot(H_KEY, KEY_HEX), e.header_slot(H_SIG, SIG_HEX)));
        let receipt = e.finish();
        let pending = Pending {
            leaf: Hash::default(),
            timestamp_ms: item.timestamp_ms(),
            prev,
            signature,
            receipt,
        };
        (pending, value)
    }

    /// What `item`'s leaf hash is over, its value as stored (`value`: the ciphertext when
    /// sealed) and `kchain.enc` after its own headers.
    fn item_ref<'a, F: ItemFields>(
        &'a self,
        item: &'a F,
        value: Option<&'a [u8]>,
    ) -> ItemRef<'a, impl Iterator<Item = (&'a str, &'a [u8])> + Clone> {
        let enc = self.sealed(item).map(|(_, h)| (H_ENC, h));
        ItemRef {
            key: item.key(),
            value,
            headers: item.headers().chain(enc),
            timestamp_ms: item.timestamp_ms(),
        }
    }
}

/// Fills the `kchain.prev` of `pending` from `links` (the entry hash before each record, in
/// the same order); returns the encoders' receipts.
fn fill_prevs(
    pending: Vec<Pending<'_>>,
    links: &[(Hash, Hash)],
    parallel: bool,
) -> Vec<Option<Finished>> {
    let fill = |(p, (prev, _)): (Pending<'_>, &(Hash, Hash))| {
        kchain_core::hex::encode_into(prev, p.prev);
        p.receipt
    };
    if parallel {
        pending.into_par_iter().zip(links).map(fill).collect()
    } else {
        pending.into_iter().zip(links).map(fill).collect()
    }
}

/// Digits of `v` in decimal (no leading zeros; "0" for 0).
pub(crate) fn decimal_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// `v` in decimal into `out`, which is [`decimal_len`] long.
pub(crate) fn write_decimal(out: &mut [u8], mut v: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_hex_are_the_spellings_of_to_string_and_hex_encode() {
        for v in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            let mut out = vec![0; decimal_len(v)];
            write_decimal(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = vec![0; 512];
        kchain_core::hex::encode_into(&bytes, &mut out);
        let spelled: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out, spelled.into_bytes());
    }
}
