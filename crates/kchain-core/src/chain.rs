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
//! Hex digits are lower-case and decimals have no leading zeros: each value has exactly one
//! spelling, anything else is malformed (the header text itself is not hashed, so a second
//! spelling would be a change nobody sees). A record whose header names are not all valid
//! UTF-8 is malformed too: a log backend that meets such a name passes
//! [`H_NAME_NOT_UTF8`] in its place rather than a lossy conversion that could collide with a
//! real name.
//!
//! Values are ASCII so that kcat and Kafka's console consumer show them readably. These five
//! are the chain headers; every other header is part of the item, including other `kchain.*`
//! names such as `kchain.enc` (an encrypted value's key id), so that the entry hash commits to
//! them.

use crate::entry::{ChainId, EntryHeader, ENTRY_VERSION};
use crate::hash::Hash;
use crate::hex;
use crate::item::ItemRef;
use crate::keys::{KeyId, Signature};

pub const HEADER_PREFIX: &str = "kchain.";
pub const H_VERSION: &str = "kchain.v";
pub const H_HEIGHT: &str = "kchain.height";
pub const H_PREV: &str = "kchain.prev";
pub const H_KEY: &str = "kchain.key";
pub const H_SIG: &str = "kchain.sig";
/// The name a log backend reports for a header whose name is not valid UTF-8 (reserved: a
/// record with a header of this name is malformed whatever its bytes).
pub const H_NAME_NOT_UTF8: &str = "kchain.!name-not-utf8";

/// True for the names of the chain headers (`kchain.v`, `kchain.height`, `kchain.prev`,
/// `kchain.key`, `kchain.sig`): the headers that are not part of the item. Other `kchain.*`
/// names are reserved to kchain but are application headers as far as hashing goes.
pub fn is_chain_header(name: &str) -> bool {
    !matches!(slot_of(name), Slot::App | Slot::NotUtf8)
}

/// Which chain header a header name is, if any: one match over the name, the verifier's
/// per-header step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Version,
    Height,
    Prev,
    Key,
    Sig,
    /// [`H_NAME_NOT_UTF8`]: the record is malformed.
    NotUtf8,
    /// Any other name: the item's.
    App,
}

#[inline(always)]
fn slot_of(name: &str) -> Slot {
    // Most application headers are told apart by their first bytes alone.
    if !name.starts_with(HEADER_PREFIX) {
        return Slot::App;
    }
    match name {
        H_VERSION => Slot::Version,
        H_HEIGHT => Slot::Height,
        H_PREV => Slot::Prev,
        H_KEY => Slot::Key,
        H_SIG => Slot::Sig,
        H_NAME_NOT_UTF8 => Slot::NotUtf8,
        _ => Slot::App,
    }
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

    /// Parses the chain headers among `headers` (other headers, `kchain.enc` included, are
    /// ignored). Never panics.
    pub fn parse<'a>(
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<ChainMeta, MetaError> {
        let mut slots = MetaSlots::default();
        for (name, value) in headers {
            slots.offer(name, value)?;
        }
        slots.finish()
    }
}

/// The chain headers met so far by one walk over a record's headers: [`ChainMeta::parse`]
/// one header at a time, for a caller that does something else with the other headers in
/// the same walk (the verifier encodes them into the item).
#[derive(Default)]
pub(crate) struct MetaSlots<'a> {
    version: Option<&'a [u8]>,
    height: Option<&'a [u8]>,
    prev: Option<&'a [u8]>,
    key: Option<&'a [u8]>,
    sig: Option<&'a [u8]>,
    seen_any: bool,
}

impl<'a> MetaSlots<'a> {
    /// Takes the next header: `Ok(true)` when it is a chain header (kept for
    /// [`finish`](Self::finish)), `Ok(false)` when it belongs to the item.
    #[inline(always)]
    pub(crate) fn offer(&mut self, name: &str, value: &'a [u8]) -> Result<bool, MetaError> {
        let slot = match slot_of(name) {
            Slot::App => return Ok(false),
            Slot::NotUtf8 => return Err(bad(name, "a header name is not valid UTF-8".into())),
            Slot::Version => &mut self.version,
            Slot::Height => &mut self.height,
            Slot::Prev => &mut self.prev,
            Slot::Key => &mut self.key,
            Slot::Sig => &mut self.sig,
        };
        self.seen_any = true;
        if slot.replace(value).is_some() {
            return Err(bad(name, "appears twice".into()));
        }
        Ok(true)
    }

    /// The chain fields, once every header was offered.
    pub(crate) fn finish(self) -> Result<ChainMeta, MetaError> {
        let mut meta = ChainMeta {
            version: ENTRY_VERSION,
            height: 0,
            prev: [0; 32],
            signature: None,
        };
        self.finish_into(&mut meta)?;
        Ok(meta)
    }

    /// [`finish`](Self::finish) into `meta`, which the verifier keeps in place rather than
    /// move a ChainMeta per record through its results (on an error, `meta` holds garbage).
    #[inline]
    pub(crate) fn finish_into(self, meta: &mut ChainMeta) -> Result<(), MetaError> {
        // A record inside a batch (all but one of each batch): version, height and prev,
        // well-formed, no signature. Anything else, signed records and every error, takes
        // the full path, which decides in the same order as always.
        if let (Some(v), Some(h), Some(p), None, None) =
            (self.version, self.height, self.prev, self.key, self.sig)
        {
            if canonical_decimal(v) == Some(u64::from(ENTRY_VERSION)) {
                if let Some(height) = canonical_decimal(h) {
                    if hex::decode_lower_into(p, &mut meta.prev) {
                        meta.version = ENTRY_VERSION;
                        meta.height = height;
                        meta.signature = None;
                        return Ok(());
                    }
                }
            }
        }
        *meta = self.finish_in_full()?;
        Ok(())
    }

    /// [`finish`](Self::finish) for every record: the order in which it decides is the
    /// order of the errors a record gets.
    #[cold]
    fn finish_in_full(self) -> Result<ChainMeta, MetaError> {
        if !self.seen_any {
            return Err(MetaError::NotChained);
        }
        let version = self.version.ok_or(MetaError::Missing(H_VERSION))?;
        if canonical_decimal(version) != Some(u64::from(ENTRY_VERSION)) {
            return Err(bad(
                H_VERSION,
                format!("unsupported version '{}'", String::from_utf8_lossy(version)),
            ));
        }
        let height_text = self.height.ok_or(MetaError::Missing(H_HEIGHT))?;
        let height = canonical_decimal(height_text).ok_or_else(|| {
            bad(
                H_HEIGHT,
                format!("'{}' is not a height", String::from_utf8_lossy(height_text)),
            )
        })?;
        let prev_text = self.prev.ok_or(MetaError::Missing(H_PREV))?;
        let prev = parse_lower_hex32(prev_text)
            .ok_or_else(|| bad(H_PREV, "expected 64 lower-case hex digits".into()))?;
        let signature = match (self.key, self.sig) {
            (None, None) => None,
            (Some(k), Some(s)) => {
                let mut id = [0u8; 8];
                if !hex::decode_lower_into(k, &mut id) {
                    return Err(bad(H_KEY, "expected 16 lower-case hex digits".into()));
                }
                let mut sig = [0u8; 64];
                if !hex::decode_lower_into(s, &mut sig) {
                    return Err(bad(H_SIG, "expected 128 lower-case hex digits".into()));
                }
                Some((KeyId(id), Signature(sig)))
            }
            (Some(_), None) => return Err(MetaError::Missing(H_SIG)),
            (None, Some(_)) => return Err(MetaError::Missing(H_KEY)),
        };
        Ok(ChainMeta {
            version: ENTRY_VERSION,
            height,
            prev,
            signature,
        })
    }
}

/// Parses a decimal u64 in canonical form only (no sign, no leading zeros): "007" would
/// otherwise stand for the same height as "7", and the header text is not itself hashed.
#[inline(always)]
fn canonical_decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    if b.len() < 20 {
        // Nineteen digits are below 10^19 < 2^64: no overflow to check for.
        let mut v: u64 = 0;
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + u64::from(d);
        }
        return Some(v);
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Parses 64 lower-case hex digits (the canonical form kchain writes).
#[inline]
fn parse_lower_hex32(s: &[u8]) -> Option<Hash> {
    let mut h = [0u8; 32];
    hex::decode_lower_into(s, &mut h).then_some(h)
}

#[cold]
fn bad(name: &str, detail: String) -> MetaError {
    MetaError::Bad {
        name: name.to_owned(),
        detail,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_five_chain_headers_are_left_out_of_the_item() {
        for h in [H_VERSION, H_HEIGHT, H_PREV, H_KEY, H_SIG] {
            assert!(is_chain_header(h));
        }
        for h in [
            "kchain.enc",
            "kchain.other",
            "kchain.",
            "kchain.vv",
            "app",
            "Kchain.v",
            H_NAME_NOT_UTF8,
        ] {
            assert!(!is_chain_header(h), "{h}");
        }
        // Other kchain.* headers are the item's: parsing ignores them, hashing covers them.
        let prev = hex::encode([0; 32]);
        let headers = [
            ("kchain.enc", &b"aes256gcm:0102030405060708"[..]),
            (H_VERSION, b"1"),
            (H_HEIGHT, b"0"),
            (H_PREV, prev.as_bytes()),
        ];
        let meta = ChainMeta::parse(headers.iter().copied()).unwrap();
        assert_eq!(meta.height, 0);
        assert_eq!(
            ChainMeta::parse(headers[..1].iter().copied()),
            Err(MetaError::NotChained)
        );
        let leaf = |enc: &'static [u8]| {
            let mut h = headers.to_vec();
            h[0].1 = enc;
            let item = ItemRef {
                key: None,
                value: Some(b"x"),
                headers: h.iter().copied().filter(|(n, _)| !is_chain_header(n)),
                timestamp_ms: 0,
            };
            item.leaf_hash(&mut Vec::new())
        };
        assert_ne!(
            leaf(b"aes256gcm:0102030405060708"),
            leaf(b"aes256gcm:0102030405060709")
        );
    }

    /// A chain header value: well-formed most of the time, else one of the misspellings
    /// each header can have.
    fn header() -> impl proptest::strategy::Strategy<Value = (&'static str, Vec<u8>)> {
        use proptest::prelude::*;
        let hex = |n: usize| {
            proptest::collection::vec(proptest::sample::select(b"0123456789abcdef".to_vec()), n)
        };
        let digits = "0|[1-9][0-9]{0,19}|0[0-9]{1,3}|[0-9]{0,3}[a/:][0-9]?";
        prop_oneof![
            2 => prop_oneof![Just(b"1".to_vec()), Just(b"01".to_vec()), Just(b"2".to_vec())]
                .prop_map(|v| (H_VERSION, v)),
            3 => digits.prop_map(|d| (H_HEIGHT, d.into_bytes())),
            3 => prop_oneof![8 => hex(64), 1 => hex(63), 1 => "[0-9a-fA-G]{64}".prop_map(String::into_bytes)]
                .prop_map(|v| (H_PREV, v)),
            1 => prop_oneof![hex(16), hex(15)].prop_map(|v| (H_KEY, v)),
            1 => prop_oneof![hex(128), "[0-9A-F]{128}".prop_map(String::into_bytes)]
                .prop_map(|v| (H_SIG, v)),
            1 => Just(("app", b"x".to_vec())),
            1 => Just((H_NAME_NOT_UTF8, Vec::new())),
        ]
    }

    proptest::proptest! {
        /// The short path of `finish` (a well-formed record inside a batch) decides what
        /// the full path decides, for every mix of chain headers.
        #[test]
        fn finish_decides_as_the_full_path(
            headers in proptest::collection::vec(header(), 0..7),
            order in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..7),
        ) {
            let mut headers = headers;
            // The three headers of a well-formed record first, often.
            if order.len() > 3 {
                headers.extend([
                    (H_VERSION, b"1".to_vec()),
                    (H_HEIGHT, b"7".to_vec()),
                    (H_PREV, hex::encode([order[0]; 32]).into_bytes()),
                ]);
                let by = order[1] as usize % headers.len();
                headers.rotate_left(by);
            }
            let offered = || {
                let mut slots = MetaSlots::default();
                for (name, value) in &headers {
                    slots.offer(name, value)?;
                }
                Ok::<_, MetaError>(slots)
            };
            match (offered(), offered()) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a.finish(), b.finish_in_full()),
                (a, b) => proptest::prop_assert_eq!(a.err(), b.err()),
            }
        }

        /// Canonical decimals are exactly the u64s spelled without sign or leading zeros.
        #[test]
        fn canonical_decimals_are_the_plain_spellings_of_u64(s in "[0-9]{0,21}|[0-9+ a/:]{0,5}") {
            let plain = !s.is_empty()
                && (s.len() == 1 || !s.starts_with('0'))
                && s.bytes().all(|c| c.is_ascii_digit());
            let want = if plain { s.parse::<u64>().ok() } else { None };
            proptest::prop_assert_eq!(canonical_decimal(s.as_bytes()), want);
        }
    }

    #[test]
    fn canonical_decimals_at_the_edges_of_u64() {
        for (s, want) in [
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("99999999999999999999", None),
            ("9999999999999999999", Some(9_999_999_999_999_999_999)),
            ("10000000000000000000", Some(10_000_000_000_000_000_000)),
            ("0", Some(0)),
            ("00", None),
            ("", None),
        ] {
            assert_eq!(canonical_decimal(s.as_bytes()), want, "{s}");
        }
    }
}
