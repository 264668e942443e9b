//! Tests of the C2SP formats (signed notes, checkpoints, cosignatures), the witness, the
//! verification policy and the proof files.
//!
//! - published vectors checked in as data under `testdata/c2sp/` (the Go reference's note
//!   tests, the C2SP specs' examples, real sum.golang.org checkpoints, sigsum-go's signing and
//!   cosigning vectors, transparency-dev/formats' keys and refusals), byte for byte, each with
//!   the error it must give;
//! - systematic mutations: every substring and every byte of keys, every truncation and bit of
//!   a note, every bit of every proof hash, truncated, extended and swapped proofs, wrong
//!   indexes and sizes, re-signed and unsigned checkpoints;
//! - witness scenarios (growth, fork, split view, replay, unknown writer) and k-of-n policies;
//! - round trips and never-panicking parsers (proptest).

use std::fmt::Debug;
use std::path::PathBuf;

use kchain_core::checkpoint::{
    cosignature_message, key_id as note_key_id, EntryEvidence, ItemEvidence, NoteError,
    SignatureType, INCLUSION_PROOF_FORMAT, MAX_SIGNATURES,
};
use kchain_core::merkle::{self, Hash};
use kchain_core::{
    chain_leaf, chain_origin, verify_consistency_proof, verify_inclusion_proof, ChainId,
    Checkpoint, ConsistencyProofFile, Cosignature, Cosigner, EntryHeader, InclusionProofFile, Item,
    NoteSignature, NoteSigner, NoteVerifier, Policy, PolicyError, ProofError, SignedNote, Witness,
    WitnessRefusal, ENTRY_VERSION,
};
use proptest::prelude::*;
use serde::{de::DeserializeOwned, Deserialize};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Helpers

fn load<T: DeserializeOwned>(name: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/c2sp")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The variant name of an error, as data files spell it (`InvalidSignature`).
fn name<E: Debug>(e: &E) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap()
        .to_owned()
}

/// A proof error with the error inside it (`Policy/BadWriterSignature`).
fn proof_kind(e: &ProofError) -> String {
    match e {
        ProofError::Note { source, .. } => format!("Note/{}", name(source)),
        ProofError::Policy { source, .. } => format!("Policy/{}", name(source)),
        ProofError::NotIncluded { source, .. }
        | ProofError::ItemNotIncluded { source, .. }
        | ProofError::Inconsistent { source, .. } => format!("{}/{}", name(e), name(source)),
        _ => name(e),
    }
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn vkeys(list: &[String]) -> Vec<NoteVerifier> {
    list.iter()
        .map(|v| NoteVerifier::parse(v).unwrap())
        .collect()
}

fn parse(note: &str) -> SignedNote {
    SignedNote::parse(note.as_bytes()).unwrap_or_else(|e| panic!("{e}: {note:?}"))
}

// ---------------------------------------------------------------------------------------------
// Signed notes: published vectors

#[derive(Deserialize)]
struct NoteVectors {
    keys: Vec<KeyVector>,
    bad_vkeys: Vec<Refused>,
    notes: Vec<NoteVector>,
    signing: Vec<SigningVector>,
    malformed_notes: Vec<MalformedNote>,
}

#[derive(Deserialize)]
struct KeyVector {
    description: String,
    vkey: String,
    skey: Option<String>,
    name: String,
    key_id: String,
    #[serde(rename = "type")]
    kind: u8,
}

#[derive(Deserialize)]
struct Refused {
    description: String,
    vkey: String,
    want: String,
}

#[derive(Deserialize)]
struct NoteVector {
    description: String,
    text: String,
    note: String,
    checks: Vec<NoteCheck>,
}

#[derive(Deserialize)]
struct NoteCheck {
    verifiers: Vec<String>,
    verified: Option<Vec<String>>,
    want: Option<String>,
}

#[derive(Deserialize)]
struct SigningVector {
    description: String,
    skey: String,
    text: String,
    note: String,
}

#[derive(Deserialize)]
struct MalformedNote {
    description: String,
    note: Option<String>,
    note_hex: Option<String>,
    want: String,
}

#[test]
fn published_keys_parse_and_reencode_byte_for_byte() {
    let v: NoteVectors = load("signed_note.json");
    for k in &v.keys {
        let d = &k.description;
        let verifier = NoteVerifier::parse(&k.vkey).unwrap_or_else(|e| panic!("{d}: {e}"));
        assert_eq!(verifier.name(), k.name, "{d}");
        assert_eq!(format!("{:08x}", verifier.key_id()), k.key_id, "{d}");
        assert_eq!(verifier.kind().byte(), k.kind, "{d}");
        assert_eq!(verifier.to_vkey(), k.vkey, "{d}");
        assert_eq!(
            note_key_id(verifier.name(), verifier.kind(), verifier.public_key()),
            verifier.key_id(),
            "{d}"
        );
        if let Some(skey) = &k.skey {
            let signer = NoteSigner::from_signer_key(skey).unwrap();
            assert_eq!(signer.verifier().to_vkey(), k.vkey, "{d}");
            assert_eq!(signer.to_signer_key(), *skey, "{d}");
            assert!(
                !format!("{signer:?}").contains(&skey[34..]),
                "{d}: Debug shows the secret"
            );
        }
    }
}

#[test]
fn published_bad_keys_are_refused() {
    let v: NoteVectors = load("signed_note.json");
    for b in &v.bad_vkeys {
        let got = NoteVerifier::parse(&b.vkey)
            .map(|_| "ok".to_owned())
            .unwrap_or_else(|e| name(&e));
        assert_eq!(got, b.want, "{}", b.description);
    }
    // Go's wrong-length case, with canonical base64: a 31-byte key whose id matches.
    let blob = [&[1u8][..], &[0x1a; 31]].concat();
    let id = u32::from_be_bytes(
        Sha256::digest([b"k\n".as_slice(), &blob].concat())[..4]
            .try_into()
            .unwrap(),
    );
    let vkey = format!("k+{id:08x}+{}", base64_encode(&blob));
    assert_eq!(
        name(&NoteVerifier::parse(&vkey).unwrap_err()),
        "InvalidPublicKey"
    );
    // Upper-case hex ids and non-canonical base64 are not the canonical encoding.
    let peter = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert!(NoteVerifier::parse(&peter.replace("c74f20a3", "C74F20A3")).is_err());
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// As golang.org/x/mod's TestNewVerifier and TestNewSigner: every proper substring of a key,
/// and the key with any one byte incremented, is refused.
#[test]
fn every_substring_and_byte_change_of_a_key_is_refused() {
    let v: NoteVectors = load("signed_note.json");
    let mut texts: Vec<(&str, bool)> = v.keys.iter().map(|k| (k.vkey.as_str(), false)).collect();
    texts.extend(
        v.keys
            .iter()
            .filter_map(|k| k.skey.as_deref())
            .map(|s| (s, true)),
    );
    for (text, secret) in texts {
        let accepted = |s: &[u8]| {
            let Ok(s) = std::str::from_utf8(s) else {
                return false;
            };
            if secret {
                NoteSigner::from_signer_key(s).is_ok() || Cosigner::from_signer_key(s).is_ok()
            } else {
                NoteVerifier::parse(s).is_ok()
            }
        };
        let b = text.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    assert!(!accepted(&b[i..j]), "substring {i}..{j} of {text} accepted");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            assert!(!accepted(&m), "byte {i} of {text} incremented: accepted");
        }
    }
}

#[test]
fn published_notes_verify_and_reserialize_byte_for_byte() {
    let v: NoteVectors = load("signed_note.json");
    for n in &v.notes {
        let d = &n.description;
        let note = parse(&n.note);
        assert_eq!(note.text(), n.text, "{d}");
        assert_eq!(note.to_text(), n.note, "{d}");
        assert_eq!(note.to_string(), n.note, "{d}");
        for c in &n.checks {
            let known = vkeys(&c.verifiers);
            match (note.verify(&known), &c.verified, &c.want) {
                (Ok(got), Some(want), None) => {
                    let got: Vec<&str> = got.iter().map(|v| v.name()).collect();
                    assert_eq!(got, *want, "{d}");
                }
                (Err(e), None, Some(want)) => assert_eq!(name(&e), *want, "{d}: {e}"),
                (got, verified, want) => panic!("{d}: got {got:?}, want {verified:?} / {want:?}"),
            }
        }
    }
}

#[test]
fn published_signing_vectors_are_reproduced_exactly() {
    let v: NoteVectors = load("signed_note.json");
    for s in &v.signing {
        let signer = NoteSigner::from_signer_key(&s.skey).unwrap();
        let mut note = SignedNote::new(s.text.clone()).unwrap();
        note.sign(&signer);
        assert_eq!(note.to_text(), s.note, "{}", s.description);

        // As Go's TestSign: signing again replaces a signature with the same key name and id.
        let mut note = SignedNote::new(s.text.clone()).unwrap();
        let placeholder = b"BADSIGN".to_vec();
        note.add_signature(
            NoteSignature::new(signer.name(), signer.key_id(), placeholder).unwrap(),
        );
        note.sign(&signer);
        assert_eq!(note.to_text(), s.note, "{}: replacing", s.description);
    }
}

#[test]
fn published_malformed_notes_are_refused() {
    let v: NoteVectors = load("signed_note.json");
    for m in &v.malformed_notes {
        let bytes = match (&m.note, &m.note_hex) {
            (Some(n), None) => n.as_bytes().to_vec(),
            (None, Some(h)) => hex::decode(h).unwrap(),
            _ => panic!("{}: one of note and note_hex", m.description),
        };
        let got = SignedNote::parse(&bytes)
            .map(|_| "ok".to_owned())
            .unwrap_or_else(|e| name(&e));
        assert_eq!(got, m.want, "{}", m.description);
    }
}

/// As Go's TestOpen: more than 100 signature lines is a malformed note, whatever the keys.
#[test]
fn at_most_one_hundred_signatures() {
    let v: NoteVectors = load("signed_note.json");
    let (text, line) = v.notes[0].note.split_once("\n\n").unwrap();
    let with = |n: usize| format!("{text}\n\n{}", line.repeat(n));
    let note = SignedNote::parse(with(MAX_SIGNATURES).as_bytes()).unwrap();
    assert_eq!(note.signatures().len(), 100);
    assert_eq!(note.to_text(), with(MAX_SIGNATURES));
    let err = SignedNote::parse(with(MAX_SIGNATURES + 1).as_bytes()).unwrap_err();
    assert_eq!(err, NoteError::TooManySignatures { max: 100 });
}

/// Every truncation and every bit flip of a signed note is refused, by the parser or by the
/// signature check.
#[test]
fn every_truncation_and_bit_flip_of_a_note_is_refused() {
    let v: NoteVectors = load("signed_note.json");
    let n = &v.notes[0];
    let known = vkeys(&n.checks[0].verifiers);
    let opens = |b: &[u8]| SignedNote::parse(b).and_then(|note| note.verify(&known).map(|_| ()));
    let b = n.note.as_bytes();
    assert!(opens(b).is_ok());
    for len in 0..b.len() {
        assert!(
            opens(&b[..len]).is_err(),
            "truncated to {len} bytes: accepted"
        );
    }
    for i in 0..b.len() {
        for bit in 0..8 {
            let mut m = b.to_vec();
            m[i] ^= 1 << bit;
            assert!(
                opens(&m).is_err(),
                "bit {bit} of byte {i} flipped: accepted"
            );
        }
    }
    let garbage = format!("{}junk\n", n.note);
    assert!(matches!(
        SignedNote::parse(garbage.as_bytes()),
        Err(NoteError::MalformedSignatureLine { line: 5, .. })
    ));
}

#[test]
fn note_texts_and_names_are_checked() {
    assert_eq!(SignedNote::new("no newline"), Err(NoteError::InvalidText));
    assert_eq!(SignedNote::new(""), Err(NoteError::InvalidText));
    assert_eq!(SignedNote::new("tab\there\n"), Err(NoteError::InvalidText));
    // The text may hold blank lines and even end in one: it runs to the last blank line.
    let signer = NoteSigner::from_seed("k", [7; 32]).unwrap();
    for text in ["a\n\nb\n", "a\n\n", "\n"] {
        let mut note = SignedNote::new(text).unwrap();
        note.sign(&signer);
        let back = parse(&note.to_text());
        assert_eq!(back, note);
        back.verify(&[signer.verifier()]).unwrap();
    }
    for bad in ["", "a b", "a+b", "a\u{a0}b", "a\u{2028}b", "a\u{1}b"] {
        assert!(NoteSigner::from_seed(bad, [1; 32]).is_err(), "{bad:?}");
        assert!(NoteSignature::new(bad, 1, vec![1]).is_err(), "{bad:?}");
    }
    assert!(NoteSignature::new("k", 1, vec![]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

#[derive(Deserialize)]
struct CheckpointVectors {
    bodies: Vec<BodyVector>,
    signed: Vec<SignedCheckpoint>,
    signing: Vec<CheckpointSigning>,
    invalid: Vec<InvalidCheckpoint>,
}

#[derive(Deserialize)]
struct BodyVector {
    description: String,
    text: String,
    origin: String,
    size: u64,
    root: String,
    root_is_leaf_hash_of: Option<String>,
    extensions: Vec<String>,
}

#[derive(Deserialize)]
struct SignedCheckpoint {
    description: String,
    note: String,
    vkey: String,
}

#[derive(Deserialize)]
struct CheckpointSigning {
    description: String,
    seed: String,
    key_name: String,
    note: String,
}

#[derive(Deserialize)]
struct InvalidCheckpoint {
    description: String,
    text: String,
    want: String,
}

#[test]
fn published_checkpoint_texts_parse_and_format_byte_for_byte() {
    let v: CheckpointVectors = load("checkpoint.json");
    for b in &v.bodies {
        let d = &b.description;
        let c = Checkpoint::parse(&b.text).unwrap_or_else(|e| panic!("{d}: {e}"));
        assert_eq!(
            (c.origin(), c.size(), c.root()),
            (b.origin.as_str(), b.size, &hex32(&b.root)),
            "{d}"
        );
        assert_eq!(c.extensions(), b.extensions, "{d}");
        assert_eq!(c.to_text(), b.text, "{d}");
        let built = Checkpoint::new(&b.origin, b.size, hex32(&b.root)).unwrap();
        assert_eq!(
            built.with_extensions(b.extensions.clone()).unwrap(),
            c,
            "{d}"
        );
        if let Some(data) = &b.root_is_leaf_hash_of {
            assert_eq!(merkle::leaf_hash(data.as_bytes()), *c.root(), "{d}");
        }
    }
}

#[test]
fn published_signed_checkpoints_verify() {
    let v: CheckpointVectors = load("checkpoint.json");
    for s in &v.signed {
        let note = parse(&s.note);
        let writer = NoteVerifier::parse(&s.vkey).unwrap();
        let trusted = Policy::new(vec![writer.clone()], vec![], 0)
            .unwrap()
            .check(&note);
        let trusted = trusted.unwrap_or_else(|e| panic!("{}: {e}", s.description));
        assert_eq!(trusted.writers, [writer.name()]);
        assert_eq!(note.to_text(), s.note);
        let other = NoteSigner::from_seed("sum.golang.org", [9; 32])
            .unwrap()
            .verifier();
        let err = Policy::new(vec![other], vec![], 0)
            .unwrap()
            .check(&note)
            .unwrap_err();
        assert_eq!(name(&err), "UnknownWriter", "{}", s.description);
    }
}

#[test]
fn published_checkpoint_signing_is_reproduced_exactly() {
    let v: CheckpointVectors = load("checkpoint.json");
    for s in &v.signing {
        let signer = NoteSigner::from_seed(&s.key_name, hex32(&s.seed)).unwrap();
        // Sigsum names a log by the hex SHA-256 of its public key.
        let key_hash = hex::encode(Sha256::digest(signer.verifier().public_key()));
        assert!(s.key_name.ends_with(&key_hash), "{}", s.description);
        let checkpoint = Checkpoint::parse(parse(&s.note).text()).unwrap();
        assert_eq!(
            checkpoint.sign(&signer).to_text(),
            s.note,
            "{}",
            s.description
        );
    }
}

#[test]
fn invalid_checkpoint_texts_are_refused() {
    let v: CheckpointVectors = load("checkpoint.json");
    for i in &v.invalid {
        let got = Checkpoint::parse(&i.text)
            .map(|_| "ok".to_owned())
            .unwrap_or_else(|e| name(&e));
        assert_eq!(got, i.want, "{}", i.description);
    }
    assert_eq!(
        name(&Checkpoint::new("", 1, [0; 32]).unwrap_err()),
        "EmptyOrigin"
    );
    assert_eq!(
        name(&Checkpoint::new("a\nb", 1, [0; 32]).unwrap_err()),
        "ControlCharacter"
    );
    assert_eq!(
        name(&Checkpoint::new("o", 0, [0; 32]).unwrap_err()),
        "EmptyTreeRoot"
    );
    let ok = Checkpoint::new("o", 0, merkle::empty_root()).unwrap();
    assert_eq!(
        name(&ok.clone().with_extensions(vec![String::new()]).unwrap_err()),
        "EmptyExtensionLine"
    );
    assert_eq!(
        name(&ok.with_extensions(vec!["a\nb".into()]).unwrap_err()),
        "InvalidExtensionLine"
    );
}

#[test]
fn kchain_origins_and_leaves() {
    assert_eq!(chain_origin("kchain", "orders/0"), "kchain/orders/0");
    let entry: Hash = [0xab; 32];
    let mut data = vec![0u8];
    data.extend_from_slice(&entry);
    assert_eq!(chain_leaf(&entry), <[u8; 32]>::from(Sha256::digest(&data)));
}

// ---------------------------------------------------------------------------------------------
// Cosignatures

#[derive(Deserialize)]
struct CosignatureVectors {
    cosign: Vec<CosignVector>,
    policy_lines: Vec<PolicyLine>,
    parse: Vec<ParseVector>,
    messages: Vec<MessageVector>,
}

#[derive(Deserialize)]
struct CosignVector {
    description: String,
    seed: String,
    name: String,
    key_id: String,
    timestamp: u64,
    text: String,
    line: String,
}

#[derive(Deserialize)]
struct PolicyLine {
    description: String,
    line: String,
    want: String,
}

#[derive(Deserialize)]
struct ParseVector {
    description: String,
    line: String,
    name: Option<String>,
    key_id: Option<String>,
    timestamp: Option<u64>,
    want: Option<String>,
}

#[derive(Deserialize)]
struct MessageVector {
    timestamp: u64,
    text: String,
    message: String,
}

/// The signature line `line` on a one-line note, parsed.
fn signature_of(line: &str) -> NoteSignature {
    parse(&format!("x\n\n{line}")).signatures()[0].clone()
}

#[test]
fn published_cosignature_is_reproduced_exactly() {
    let v: CosignatureVectors = load("cosignature.json");
    for c in &v.cosign {
        let d = &c.description;
        let cosigner = Cosigner::from_seed(&c.name, hex32(&c.seed)).unwrap();
        assert_eq!(format!("{:08x}", cosigner.key_id()), c.key_id, "{d}");
        let cosignature = cosigner.cosign(&c.text, c.timestamp);
        assert_eq!(cosignature.to_note_signature().to_line(), c.line, "{d}");
        assert_eq!(
            Cosignature::from_note_signature(&signature_of(&c.line)).unwrap(),
            cosignature
        );

        let mut note = SignedNote::new(c.text.clone()).unwrap();
        note.add_signature(cosignature.to_note_signature());
        assert_eq!(note.verify(&[cosigner.verifier()]).unwrap().len(), 1, "{d}");
        // The same key as a plain note key (type 0x01) has another id: it does not verify it.
        let plain = NoteSigner::from_seed(&c.name, hex32(&c.seed))
            .unwrap()
            .verifier();
        assert_ne!(plain.key_id(), cosigner.key_id());
        assert_eq!(
            name(&note.verify(&[plain]).unwrap_err()),
            "NoVerifiedSignature"
        );
    }
}

#[test]
fn published_cosignature_lines_under_a_policy() {
    let v: CosignatureVectors = load("cosignature.json");
    let c = &v.cosign[0];
    let witness = Cosigner::from_seed(&c.name, hex32(&c.seed))
        .unwrap()
        .verifier();
    let writer = NoteSigner::from_seed("example.org/log", [3; 32]).unwrap();
    let policy = Policy::new(vec![writer.verifier()], vec![witness], 1).unwrap();
    for p in &v.policy_lines {
        let note = parse(&format!(
            "{}\n{}{}",
            c.text,
            writer.sign(&c.text).to_line(),
            p.line
        ));
        let got = policy
            .check(&note)
            .map(|_| "ok".to_owned())
            .unwrap_or_else(|e| name(&e));
        assert_eq!(got, p.want, "{}", p.description);
    }
}

#[test]
fn published_cosignature_lines_parse() {
    let v: CosignatureVectors = load("cosignature.json");
    for p in &v.parse {
        let d = &p.description;
        match (
            Cosignature::from_note_signature(&signature_of(&p.line)),
            &p.want,
        ) {
            (Ok(c), None) => {
                assert_eq!(Some(&c.name), p.name.as_ref(), "{d}");
                assert_eq!(Some(format!("{:08x}", c.key_id)), p.key_id, "{d}");
                assert_eq!(Some(c.timestamp), p.timestamp, "{d}");
                assert_eq!(c.to_note_signature().to_line(), p.line, "{d}");
            }
            (Err(e), Some(want)) => assert_eq!(name(&e), *want, "{d}"),
            (got, want) => panic!("{d}: got {got:?}, want {want:?}"),
        }
    }
    let mut blob = vec![0x80; 8];
    blob.extend_from_slice(&[0; 64]);
    let big = NoteSignature::new("w", 1, blob).unwrap();
    assert_eq!(
        name(&Cosignature::from_note_signature(&big).unwrap_err()),
        "TimestampOutOfRange"
    );
}

#[test]
fn published_cosignature_message_layout() {
    let v: CosignatureVectors = load("cosignature.json");
    for m in &v.messages {
        assert_eq!(
            cosignature_message(m.timestamp, &m.text),
            m.message.as_bytes()
        );
    }
}

#[test]
fn cosigner_keys_round_trip_and_accept_plain_note_keys() {
    let cosigner = Cosigner::from_seed("witness.example/w1", [5; 32]).unwrap();
    let skey = cosigner.to_signer_key();
    assert!(skey.starts_with("PRIVATE+KEY+witness.example/w1+"));
    let back = Cosigner::from_signer_key(&skey).unwrap();
    assert_eq!(back.verifier(), cosigner.verifier());
    assert_eq!(
        name(&NoteSigner::from_signer_key(&skey).unwrap_err()),
        "MalformedSignerKey"
    );
    assert!(!format!("{cosigner:?}").contains(&skey[skey.len() - 20..]));
    // A plain (type 0x01) key file, as transparency-dev witnesses keep theirs.
    let plain = NoteSigner::from_seed("witness.example/w1", [5; 32])
        .unwrap()
        .to_signer_key();
    assert_eq!(
        Cosigner::from_signer_key(&plain).unwrap().verifier(),
        cosigner.verifier()
    );
    let vkey = cosigner.verifier().to_vkey();
    assert_eq!(
        NoteVerifier::parse(&vkey).unwrap().kind(),
        SignatureType::CosignatureV1
    );
}

// ---------------------------------------------------------------------------------------------
// A chain and its checkpoints, for the witness, policy and proof tests

const ORIGIN: &str = "kchain/orders/0";
const NOW: u64 = 1_750_000_000;

/// A chain of real entries (one item each, three at height 6) and a writer key.
struct Chain {
    entries: Vec<EntryHeader>,
    items: Vec<Vec<Item>>,
    leaves: Vec<Hash>,
    writer: NoteSigner,
    origin: String,
}

impl Chain {
    fn new(origin: &str, len: u64, salt: &str) -> Chain {
        let mut chain = Chain {
            entries: vec![],
            items: vec![],
            leaves: vec![],
            writer: NoteSigner::from_seed("acme-orders", [1; 32]).unwrap(),
            origin: origin.into(),
        };
        for height in 0..len {
            let items: Vec<Item> = (0..if height == 6 { 3 } else { 1 })
                .map(|i| Item {
                    key: Some(format!("k{height}").into_bytes()),
                    value: Some(format!("{salt}record {height}.{i}").into_bytes()),
                    headers: vec![("source".into(), b"test".to_vec())],
                    timestamp_ms: 1_000 + height as i64,
                })
                .collect();
            let item_leaves: Vec<Hash> = items.iter().map(Item::leaf_hash).collect();
            let header = EntryHeader {
                version: ENTRY_VERSION,
                chain: ChainId::from_name("orders/0"),
                height,
                prev: chain.entries.last().map_or([0; 32], EntryHeader::hash),
                timestamp_ms: 1_000 + height as i64,
                items_root: merkle::root(&item_leaves),
                item_count: items.len() as u32,
            };
            chain.leaves.push(chain_leaf(&header.hash()));
            chain.entries.push(header);
            chain.items.push(items);
        }
        chain
    }

    fn checkpoint(&self, size: u64) -> Checkpoint {
        let root = merkle::root(&self.leaves[..size as usize]);
        Checkpoint::new(&self.origin, size, root).unwrap()
    }

    fn note(&self, size: u64) -> SignedNote {
        self.checkpoint(size).sign(&self.writer)
    }

    fn consistency(&self, old: u64, new: u64) -> Vec<Hash> {
        if old == 0 || old == new {
            return vec![];
        }
        merkle::consistency_proof(&self.leaves[..new as usize], old).unwrap()
    }
}

fn witnesses(n: u8) -> Vec<Cosigner> {
    (0..n)
        .map(|i| Cosigner::from_seed(&format!("witness{i}.example/w"), [0x20 + i; 32]).unwrap())
        .collect()
}

fn cosigned(chain: &Chain, size: u64, by: &[Cosigner]) -> SignedNote {
    let mut note = chain.note(size);
    for (i, w) in by.iter().enumerate() {
        note.add_signature(w.cosign(note.text(), NOW + i as u64).to_note_signature());
    }
    note
}

// ---------------------------------------------------------------------------------------------
// Witness scenarios

#[test]
fn witness_cosigns_consistent_growth() {
    let chain = Chain::new(ORIGIN, 64, "");
    let witness = Witness::new(witnesses(1).remove(0), vec![chain.writer.verifier()]);
    let policy = Policy::new(
        vec![chain.writer.verifier()],
        vec![witness.cosigner().verifier()],
        1,
    )
    .unwrap()
    .for_origin(ORIGIN);
    let mut state: Option<(SignedNote, u64)> = None;
    for (step, size) in [0u64, 1, 1, 2, 5, 8, 8, 13, 64].into_iter().enumerate() {
        let offered = chain.note(size);
        let proof = state
            .as_ref()
            .map_or(vec![], |(_, old)| chain.consistency(*old, size));
        let now = NOW + step as u64;
        let cosignature = witness
            .observe(state.as_ref().map(|(n, _)| n), &offered, &proof, now)
            .unwrap_or_else(|e| panic!("size {size}: {e}"));
        assert_eq!(cosignature.timestamp, now);
        let mut note = offered.clone();
        note.add_signature(cosignature.to_note_signature());
        let trusted = policy.check(&note).unwrap();
        assert_eq!(trusted.checkpoint, chain.checkpoint(size));
        assert_eq!(
            trusted.cosigners,
            [(witness.cosigner().name().to_owned(), now)]
        );
        state = Some((note, size));
    }
}

#[test]
fn witness_refuses_a_fork_with_evidence() {
    let honest = Chain::new(ORIGIN, 13, "");
    let forked = Chain::new(ORIGIN, 13, "forged ");
    let witness = Witness::new(witnesses(1).remove(0), vec![honest.writer.verifier()]);
    let cosigned_a = honest.note(8);
    witness.observe(None, &cosigned_a, &[], NOW).unwrap();

    // Same size, another root: self-evident.
    let b8 = forked.note(8);
    let (origin, size, evidence) = match witness.observe(Some(&cosigned_a), &b8, &[], NOW) {
        Err(WitnessRefusal::Fork {
            origin,
            size,
            evidence,
        }) => (origin, size, evidence),
        other => panic!("want Fork, got {other:?}"),
    };
    assert_eq!((origin.as_str(), size), (ORIGIN, 8));
    assert_eq!((&evidence.cosigned, &evidence.offered), (&cosigned_a, &b8));
    for note in [&evidence.cosigned, &evidence.offered] {
        note.verify(&[honest.writer.verifier()]).unwrap();
    }

    // A larger tree that does not extend the cosigned one, with the forger's proof.
    let b10 = forked.note(10);
    let proof = forked.consistency(8, 10);
    let (evidence, cause) = match witness.observe(Some(&cosigned_a), &b10, &proof, NOW) {
        Err(WitnessRefusal::Inconsistent { evidence, cause }) => (evidence, cause),
        other => panic!("want Inconsistent, got {other:?}"),
    };
    assert_eq!(name(&cause), "RootMismatch");
    assert_eq!(evidence.proof, proof);

    // The evidence, as a consistency proof file, fails for anyone who checks it.
    let file = ConsistencyProofFile::from(&*evidence);
    let policy = Policy::new(vec![honest.writer.verifier()], vec![], 0).unwrap();
    let err = verify_consistency_proof(&file, &policy).unwrap_err();
    assert_eq!(proof_kind(&err), "Inconsistent/RootMismatch");
}

/// A writer shows one history to one witness and another to the other: each view is
/// consistent, so each witness cosigns, but no checkpoint meets a 2-of-2 policy, and the moment
/// either witness sees the other view it refuses with evidence.
#[test]
fn fork_shown_to_two_witnesses() {
    let honest = Chain::new(ORIGIN, 13, "");
    let forked = Chain::new(ORIGIN, 13, "forged ");
    let [w1, w2]: [Cosigner; 2] = witnesses(2).try_into().unwrap();
    let writers = vec![honest.writer.verifier()];
    let (w1, w2) = (
        Witness::new(w1, writers.clone()),
        Witness::new(w2, writers.clone()),
    );
    let policy = Policy::new(
        writers,
        vec![w1.cosigner().verifier(), w2.cosigner().verifier()],
        2,
    )
    .unwrap();

    let mut a = honest.note(10);
    a.add_signature(w1.observe(None, &a, &[], NOW).unwrap().to_note_signature());
    let mut b = forked.note(10);
    b.add_signature(w2.observe(None, &b, &[], NOW).unwrap().to_note_signature());
    for note in [&a, &b] {
        let err = policy.check(note).unwrap_err();
        assert!(
            matches!(
                err,
                PolicyError::NotEnoughCosignatures {
                    have: 1,
                    need: 2,
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!(
        name(&w1.observe(Some(&a), &b, &[], NOW).unwrap_err()),
        "Fork"
    );
    assert_eq!(
        name(&w2.observe(Some(&b), &a, &[], NOW).unwrap_err()),
        "Fork"
    );
}

#[test]
fn witness_refuses_replay_unknown_writers_and_bad_input() {
    let chain = Chain::new(ORIGIN, 13, "");
    let witness = Witness::new(witnesses(1).remove(0), vec![chain.writer.verifier()]);
    let last = chain.note(13);
    let refuse = |offered: &SignedNote, proof: &[Hash], last: Option<&SignedNote>| {
        name(&witness.observe(last, offered, proof, NOW).unwrap_err())
    };

    // A replayed older checkpoint, even with a valid proof in the right direction.
    assert_eq!(refuse(&chain.note(8), &[], Some(&last)), "Replay");
    assert_eq!(
        refuse(&chain.note(8), &chain.consistency(8, 13), Some(&last)),
        "Replay"
    );
    // The same checkpoint again is cosigned again.
    witness
        .observe(Some(&last), &chain.note(13), &[], NOW + 1)
        .unwrap();

    // A checkpoint signed by a key the witness does not know.
    let stranger = NoteSigner::from_seed("acme-orders", [66; 32]).unwrap();
    assert_eq!(
        refuse(&chain.checkpoint(13).sign(&stranger), &[], None),
        "UnknownWriter"
    );
    // A known key's signature over another text.
    let forged = parse(&chain.note(13).to_text().replacen("\n13\n", "\n12\n", 1));
    assert_eq!(
        refuse(&forged, &[], Some(&chain.note(8))),
        "BadWriterSignature"
    );

    // Proofs that do not lead from the cosigned checkpoint to the offered one.
    let old = chain.note(5);
    let mut proof = chain.consistency(5, 13);
    proof.pop();
    assert_eq!(refuse(&last, &proof, Some(&old)), "Inconsistent");
    assert_eq!(
        refuse(&last, &chain.consistency(6, 13), Some(&old)),
        "Inconsistent"
    );
    assert_eq!(
        refuse(&last, &chain.consistency(5, 13), None),
        "UnexpectedProof"
    );
    assert_eq!(refuse(&last, &proof, Some(&last)), "UnexpectedProof");

    // Another chain's state, and a note that is not a checkpoint.
    let other = Chain::new("kchain/orders/1", 13, "");
    assert_eq!(refuse(&last, &[], Some(&other.note(5))), "OriginMismatch");
    let mut not_checkpoint = SignedNote::new("hello\n").unwrap();
    not_checkpoint.sign(&chain.writer);
    assert_eq!(refuse(&not_checkpoint, &[], None), "Malformed");
    assert_eq!(refuse(&last, &[], Some(&not_checkpoint)), "BadState");
}

// ---------------------------------------------------------------------------------------------
// Policy

#[test]
fn policy_k_of_n() {
    let chain = Chain::new(ORIGIN, 13, "");
    let ws = witnesses(4);
    let (listed, stranger) = (&ws[..3], &ws[3]);
    let verifiers: Vec<NoteVerifier> = listed.iter().map(Cosigner::verifier).collect();
    let policy = |k| Policy::new(vec![chain.writer.verifier()], verifiers.clone(), k).unwrap();
    for mask in 0u8..8 {
        let by: Vec<Cosigner> = (0..3)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| ws[i].clone())
            .collect();
        let note = cosigned(&chain, 13, &by);
        for k in 0..=3 {
            match policy(k).check(&note) {
                Ok(t) => {
                    assert!(by.len() >= k, "mask {mask:03b} met {k}-of-3");
                    assert_eq!(t.cosigners.len(), by.len());
                }
                Err(PolicyError::NotEnoughCosignatures { have, need, .. }) => {
                    assert!(by.len() < k, "mask {mask:03b} failed {k}-of-3");
                    assert_eq!((have, need), (by.len(), k));
                }
                Err(e) => panic!("mask {mask:03b}, k {k}: {e}"),
            }
        }
    }

    // A witness counts once, at its latest cosignature; strangers and the writer do not count.
    let once = cosigned(&chain, 13, &ws[..1]);
    let stranger_line = stranger
        .cosign(once.text(), NOW)
        .to_note_signature()
        .to_line();
    let again_line = ws[0]
        .cosign(once.text(), NOW + 99)
        .to_note_signature()
        .to_line();
    let twice = parse(&format!("{once}{stranger_line}{again_line}"));
    let t = policy(1).check(&twice).unwrap();
    assert_eq!(t.cosigners, [(ws[0].name().to_owned(), NOW + 99)]);
    assert_eq!(t.writers, [chain.writer.name()]);
    assert_eq!(
        name(&policy(2).check(&twice).unwrap_err()),
        "NotEnoughCosignatures"
    );

    // A listed witness's cosignature that does not verify rejects the note.
    let mut tampered = cosigned(&chain, 13, &ws[..2]);
    let last = tampered.signatures().last().unwrap().clone();
    let mut sig = last.signature().to_vec();
    sig[20] ^= 1;
    tampered.add_signature(NoteSignature::new(last.name(), last.key_id(), sig).unwrap());
    assert_eq!(
        name(&policy(1).check(&tampered).unwrap_err()),
        "BadCosignature"
    );

    // Only cosignatures, no writer signature.
    let mut unsigned = SignedNote::new(chain.checkpoint(13).to_text()).unwrap();
    unsigned.add_signature(ws[0].cosign(unsigned.text(), NOW).to_note_signature());
    assert_eq!(
        name(&policy(1).check(&unsigned).unwrap_err()),
        "UnknownWriter"
    );

    // The origin restriction.
    let err = policy(0)
        .for_origin("kchain/orders/1")
        .check(&chain.note(13))
        .unwrap_err();
    assert_eq!(name(&err), "WrongOrigin");
}

#[test]
fn policies_are_checked_when_built() {
    let writer = NoteSigner::from_seed("w", [1; 32]).unwrap().verifier();
    let witness = Cosigner::from_seed("c", [2; 32]).unwrap().verifier();
    let err = |r: Result<Policy, PolicyError>| name(&r.unwrap_err());
    assert_eq!(
        err(Policy::new(vec![writer.clone()], vec![witness.clone()], 2)),
        "ThresholdTooHigh"
    );
    assert_eq!(
        err(Policy::new(vec![witness.clone()], vec![], 0)),
        "WriterKeyType"
    );
    assert_eq!(
        err(Policy::new(vec![writer.clone()], vec![writer.clone()], 1)),
        "WitnessKeyType"
    );
    assert_eq!(
        err(Policy::new(vec![writer], vec![witness.clone(), witness], 1)),
        "DuplicateWitness"
    );
    let same_key = Cosigner::from_seed("c", [1; 32]).unwrap().verifier();
    assert_eq!(
        err(Policy::new(
            vec![NoteSigner::from_seed("w", [1; 32]).unwrap().verifier()],
            vec![same_key],
            1
        )),
        "WitnessIsWriter"
    );
}

// ---------------------------------------------------------------------------------------------
// Proof files

struct ProofSetup {
    chain: Chain,
    policy: Policy,
    ws: Vec<Cosigner>,
}

fn proof_setup() -> ProofSetup {
    let chain = Chain::new(ORIGIN, 20, "");
    let ws = witnesses(3);
    let verifiers = ws.iter().map(Cosigner::verifier).collect();
    let policy = Policy::new(vec![chain.writer.verifier()], verifiers, 2)
        .unwrap()
        .for_origin(ORIGIN);
    ProofSetup { chain, policy, ws }
}

impl ProofSetup {
    /// The inclusion proof of `index` in the cosigned checkpoint of `size`.
    fn inclusion(&self, index: u64, size: u64, entry: bool) -> InclusionProofFile {
        let leaves = &self.chain.leaves[..size as usize];
        let proof = merkle::inclusion_proof(leaves, index).unwrap();
        let note = cosigned(&self.chain, size, &self.ws[..2]);
        let header = &self.chain.entries[index as usize];
        let file = InclusionProofFile::new(index, &header.hash(), &proof, &note);
        if !entry {
            return file;
        }
        let items = &self.chain.items[index as usize];
        let item_leaves: Vec<Hash> = items.iter().map(Item::leaf_hash).collect();
        let i = (items.len() - 1) as u32;
        let item_proof = merkle::inclusion_proof(&item_leaves, u64::from(i)).unwrap();
        file.with_entry(header, Some((&items[i as usize], i, &item_proof)))
    }

    fn check(&self, file: &InclusionProofFile) -> String {
        verify_inclusion_proof(file, &self.policy).map_or_else(|e| proof_kind(&e), |_| "ok".into())
    }

    fn check_consistency(&self, file: &ConsistencyProofFile) -> String {
        verify_consistency_proof(file, &self.policy)
            .map_or_else(|e| proof_kind(&e), |_| "ok".into())
    }
}

fn flip_hex(s: &str, bit: usize) -> String {
    let mut b = hex::decode(s).unwrap();
    b[bit / 8] ^= 1 << (bit % 8);
    hex::encode(b)
}

#[test]
fn inclusion_proofs_verify_and_round_trip_through_json() {
    let s = proof_setup();
    for size in [1u64, 7, 13, 20] {
        for index in 0..size {
            for entry in [false, true] {
                let file = s.inclusion(index, size, entry);
                let ok = verify_inclusion_proof(&file, &s.policy)
                    .unwrap_or_else(|e| panic!("{index}/{size}: {e}"));
                assert_eq!((ok.index, ok.checkpoint.checkpoint.size()), (index, size));
                assert_eq!(ok.entry_hash, s.chain.entries[index as usize].hash());
                if entry {
                    assert_eq!(ok.entry.as_ref(), Some(&s.chain.entries[index as usize]));
                    assert_eq!(ok.item.as_ref(), s.chain.items[index as usize].last());
                }
                let json = serde_json::to_string_pretty(&file).unwrap();
                assert_eq!(
                    serde_json::from_str::<InclusionProofFile>(&json).unwrap(),
                    file
                );
            }
        }
    }
}

#[test]
fn every_mutation_of_an_inclusion_proof_has_its_error() {
    let s = proof_setup();
    let good = s.inclusion(6, 13, true);
    let bare = s.inclusion(6, 13, false);
    assert_eq!(s.check(&good), "ok");
    let mutate = |base: &InclusionProofFile, f: &dyn Fn(&mut InclusionProofFile)| {
        let mut m = base.clone();
        f(&mut m);
        s.check(&m)
    };

    // Every bit of every proof hash, and of the entry hash.
    for i in 0..good.proof.len() {
        for bit in 0..256 {
            let got = mutate(&bare, &|m| m.proof[i] = flip_hex(&m.proof[i], bit));
            assert_eq!(got, "NotIncluded/RootMismatch", "proof[{i}] bit {bit}");
        }
    }
    for bit in 0..256 {
        assert_eq!(
            mutate(&bare, &|m| m.entry_hash = flip_hex(&m.entry_hash, bit)),
            "NotIncluded/RootMismatch"
        );
        assert_eq!(
            mutate(&good, &|m| m.entry_hash = flip_hex(&m.entry_hash, bit)),
            "EntryHashMismatch"
        );
    }

    let check = |description: &str,
                 base: &InclusionProofFile,
                 want: &str,
                 f: &dyn Fn(&mut InclusionProofFile)| {
        assert_eq!(mutate(base, f), want, "{description}");
    };
    check("truncated", &bare, "NotIncluded/WrongProofLength", &|m| {
        drop(m.proof.pop())
    });
    check(
        "first hash dropped",
        &bare,
        "NotIncluded/WrongProofLength",
        &|m| drop(m.proof.remove(0)),
    );
    check("extended", &bare, "NotIncluded/WrongProofLength", &|m| {
        m.proof.push(m.proof[0].clone())
    });
    check(
        "preceding garbage",
        &bare,
        "NotIncluded/WrongProofLength",
        &|m| m.proof.insert(0, hex::encode([7; 32])),
    );
    check("wrong index", &bare, "NotIncluded/RootMismatch", &|m| {
        m.index = 7
    });
    check(
        "index past the tree",
        &bare,
        "NotIncluded/IndexOutOfRange",
        &|m| m.index = 13,
    );
    check("wrong index, entry given", &good, "HeightMismatch", &|m| {
        m.index = 7
    });
    let other_checkpoint = |size, by: &[Cosigner]| cosigned(&s.chain, size, by).to_text();
    check(
        "a larger checkpoint",
        &bare,
        "NotIncluded/WrongProofLength",
        &|m| m.checkpoint = other_checkpoint(20, &s.ws),
    );
    check(
        "a smaller checkpoint",
        &bare,
        "NotIncluded/WrongProofLength",
        &|m| m.checkpoint = other_checkpoint(8, &s.ws),
    );
    check(
        "one cosignature short",
        &bare,
        "Policy/NotEnoughCosignatures",
        &|m| m.checkpoint = other_checkpoint(13, &s.ws[..1]),
    );
    check(
        "size changed under the signatures",
        &bare,
        "Policy/BadWriterSignature",
        &|m| m.checkpoint = m.checkpoint.replacen("\n13\n", "\n14\n", 1),
    );
    check(
        "root swapped under the signatures",
        &bare,
        "Policy/BadWriterSignature",
        &|m| {
            let other = s.chain.checkpoint(12).to_text();
            let mine = m.checkpoint.lines().nth(2).unwrap().to_owned();
            m.checkpoint = m
                .checkpoint
                .replacen(&mine, other.lines().nth(2).unwrap(), 1);
        },
    );
    check(
        "signed by an unknown key",
        &bare,
        "Policy/UnknownWriter",
        &|m| {
            let stranger = NoteSigner::from_seed("acme-orders", [99; 32]).unwrap();
            let mut note = s.chain.checkpoint(13).sign(&stranger);
            for w in &s.ws[..2] {
                note.add_signature(w.cosign(note.text(), NOW).to_note_signature());
            }
            m.checkpoint = note.to_text();
        },
    );
    check(
        "writer signature flipped",
        &bare,
        "Policy/BadWriterSignature",
        &|m| m.checkpoint = flip_signature(&m.checkpoint, 0),
    );
    check(
        "cosignature flipped",
        &bare,
        "Policy/BadCosignature",
        &|m| m.checkpoint = flip_signature(&m.checkpoint, 1),
    );
    check(
        "another chain's checkpoint",
        &bare,
        "Policy/WrongOrigin",
        &|m| m.checkpoint = cosigned(&Chain::new("kchain/orders/1", 13, ""), 13, &s.ws).to_text(),
    );
    check("not a note", &bare, "Note/NoSignatureBlock", &|m| {
        m.checkpoint.truncate(30)
    });
    check("unknown format", &bare, "UnsupportedFormat", &|m| {
        m.format = "kchain-inclusion-proof/v2".into()
    });
    check("proof hash not hex", &bare, "MalformedHash", &|m| {
        m.proof[1].replace_range(0..1, "g")
    });
    check("proof hash too short", &bare, "MalformedHash", &|m| {
        m.proof[1].truncate(63)
    });
    check("entry header not hex", &good, "MalformedHex", &|m| {
        entry(m).header.push('x')
    });
    check("entry header truncated", &good, "MalformedEntry", &|m| {
        entry(m).header.truncate(200)
    });
    check(
        "item bit flipped",
        &good,
        "ItemNotIncluded/RootMismatch",
        &|m| {
            let encoded = &mut item(m).encoded;
            let at = encoded.find(&hex::encode("record")).unwrap() * 4;
            *encoded = flip_hex(encoded, at);
        },
    );
    check("item truncated", &good, "MalformedItem", &|m| {
        item(m).encoded.truncate(40)
    });
    check(
        "item proof truncated",
        &good,
        "ItemNotIncluded/WrongProofLength",
        &|m| drop(item(m).proof.pop()),
    );
    check(
        "item index changed",
        &good,
        "ItemNotIncluded/WrongProofLength",
        &|m| item(m).index = 0,
    );
    check(
        "item index past the entry",
        &good,
        "ItemNotIncluded/IndexOutOfRange",
        &|m| item(m).index = 3,
    );

    // The JSON is strict too.
    let json = serde_json::to_value(&good).unwrap();
    let mut extra = json.clone();
    extra["note"] = "hi".into();
    assert!(serde_json::from_value::<InclusionProofFile>(extra).is_err());
    let mut missing = json;
    missing.as_object_mut().unwrap().remove("proof");
    assert!(serde_json::from_value::<InclusionProofFile>(missing).is_err());
}

fn entry(m: &mut InclusionProofFile) -> &mut EntryEvidence {
    m.entry.as_mut().unwrap()
}

fn item(m: &mut InclusionProofFile) -> &mut ItemEvidence {
    entry(m).item.as_mut().unwrap()
}

/// The note text with one bit flipped in the `n`th signature line's signature bytes.
fn flip_signature(note: &str, n: usize) -> String {
    let mut parsed = parse(note);
    let sig = parsed.signatures()[n].clone();
    let mut bytes = sig.signature().to_vec();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    let sigs: Vec<NoteSignature> = parsed.signatures().to_vec();
    let mut rebuilt = SignedNote::new(parsed.text()).unwrap();
    for (i, s) in sigs.into_iter().enumerate() {
        rebuilt.add_signature(if i == n {
            NoteSignature::new(s.name(), s.key_id(), bytes.clone()).unwrap()
        } else {
            s
        });
    }
    parsed = rebuilt;
    parsed.to_text()
}

#[test]
fn consistency_proofs_verify_and_every_mutation_has_its_error() {
    let s = proof_setup();
    let file = |old: u64, new: u64| {
        ConsistencyProofFile::new(
            &cosigned(&s.chain, old, &s.ws),
            &cosigned(&s.chain, new, &s.ws),
            &s.chain.consistency(old, new),
        )
    };
    for new in 1..=13 {
        for old in 1..=new {
            assert_eq!(s.check_consistency(&file(old, new)), "ok", "{old} -> {new}");
        }
    }
    let good = file(5, 13);
    let json = serde_json::to_string(&good).unwrap();
    assert_eq!(
        serde_json::from_str::<ConsistencyProofFile>(&json).unwrap(),
        good
    );

    let mutate = |f: &dyn Fn(&mut ConsistencyProofFile)| {
        let mut m = good.clone();
        f(&mut m);
        s.check_consistency(&m)
    };
    for i in 0..good.proof.len() {
        for bit in 0..256 {
            assert_eq!(
                mutate(&|m| m.proof[i] = flip_hex(&m.proof[i], bit)),
                "Inconsistent/RootMismatch"
            );
        }
    }
    let forked = Chain::new(ORIGIN, 13, "forged ");
    let check = |description: &str, want: &str, f: &dyn Fn(&mut ConsistencyProofFile)| {
        assert_eq!(mutate(f), want, "{description}");
    };
    let note = |chain: &Chain, size, by: &[Cosigner]| cosigned(chain, size, by).to_text();
    check("truncated", "Inconsistent/WrongProofLength", &|m| {
        drop(m.proof.pop())
    });
    check("extended", "Inconsistent/WrongProofLength", &|m| {
        m.proof.push(m.proof[0].clone())
    });
    check("swapped checkpoints", "Inconsistent/SizesReversed", &|m| {
        std::mem::swap(&mut m.old, &mut m.new)
    });
    check(
        "another old checkpoint",
        "Inconsistent/WrongProofLength",
        &|m| m.old = note(&s.chain, 6, &s.ws),
    );
    check("a fork that grew", "Inconsistent/RootMismatch", &|m| {
        m.new = note(&forked, 13, &s.ws)
    });
    check(
        "a fork of the same size",
        "Inconsistent/RootMismatch",
        &|m| {
            m.new = note(&forked, 5, &s.ws);
            m.proof.clear();
        },
    );
    check(
        "old checkpoint short of cosignatures",
        "Policy/NotEnoughCosignatures",
        &|m| m.old = note(&s.chain, 5, &s.ws[..1]),
    );
    check(
        "new checkpoint re-signed by a stranger",
        "Policy/UnknownWriter",
        &|m| {
            let stranger = NoteSigner::from_seed("acme-orders", [99; 32]).unwrap();
            m.new = s.chain.checkpoint(13).sign(&stranger).to_text();
        },
    );
    check(
        "new checkpoint's size changed",
        "Policy/BadWriterSignature",
        &|m| m.new = m.new.replacen("\n13\n", "\n12\n", 1),
    );
    check("unknown format", "UnsupportedFormat", &|m| {
        m.format = INCLUSION_PROOF_FORMAT.into()
    });
    check("proof hash not hex", "MalformedHash", &|m| {
        m.proof[0] = "zz".into()
    });
    check("old note garbage", "Note/NoSignatureBlock", &|m| {
        m.old = "garbage".into()
    });

    // Two chains' checkpoints under a policy for any origin.
    let any = Policy::new(vec![s.chain.writer.verifier()], vec![], 0).unwrap();
    let other = Chain::new("kchain/orders/1", 13, "");
    let m = ConsistencyProofFile::new(
        &s.chain.note(5),
        &other.note(13),
        &s.chain.consistency(5, 13),
    );
    assert_eq!(
        name(&verify_consistency_proof(&m, &any).unwrap_err()),
        "OriginMismatch"
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips and robustness

fn arb_text() -> impl Strategy<Value = String> {
    prop::collection::vec("[ -~\u{a0}-\u{2fff}]{0,30}", 1..6).prop_map(|lines| {
        let mut t = lines.join("\n");
        t.push('\n');
        t
    })
}

fn arb_name() -> impl Strategy<Value = String> {
    "[a-z0-9./_\u{e9}-]{1,20}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn notes_round_trip(text in arb_text(), names in prop::collection::vec(arb_name(), 1..4), seed in any::<u8>()) {
        let mut note = SignedNote::new(text.clone()).unwrap();
        let signers: Vec<NoteSigner> = names.iter().enumerate()
            .map(|(i, n)| NoteSigner::from_seed(n, [seed.wrapping_add(i as u8); 32]).unwrap())
            .collect();
        for s in &signers {
            note.sign(s);
        }
        let encoded = note.to_text();
        let back = SignedNote::parse(encoded.as_bytes()).unwrap();
        prop_assert_eq!(&back, &note);
        prop_assert_eq!(back.text(), text);
        let known: Vec<NoteVerifier> = signers.iter().map(NoteSigner::verifier).collect();
        prop_assert!(back.verify(&known).is_ok());
        for v in &known {
            prop_assert_eq!(&NoteVerifier::parse(&v.to_vkey()).unwrap(), v);
        }
    }

    #[test]
    fn checkpoints_round_trip(origin in "[!-~][ -~\u{e9}]{0,40}", size in any::<u64>(), root in any::<[u8; 32]>(),
                              extensions in prop::collection::vec("[ -~]{1,20}", 0..3)) {
        let root = if size == 0 { merkle::empty_root() } else { root };
        let c = Checkpoint::new(&origin, size, root).unwrap().with_extensions(extensions).unwrap();
        prop_assert_eq!(Checkpoint::parse(&c.to_text()).unwrap(), c);
    }

    #[test]
    fn cosignatures_round_trip(text in arb_text(), timestamp in 0..=i64::MAX as u64, seed in any::<[u8; 32]>()) {
        let cosigner = Cosigner::from_seed("w.example", seed).unwrap();
        let c = cosigner.cosign(&text, timestamp);
        prop_assert_eq!(Cosignature::from_note_signature(&c.to_note_signature()).unwrap(), c.clone());
        prop_assert!(cosigner.verifier().verify(&text, c.to_note_signature().signature()));
    }

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = SignedNote::parse(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = Checkpoint::parse(s);
            let _ = NoteVerifier::parse(s);
            let _ = NoteSigner::from_signer_key(s);
            let _ = Cosigner::from_signer_key(s);
        }
    }

    #[test]
    fn mutated_notes_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let chain_note = Chain::new(ORIGIN, 3, "").note(3).to_text().into_bytes();
        let mut m = chain_note.clone();
        let i = at.index(m.len());
        m[i] = byte;
        m.truncate(cut.index(m.len() + 1).max(i));
        if let Ok(note) = SignedNote::parse(&m) {
            let _ = Checkpoint::parse(note.text());
            let policy = Policy::new(vec![NoteSigner::from_seed("acme-orders", [1; 32]).unwrap().verifier()], vec![], 0).unwrap();
            if m != chain_note {
                let ok = policy.check(&note).is_ok();
                // Only a change to an unsigned part (none here) could keep it valid.
                prop_assert!(!ok || note.to_text().into_bytes() == chain_note);
            }
        }
    }
}
