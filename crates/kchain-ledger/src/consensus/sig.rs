//! Transaction signatures: Ed25519 (RFC 8032) checked with the *cofactored* equation, one at a
//! time or in batches, which always give the same verdict.
//!
//! ```text
//! accept (A, M, R || s)  iff  A decodes canonically and is not of small order,
//!                             s < l (canonical scalar), R decodes,
//!                             [8]([s]B - R - [k]A) = 0   where k = SHA-512(R || A || M) mod l
//! batch of n             iff  [8](-(sum z_i s_i) B + sum z_i R_i + sum (z_i k_i) A_i) = 0
//!                             for random 128-bit z_i
//! ```
//!
//! Why not ed25519-dalek's `verify_strict` and `verify_batch`? Strict verification is the
//! *cofactorless* equation, and a batch is cofactorless too: a signature crafted with a
//! small-order component then passes or fails a batch depending on the random coefficients,
//! i.e. on which other signatures share its batch. Two nodes grouping a block's signatures
//! differently could disagree about the block: a fork. With the cofactored equation a
//! signature's verdict is a property of the signature alone (up to a 2^-128 chance), so a node
//! may verify a transaction once when it arrives, cache the verdict, and batch however it
//! likes. Every signature an honest Ed25519 signer makes passes both equations. This is the
//! rule of ZIP 215 (Zcash), except that public keys must be canonical and not of small order
//! (a small-order key would let anyone sign for its address).

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use std::sync::atomic::{AtomicU64, Ordering};

use rand_core::RngCore;
use rayon::prelude::*;
use sha2::{Digest, Sha512};

/// Signatures per batch of the benchmark's baseline (ed25519-dalek's `verify_batch`), and the
/// fewest [`verify_many`] puts in a batch when it has that many.
pub const BATCH: usize = 128;

/// The most signatures [`verify_many`] puts in one batch. One multiscalar multiplication
/// over more points costs less per point (Pippenger's buckets are shared by more of them):
/// batches of 512 cost about a fifth less per signature than batches of 128. A batch that
/// fails is split in halves (see [`verify_batch`]), so a bad signature costs about two more
/// batches, not one check per signature of its batch.
pub const MAX_BATCH: usize = 512;

/// Below this many signatures, a failed batch is settled by checking each one.
const CHECK_EACH_BELOW: usize = 8;

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    #[error("the public key is not a canonical Ed25519 point of large order")]
    BadKey,
    #[error("the signature does not verify")]
    BadSignature,
}

/// Decodes a public key: a canonical encoding of a point that is not of small order.
pub fn decode_key(bytes: &[u8; 32]) -> Result<EdwardsPoint, SigError> {
    let point = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(SigError::BadKey)?;
    if point.compress().as_bytes() != bytes || point.is_small_order() {
        return Err(SigError::BadKey);
    }
    Ok(point)
}

/// One signature to check: the signer's decoded key and its encoding, the signed message
/// and the 64-byte signature.
#[derive(Clone, Copy)]
pub struct SigItem<'a> {
    pub key: &'a EdwardsPoint,
    pub key_bytes: &'a [u8; 32],
    pub message: &'a [u8],
    pub signature: &'a [u8; 64],
}

/// The parts of the verification equation of one signature.
struct Prepared {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn prepare(item: &SigItem<'_>) -> Option<Prepared> {
    let r_bytes: [u8; 32] = item.signature[..32].try_into().unwrap();
    let s_bytes: [u8; 32] = item.signature[32..].try_into().unwrap();
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(item.key_bytes);
    h.update(item.message);
    let k = Scalar::from_hash(h);
    Some(Prepared { r, s, k })
}

fn check_one(key: &EdwardsPoint, p: &Prepared) -> bool {
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&-p.k, key, &p.s);
    (sb_minus_ka - p.r).mul_by_cofactor().is_identity()
}

/// Verifies one signature: the reference the batch verdicts are tested against.
#[cfg_attr(not(test), allow(dead_code))]
pub fn verify(item: &SigItem<'_>) -> Result<(), SigError> {
    match prepare(item) {
        Some(p) if check_one(item.key, &p) => Ok(()),
        _ => Err(SigError::BadSignature),
    }
}

/// Batches [`verify_batch`] was given, and the signatures in them, since the process
/// started: what the benchmark reads to tell how large the node's batches were (a batch of
/// 128 costs about two fifths more per signature than one of 512).
static BATCHES: AtomicU64 = AtomicU64::new(0);
static BATCHED: AtomicU64 = AtomicU64::new(0);

/// (batches, signatures) given to [`verify_batch`] so far, by every thread.
pub fn batch_counts() -> (u64, u64) {
    (
        BATCHES.load(Ordering::Relaxed),
        BATCHED.load(Ordering::Relaxed),
    )
}

/// Verifies signatures with one multiscalar multiplication; when the batch fails, splits
/// it in halves and verifies each the same way (with new random coefficients), down to
/// checking each of a few, to name the bad ones. The verdicts equal [`verify`]'s.
pub fn verify_batch(items: &[SigItem<'_>]) -> Vec<Result<(), SigError>> {
    BATCHES.fetch_add(1, Ordering::Relaxed);
    BATCHED.fetch_add(items.len() as u64, Ordering::Relaxed);
    let prepared: Vec<Option<Prepared>> = items.iter().map(prepare).collect();
    let good: Vec<(usize, &Prepared)> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
        .collect();
    let mut out: Vec<Result<(), SigError>> = prepared
        .iter()
        .map(|p| match p {
            Some(_) => Ok(()),
            None => Err(SigError::BadSignature),
        })
        .collect();
    settle(items, &good, &mut out);
    out
}

/// Marks in `out` the signatures of `group` (indices into `items`, with their parts) that do
/// not verify.
///
/// ```text
/// batch ok? ──yes──> all good
///    │ no
///    └─> fewer than CHECK_EACH_BELOW? ──yes──> check each
///           │ no
///           └─> settle(first half), settle(second half)
/// ```
fn settle(items: &[SigItem<'_>], group: &[(usize, &Prepared)], out: &mut [Result<(), SigError>]) {
    if group.is_empty() {
        return;
    }
    if group.len() < CHECK_EACH_BELOW {
        for (i, p) in group {
            if !check_one(items[*i].key, p) {
                out[*i] = Err(SigError::BadSignature);
            }
        }
        return;
    }
    if batch_holds(items, group) {
        return;
    }
    let (first, second) = group.split_at(group.len() / 2);
    settle(items, first, out);
    settle(items, second, out);
}

/// Whether the batch equation holds for `group`, with fresh random 128-bit coefficients.
fn batch_holds(items: &[SigItem<'_>], group: &[(usize, &Prepared)]) -> bool {
    let mut random = vec![0u8; 16 * group.len()];
    rand_core::OsRng.fill_bytes(&mut random);
    let zs: Vec<Scalar> = random
        .chunks_exact(16)
        .map(|c| Scalar::from(u128::from_le_bytes(c.try_into().unwrap())))
        .collect();
    let b_coefficient: Scalar = group.iter().zip(&zs).map(|((_, p), z)| z * p.s).sum();
    let scalars = std::iter::once(-b_coefficient)
        .chain(zs.iter().copied())
        .chain(group.iter().zip(&zs).map(|((_, p), z)| z * p.k));
    let points = std::iter::once(ED25519_BASEPOINT_POINT)
        .chain(group.iter().map(|(_, p)| p.r))
        .chain(group.iter().map(|(i, _)| *items[*i].key));
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// Verifies many signatures in batches spread over rayon's threads: as many batches as
/// threads when that makes batches of [`BATCH`] to [`MAX_BATCH`] signatures.
pub fn verify_many(items: &[SigItem<'_>]) -> Vec<Result<(), SigError>> {
    let threads = rayon::current_num_threads().max(1);
    let per = items.len().div_ceil(threads).clamp(BATCH, MAX_BATCH);
    items.par_chunks(per).flat_map_iter(verify_batch).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    struct Owned {
        point: EdwardsPoint,
        key: [u8; 32],
        msg: Vec<u8>,
        sig: [u8; 64],
    }

    impl Owned {
        fn honest(i: u8, msg: &[u8]) -> Owned {
            let k = key(i);
            let key = k.verifying_key().to_bytes();
            Owned {
                point: decode_key(&key).unwrap(),
                key,
                msg: msg.to_vec(),
                sig: k.sign(msg).to_bytes(),
            }
        }

        fn item(&self) -> SigItem<'_> {
            SigItem {
                key: &self.point,
                key_bytes: &self.key,
                message: &self.msg,
                signature: &self.sig,
            }
        }
    }

    /// A signature whose R carries a point of order 2: it satisfies the cofactored equation
    /// but not the cofactorless one (the signer knows the secret key; nothing is forged).
    fn torsioned(i: u8, msg: &[u8]) -> Owned {
        let k = key(i);
        let a = k.to_scalar();
        let key = k.verifying_key().to_bytes();
        let order2 = CompressedEdwardsY([
            0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ])
        .decompress()
        .unwrap();
        assert!(order2.is_small_order() && !order2.is_identity());
        let r = Scalar::from(12345u64 + i as u64);
        let big_r = EdwardsPoint::mul_base(&r) + order2;
        let r_bytes = big_r.compress().to_bytes();
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(key);
        h.update(msg);
        let s = r + Scalar::from_hash(h) * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        Owned {
            point: decode_key(&key).unwrap(),
            key,
            msg: msg.to_vec(),
            sig,
        }
    }

    #[test]
    fn honest_signatures_verify_singly_and_in_batches() {
        let all: Vec<Owned> = (0..300)
            .map(|i| Owned::honest((i % 7) as u8, format!("m{i}").as_bytes()))
            .collect();
        let items: Vec<SigItem> = all.iter().map(Owned::item).collect();
        assert!(items.iter().all(|i| verify(i).is_ok()));
        assert!(verify_many(&items).iter().all(Result::is_ok));
    }

    #[test]
    fn a_bad_signature_is_named_and_its_neighbours_pass() {
        let mut all: Vec<Owned> = (0..50)
            .map(|i| Owned::honest(1, format!("m{i}").as_bytes()))
            .collect();
        all[17].sig[40] ^= 1; // s changed
        all[30].msg.push(b'!'); // message changed
        all[42].sig[63] |= 0xf0; // s no longer canonical
        let items: Vec<SigItem> = all.iter().map(Owned::item).collect();
        let verdicts = verify_batch(&items);
        for (i, v) in verdicts.iter().enumerate() {
            let bad = [17, 30, 42].contains(&i);
            assert_eq!(v.is_err(), bad, "signature {i}");
            assert_eq!(verify(&items[i]).is_err(), bad, "signature {i} singly");
        }
    }

    #[test]
    fn bad_signatures_anywhere_in_a_large_batch_are_named() {
        let mut all: Vec<Owned> = (0..MAX_BATCH)
            .map(|i| Owned::honest((i % 5) as u8, format!("m{i}").as_bytes()))
            .collect();
        let bad = [0, 1, 200, 201, 202, 300, MAX_BATCH - 1];
        for &i in &bad {
            all[i].sig[40] ^= 1;
        }
        let items: Vec<SigItem> = all.iter().map(Owned::item).collect();
        for verdicts in [verify_batch(&items), verify_many(&items)] {
            for (i, v) in verdicts.iter().enumerate() {
                assert_eq!(v.is_err(), bad.contains(&i), "signature {i}");
            }
        }
    }

    #[test]
    fn a_torsioned_signature_gets_the_same_verdict_in_every_batch() {
        let odd = torsioned(3, b"crafted");
        let dalek_key = ed25519_dalek::VerifyingKey::from_bytes(&odd.key).unwrap();
        let dalek_sig = ed25519_dalek::Signature::from_bytes(&odd.sig);
        assert!(dalek_key.verify_strict(&odd.msg, &dalek_sig).is_err());
        assert!(verify(&odd.item()).is_ok());
        for n in 0..20 {
            let others: Vec<Owned> = (0..n)
                .map(|i| Owned::honest(2, format!("x{i}").as_bytes()))
                .collect();
            let mut items: Vec<SigItem> = others.iter().map(Owned::item).collect();
            items.insert(n / 2, odd.item());
            assert!(
                verify_batch(&items).iter().all(Result::is_ok),
                "batch of {n}"
            );
        }
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(decode_key(&identity), Err(SigError::BadKey));
        // y = p + 1 (non-canonical encoding of the identity's y coordinate).
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(decode_key(&non_canonical), Err(SigError::BadKey));
        assert!(decode_key(&key(9).verifying_key().to_bytes()).is_ok());
    }
}
