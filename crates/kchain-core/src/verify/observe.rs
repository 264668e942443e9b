//! The parallel half of verifying: one stored record turned into an [`Observation`], with
//! its headers parsed, its hashes recomputed and its signature (if any) checked.

use crate::chain::{ChainMeta, MetaError, MetaSlots};
use crate::entry::{ChainId, EntryHeader, ENTRY_VERSION};
use crate::hash::Hash;
use crate::item::LeafWriter;
use crate::keys::KeyId;
use crate::sha::sha256_in_place;
use crate::trust::{KeyStanding, Trust};

/// How a record's signature (if it carries one) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigCheck {
    /// No signature: a record inside a batch.
    None,
    /// Valid, by a key trusted for this topic.
    Valid(KeyId),
    /// Signed by a trusted key, but the signature does not verify over the record's hash.
    Invalid(KeyId),
    /// Signed by a key the trust file does not list.
    Unknown(KeyId),
    /// Signed (validly or not) by a key trusted only for other topics.
    OtherTopics(KeyId),
}

/// One record's recomputed chain fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    pub offset: u64,
    pub height: u64,
    pub prev: Hash,
    /// The entry hash recomputed from the record's content.
    pub hash: Hash,
    pub sig: SigCheck,
}

/// What [`observe`] makes of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    Entry(Observed),
    Malformed { offset: u64, error: MetaError },
}

impl Observation {
    pub fn offset(&self) -> u64 {
        match self {
            Observation::Entry(o) => o.offset,
            Observation::Malformed { offset, .. } => *offset,
        }
    }

    pub(super) fn entry(&self) -> Option<&Observed> {
        match self {
            Observation::Entry(o) => Some(o),
            Observation::Malformed { .. } => None,
        }
    }
}

/// What [`observe`] needs to know about the chain a record belongs to.
#[derive(Clone, Copy, Debug)]
pub struct ChainContext<'t> {
    pub topic: &'t str,
    pub chain: ChainId,
    pub trust: &'t Trust,
}

/// Recomputes one record's entry hash and checks its signature. `headers` are all the
/// record's headers (kchain's and the application's) in order; `scratch` is reused space.
///
/// The headers are walked once: the chain headers are picked out as the item's are encoded
/// (the same entry hash as [`crate::record_entry_header`] over an [`crate::ItemRef`] of the
/// headers that are not chain headers, and the same error as [`crate::ChainMeta::parse`]).
pub fn observe<'a, H>(
    ctx: &ChainContext<'_>,
    offset: u64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: H,
    timestamp_ms: i64,
    scratch: &mut Vec<u8>,
) -> Observation
where
    H: Iterator<Item = (&'a str, &'a [u8])> + Clone,
{
    let mut meta = NO_META;
    match prepare(scratch, &mut meta, key, value, headers, timestamp_ms) {
        Err(error) => Observation::Malformed { offset, error },
        Ok(()) => {
            let leaf = sha256_in_place(scratch);
            let hash = entry_header(ctx, &meta, timestamp_ms, leaf).hash();
            concluded(ctx, offset, &meta, hash)
        }
    }
}

/// A [`ChainMeta`] for [`prepare`] to fill in.
pub(super) const NO_META: ChainMeta = ChainMeta {
    version: ENTRY_VERSION,
    height: 0,
    prev: [0; 32],
    signature: None,
};

/// The first step of observing a record: parses its chain headers into `meta` and writes
/// its item's leaf message (what the leaf hash is SHA-256 of) into `buf`, in one walk of
/// the headers. On an error, `meta` and `buf` hold garbage.
#[inline]
pub(super) fn prepare<'a, H>(
    buf: &mut Vec<u8>,
    meta: &mut ChainMeta,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: H,
    timestamp_ms: i64,
) -> Result<(), MetaError>
where
    H: Iterator<Item = (&'a str, &'a [u8])>,
{
    let mut slots = MetaSlots::default();
    let mut leaf = LeafWriter::new(buf, timestamp_ms, key, value);
    for (name, value) in headers {
        if !slots.offer(name, value)? {
            leaf.header(name, value);
        }
    }
    slots.finish_into(meta)?;
    leaf.finish();
    Ok(())
}

/// The header of a record's entry, from its chain headers and its item's leaf hash.
#[inline]
pub(super) fn entry_header(
    ctx: &ChainContext<'_>,
    meta: &ChainMeta,
    timestamp_ms: i64,
    leaf: Hash,
) -> EntryHeader {
    EntryHeader {
        version: ENTRY_VERSION,
        chain: ctx.chain,
        height: meta.height,
        prev: meta.prev,
        timestamp_ms,
        items_root: leaf,
        item_count: 1,
    }
}

/// The last step: the record's observation, from its recomputed entry hash `hash`, with its
/// signature (if it carries one) checked over that hash.
#[inline]
pub(super) fn concluded(
    ctx: &ChainContext<'_>,
    offset: u64,
    meta: &ChainMeta,
    hash: Hash,
) -> Observation {
    let sig = match meta.signature {
        None => SigCheck::None,
        Some((id, sig)) => match ctx.trust.standing(id, ctx.topic) {
            KeyStanding::Allowed(k) if k.verify_entry(&hash, &sig) => SigCheck::Valid(id),
            KeyStanding::Allowed(_) => SigCheck::Invalid(id),
            KeyStanding::OtherTopics(_) => SigCheck::OtherTopics(id),
            KeyStanding::Unknown => SigCheck::Unknown(id),
        },
    };
    Observation::Entry(Observed {
        offset,
        height: meta.height,
        prev: meta.prev,
        hash,
        sig,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{is_chain_header, record_entry_header, ChainMeta, H_NAME_NOT_UTF8};
    use crate::item::ItemRef;
    use proptest::prelude::*;

    /// The reference: the chain headers parsed by one walk, the item encoded by others.
    fn reference(headers: &[(String, Vec<u8>)], value: &[u8]) -> Result<Hash, MetaError> {
        let pairs = || headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        let meta = ChainMeta::parse(pairs())?;
        let item = ItemRef {
            key: None,
            value: Some(value),
            headers: pairs().filter(|(n, _)| !is_chain_header(n)),
            timestamp_ms: 5,
        };
        let chain = ChainId::from_name("t/0");
        Ok(record_entry_header(chain, meta.height, meta.prev, &item, &mut Vec::new()).hash())
    }

    fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
        let prev = "a".repeat(64).into_bytes();
        prop_oneof![
            Just(("kchain.v".to_owned(), b"1".to_vec())),
            Just(("kchain.height".to_owned(), b"7".to_vec())),
            Just(("kchain.prev".to_owned(), prev)),
            Just(("kchain.key".to_owned(), b"0123456789abcdef".to_vec())),
            Just(("kchain.sig".to_owned(), vec![b'0'; 128])),
            Just((H_NAME_NOT_UTF8.to_owned(), Vec::new())),
            Just(("kchain.height".to_owned(), b"007".to_vec())),
            ("[a-z.]{0,9}", proptest::collection::vec(any::<u8>(), 0..20)),
        ]
    }

    proptest! {
        /// One walk over the headers gives the reference's hash, or its error, whatever
        /// the headers and their order.
        #[test]
        fn one_walk_matches_the_reference(
            headers in proptest::collection::vec(header(), 0..9),
            value in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let trust = Trust::default();
            let ctx = ChainContext { topic: "t", chain: ChainId::from_name("t/0"), trust: &trust };
            let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
            let got = observe(&ctx, 3, None, Some(&value), pairs, 5, &mut Vec::new());
            match (reference(&headers, &value), got) {
                (Ok(hash), Observation::Entry(o)) => prop_assert_eq!(o.hash, hash),
                (Err(e), Observation::Malformed { offset, error }) => {
                    prop_assert_eq!(offset, 3);
                    prop_assert_eq!(error, e);
                }
                (want, got) => prop_assert!(false, "reference {:?}, observed {:?}", want, got),
            }
        }
    }
}
