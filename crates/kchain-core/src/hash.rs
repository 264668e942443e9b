//! SHA-256 helpers, domain tags and the length-prefixed writer every canonical encoding uses.

use sha2::{Digest, Sha256};

pub use crate::merkle::Hash;

/// The all-zero hash: the previous hash of a genesis entry.
pub const ZERO_HASH: Hash = [0u8; 32];

/// Domain tags: every hash input starts with one (as a one-byte length and the tag's bytes),
/// so that no two kinds of structure can hash the same bytes.
pub mod tag {
    pub const ITEM: &str = "kchain:item:v1";
    pub const ENTRY: &str = "kchain:entry:v1";
    pub const CHAIN: &str = "kchain:chain:v1";
    pub const KEY_ID: &str = "kchain:key:v1";
    pub const SIGNATURE: &str = "kchain:sig:v1";
    /// The associated data of an encrypted record value.
    pub const ENC: &str = "kchain:enc:v1";
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// Appends canonical fields to a byte buffer: fixed-width big-endian integers, and
/// length-prefixed (u32 big-endian) variable-length fields.
pub struct Encoder<'a> {
    pub(crate) out: &'a mut Vec<u8>,
}

impl<'a> Encoder<'a> {
    /// Starts an encoding in `out` (which is cleared) with the domain tag `tag`.
    /// Requires `tag.len() <= 255`.
    #[inline]
    pub fn with_tag(out: &'a mut Vec<u8>, tag: &str) -> Self {
        out.clear();
        debug_assert!(tag.len() <= 255);
        out.push(tag.len() as u8);
        out.extend_from_slice(tag.as_bytes());
        Encoder { out }
    }

    #[inline]
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    #[inline]
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    #[inline]
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    #[inline]
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A fixed-size field (its size is implied by the format, so it carries no prefix).
    #[inline]
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.out.extend_from_slice(v);
        self
    }

    /// A variable-length field: u32 length, then the bytes. Requires `v.len() < 2^32`.
    #[inline]
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.out.extend_from_slice(v);
        self
    }

    /// An optional variable-length field: 0x00 for none, or 0x01 and the length-prefixed bytes.
    #[inline]
    pub fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(b) => self.u8(1).bytes(b),
        }
    }
}

/// Reads canonical fields back (the inverse of [`Encoder`]); every read is bounds-checked
/// and never panics.
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

/// Why bytes did not decode as a canonical structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("wrong domain tag (expected '{0}')")]
    WrongTag(&'static str),
    #[error("invalid value at byte {position}: {detail}")]
    Invalid { position: usize, detail: String },
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

impl<'a> Decoder<'a> {
    pub fn with_tag(data: &'a [u8], tag: &'static str) -> Result<Self, DecodeError> {
        let mut d = Decoder { data, pos: 0 };
        let len = d.u8()? as usize;
        if d.take(len)? != tag.as_bytes() {
            return Err(DecodeError::WrongTag(tag));
        }
        Ok(d)
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(DecodeError::Truncated(self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A fixed-size field of `N` bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// An [`DecodeError::Invalid`] naming `position`.
    pub fn invalid(&self, position: usize, detail: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            position,
            detail: detail.into(),
        }
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub fn hash(&mut self) -> Result<Hash, DecodeError> {
        Ok(self.take(32)?.try_into().unwrap())
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            other => Err(DecodeError::Invalid {
                position: at,
                detail: format!("presence byte {other} (expected 0 or 1)"),
            }),
        }
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.data.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_never_reads_past_the_end() {
        let mut d = Decoder {
            data: &[0, 0, 0, 9, 1],
            pos: 0,
        };
        assert_eq!(d.bytes(), Err(DecodeError::Truncated(4)));
        assert!(Decoder::with_tag(&[200], "x").is_err());
    }
}
