//! The parallel half of verifying: one stored record turned into an [`Observation`], with
//! its headers parsed, its hashes recomputed and its signature (if any) checked.

use crate::chain::{is_chain_header, record_entry_header, ChainMeta, MetaError};
use crate::entry::ChainId;
use crate::hash::Hash;
use crate::item::ItemRef;
use crate::keys::KeyId;
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
    let meta = match ChainMeta::parse(headers.clone()) {
        Ok(m) => m,
        Err(error) => return Observation::Malformed { offset, error },
    };
    let item = ItemRef {
        key,
        value,
        headers: headers.filter(|(n, _)| !is_chain_header(n)),
        timestamp_ms,
    };
    let hash = record_entry_header(ctx.chain, meta.height, meta.prev, &item, scratch).hash();
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
