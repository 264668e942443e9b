//! Tests of `kchain_core::merkle`.
//!
//! - the published RFC 6962 vectors of transparency-dev/merkle and Certificate Transparency,
//!   checked in as data under `testdata/merkle/`: every root, subtree hash, inclusion and
//!   consistency proof, generated and verified, and every upstream probe with its error;
//! - systematic mutations of every valid proof (each bit of each hash, truncation, trailing and
//!   preceding garbage, swapped roots, wrong index, wrong sizes, wrong leaf), each with the error
//!   it must give;
//! - a naive reference implementation (`reference/`) as the oracle for all trees of up to 64
//!   leaves and, with proptest, random trees of up to 2000.

mod reference;

use std::path::PathBuf;

use kchain_core::merkle::{self, Hash, MerkleError, TreeBuilder};
use proptest::prelude::*;
use serde::{de::DeserializeOwned, Deserialize};

// ---------------------------------------------------------------------------------------------
// Outcomes: "ok" or the name of the error variant, so that data files can say what they expect

const OK: &str = "ok";
const MISMATCH: &str = "RootMismatch";
const LENGTH: &str = "WrongProofLength";
/// A `want` that makes no claim beyond agreeing with the reference.
const ANY: &str = "*";
/// A `want` that only claims the probe fails.
const FAILS: &str = "!ok";

fn variant(e: &MerkleError) -> &'static str {
    match e {
        MerkleError::IndexOutOfRange { .. } => "IndexOutOfRange",
        MerkleError::OldSizeOutOfRange { .. } => "OldSizeOutOfRange",
        MerkleError::SizesReversed { .. } => "SizesReversed",
        MerkleError::NonEmptyProofFromEmptyTree { .. } => "NonEmptyProofFromEmptyTree",
        MerkleError::NonEmptyProofForEqualSizes { .. } => "NonEmptyProofForEqualSizes",
        MerkleError::WrongProofLength { .. } => LENGTH,
        MerkleError::RootMismatch { .. } => MISMATCH,
        MerkleError::InvalidHashLength { .. } => "InvalidHashLength",
        _ => "unknown",
    }
}

fn outcome<T>(r: &Result<T, MerkleError>) -> &'static str {
    r.as_ref().map_or_else(variant, |_| OK)
}

fn assert_want(desc: &str, got: &str, want: &str) {
    match want {
        ANY => {}
        FAILS => assert_ne!(got, OK, "{desc}: accepted"),
        _ => assert_eq!(got, want, "{desc}"),
    }
}

/// The arguments of one `verify_inclusion` call.
#[derive(Clone)]
struct Incl {
    leaf: Hash,
    index: u64,
    size: u64,
    proof: Vec<Hash>,
    root: Hash,
}

/// The arguments of one `verify_consistency` call.
#[derive(Clone)]
struct Cons {
    size1: u64,
    size2: u64,
    proof: Vec<Hash>,
    root1: Hash,
    root2: Hash,
}

/// A copy of a case with one change.
trait With: Clone {
    fn with(&self, change: impl FnOnce(&mut Self)) -> Self {
        let mut case = self.clone();
        change(&mut case);
        case
    }
}

impl With for Incl {}
impl With for Cons {}

impl Incl {
    fn new(leaf: Hash, index: u64, size: u64, proof: Vec<Hash>, root: Hash) -> Self {
        Incl {
            leaf,
            index,
            size,
            proof,
            root,
        }
    }

    /// What verification must give, decided by the reference implementation.
    fn oracle(&self) -> &'static str {
        let (index, size, proof) = (self.index, self.size, &self.proof);
        if index >= size {
            "IndexOutOfRange"
        } else if proof.len() != reference::path_len(index, size) {
            LENGTH
        } else if reference::verify_inclusion(&self.leaf, index, size, proof, &self.root) {
            OK
        } else {
            MISMATCH
        }
    }

    /// Verifies; asserts that the verifier, `root_from_inclusion_proof`, the reference and
    /// `want` agree. Returns the outcome.
    fn check(&self, desc: &str, want: &str) -> &'static str {
        let (leaf, index, size, proof) = (&self.leaf, self.index, self.size, &self.proof);
        let desc = format!("{desc} (index {index}, size {size})");
        let got = outcome(&merkle::verify_inclusion(
            leaf, index, size, proof, &self.root,
        ));
        assert_eq!(got, self.oracle(), "{desc}: reference disagrees");
        let computed = merkle::root_from_inclusion_proof(leaf, index, size, proof);
        assert_eq!(computed.ok() == Some(self.root), got == OK, "{desc}");
        assert_want(&desc, got, want);
        got
    }
}

impl Cons {
    fn new(size1: u64, size2: u64, proof: Vec<Hash>, root1: Hash, root2: Hash) -> Self {
        Cons {
            size1,
            size2,
            proof,
            root1,
            root2,
        }
    }

    /// What verification must give, decided by the reference implementation.
    fn oracle(&self) -> &'static str {
        let (size1, size2, proof) = (self.size1, self.size2, &self.proof);
        let (root1, root2) = (&self.root1, &self.root2);
        let valid = reference::verify_consistency(size1, size2, proof, root1, root2);
        let verdict = if valid { OK } else { MISMATCH };
        if size1 > size2 {
            "SizesReversed"
        } else if size1 == 0 && !proof.is_empty() {
            "NonEmptyProofFromEmptyTree"
        } else if size1 == size2 && size1 > 0 && !proof.is_empty() {
            "NonEmptyProofForEqualSizes"
        } else if size1 == 0 || size1 == size2 {
            verdict
        } else if proof.len() != reference::proof_len(size1, size2) {
            LENGTH
        } else {
            verdict
        }
    }

    /// Verifies; asserts that the verifier, the reference and `want` agree. Returns the outcome.
    fn check(&self, desc: &str, want: &str) -> &'static str {
        let (size1, size2, proof) = (self.size1, self.size2, &self.proof);
        let desc = format!("{desc} (sizes {size1} -> {size2})");
        let verified = merkle::verify_consistency(size1, size2, proof, &self.root1, &self.root2);
        let got = outcome(&verified);
        assert_eq!(got, self.oracle(), "{desc}: reference disagrees");
        assert_want(&desc, got, want);
        got
    }
}

// ---------------------------------------------------------------------------------------------
// Test data

#[derive(Deserialize)]
struct RootsFile {
    source: Vec<String>,
    empty_root: String,
    leaves: Vec<LeafVector>,
    nodes: Vec<NodeVector>,
    roots: Vec<RootVector>,
}

#[derive(Deserialize)]
struct LeafVector {
    description: String,
    data: String,
    leaf_hash: String,
}

#[derive(Deserialize)]
struct NodeVector {
    description: String,
    level: u32,
    index: usize,
    hash: String,
}

#[derive(Deserialize)]
struct RootVector {
    description: String,
    size: usize,
    root: String,
}

/// `valid` and `probes` are cases `C` (probes with `expect`), `layouts` and `generation_errors`
/// are shapes `S` (layouts with `proof_nodes`, errors with `expect`).
#[derive(Deserialize)]
struct ProofFile<C, S> {
    source: Vec<String>,
    valid: Vec<C>,
    layouts: Vec<S>,
    generation_errors: Vec<S>,
    probes: Vec<C>,
}

type InclusionFile = ProofFile<InclusionCase, InclusionShape>;
type ConsistencyFile = ProofFile<ConsistencyCase, ConsistencyShape>;

#[derive(Deserialize)]
struct InclusionCase {
    description: String,
    index: u64,
    size: u64,
    leaf_hash: String,
    root: String,
    proof: Vec<String>,
    #[serde(default)]
    expect: String,
}

#[derive(Deserialize)]
struct ConsistencyCase {
    description: String,
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Vec<String>,
    #[serde(default)]
    expect: String,
}

#[derive(Deserialize)]
struct InclusionShape {
    description: String,
    index: u64,
    size: usize,
    #[serde(default)]
    proof_nodes: Vec<NodeRef>,
    #[serde(default)]
    expect: String,
}

#[derive(Deserialize)]
struct ConsistencyShape {
    description: String,
    size1: u64,
    size2: usize,
    #[serde(default)]
    proof_nodes: Vec<NodeRef>,
    #[serde(default)]
    expect: String,
}

/// A node of the reference tree as "level.index", or a pair [left, right] whose node hash
/// stands for a node missing from the stored tree (proof_test.go's "rehash").
#[derive(Deserialize)]
#[serde(untagged)]
enum NodeRef {
    Stored(String),
    Rehashed([String; 2]),
}

impl InclusionCase {
    /// The call, decoding every hash as a caller's wire decoder would.
    fn parse(&self) -> Result<Incl, MerkleError> {
        let (leaf, proof, root) = (
            hash(&self.leaf_hash)?,
            hashes(&self.proof)?,
            hash(&self.root)?,
        );
        Ok(Incl::new(leaf, self.index, self.size, proof, root))
    }
}

impl ConsistencyCase {
    /// The call, decoding every hash as a caller's wire decoder would.
    fn parse(&self) -> Result<Cons, MerkleError> {
        let (proof, root1, root2) = (hashes(&self.proof)?, hash(&self.root1)?, hash(&self.root2)?);
        Ok(Cons::new(self.size1, self.size2, proof, root1, root2))
    }
}

fn load<T: DeserializeOwned>(name: &str) -> T {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/merkle");
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn bytes(hex_str: &str) -> Vec<u8> {
    hex::decode(hex_str).unwrap_or_else(|e| panic!("bad hex {hex_str:?}: {e}"))
}

/// A hash from hex; a wrong length is the caller's `InvalidHashLength`.
fn hash(hex_str: &str) -> Result<Hash, MerkleError> {
    merkle::hash_from_slice(&bytes(hex_str))
}

fn hashes(hex_strs: &[String]) -> Result<Vec<Hash>, MerkleError> {
    hex_strs.iter().map(|h| hash(h)).collect()
}

/// The reference tree of eight leaves and its published roots at sizes 0..=8.
fn reference_tree() -> (Vec<Hash>, Vec<Hash>) {
    let file: RootsFile = load("rfc6962_roots.json");
    let leaves = file
        .leaves
        .iter()
        .map(|l| merkle::leaf_hash(&bytes(&l.data)));
    let roots = file.roots.iter().map(|r| hash(&r.root).unwrap());
    (leaves.collect(), roots.collect())
}

/// The hashes of a proof layout, from the published subtree hashes.
fn resolve(nodes: &[NodeRef]) -> Vec<Hash> {
    let file: RootsFile = load("rfc6962_roots.json");
    let node = |id: &str| -> Hash {
        let (level, index) = id.split_once('.').expect("level.index");
        let (level, index): (u32, usize) = (level.parse().unwrap(), index.parse().unwrap());
        let found = file
            .nodes
            .iter()
            .find(|n| (n.level, n.index) == (level, index));
        hash(&found.unwrap_or_else(|| panic!("no node {id}")).hash).unwrap()
    };
    let resolve_one = |r: &NodeRef| match r {
        NodeRef::Stored(id) => node(id),
        NodeRef::Rehashed([left, right]) => merkle::node_hash(&node(left), &node(right)),
    };
    nodes.iter().map(resolve_one).collect()
}

/// Distinct leaves for generated trees.
fn generated_leaves(n: usize) -> Vec<Hash> {
    let leaf = |i| reference::leaf_hash(format!("leaf {i}").as_bytes());
    (0..n).map(leaf).collect()
}

// ---------------------------------------------------------------------------------------------
// Systematic mutations of a valid proof

/// Bits flipped in larger sweeps: the ends of the hash and upstream's bits 3 and 4 of byte 0.
const SOME_BITS: [usize; 6] = [0, 3, 4, 127, 128, 255];
const GARBAGE: Hash = [0x5a; 32];

fn all_bits() -> Vec<usize> {
    (0..256).collect()
}

/// Every bit for small trees, a sample for larger ones.
fn bits_for(size: usize) -> Vec<usize> {
    if size <= 16 {
        all_bits()
    } else {
        SOME_BITS.to_vec()
    }
}

fn flipped(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h[bit / 8] ^= 1 << (bit % 8);
    h
}

fn replaced(proof: &[Hash], i: usize, h: Hash) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[i] = h;
    p
}

type Edit = (String, Vec<Hash>, &'static str);

/// Edits of a valid proof that must fail, each with the error it must give: every bit of every
/// hash flipped, each hash replaced, the last or first hash removed, and each of `extras` added
/// at the end and at the front.
fn proof_edits(proof: &[Hash], bits: &[usize], extras: &[(&str, Hash)]) -> Vec<Edit> {
    let mut edits = Vec::new();
    for (i, h) in proof.iter().enumerate() {
        for &b in bits {
            let p = replaced(proof, i, flipped(h, b));
            edits.push((format!("proof[{i}] bit {b}"), p, MISMATCH));
        }
        let p = replaced(proof, i, GARBAGE);
        edits.push((format!("proof[{i}] replaced"), p, MISMATCH));
    }
    if let Some((_, short)) = proof.split_last() {
        edits.push(("truncated proof".to_string(), short.to_vec(), LENGTH));
        edits.push((
            "first hash removed".to_string(),
            proof[1..].to_vec(),
            LENGTH,
        ));
    }
    for &(what, extra) in extras {
        edits.push((
            format!("trailing {what}"),
            [proof, &[extra]].concat(),
            LENGTH,
        ));
        edits.push((
            format!("preceding {what}"),
            [&[extra], proof].concat(),
            LENGTH,
        ));
    }
    edits
}

/// Every mutation of a valid inclusion proof must fail, with the error the reference predicts
/// and, where it is certain, the one named here. Returns the number of probes.
fn mutate_inclusion(v: &Incl, bits: &[usize]) -> usize {
    let mut n = 0;
    let mut check = |desc: &str, case: Incl, want: &str| {
        n += 1;
        case.check(desc, want)
    };
    check("valid proof", v.clone(), OK);
    let extras = [("garbage", GARBAGE), ("root", v.root), ("leaf", v.leaf)];
    for (desc, proof, want) in proof_edits(&v.proof, bits, &extras) {
        check(&desc, v.with(|c| c.proof = proof), want);
    }
    for &b in bits {
        let (leaf, root) = (flipped(&v.leaf, b), flipped(&v.root, b));
        check(
            &format!("leaf bit {b}"),
            v.with(|c| c.leaf = leaf),
            MISMATCH,
        );
        check(
            &format!("root bit {b}"),
            v.with(|c| c.root = root),
            MISMATCH,
        );
    }
    let (wrong_leaf, empty_root) = (merkle::leaf_hash(b"WrongLeaf"), merkle::empty_root());
    check("wrong leaf", v.with(|c| c.leaf = wrong_leaf), MISMATCH);
    check("empty root", v.with(|c| c.root = empty_root), MISMATCH);
    for i in (0..v.size + 2).filter(|&i| i != v.index) {
        check("wrong index", v.with(|c| c.index = i), FAILS);
    }
    let out_of_range = "IndexOutOfRange";
    check(
        "index u64::MAX",
        v.with(|c| c.index = u64::MAX),
        out_of_range,
    );
    // The size only shapes the path, so another size whose path to the index has the same
    // shape accepts the proof (a signed checkpoint binds size to root): the reference decides.
    for s in (0..=2 * v.size + 2).filter(|&s| s != v.size) {
        check("wrong size", v.with(|c| c.size = s), ANY);
    }
    check("size * 2", v.with(|c| c.size *= 2), LENGTH);
    check("size u64::MAX", v.with(|c| c.size = u64::MAX), ANY);
    n
}

/// Every mutation of a valid consistency proof between different sizes must fail, with the
/// error the reference predicts and, where it is certain, the one named here. Returns the
/// number of probes.
fn mutate_consistency(v: &Cons, bits: &[usize]) -> usize {
    let (s1, s2, r1, r2) = (v.size1, v.size2, v.root1, v.root2);
    assert!(0 < s1 && s1 < s2);
    let mut n = 0;
    let mut check = |desc: &str, case: Cons, want: &str| {
        n += 1;
        case.check(desc, want)
    };
    check("valid proof", v.clone(), OK);
    let extras = [
        ("garbage", GARBAGE),
        ("root1", r1),
        ("root2", r2),
        ("proof[0]", v.proof[0]),
    ];
    for (desc, proof, want) in proof_edits(&v.proof, bits, &extras) {
        check(&desc, v.with(|c| c.proof = proof), want);
    }
    for &b in bits {
        let (f1, f2) = (flipped(&r1, b), flipped(&r2, b));
        check(
            &format!("root1 bit {b}"),
            v.with(|c| c.root1 = f1),
            MISMATCH,
        );
        check(
            &format!("root2 bit {b}"),
            v.with(|c| c.root2 = f2),
            MISMATCH,
        );
    }
    check(
        "swapped roots",
        Cons::new(s1, s2, v.proof.clone(), r2, r1),
        MISMATCH,
    );
    check("empty proof", v.with(|c| c.proof.clear()), LENGTH);
    for other in (0..=s2 + 1).filter(|&other| other != s1) {
        check("wrong size1", v.with(|c| c.size1 = other), FAILS);
    }
    for other in (0..=2 * s2 + 2).filter(|&other| other != s2) {
        check("wrong size2", v.with(|c| c.size2 = other), ANY);
    }
    check("size2 * 2", v.with(|c| c.size2 *= 2), LENGTH);
    let edges = [
        (0, s2, "NonEmptyProofFromEmptyTree"),
        (s2, s2, "NonEmptyProofForEqualSizes"),
        (s2 + 1, s2, "SizesReversed"),
        (s1, u64::MAX, ANY),
    ];
    for (size1, size2, want) in edges {
        check(
            "edge sizes",
            v.with(|c| (c.size1, c.size2) = (size1, size2)),
            want,
        );
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Published vectors

#[test]
fn published_leaf_node_and_root_hashes() {
    let file: RootsFile = load("rfc6962_roots.json");
    assert!(file
        .source
        .iter()
        .any(|s| s.contains("transparency-dev/merkle")));
    let (leaves, _) = reference_tree();
    for (leaf, v) in leaves.iter().zip(&file.leaves) {
        assert_eq!(Ok(*leaf), hash(&v.leaf_hash), "{}", v.description);
    }
    for v in &file.nodes {
        let width = 1usize << v.level;
        let subtree = &leaves[v.index * width..(v.index + 1) * width];
        assert_eq!(
            Ok(merkle::root(subtree)),
            hash(&v.hash),
            "{}",
            v.description
        );
    }
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(Ok(merkle::empty_root()), hash(&file.empty_root));
    assert_eq!(hex::encode(merkle::empty_root()), empty);
    assert_eq!(file.roots.len(), 9, "sizes 0 to 8");
    for v in &file.roots {
        let (want, prefix) = (hash(&v.root), &leaves[..v.size]);
        assert_eq!(Ok(merkle::root(prefix)), want, "{}", v.description);
        assert_eq!(
            Ok(reference::mth(prefix)),
            want,
            "reference: {}",
            v.description
        );
    }
}

#[test]
fn tree_builder_gives_the_published_roots() {
    let (leaves, roots) = reference_tree();
    let mut builder = TreeBuilder::new();
    assert_eq!((builder.size(), builder.root()), (0, roots[0]));
    for (size, leaf) in (1..).zip(&leaves) {
        builder.push(leaf);
        assert_eq!(
            (builder.size(), builder.root()),
            (size, roots[size as usize])
        );
    }
}

#[test]
fn published_inclusion_proofs_are_generated_and_verified() {
    let file: InclusionFile = load("inclusion.json");
    assert!(!file.source.is_empty());
    let (leaves, roots) = reference_tree();
    assert_eq!(file.valid.len(), 5);
    let mut probes = 0;
    for v in &file.valid {
        let (desc, case) = (&v.description, v.parse().unwrap());
        let (index, size) = (v.index as usize, v.size as usize);
        assert_eq!(
            (case.leaf, case.root),
            (leaves[index], roots[size]),
            "{desc}"
        );
        let generated = merkle::inclusion_proof(&leaves[..size], v.index).unwrap();
        assert_eq!(generated, case.proof, "{desc}");
        assert_eq!(
            reference::path(index, &leaves[..size]),
            case.proof,
            "{desc}"
        );
        probes += mutate_inclusion(&case, &all_bits());
    }
    assert!(probes > 5000, "{probes} probes");
}

#[test]
fn published_inclusion_layouts_are_generated_and_verified() {
    let file: InclusionFile = load("inclusion.json");
    let (leaves, roots) = reference_tree();
    assert_eq!(file.layouts.len(), 15);
    for v in &file.layouts {
        let want = resolve(&v.proof_nodes);
        let generated = merkle::inclusion_proof(&leaves[..v.size], v.index).unwrap();
        assert_eq!(generated, want, "{}", v.description);
        let leaf = leaves[v.index as usize];
        Incl::new(leaf, v.index, v.size as u64, want, roots[v.size]).check(&v.description, OK);
    }
}

#[test]
fn inclusion_proof_generation_errors() {
    let file: InclusionFile = load("inclusion.json");
    let (leaves, _) = reference_tree();
    assert_eq!(file.generation_errors.len(), 5);
    for v in &file.generation_errors {
        let got = merkle::inclusion_proof(&leaves[..v.size], v.index);
        assert_eq!(outcome(&got), v.expect, "{}", v.description);
        let (index, size) = (v.index, v.size as u64);
        assert_eq!(got, Err(MerkleError::IndexOutOfRange { index, size }));
    }
}

#[test]
fn published_inclusion_probes() {
    let file: InclusionFile = load("inclusion.json");
    assert_eq!(file.probes.len(), 89);
    for p in &file.probes {
        let got = match p.parse() {
            Err(e) => variant(&e),
            Ok(case) => case.check(&p.description, ANY),
        };
        assert_eq!(got, p.expect, "{}", p.description);
    }
}

#[test]
fn published_consistency_proofs_are_generated_and_verified() {
    let file: ConsistencyFile = load("consistency.json");
    assert!(!file.source.is_empty());
    let (leaves, roots) = reference_tree();
    assert_eq!(file.valid.len(), 5);
    let mut probes = 0;
    for v in &file.valid {
        let (desc, case) = (&v.description, v.parse().unwrap());
        let (size1, size2) = (v.size1 as usize, v.size2 as usize);
        assert_eq!(
            (case.root1, case.root2),
            (roots[size1], roots[size2]),
            "{desc}"
        );
        let generated = merkle::consistency_proof(&leaves[..size2], v.size1).unwrap();
        assert_eq!(generated, case.proof, "{desc}");
        assert_eq!(
            reference::proof(size1, &leaves[..size2]),
            case.proof,
            "{desc}"
        );
        case.check(desc, OK);
        if size1 < size2 {
            probes += mutate_consistency(&case, &all_bits());
        }
    }
    assert!(probes > 5000, "{probes} probes");
}

#[test]
fn published_consistency_layouts_are_generated_and_verified() {
    let file: ConsistencyFile = load("consistency.json");
    let (leaves, roots) = reference_tree();
    assert_eq!(file.layouts.len(), 22);
    for v in &file.layouts {
        let want = resolve(&v.proof_nodes);
        let generated = merkle::consistency_proof(&leaves[..v.size2], v.size1).unwrap();
        assert_eq!(generated, want, "{}", v.description);
        let (root1, root2) = (roots[v.size1 as usize], roots[v.size2]);
        Cons::new(v.size1, v.size2 as u64, want, root1, root2).check(&v.description, OK);
    }
}

#[test]
fn consistency_proof_generation_errors() {
    let file: ConsistencyFile = load("consistency.json");
    let (leaves, _) = reference_tree();
    assert_eq!(file.generation_errors.len(), 3);
    for v in &file.generation_errors {
        let got = merkle::consistency_proof(&leaves[..v.size2], v.size1);
        assert_eq!(outcome(&got), v.expect, "{}", v.description);
        let (old_size, size) = (v.size1, v.size2 as u64);
        assert_eq!(got, Err(MerkleError::OldSizeOutOfRange { old_size, size }));
    }
}

#[test]
fn published_consistency_probes() {
    let file: ConsistencyFile = load("consistency.json");
    assert_eq!(file.probes.len(), 92);
    for p in &file.probes {
        let got = match p.parse() {
            Err(e) => variant(&e),
            Ok(case) => case.check(&p.description, ANY),
        };
        assert_eq!(got, p.expect, "{}", p.description);
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-checks against the reference implementation

#[test]
fn all_trees_up_to_64_leaves_match_the_reference() {
    let leaves = generated_leaves(64);
    for n in 0..=64 {
        let (tree, size) = (&leaves[..n], n as u64);
        let root = merkle::root(tree);
        assert_eq!(root, reference::mth(tree), "root of {n}");
        for i in 0..n {
            let proof = merkle::inclusion_proof(tree, i as u64).unwrap();
            assert_eq!(proof, reference::path(i, tree), "inclusion {i} of {n}");
            Incl::new(tree[i], i as u64, size, proof, root).check("generated", OK);
        }
        for m in 1..=n {
            let proof = merkle::consistency_proof(tree, m as u64).unwrap();
            assert_eq!(proof, reference::proof(m, tree), "consistency {m} -> {n}");
            let old_root = reference::mth(&tree[..m]);
            Cons::new(m as u64, size, proof, old_root, root).check("generated", OK);
        }
        let index_error = MerkleError::IndexOutOfRange { index: size, size };
        assert_eq!(merkle::inclusion_proof(tree, size), Err(index_error));
        let old_size_error = MerkleError::OldSizeOutOfRange { old_size: 0, size };
        assert_eq!(merkle::consistency_proof(tree, 0), Err(old_size_error));
        let too_big = merkle::consistency_proof(tree, size + 1);
        assert_eq!(outcome(&too_big), "OldSizeOutOfRange");
    }
}

#[test]
fn every_inclusion_proof_up_to_64_leaves_rejects_every_mutation() {
    let leaves = generated_leaves(64);
    let mut probes = 0;
    for n in 1..=64 {
        let (tree, root) = (&leaves[..n], merkle::root(&leaves[..n]));
        for i in 0..n {
            let proof = merkle::inclusion_proof(tree, i as u64).unwrap();
            let valid = Incl::new(tree[i], i as u64, n as u64, proof, root);
            probes += mutate_inclusion(&valid, &bits_for(n));
            for (j, &other) in tree.iter().enumerate().filter(|&(j, _)| j != i) {
                valid
                    .with(|c| c.leaf = other)
                    .check(&format!("leaf {j}"), MISMATCH);
            }
        }
    }
    assert!(probes > 500_000, "{probes} probes");
}

#[test]
fn every_consistency_proof_up_to_64_leaves_rejects_every_mutation() {
    let leaves = generated_leaves(64);
    let roots: Vec<Hash> = (0..=64).map(|n| merkle::root(&leaves[..n])).collect();
    let mut probes = 0;
    for n in 1..=64 {
        for m in 1..n {
            let proof = merkle::consistency_proof(&leaves[..n], m as u64).unwrap();
            let valid = Cons::new(m as u64, n as u64, proof, roots[m], roots[n]);
            probes += mutate_consistency(&valid, &bits_for(n));
            // The proof is bound to the old root: no other prefix's root passes.
            for k in (1..=n).filter(|&k| k != m) {
                valid
                    .with(|c| c.root1 = roots[k])
                    .check(&format!("root of {k}"), MISMATCH);
            }
        }
    }
    assert!(probes > 500_000, "{probes} probes");
}

#[test]
fn equal_and_empty_sizes_follow_the_edge_rules() {
    let leaves = generated_leaves(5);
    let (e, r5) = (merkle::empty_root(), merkle::root(&leaves));
    let verify = |s1, s2, proof: &[Hash], r1: &Hash, r2: &Hash| {
        merkle::verify_consistency(s1, s2, proof, r1, r2)
    };
    assert_eq!(verify(0, 0, &[], &e, &e), Ok(()));
    assert_eq!(verify(0, 5, &[], &e, &r5), Ok(()));
    assert_eq!(verify(5, 5, &[], &r5, &r5), Ok(()));
    let equal = MerkleError::NonEmptyProofForEqualSizes { size: 5, len: 1 };
    assert_eq!(verify(5, 5, &[r5], &r5, &r5), Err(equal));
    let from_empty = MerkleError::NonEmptyProofFromEmptyTree { len: 1 };
    assert_eq!(verify(0, 5, &[r5], &e, &r5), Err(from_empty));
    let reversed = MerkleError::SizesReversed { size1: 6, size2: 5 };
    assert_eq!(verify(6, 5, &[], &r5, &r5), Err(reversed));
    let (computed, expected) = (hex::encode(e), hex::encode(r5));
    let not_empty = MerkleError::RootMismatch {
        size: 0,
        computed,
        expected,
    };
    assert_eq!(verify(0, 5, &[], &r5, &r5), Err(not_empty));
    assert_eq!(outcome(&verify(5, 5, &[], &r5, &e)), MISMATCH);
    assert_eq!(outcome(&verify(0, 0, &[], &e, &r5)), MISMATCH);
    let out_of_range = MerkleError::IndexOutOfRange { index: 0, size: 0 };
    assert_eq!(
        merkle::verify_inclusion(&leaves[0], 0, 0, &[], &e),
        Err(out_of_range)
    );
}

#[test]
fn errors_say_what_is_wrong() {
    let leaves = generated_leaves(8);
    let root = merkle::root(&leaves);
    let proof = merkle::inclusion_proof(&leaves, 3).unwrap();
    let short = merkle::verify_inclusion(&leaves[3], 3, 8, &proof[..2], &root).unwrap_err();
    assert_eq!(
        short,
        MerkleError::WrongProofLength {
            expected: 3,
            actual: 2
        }
    );
    assert_eq!(
        short.to_string(),
        "wrong proof length: expected 3 hashes, got 2"
    );
    let wrong = merkle::verify_inclusion(&leaves[4], 3, 8, &proof, &root).unwrap_err();
    let computed = merkle::root_from_inclusion_proof(&leaves[4], 3, 8, &proof).unwrap();
    let text = wrong.to_string();
    for part in [
        hex::encode(root),
        hex::encode(computed),
        "tree size 8".to_string(),
    ] {
        assert!(text.contains(&part), "{text}");
    }
    let too_short = MerkleError::InvalidHashLength { len: 31 };
    assert_eq!(merkle::hash_from_slice(&[0; 31]), Err(too_short));
    assert_eq!(merkle::hash_from_slice(&root), Ok(root));
}

#[test]
fn extreme_sizes_do_not_panic() {
    let h = [7u8; 32];
    for size in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) + 1] {
        for len in [0, 1, 63, 64, 65, 128] {
            let proof = vec![h; len];
            for index in [0, 1, size / 2, size - 2, size - 1] {
                Incl::new(h, index, size, proof.clone(), h).check("extreme", ANY);
            }
            for size1 in [1, 2, 3, size / 2, size - 1, size] {
                Cons::new(size1, size, proof.clone(), h, h).check("extreme", ANY);
            }
        }
    }
}

#[test]
fn tree_builder_matches_root_at_every_size() {
    let leaves = generated_leaves(1100);
    let mut builder = TreeBuilder::default();
    for n in 0..=leaves.len() {
        assert_eq!(builder.size(), n as u64);
        assert_eq!(builder.root(), merkle::root(&leaves[..n]), "size {n}");
        if let Some(leaf) = leaves.get(n) {
            builder.push(leaf);
        }
    }
}

/// Leaves appended many at a time give the tree of pushing them one at a time (same size,
/// frontier and root) and [`merkle::root`]'s root, at every start size up to 70 and every
/// run length up to 140, and at larger sizes around powers of two.
#[test]
fn tree_builder_extend_equals_pushing_one_leaf_at_a_time() {
    let leaves = generated_leaves(9000);
    let check = |start: usize, len: usize| {
        let mut pushed = TreeBuilder::new();
        leaves[..start].iter().for_each(|l| pushed.push(l));
        let mut extended = pushed.clone();
        leaves[start..start + len]
            .iter()
            .for_each(|l| pushed.push(l));
        extended.extend(&leaves[start..start + len]);
        assert_eq!(extended, pushed, "start {start}, {len} leaves");
        assert_eq!(
            extended.root(),
            merkle::root(&leaves[..start + len]),
            "start {start}, {len} leaves"
        );
    };
    for start in 0..=70 {
        for len in 0..=140 {
            check(start, len);
        }
    }
    for start in [0, 1, 511, 512, 513, 1000, 1024, 3072, 4095, 4097] {
        for len in [1023, 1024, 1025, 2048, 4096, 4100] {
            check(start, len);
        }
    }
    // Runs of varying length, one after the other, as a writer's batches arrive.
    let mut extended = TreeBuilder::new();
    let (mut at, mut run) = (0, 1);
    while at < leaves.len() {
        let end = (at + run).min(leaves.len());
        extended.extend(&leaves[at..end]);
        at = end;
        assert_eq!(extended.root(), merkle::root(&leaves[..at]), "size {at}");
        run = run * 3 % 2049 + 1;
    }
}

fn random_leaves(seed: u64, n: usize) -> Vec<Hash> {
    let leaf = |k| reference::leaf_hash(format!("{seed}/{k}").as_bytes());
    (0..n).map(leaf).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_trees_match_the_reference(
        seed in any::<u64>(),
        n in 1usize..=2000,
        i in any::<prop::sample::Index>(),
        m in any::<prop::sample::Index>(),
    ) {
        let leaves = random_leaves(seed, n);
        let root = merkle::root(&leaves);
        prop_assert_eq!(root, reference::mth(&leaves));
        let mut builder = TreeBuilder::new();
        leaves.iter().for_each(|leaf| builder.push(leaf));
        prop_assert_eq!(builder.root(), root);

        let index = i.index(n);
        let proof = merkle::inclusion_proof(&leaves, index as u64).unwrap();
        prop_assert_eq!(&proof, &reference::path(index, &leaves));
        Incl::new(leaves[index], index as u64, n as u64, proof, root).check("random", OK);

        let old = m.index(n) + 1;
        let proof = merkle::consistency_proof(&leaves, old as u64).unwrap();
        prop_assert_eq!(&proof, &reference::proof(old, &leaves));
        let old_root = reference::mth(&leaves[..old]);
        Cons::new(old as u64, n as u64, proof, old_root, root).check("random", OK);
    }

    #[test]
    fn random_bit_flips_are_rejected(
        seed in any::<u64>(),
        n in 2usize..=2000,
        i in any::<prop::sample::Index>(),
        m in any::<prop::sample::Index>(),
        which in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let leaves = random_leaves(seed, n);
        let root = merkle::root(&leaves);

        let index = i.index(n);
        let mut proof = merkle::inclusion_proof(&leaves, index as u64).unwrap();
        let w = which.index(proof.len());
        proof[w] = flipped(&proof[w], bit);
        Incl::new(leaves[index], index as u64, n as u64, proof, root).check("flip", MISMATCH);

        let old = m.index(n - 1) + 1;
        let mut proof = merkle::consistency_proof(&leaves, old as u64).unwrap();
        let w = which.index(proof.len());
        proof[w] = flipped(&proof[w], bit);
        let old_root = merkle::root(&leaves[..old]);
        Cons::new(old as u64, n as u64, proof, old_root, root).check("flip", MISMATCH);
    }
}

#[test]
fn consistency_proofs_from_a_frontier_equal_those_from_all_leaves() {
    let leaves = generated_leaves(70);
    for n in 1..=leaves.len() {
        for m in 1..=n {
            let mut old = TreeBuilder::new();
            leaves[..m].iter().for_each(|l| old.push(l));
            let restored = TreeBuilder::from_peaks(old.size(), old.peaks().to_vec()).unwrap();
            assert_eq!(restored, old);
            let got = merkle::consistency_proof_extending(&restored, &leaves[m..n]).unwrap();
            let want = merkle::consistency_proof(&leaves[..n], m as u64).unwrap();
            assert_eq!(got, want, "m={m} n={n}");
        }
    }
    assert!(TreeBuilder::from_peaks(3, vec![[0; 32]]).is_none());
    assert!(matches!(
        merkle::consistency_proof_extending(&TreeBuilder::new(), &leaves[..2]),
        Err(MerkleError::OldSizeOutOfRange { .. })
    ));
}

/// Two leaves or two nodes hashed at once are the hashes one at a time, at every leaf
/// length up to 700 bytes (on the stack and copied).
#[test]
fn leaves_and_nodes_two_at_a_time_hash_as_one_at_a_time() {
    let data: Vec<u8> = (0..700u32).map(|i| (i * 13 + 5) as u8).collect();
    for n in 0..=700 {
        let (a, b) = (&data[..n], &data[700 - (n * 3) % 701..]);
        let want = [merkle::leaf_hash(a), merkle::leaf_hash(b)];
        assert_eq!(merkle::leaf_hash_x2(a, b), want, "{n}");
    }
    let h = |i: u32| kchain_core::sha256(&i.to_be_bytes());
    for i in 0..50 {
        let (a, b) = ((h(i), h(i + 1)), (h(i + 2), h(i * 7)));
        let want = [merkle::node_hash(&a.0, &a.1), merkle::node_hash(&b.0, &b.1)];
        assert_eq!(merkle::node_hash_x2((&a.0, &a.1), (&b.0, &b.1)), want);
        let message = [&[1u8][..], &a.0, &a.1].concat();
        assert_eq!(
            want[0],
            kchain_core::sha256(&message),
            "SHA-256(0x01 || l || r)"
        );
    }
}
