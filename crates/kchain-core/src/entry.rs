//! Entries: one link of a chain, and its entry hash.
//!
//! ```text
//! entry hash = SHA-256( 0x0F "kchain:entry:v1"
//!                       version      u8     (1)
//!                       chain id     16 bytes
//!                       height       u64 BE (0 for genesis)
//!                       prev         32 bytes (zeros for genesis)
//!                       timestamp    i64 BE (ms since the Unix epoch)
//!                       items root   32 bytes (RFC 6962 root over the item leaf hashes)
//!                       item count   u32 BE )
//! ```
//!
//! The encoding is 117 bytes, so an entry hash costs two SHA-256 compressions.

use std::fmt;

use crate::hash::{sha256, tag, DecodeError, Decoder, Encoder, Hash};
use crate::hex;
use crate::sha::{compress_blocks, compress_padded_x2};

/// The entry format version this code writes and verifies.
pub const ENTRY_VERSION: u8 = 1;

/// Length of the canonical encoding of an [`EntryHeader`].
pub const ENCODED_LEN: usize = 117;

/// Identifies a chain: the first 16 bytes of SHA-256(0x0F "kchain:chain:v1" || u32 len || name),
/// where the name of a chained topic partition is `<topic>/<partition>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainId(pub [u8; 16]);

impl ChainId {
    /// The chain id of a named chain.
    pub fn from_name(name: &str) -> ChainId {
        let mut buf = Vec::with_capacity(32 + name.len());
        Encoder::with_tag(&mut buf, tag::CHAIN).bytes(name.as_bytes());
        let h = sha256(&buf);
        ChainId(h[..16].try_into().unwrap())
    }

    /// The chain id of a chained topic partition (name `<topic>/<partition>`).
    pub fn for_partition(topic: &str, partition: u32) -> ChainId {
        ChainId::from_name(&format!("{topic}/{partition}"))
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", hex::encode(self.0))
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The header of an entry: everything its entry hash commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryHeader {
    pub version: u8,
    pub chain: ChainId,
    pub height: u64,
    pub prev: Hash,
    pub timestamp_ms: i64,
    pub items_root: Hash,
    pub item_count: u32,
}

impl EntryHeader {
    /// Writes the canonical encoding into `out`, replacing its contents.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.encoded());
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.encoded().to_vec()
    }

    /// The entry hash: SHA-256 over the canonical encoding.
    pub fn hash(&self) -> Hash {
        compress_blocks(&self.padded())
    }

    /// The entry hashes of two entries, computed at once (as [`crate::sha256_x2`] does): the
    /// verifier's two records at a time.
    #[inline]
    pub fn hash_x2(a: &EntryHeader, b: &EntryHeader) -> [Hash; 2] {
        compress_padded_x2(&a.padded(), &b.padded())
    }

    /// The encoding padded to SHA-256's two blocks on the stack: the entry hash is the
    /// per-record hot path of writers and verifiers.
    #[inline]
    fn padded(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[..ENCODED_LEN].copy_from_slice(&self.encoded());
        crate::sha::pad_two_blocks(&mut b, ENCODED_LEN);
        b
    }

    /// The canonical encoding, built on the stack.
    #[inline]
    fn encoded(&self) -> [u8; ENCODED_LEN] {
        let mut b = [0u8; ENCODED_LEN];
        let t = tag::ENTRY.as_bytes();
        b[0] = t.len() as u8;
        b[1..16].copy_from_slice(t);
        b[16] = self.version;
        b[17..33].copy_from_slice(&self.chain.0);
        b[33..41].copy_from_slice(&self.height.to_be_bytes());
        b[41..73].copy_from_slice(&self.prev);
        b[73..81].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[81..113].copy_from_slice(&self.items_root);
        b[113..117].copy_from_slice(&self.item_count.to_be_bytes());
        b
    }

    /// Parses a canonical encoding. Never panics; rejects trailing bytes.
    pub fn decode(data: &[u8]) -> Result<EntryHeader, DecodeError> {
        let mut d = Decoder::with_tag(data, tag::ENTRY)?;
        let version = d.u8()?;
        let chain = ChainId(d.take(16)?.try_into().unwrap());
        let h = EntryHeader {
            version,
            chain,
            height: d.u64()?,
            prev: d.hash()?,
            timestamp_ms: d.i64()?,
            items_root: d.hash()?,
            item_count: d.u32()?,
        };
        d.finish()?;
        Ok(h)
    }
}
