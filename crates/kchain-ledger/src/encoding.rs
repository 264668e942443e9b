//! The pieces every canonical encoding of the ledger is made of: a bounds-checked reader for
//! the fields [`kchain_core::Encoder`] writes, and canonical JSON for opaque payloads.
//!
//! ```text
//! canonical JSON = compact JSON (no whitespace), object members sorted by the UTF-8 bytes of
//!                  their keys, strings and numbers as serde_json writes them
//! ```
//!
//! Data payloads are hashed and signed in this form, so that reformatting a payload (spaces,
//! member order, `\u00e9` for `é`) never changes a hash, while changing any value does.

use serde_json::Value;

use kchain_core::Hash;

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

/// Reads canonical fields back; every read is bounds-checked and never panics.
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Starts reading `data`, which must begin with the domain tag `tag`.
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

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn hash(&mut self) -> Result<Hash, DecodeError> {
        self.array()
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub fn invalid(&self, position: usize, detail: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            position,
            detail: detail.into(),
        }
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.data.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Appends the canonical JSON text of `v` to `out`.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // Sorted here rather than trusting the map's order: serde_json's `preserve_order`
            // feature, enabled anywhere in a build, would change it.
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                canonical_json(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, v).expect("writing JSON to a Vec cannot fail");
}

/// Lower-case hex of bytes.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    kchain_core::encode_hex(bytes)
}

/// Parses exactly `2 * N` hex digits (either case).
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    kchain_core::decode_hex(s.as_bytes(), &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_members_and_drops_whitespace() {
        let a: Value = serde_json::from_str(r#"{ "b": [1, {"y":2,"x":"é"}], "a": null }"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":null,"b":[1,{"x":"\u00e9","y":2}]}"#).unwrap();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        canonical_json(&a, &mut x);
        canonical_json(&b, &mut y);
        assert_eq!(x, y);
        assert_eq!(
            String::from_utf8(x).unwrap(),
            r#"{"a":null,"b":[1,{"x":"é","y":2}]}"#
        );
    }

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
