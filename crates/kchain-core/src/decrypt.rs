//! Reading an encrypted record: which data key its `kchain.enc` header names, and what
//! became of its value with the keys of a keyring (decrypted, plain, key missing or
//! shredded, or failed). Never panics: every input is the log's.

use std::fmt;

use crate::crypt::{parse_id, DataKeyId, RecordPlace, ENC_SCHEME, H_ENC};
use crate::keyring::{KeyState, Keyring};

/// What became of one record's value on reading.
#[derive(Clone, PartialEq, Eq)]
pub enum Decryption {
    /// Not encrypted (no `kchain.enc` header).
    Plain,
    /// Encrypted, and decrypted with the keyring's key.
    Decrypted { key: DataKeyId, value: Vec<u8> },
    /// Encrypted under a key that was shredded: the value cannot be read by anyone.
    Shredded { key: DataKeyId, at_ms: i64 },
    /// Encrypted under a key the keyring does not hold.
    MissingKey { key: DataKeyId },
    /// Encrypted, but it does not decrypt: authentication failed, the value is truncated, or
    /// the `kchain.enc` header is malformed (then `key` is `None`).
    Failed { key: Option<DataKeyId>, why: String },
}

impl Decryption {
    /// The stable machine name of this outcome (used in `--json` output).
    pub fn as_str(&self) -> &'static str {
        match self {
            Decryption::Plain => "plain",
            Decryption::Decrypted { .. } => "decrypted",
            Decryption::Shredded { .. } => "shredded",
            Decryption::MissingKey { .. } => "key_missing",
            Decryption::Failed { .. } => "decrypt_failed",
        }
    }

    /// The key id a record names, if it is encrypted and the header parsed.
    pub fn key(&self) -> Option<DataKeyId> {
        match self {
            Decryption::Plain => None,
            Decryption::Decrypted { key, .. }
            | Decryption::Shredded { key, .. }
            | Decryption::MissingKey { key } => Some(*key),
            Decryption::Failed { key, .. } => *key,
        }
    }
}

impl fmt::Debug for Decryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decryption::Plain => f.write_str("Plain"),
            Decryption::Decrypted { key, value } => f
                .debug_struct("Decrypted")
                .field("key", key)
                .field("len", &value.len())
                .finish_non_exhaustive(),
            Decryption::Shredded { key, at_ms } => f
                .debug_struct("Shredded")
                .field("key", key)
                .field("at_ms", at_ms)
                .finish(),
            Decryption::MissingKey { key } => {
                f.debug_struct("MissingKey").field("key", key).finish()
            }
            Decryption::Failed { key, why } => f
                .debug_struct("Failed")
                .field("key", key)
                .field("why", why)
                .finish(),
        }
    }
}

/// The data key id a `kchain.enc` header value names. Never panics.
pub fn parse_enc_header(value: &[u8]) -> Result<DataKeyId, String> {
    let Some(rest) = value
        .strip_prefix(ENC_SCHEME.as_bytes())
        .and_then(|r| r.strip_prefix(b":"))
    else {
        return Err(format!(
            "header {H_ENC} does not start with '{ENC_SCHEME}:' (unsupported scheme)"
        ));
    };
    parse_id(rest)
        .ok_or_else(|| format!("header {H_ENC}: the key id is not 16 lower-case hex digits"))
}

/// Decrypts one record's value, if it is encrypted (it carries a `kchain.enc` header among
/// `headers`), with the keyring's key, for the record at `place`. Never panics.
pub fn decrypt_record<'a>(
    keyring: &Keyring,
    place: &RecordPlace,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Decryption {
    let mut enc = None;
    for (name, v) in headers {
        if name == H_ENC && enc.replace(v).is_some() {
            return Decryption::Failed {
                key: None,
                why: format!("header {H_ENC} appears twice"),
            };
        }
    }
    let Some(header) = enc else {
        return Decryption::Plain;
    };
    let key = match parse_enc_header(header) {
        Ok(id) => id,
        Err(why) => return Decryption::Failed { key: None, why },
    };
    let Some(sealed) = value else {
        return Decryption::Failed {
            key: Some(key),
            why: "the record is marked encrypted but has no value".into(),
        };
    };
    match keyring.get(key) {
        KeyState::Unknown => Decryption::MissingKey { key },
        KeyState::Shredded { at_ms } => Decryption::Shredded { key, at_ms },
        KeyState::Active(k) => match k.open(place, sealed) {
            Ok(value) => Decryption::Decrypted { key, value },
            Err(e) => Decryption::Failed {
                key: Some(key),
                why: e.to_string(),
            },
        },
    }
}

// Keep `aead` in scope for the algorithm's documented constants.

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypt::DataKey;

    const SECRET: [u8; 32] = [7u8; 32];

    fn key() -> DataKey {
        DataKey::from_secret(
            DataKeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            1_700_000_000_000,
            &SECRET,
        )
    }

    fn place(height: u64) -> RecordPlace {
        RecordPlace::new("orders", 0, height)
    }

    #[test]
    fn a_decrypted_value_is_not_shown() {
        let shown = format!(
            "{:?}",
            Decryption::Decrypted {
                key: key().id(),
                value: SECRET.to_vec()
            }
        );
        assert!(!shown.contains(&format!("{:?}", &SECRET[..4])), "{shown}");
        assert!(shown.contains("0102030405060708"), "{shown}");
    }

    fn run(ring: &Keyring, value: Option<&[u8]>, headers: &[(&str, &[u8])], h: u64) -> Decryption {
        decrypt_record(ring, &place(h), value, headers.iter().copied())
    }

    #[test]
    fn decrypt_record_outcomes() {
        let k = key();
        let mut ring = Keyring::default();
        ring.add(k.clone()).unwrap();
        let sealed = k.seal(&place(2), [4; 12], b"secret order");
        let hv = k.header_value();
        let enc = [("app", &b"x"[..]), (H_ENC, &hv[..])];
        assert_eq!(run(&ring, Some(b"plain"), &enc[..1], 2), Decryption::Plain);
        assert_eq!(
            run(&ring, Some(&sealed), &enc, 2),
            Decryption::Decrypted {
                key: k.id(),
                value: b"secret order".to_vec()
            }
        );
        assert!(matches!(
            run(&ring, Some(&sealed), &enc, 3),
            Decryption::Failed { key: Some(id), why } if id == k.id() && why.contains("authentication")
        ));
        assert!(matches!(
            run(&ring, Some(&sealed[..20]), &enc, 2),
            Decryption::Failed { why, .. } if why.contains("shorter")
        ));
        assert!(matches!(
            run(&ring, None, &enc, 2),
            Decryption::Failed { why, .. } if why.contains("no value")
        ));
        for bad in [
            &b"aes256gcm:0102"[..],
            b"chacha:0102030405060708",
            b"",
            b"aes256gcm:010203040506070G",
            b"aes256gcm:010203040506070A",
        ] {
            let r = run(&ring, Some(&sealed), &[(H_ENC, bad)], 2);
            assert!(matches!(r, Decryption::Failed { key: None, .. }), "{r:?}");
        }
        let twice = [(H_ENC, &hv[..]), (H_ENC, &hv[..])];
        assert!(matches!(
            run(&ring, Some(&sealed), &twice, 2),
            Decryption::Failed { why, .. } if why.contains("twice")
        ));
        assert_eq!(
            run(&Keyring::default(), Some(&sealed), &enc, 2),
            Decryption::MissingKey { key: k.id() }
        );
        ring.shred(k.id(), 99).unwrap();
        assert_eq!(
            run(&ring, Some(&sealed), &enc, 2),
            Decryption::Shredded {
                key: k.id(),
                at_ms: 99
            }
        );
    }
}
