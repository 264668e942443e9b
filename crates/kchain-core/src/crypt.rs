//! Encrypted payloads: AES-256-GCM data keys, the keyring that holds them (with tombstones
//! for shredded keys), and the format of an encrypted record.
//!
//! ```text
//! value      = nonce (12 random bytes) || AES-256-GCM ciphertext || tag (16 bytes)
//! kchain.enc = "aes256gcm:" || data key id (16 lower-case hex digits)
//! AAD        = 0x0D "kchain:enc:v1" || chain id (16) || partition (u32 BE)
//!              || height (u64 BE) || data key id (8)
//! ```
//!
//! Only the value is encrypted; the record key, the timestamp and the application headers
//! stay in clear. Encryption happens before hashing: the entry hash commits to the
//! ciphertext and to the `kchain.enc` header (an application header, part of the item), so a
//! chain verifies without any key, and shredding a key changes no hash. The associated data
//! binds each ciphertext to its place: moved to another height, partition or chain, or
//! relabelled with another key id, it no longer authenticates.
//!
//! A data key id is 8 random bytes, not derived from the secret, so that it reveals nothing
//! about the key. Nonces are random (96 bits): a key should encrypt well under 2^32 records
//! (NIST SP 800-38D section 8.3), so rotate keys (`kchain key new`) long before.
//!
//! ```
//! use kchain_core::{DataKey, DataKeyId, RecordPlace};
//! let key = DataKey::from_secret(DataKeyId([1; 8]), 0, &[7; 32]);
//! let here = RecordPlace::new("orders", 0, 5);
//! let sealed = key.seal(&here, [0; 12], b"hello");
//! assert_eq!(key.open(&here, &sealed).unwrap(), b"hello");
//! assert!(key.open(&RecordPlace::new("orders", 0, 6), &sealed).is_err());
//! ```

use std::fmt;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::entry::ChainId;
use crate::hash::tag;
use crate::hex;

/// The record header that marks an encrypted value and names its data key.
pub const H_ENC: &str = "kchain.enc";
/// The scheme named in the `kchain.enc` header.
pub const ENC_SCHEME: &str = "aes256gcm";
/// Bytes of nonce before the ciphertext.
pub const NONCE_LEN: usize = 12;
/// Bytes of authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes of associated data: tag (1 + 13), chain id, partition, height, key id.
const AAD_LEN: usize = 1 + 13 + 16 + 4 + 8 + 8;

/// Names what is wrong with a data key id, a keyring or the random source. Messages never
/// contain secret key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptError {
    #[error("malformed keyring: {0}")]
    MalformedKeyring(String),
    #[error("invalid data key id '{0}': expected 16 lower-case hex digits")]
    InvalidKeyId(String),
    #[error("data key {0} is already in the keyring")]
    DuplicateKey(DataKeyId),
    #[error("data key {0} is not in the keyring")]
    UnknownKey(DataKeyId),
    #[error("the operating system's random source failed")]
    Random,
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("the value is {len} bytes, shorter than a nonce and a tag ({} bytes)", NONCE_LEN + TAG_LEN)]
    Truncated { len: usize },
    #[error(
        "authentication failed: the key under this id is not the one that encrypted it, or the \
         ciphertext, its key id or its place (chain, partition, height) was changed"
    )]
    Authentication,
}

/// The id of a data key: 8 random bytes, shown as 16 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataKeyId(pub [u8; 8]);

impl DataKeyId {
    /// Parses exactly 16 lower-case hex digits (the only form kchain writes).
    pub fn from_hex(s: &str) -> Result<DataKeyId, CryptError> {
        parse_id(s.as_bytes()).ok_or_else(|| CryptError::InvalidKeyId(s.into()))
    }
}

pub(crate) fn parse_id(s: &[u8]) -> Option<DataKeyId> {
    if s.len() != 16 || !s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut b = [0u8; 8];
    hex::decode_lower_into(s, &mut b).then_some(DataKeyId(b))
}

impl fmt::Display for DataKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DataKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKeyId({self})")
    }
}

/// Where a record sits: what the associated data binds its ciphertext to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordPlace {
    pub chain: ChainId,
    pub partition: u32,
    pub height: u64,
}

impl RecordPlace {
    /// The place of the record at `height` in `topic`/`partition`.
    pub fn new(topic: &str, partition: u32, height: u64) -> RecordPlace {
        RecordPlace {
            chain: ChainId::for_partition(topic, partition),
            partition,
            height,
        }
    }

    /// The associated data of a value encrypted here under key `id`: the canonical encoding
    /// (as [`crate::Encoder`] writes it) of tag, chain id, partition, height and key id, 50 bytes.
    pub fn aad(&self, id: DataKeyId) -> [u8; AAD_LEN] {
        // Built in place (this runs for every record a writer encrypts); the test
        // `aad_is_the_canonical_encoding` checks it against the Encoder.
        let mut a = [0u8; AAD_LEN];
        a[0] = tag::ENC.len() as u8;
        a[1..14].copy_from_slice(tag::ENC.as_bytes());
        a[14..30].copy_from_slice(&self.chain.0);
        a[30..34].copy_from_slice(&self.partition.to_be_bytes());
        a[34..42].copy_from_slice(&self.height.to_be_bytes());
        a[42..50].copy_from_slice(&id.0);
        a
    }
}

/// An AES-256-GCM data key: its id, when it was made, and the 32-byte secret (wiped from
/// memory when the key is dropped). `Debug` never prints the secret.
pub struct DataKey {
    id: DataKeyId,
    created_ms: i64,
    secret: Zeroizing<[u8; 32]>,
    // ring's expanded key schedule; ring does not wipe it on drop.
    aead: LessSafeKey,
}

impl DataKey {
    /// A fresh key (random secret, random id) from the operating system's random source.
    pub fn generate(created_ms: i64) -> Result<DataKey, CryptError> {
        let rng = SystemRandom::new();
        let mut secret = Zeroizing::new([0u8; 32]);
        let mut id = [0u8; 8];
        rng.fill(secret.as_mut()).map_err(|_| CryptError::Random)?;
        rng.fill(&mut id).map_err(|_| CryptError::Random)?;
        Ok(DataKey::from_secret(DataKeyId(id), created_ms, &secret))
    }

    /// A key from its parts (a keyring file, test vectors).
    pub fn from_secret(id: DataKeyId, created_ms: i64, secret: &[u8; 32]) -> DataKey {
        let unbound = UnboundKey::new(&AES_256_GCM, secret).expect("32 bytes is an AES-256 key");
        DataKey {
            id,
            created_ms,
            secret: Zeroizing::new(*secret),
            aead: LessSafeKey::new(unbound),
        }
    }

    pub fn id(&self) -> DataKeyId {
        self.id
    }

    /// When the key was made, in ms since the Unix epoch.
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// The value of the `kchain.enc` header of a record encrypted under this key.
    pub fn header_value(&self) -> Vec<u8> {
        format!("{ENC_SCHEME}:{}", self.id).into_bytes()
    }

    /// Encrypts `plaintext` for the record at `place`: `nonce || ciphertext || tag`.
    /// Requires a nonce never used before with this key (use [`random_nonces`]).
    pub fn seal(&self, place: &RecordPlace, nonce: [u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        self.seal_in_place(place, nonce, &mut out);
        out
    }

    /// Replaces `value` by `nonce || ciphertext || tag`, as [`DataKey::seal`] does, reusing
    /// its buffer (a writer encrypts every record: one reallocation instead of a new buffer).
    /// Requires a nonce never used before with this key.
    pub fn seal_in_place(&self, place: &RecordPlace, nonce: [u8; NONCE_LEN], value: &mut Vec<u8>) {
        let len = value.len();
        value.reserve_exact(NONCE_LEN + TAG_LEN);
        value.extend_from_slice(&nonce);
        value.copy_within(..len, NONCE_LEN);
        value[..NONCE_LEN].copy_from_slice(&nonce);
        let out = value;
        let tag = self
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(place.aad(self.id)),
                &mut out[NONCE_LEN..],
            )
            .expect("a record value is far below AES-GCM's length limit");
        out.extend_from_slice(tag.as_ref());
    }

    /// Length of a value of `plain_len` bytes once sealed: nonce, ciphertext, tag.
    pub fn sealed_len(plain_len: usize) -> usize {
        NONCE_LEN + plain_len + TAG_LEN
    }

    /// Seals `plaintext` for the record at `place` into `out`, which must be exactly
    /// [`DataKey::sealed_len`] bytes: the bytes [`DataKey::seal`] returns, written where a
    /// writer builds its record (no allocation). Requires a nonce never used before with
    /// this key.
    pub fn seal_into(
        &self,
        place: &RecordPlace,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
        out: &mut [u8],
    ) {
        assert_eq!(
            out.len(),
            Self::sealed_len(plaintext.len()),
            "sealed value slot"
        );
        let (head, rest) = out.split_at_mut(NONCE_LEN);
        let (body, tag_out) = rest.split_at_mut(plaintext.len());
        head.copy_from_slice(&nonce);
        body.copy_from_slice(plaintext);
        let tag = self
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(place.aad(self.id)),
                body,
            )
            .expect("a record value is far below AES-GCM's length limit");
        tag_out.copy_from_slice(tag.as_ref());
    }

    /// Decrypts a value sealed by [`DataKey::seal`] for the record at `place`.
    pub fn open(&self, place: &RecordPlace, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Truncated { len: sealed.len() });
        }
        let nonce: [u8; NONCE_LEN] = sealed[..NONCE_LEN].try_into().expect("length checked");
        let mut buf = sealed[NONCE_LEN..].to_vec();
        let n = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(place.aad(self.id)),
                &mut buf,
            )
            .map_err(|_| OpenError::Authentication)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    /// The secret, for the keyring file alone.
    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl Clone for DataKey {
    fn clone(&self) -> Self {
        DataKey {
            id: self.id,
            created_ms: self.created_ms,
            secret: self.secret.clone(),
            aead: self.aead.clone(),
        }
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// `n` random nonces in one call to the random source (one system call per batch, not per
/// record).
pub fn random_nonces(n: usize) -> Result<Vec<[u8; NONCE_LEN]>, CryptError> {
    let mut nonces = vec![[0u8; NONCE_LEN]; n];
    fill_random_nonces(&mut nonces)?;
    Ok(nonces)
}

/// Fills `nonces` from the operating system's random source in one call (writers fill a
/// batch's nonces in a few slices in parallel).
pub fn fill_random_nonces(nonces: &mut [[u8; NONCE_LEN]]) -> Result<(), CryptError> {
    SystemRandom::new()
        .fill(nonces.as_flattened_mut())
        .map_err(|_| CryptError::Random)
}

const _: () = assert!(aead::NONCE_LEN == NONCE_LEN && aead::MAX_TAG_LEN == TAG_LEN);

#[cfg(test)]
mod tests {
    use super::*;

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
    fn seal_into_writes_the_bytes_seal_returns() {
        let k = key();
        let mut out = vec![0xee; DataKey::sealed_len(5)];
        k.seal_into(&place(3), [9; 12], b"hello", &mut out);
        assert_eq!(out, k.seal(&place(3), [9; 12], b"hello"));
        assert_eq!(k.open(&place(3), &out).unwrap(), b"hello");
    }

    #[test]
    fn seal_then_open_round_trips_and_is_randomised_by_the_nonce() {
        let k = key();
        let sealed = k.seal(&place(3), [9; 12], b"hello");
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(&sealed[..NONCE_LEN], &[9; 12]);
        assert_eq!(k.open(&place(3), &sealed).unwrap(), b"hello");
        assert_ne!(k.seal(&place(3), [8; 12], b"hello"), sealed);
        assert_eq!(
            k.open(&place(3), &k.seal(&place(3), [1; 12], b"")).unwrap(),
            b""
        );
        let n = random_nonces(3).unwrap();
        assert!(n[0] != n[1] && n[1] != n[2]);
    }

    #[test]
    fn the_associated_data_binds_chain_partition_height_and_key_id() {
        let k = key();
        let sealed = k.seal(&place(3), [9; 12], b"hello");
        let elsewhere = [
            place(4),
            RecordPlace::new("orders", 1, 3),
            RecordPlace::new("invoices", 0, 3),
            // Same chain id, another partition number: the partition is bound on its own.
            RecordPlace {
                partition: 1,
                ..place(3)
            },
        ];
        for p in elsewhere {
            assert_eq!(k.open(&p, &sealed), Err(OpenError::Authentication), "{p:?}");
        }
        let relabelled = DataKey::from_secret(DataKeyId([9; 8]), 0, &SECRET);
        assert_eq!(
            relabelled.open(&place(3), &sealed),
            Err(OpenError::Authentication)
        );
        let other = DataKey::from_secret(k.id(), 0, &[8; 32]);
        assert_eq!(
            other.open(&place(3), &sealed),
            Err(OpenError::Authentication)
        );
    }

    #[test]
    fn any_flipped_bit_or_truncation_fails() {
        let k = key();
        let sealed = k.seal(&place(0), [9; 12], b"payload");
        for i in 0..sealed.len() * 8 {
            let mut x = sealed.clone();
            x[i / 8] ^= 1 << (i % 8);
            assert_eq!(
                k.open(&place(0), &x),
                Err(OpenError::Authentication),
                "bit {i}"
            );
        }
        for len in 0..sealed.len() {
            let want = if len < NONCE_LEN + TAG_LEN {
                OpenError::Truncated { len }
            } else {
                OpenError::Authentication
            };
            assert_eq!(k.open(&place(0), &sealed[..len]), Err(want), "len {len}");
        }
        let mut extended = sealed.clone();
        extended.push(0);
        assert_eq!(k.open(&place(0), &extended), Err(OpenError::Authentication));
    }

    #[test]
    fn aad_layout() {
        let a = place(5).aad(DataKeyId([0xaa; 8]));
        assert_eq!(a[0], 13);
        assert_eq!(&a[1..14], b"kchain:enc:v1");
        assert_eq!(&a[14..30], &ChainId::for_partition("orders", 0).0);
        assert_eq!(&a[30..34], &[0, 0, 0, 0]);
        assert_eq!(&a[34..42], &5u64.to_be_bytes());
        assert_eq!(&a[42..], &[0xaa; 8]);
    }

    #[test]
    fn aad_is_the_canonical_encoding() {
        use crate::hash::Encoder;
        let p = RecordPlace::new("orders", 7, 1 << 40);
        let id = DataKeyId([1, 2, 3, 4, 5, 6, 7, 8]);
        let mut buf = Vec::new();
        Encoder::with_tag(&mut buf, tag::ENC)
            .fixed(&p.chain.0)
            .u32(p.partition)
            .u64(p.height)
            .fixed(&id.0);
        assert_eq!(p.aad(id).to_vec(), buf);
    }
}
