//! A naive RFC 6962 Merkle tree, for tests only: straight recursion over the definitions of
//! RFC 6962 section 2.1 (MTH, PATH, PROOF/SUBPROOF), with its own SHA-256 calls, so that the
//! fast code in `kchain_core::merkle` is checked against the text of the RFC and not against
//! itself. Slow on purpose: every proof re-hashes whole subtrees and every step allocates.
//! (Modelled on transparency-dev/merkle `testonly/reference_test.go`.)

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The largest power of two smaller than `n`, counted up as in the RFC text. Requires n > 1.
fn split(n: u64) -> u64 {
    let mut k = 1;
    // k * 2 < n, written so that it cannot overflow for n near u64::MAX.
    while k < n - k {
        k *= 2;
    }
    k
}

fn split_usize(n: usize) -> usize {
    split(n as u64) as usize
}

/// The number of hashes in PATH(m, D[n]), by the same recursion. Requires m < n.
pub fn path_len(m: u64, n: u64) -> usize {
    if n == 1 {
        return 0;
    }
    let k = split(n);
    1 + if m < k {
        path_len(m, k)
    } else {
        path_len(m - k, n - k)
    }
}

/// The number of hashes in PROOF(m, D[n]), by the same recursion. Requires 0 < m <= n.
pub fn proof_len(m: u64, n: u64) -> usize {
    fn sub(m: u64, n: u64, b: bool) -> usize {
        if m == n {
            return usize::from(!b);
        }
        let k = split(n);
        1 + if m <= k {
            sub(m, k, b)
        } else {
            sub(m - k, n - k, false)
        }
    }
    sub(m, n, true)
}

/// MTH(D[n]) over leaf hashes.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split_usize(n);
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]). Requires m < n.
pub fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    assert!(m < n);
    if n == 1 {
        return vec![];
    }
    let k = split_usize(n);
    if m < k {
        [path(m, &leaves[..k]), vec![mth(&leaves[k..])]].concat()
    } else {
        [path(m - k, &leaves[k..]), vec![mth(&leaves[..k])]].concat()
    }
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true). Requires 0 < m <= n.
pub fn proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    assert!(0 < m && m <= leaves.len());
    subproof(m, leaves, true)
}

fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { vec![] } else { vec![mth(leaves)] };
    }
    let k = split_usize(n);
    if m <= k {
        [subproof(m, &leaves[..k], b), vec![mth(&leaves[k..])]].concat()
    } else {
        [
            subproof(m - k, &leaves[k..], false),
            vec![mth(&leaves[..k])],
        ]
        .concat()
    }
}

/// The root that PATH(index, D[size]) leads to, rebuilt by the same recursion that defines
/// PATH: the last hash of a path is the sibling at the top. None when the path cannot be one
/// (index out of range, too few or too many hashes).
pub fn root_from_path(index: u64, size: u64, leaf: &Hash, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    if size == 1 {
        return path.is_empty().then_some(*leaf);
    }
    let (top, rest) = path.split_last()?;
    let k = split(size);
    if index < k {
        Some(node_hash(&root_from_path(index, k, leaf, rest)?, top))
    } else {
        Some(node_hash(
            top,
            &root_from_path(index - k, size - k, leaf, rest)?,
        ))
    }
}

/// Verification of an inclusion proof straight from the definition of PATH.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    root_from_path(index, size, leaf, path).as_ref() == Some(root)
}

/// The (old, new) roots that SUBPROOF(m, D[n], b) leads to, rebuilt by the recursion that
/// defines SUBPROOF; `root1` stands for the old subtree when `b` says it is left out.
fn roots_from_subproof(
    m: u64,
    n: u64,
    b: bool,
    proof: &[Hash],
    root1: &Hash,
) -> Option<(Hash, Hash)> {
    if m == n {
        return match (b, proof) {
            (true, []) => Some((*root1, *root1)),
            (false, [h]) => Some((*h, *h)),
            _ => None,
        };
    }
    let (top, rest) = proof.split_last()?;
    let k = split(n);
    if m <= k {
        let (old, new) = roots_from_subproof(m, k, b, rest, root1)?;
        Some((old, node_hash(&new, top)))
    } else {
        let (old, new) = roots_from_subproof(m - k, n - k, false, rest, root1)?;
        Some((node_hash(top, &old), node_hash(top, &new)))
    }
}

/// Verification of a consistency proof straight from the definition of PROOF, with kchain's
/// rules for the edges: equal sizes need an empty proof and equal roots; size 0 needs an empty
/// proof and the empty root (and so does size2 when it is 0 too).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> bool {
    let empty = mth(&[]);
    if size1 > size2 {
        false
    } else if size1 == 0 {
        proof.is_empty() && *root1 == empty && (size2 > 0 || *root2 == empty)
    } else if size1 == size2 {
        proof.is_empty() && root1 == root2
    } else {
        roots_from_subproof(size1, size2, true, proof, root1) == Some((*root1, *root2))
    }
}
