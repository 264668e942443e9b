//! The `kchain.*` record headers that turn a record into a link of a chained partition.
//!
//! ```text
//! kchain.v       "1"                  every record: entry format version
//! kchain.height  decimal u64          every record: 0 for genesis
//! kchain.prev    64 hex digits        every record: entry hash of the previous record
//! kchain.key     16 hex digits        last record of each appended batch: signer's key id
//! kchain.sig     128 hex digits       last record of each appended batch: Ed25519 signature
//! ```
//!
//! Values are ASCII so that kcat and Kafka's console consumer show them readably. All other
//! headers are the application's and are part of the item.

use crate::entry::{ChainId, EntryHeader, ENTRY_VERSION};
use crate::hash::{from_hex, Hash};
use crate::item::ItemRef;
use crate::keys::{KeyId, Signature};

pub const HEADER_PREFIX: &str = "kchain.";
pub const H_VERSION: &str = "kchain.v";
pub const H_HEIGHT: &str = "kchain.height";
pub const H_PREV: &str = "kchain.prev";
pub const H_KEY: &str = "kchain.key";
pub const H_SIG: &str = "kchain.sig";

/// True for the names of kchain's own headers.
pub fn is_chain_header(name: &str) -> bool {
    name.starts_with(HEADER_PREFIX)
}

/// The chain fields a record carries in its `kchain.*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainMeta {
    pub version: u8,
    pub height: u64,
    pub prev: Hash,
    pub signature: Option<(KeyId, Signature)>,
}

/// Why a record's `kchain.*` headers do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    #[error("record has no kchain headers (written by a producer that is not a kchain writer)")]
    NotChained,
    #[error("header {name}: {detail}")]
    Bad { name: String, detail: String },
    #[error("header {0} is missing")]
    Missing(&'static str),
}

impl ChainMeta {
    /// The `kchain.*` headers for this meta, in a fixed order, as (name, value) pairs.
    pub fn to_headers(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut v = vec![
            (H_VERSION, self.version.to_string().into_bytes()),
            (H_HEIGHT, self.height.to_string().into_bytes()),
            (H_PREV, hex::encode(self.prev).into_bytes()),
        ];
        if let Some((id, sig)) = &self.signature {
            v.push((H_KEY, id.to_string().into_bytes()));
            v.push((H_SIG, sig.to_hex().into_bytes()));
        }
        v
    }

    /// Parses the `kchain.*` headers among `headers` (other headers are ignored). Never panics.
    pub fn parse<'a>(
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<ChainMeta, MetaError> {
        let (mut version, mut height, mut prev, mut key, mut sig) = (None, None, None, None, None);
        let mut seen_any = false;
        for (name, value) in headers {
            if !is_chain_header(name) {
                continue;
            }
            seen_any = true;
            let bad = |detail: &str| MetaError::Bad {
                name: name.to_owned(),
                detail: detail.to_owned(),
            };
            let text = std::str::from_utf8(value).map_err(|_| bad("not ASCII"))?;
            let slot_taken = match name {
                H_VERSION => version.replace(text).is_some(),
                H_HEIGHT => height.replace(text).is_some(),
                H_PREV => prev.replace(text).is_some(),
                H_KEY => key.replace(text).is_some(),
                H_SIG => sig.replace(text).is_some(),
                _ => return Err(bad("unknown kchain header")),
            };
            if slot_taken {
                return Err(bad("appears twice"));
            }
        }
        if !seen_any {
            return Err(MetaError::NotChained);
        }
        let bad = |name: &str, detail: String| MetaError::Bad {
            name: name.to_owned(),
            detail,
        };
        let version = version.ok_or(MetaError::Missing(H_VERSION))?;
        let version: u8 = match version.parse::<u8>() {
            Ok(v) if v == ENTRY_VERSION && version == v.to_string() => v,
            _ => return Err(bad(H_VERSION, format!("unsupported version '{version}'"))),
        };
        let height_text = height.ok_or(MetaError::Missing(H_HEIGHT))?;
        let height: u64 = match height_text.parse::<u64>() {
            // Canonical decimal only: "007" would otherwise hash the same as "7".
            Ok(h) if height_text == h.to_string() => h,
            _ => return Err(bad(H_HEIGHT, format!("'{height_text}' is not a height"))),
        };
        let prev_text = prev.ok_or(MetaError::Missing(H_PREV))?;
        let prev = parse_lower_hex32(prev_text)
            .ok_or_else(|| bad(H_PREV, "expected 64 lower-case hex digits".into()))?;
        let signature = match (key, sig) {
            (None, None) => None,
            (Some(k), Some(s)) => {
                let id = KeyId::from_hex(k).map_err(|e| bad(H_KEY, e.to_string()))?;
                let sig = Signature::from_hex(s).map_err(|e| bad(H_SIG, e.to_string()))?;
                Some((id, sig))
            }
            (Some(_), None) => return Err(MetaError::Missing(H_SIG)),
            (None, Some(_)) => return Err(MetaError::Missing(H_KEY)),
        };
        Ok(ChainMeta {
            version,
            height,
            prev,
            signature,
        })
    }
}

fn parse_lower_hex32(s: &str) -> Option<Hash> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    from_hex(s)
}

/// The entry header of a chained-topic record: one item, whose leaf hash is the items root.
pub fn record_entry_header<'a, H>(
    chain: ChainId,
    height: u64,
    prev: Hash,
    item: &ItemRef<'a, H>,
    scratch: &mut Vec<u8>,
) -> EntryHeader
where
    H: Iterator<Item = (&'a str, &'a [u8])> + Clone,
{
    EntryHeader {
        version: ENTRY_VERSION,
        chain,
        height,
        prev,
        timestamp_ms: item.timestamp_ms,
        items_root: item.leaf_hash(scratch),
        item_count: 1,
    }
}
