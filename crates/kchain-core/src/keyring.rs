//! The keyring: a writer's or reader's data keys, oldest first, with tombstones for shredded
//! keys, and its file text (TOML).
//!
//! ```text
//! kind = "kchain-keyring-v1"
//!
//! [[key]]                       an active key
//! id = "<16 hex>"               random, not derived from the secret
//! created_ms = <i64>
//! secret = "<base64 of 32 bytes>"
//!
//! [[key]]                       a shredded key's tombstone
//! id = "<16 hex>"
//! created_ms = <i64>            (optional)
//! shredded_ms = <i64>
//! ```
//!
//! The newest active key encrypts new records; older ones stay to decrypt older records.
//! Parse errors name the entry and field, and never quote a secret.

use zeroize::{Zeroize, Zeroizing};

use crate::crypt::{parse_id, CryptError, DataKey, DataKeyId};

/// One entry of a keyring: a key, or the tombstone of a shredded one.
#[derive(Clone, Debug)]
pub enum KeyEntry {
    /// Boxed: the key with ring's expanded key schedule is large, and a box is moved without
    /// leaving copies of it behind.
    Active(Box<DataKey>),
    Shredded {
        id: DataKeyId,
        created_ms: Option<i64>,
        shredded_ms: i64,
    },
}

impl KeyEntry {
    pub fn id(&self) -> DataKeyId {
        match self {
            KeyEntry::Active(k) => k.id(),
            KeyEntry::Shredded { id, .. } => *id,
        }
    }
}

/// What a keyring knows of a key id.
#[derive(Clone, Copy, Debug)]
pub enum KeyState<'a> {
    Active(&'a DataKey),
    Shredded { at_ms: i64 },
    Unknown,
}

/// The data keys of a writer or reader, oldest first. New records are encrypted under the
/// newest active key ([`Keyring::newest`]); older keys stay to decrypt older records until
/// they are shredded, which leaves a tombstone so that their records read as shredded, not
/// as unknown.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    entries: Vec<KeyEntry>,
}

const KEYRING_KIND: &str = "kchain-keyring-v1";

impl Keyring {
    /// A keyring without keys (every encrypted record reads as key missing).
    pub const EMPTY: Keyring = Keyring {
        entries: Vec::new(),
    };

    /// The entries, oldest first.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// Adds a key as the newest. Refuses an id the keyring already holds (even shredded).
    pub fn add(&mut self, key: DataKey) -> Result<(), CryptError> {
        if self.entries.iter().any(|e| e.id() == key.id()) {
            return Err(CryptError::DuplicateKey(key.id()));
        }
        self.entries.push(KeyEntry::Active(Box::new(key)));
        Ok(())
    }

    /// The key new records are encrypted under: the newest one not shredded.
    pub fn newest(&self) -> Option<&DataKey> {
        self.entries.iter().rev().find_map(|e| match e {
            KeyEntry::Active(k) => Some(k.as_ref()),
            KeyEntry::Shredded { .. } => None,
        })
    }

    pub fn get(&self, id: DataKeyId) -> KeyState<'_> {
        match self.entries.iter().find(|e| e.id() == id) {
            Some(KeyEntry::Active(k)) => KeyState::Active(k),
            Some(KeyEntry::Shredded { shredded_ms, .. }) => KeyState::Shredded {
                at_ms: *shredded_ms,
            },
            None => KeyState::Unknown,
        }
    }

    /// Replaces key `id` with a tombstone dated `now_ms` (its secret is wiped from memory).
    /// Returns false when it was shredded already; [`CryptError::UnknownKey`] when the
    /// keyring never held it.
    pub fn shred(&mut self, id: DataKeyId, now_ms: i64) -> Result<bool, CryptError> {
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.id() == id)
            .ok_or(CryptError::UnknownKey(id))?;
        let KeyEntry::Active(k) = entry else {
            return Ok(false);
        };
        *entry = KeyEntry::Shredded {
            id,
            created_ms: Some(k.created_ms()),
            shredded_ms: now_ms,
        };
        Ok(true)
    }

    /// The keyring file text (TOML). Whoever writes it to disk must create the file with
    /// mode 0600. The text is wiped from memory when dropped.
    pub fn to_toml(&self) -> Zeroizing<String> {
        use base64::Engine as _;
        // Room for everything up front, so that no reallocation leaves a copy behind.
        let mut out = Zeroizing::new(String::with_capacity(400 + 160 * self.entries.len()));
        out.push_str(
            "# kchain keyring: AES-256-GCM data keys of encrypted payloads. Keep this file \
             secret (mode 0600).\n# A shredded key leaves a tombstone; destroy every copy and \
             backup of this file too.\n",
        );
        out.push_str(&format!("kind = \"{KEYRING_KIND}\"\n"));
        for e in &self.entries {
            out.push_str(&format!("\n[[key]]\nid = \"{}\"\n", e.id()));
            match e {
                KeyEntry::Active(k) => {
                    out.push_str(&format!("created_ms = {}\nsecret = \"", k.created_ms()));
                    let secret = Zeroizing::new(
                        base64::engine::general_purpose::STANDARD.encode(k.secret()),
                    );
                    out.push_str(&secret);
                    out.push_str("\"\n");
                }
                KeyEntry::Shredded {
                    created_ms,
                    shredded_ms,
                    ..
                } => {
                    if let Some(c) = created_ms {
                        out.push_str(&format!("created_ms = {c}\n"));
                    }
                    out.push_str(&format!("shredded_ms = {shredded_ms}\n"));
                }
            }
        }
        out
    }

    /// Parses keyring file text. Errors say which entry and field is wrong and never quote a
    /// secret.
    pub fn from_toml(text: &str) -> Result<Keyring, CryptError> {
        let bad = |m: String| CryptError::MalformedKeyring(m);
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            // The message alone: the error's Display quotes the offending line, which may
            // hold a secret.
            match line {
                Some(l) => bad(format!("not TOML at line {l} ({})", e.message())),
                None => bad(format!("not TOML ({})", e.message())),
            }
        })?;
        let result = Self::from_table(&table);
        wipe(&mut table);
        result
    }

    fn from_table(table: &toml::Table) -> Result<Keyring, CryptError> {
        use base64::Engine as _;
        let bad = |m: String| CryptError::MalformedKeyring(m);
        match table.get("kind") {
            Some(toml::Value::String(k)) if k == KEYRING_KIND => {}
            Some(toml::Value::String(k)) => {
                return Err(bad(format!("kind is '{k}', expected '{KEYRING_KIND}'")))
            }
            _ => return Err(bad(format!("missing kind = \"{KEYRING_KIND}\""))),
        }
        if let Some(name) = table.keys().find(|k| *k != "kind" && *k != "key") {
            return Err(bad(format!("unknown field '{name}'")));
        }
        let entries = match table.get("key") {
            None => &[][..],
            Some(toml::Value::Array(a)) => &a[..],
            Some(_) => return Err(bad("'key' must be [[key]] tables".into())),
        };
        let mut ring = Keyring::default();
        for (i, entry) in entries.iter().enumerate() {
            let n = i + 1;
            let toml::Value::Table(t) = entry else {
                return Err(bad(format!("key {n} is not a table")));
            };
            if let Some(name) = t
                .keys()
                .find(|k| !matches!(k.as_str(), "id" | "created_ms" | "secret" | "shredded_ms"))
            {
                return Err(bad(format!("key {n}: unknown field '{name}'")));
            }
            let id = match t.get("id") {
                Some(toml::Value::String(s)) => parse_id(s.as_bytes())
                    .ok_or_else(|| bad(format!("key {n}: id is not 16 lower-case hex digits")))?,
                _ => return Err(bad(format!("key {n}: missing id"))),
            };
            let int = |field: &str| match t.get(field) {
                None => Ok(None),
                Some(toml::Value::Integer(v)) => Ok(Some(*v)),
                Some(_) => Err(bad(format!("key {n} ({id}): {field} is not an integer"))),
            };
            let created_ms = int("created_ms")?;
            let shredded_ms = int("shredded_ms")?;
            let e = match (t.get("secret"), shredded_ms) {
                (Some(_), Some(_)) => {
                    return Err(bad(format!(
                        "key {n} ({id}): has both a secret and shredded_ms"
                    )))
                }
                (None, Some(shredded_ms)) => KeyEntry::Shredded {
                    id,
                    created_ms,
                    shredded_ms,
                },
                (Some(toml::Value::String(s)), None) => {
                    let mut secret = Zeroizing::new([0u8; 32]);
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode_slice(s.as_bytes(), secret.as_mut());
                    // The decoder's own error would quote the offending byte of the secret.
                    if decoded.ok() != Some(32) {
                        return Err(bad(format!(
                            "key {n} ({id}): secret is not 32 bytes of base64"
                        )));
                    }
                    let created_ms = created_ms
                        .ok_or_else(|| bad(format!("key {n} ({id}): missing created_ms")))?;
                    KeyEntry::Active(Box::new(DataKey::from_secret(id, created_ms, &secret)))
                }
                (Some(_), None) => {
                    return Err(bad(format!("key {n} ({id}): secret is not a string")))
                }
                (None, None) => {
                    return Err(bad(format!(
                        "key {n} ({id}): has neither a secret nor shredded_ms"
                    )))
                }
            };
            if ring.entries.iter().any(|x| x.id() == id) {
                return Err(bad(format!("key {n}: id {id} appears twice")));
            }
            ring.entries.push(e);
        }
        Ok(ring)
    }
}

/// Wipes the strings of a parsed keyring file (the base64 secrets) before they are freed.
fn wipe(table: &mut toml::Table) {
    for (_, v) in table.iter_mut() {
        wipe_value(v);
    }
}

fn wipe_value(v: &mut toml::Value) {
    match v {
        toml::Value::String(s) => s.zeroize(),
        toml::Value::Array(a) => a.iter_mut().for_each(wipe_value),
        toml::Value::Table(t) => wipe(t),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypt::RecordPlace;

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
    fn debug_and_errors_never_show_the_secret() {
        use base64::Engine as _;
        let k = key();
        let mut ring = Keyring::default();
        ring.add(k.clone()).unwrap();
        let shown = format!("{k:?} {ring:?} {:?}", k.clone());
        let secrets = [
            crate::hex::encode(SECRET),
            base64::engine::general_purpose::STANDARD.encode(SECRET),
            format!("{:?}", SECRET),
            format!("{:?}", &SECRET[..4]),
        ];
        for s in &secrets {
            assert!(!shown.contains(s.as_str()), "{shown}");
        }
        assert!(shown.contains("0102030405060708"), "{shown}");
        let text = ring.to_toml();
        assert!(text.contains(&secrets[1]));
        // A keyring whose secret is damaged: the error names the entry, not the secret.
        let damaged = text.replace(&secrets[1], &secrets[1][..40]);
        let e = Keyring::from_toml(&damaged).unwrap_err().to_string();
        assert!(e.contains("key 1 (0102030405060708)"), "{e}");
        let broken_line = text.replace(&secrets[1], &format!("{}\" x", secrets[1]));
        let e = Keyring::from_toml(&broken_line).unwrap_err().to_string();
        assert!(e.contains("line"), "{e}");
        for s in &secrets {
            assert!(!e.contains(s.as_str()), "{e}");
        }
    }

    #[test]
    fn keyring_round_trip_newest_rotation_and_shredding() {
        let mut ring = Keyring::default();
        assert!(ring.newest().is_none());
        let a = DataKey::from_secret(DataKeyId([1; 8]), 10, &[1; 32]);
        let b = DataKey::from_secret(DataKeyId([2; 8]), 20, &[2; 32]);
        ring.add(a.clone()).unwrap();
        ring.add(b.clone()).unwrap();
        assert_eq!(ring.add(a.clone()), Err(CryptError::DuplicateKey(a.id())));
        assert_eq!(ring.newest().unwrap().id(), b.id());
        let back = Keyring::from_toml(&ring.to_toml()).unwrap();
        assert_eq!(back.to_toml(), ring.to_toml());
        let sealed = b.seal(&place(1), [0; 12], b"x");
        assert!(matches!(
            back.get(b.id()),
            KeyState::Active(k) if k.open(&place(1), &sealed).unwrap() == b"x"
        ));
        assert_eq!(ring.shred(b.id(), 30), Ok(true));
        assert_eq!(ring.shred(b.id(), 40), Ok(false));
        assert_eq!(
            ring.shred(DataKeyId([3; 8]), 40),
            Err(CryptError::UnknownKey(DataKeyId([3; 8])))
        );
        // The newest key is shredded: new records use the newest one still active.
        assert_eq!(ring.newest().unwrap().id(), a.id());
        let text = ring.to_toml();
        assert!(!text.contains(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [2u8; 32]
        )));
        let back = Keyring::from_toml(&text).unwrap();
        assert!(matches!(back.get(b.id()), KeyState::Shredded { at_ms: 30 }));
        assert!(matches!(back.get(DataKeyId([3; 8])), KeyState::Unknown));
        assert_eq!(back.to_toml(), text);
    }

    #[test]
    fn keyring_parse_errors_are_clear() {
        let good_secret = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let cases: &[(&str, &str, &str)] = &[
            ("not toml", "[[key]\n", "not TOML at line 1"),
            ("no kind", "", "missing kind"),
            ("wrong kind", "kind = \"x\"", "kind is 'x'"),
            ("unknown top field", "kind = \"kchain-keyring-v1\"\nx = 1", "unknown field 'x'"),
            (
                "bad id",
                "kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"XYZ\"\ncreated_ms = 1\nsecret = \"\"",
                "key 1: id is not 16 lower-case hex digits",
            ),
            (
                "upper-case id",
                "kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0102030405060A08\"\nshredded_ms = 1",
                "key 1: id is not 16",
            ),
            (
                "missing id",
                "kind = \"kchain-keyring-v1\"\n[[key]]\nshredded_ms = 1",
                "key 1: missing id",
            ),
            (
                "both",
                &format!("kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"\ncreated_ms = 1\nsecret = \"{good_secret}\"\nshredded_ms = 2"),
                "key 1 (0101010101010101): has both a secret and shredded_ms",
            ),
            (
                "neither",
                "kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"",
                "has neither",
            ),
            (
                "short secret",
                "kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"\ncreated_ms = 1\nsecret = \"AQEB\"",
                "secret is not 32 bytes of base64",
            ),
            (
                "long secret",
                &format!("kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"\ncreated_ms = 1\nsecret = \"{good_secret}AQEB\""),
                "secret is not 32 bytes of base64",
            ),
            (
                "no created_ms",
                &format!("kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"\nsecret = \"{good_secret}\""),
                "missing created_ms",
            ),
            (
                "string created_ms",
                "kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"\ncreated_ms = \"1\"\nshredded_ms = 1",
                "created_ms is not an integer",
            ),
            (
                "duplicate",
                "kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"\nshredded_ms = 1\n[[key]]\nid = \"0101010101010101\"\nshredded_ms = 2",
                "key 2: id 0101010101010101 appears twice",
            ),
            (
                "unknown key field",
                "kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"\nshredded_ms = 1\nsecrte = 1",
                "key 1: unknown field 'secrte'",
            ),
        ];
        for (what, text, want) in cases {
            match Keyring::from_toml(text) {
                Err(e) => assert!(e.to_string().contains(want), "{what}: {e}"),
                Ok(_) => panic!("{what}: parsed"),
            }
        }
        let ok = format!("kind = \"kchain-keyring-v1\"\n[[key]]\nid = \"0101010101010101\"\ncreated_ms = 1\nsecret = \"{good_secret}\"");
        assert_eq!(Keyring::from_toml(&ok).unwrap().entries().len(), 1);
        assert!(Keyring::from_toml("kind = \"kchain-keyring-v1\"")
            .unwrap()
            .entries()
            .is_empty());
    }
}
