//! The properties kchain's fuzz targets check, one `check_*` function per target. Each takes
//! hostile bytes and panics when a decoder breaks a property: it must never panic, loop or
//! allocate without bound, and where an encoder exists, what it accepts must re-encode to the
//! same value (and, for canonical formats, to the same bytes).
//!
//! The fuzz targets (`fuzz/fuzz_targets/*.rs`) call these under libFuzzer; the replay test
//! (`crates/kchain-cli/tests/fuzz_corpus.rs`) runs every corpus file through the same function
//! on stable Rust. They live in a crate of their own, apart from `fuzz/` (its own workspace,
//! linked with libFuzzer), so that both can depend on them.

use kchain_core::{
    merkle, record_entry_header, verify_consistency_proof, verify_inclusion_proof, ChainId,
    ChainMeta, Checkpoint, CheckpointTrust, ConsistencyProofFile, Cosignature, EntryHeader,
    InclusionProofFile, Item, Keyring, NoteVerifier, Policy, SignedNote, Trust, TrustFile,
    WriterKey, CONSISTENCY_PROOF_FORMAT, ZERO_HASH,
};
use kchain_ledger::{
    verify_tx_proof, BlockHeader, Genesis, SealerInfo, StoredBlock, Transaction, TrustedSealers,
    TxProof, TxProofTrust,
};
use kchain_log::{internals, Header, Record};

/// A target's check: panics when the decoder breaks a property on `data`.
pub type Check = fn(data: &[u8]);

/// Every target, by name, with its check: what the replay test iterates over.
pub const TARGETS: &[(&str, Check)] = &[
    ("log_segment", check_log_segment),
    ("log_record", check_log_record),
    ("topic_mapping", check_topic_mapping),
    ("core_encoding", check_core_encoding),
    ("note", check_note),
    ("proof_file", check_proof_file),
    ("trust_toml", check_trust_toml),
    ("ledger_tx", check_ledger_tx),
    ("ledger_block", check_ledger_block),
];

/// Segment files of the embedded log: raw bytes as a segment (CRCs and all), and the same
/// bytes as a record count and payload under a header whose CRCs are right.
pub fn check_log_segment(data: &[u8]) {
    internals::check_segment(data);
    internals::check_payload_bytes(data);
}

/// One record body of the embedded log, through every record decoder.
pub fn check_log_record(data: &[u8]) {
    internals::check_record_body(data);
}

/// The header names a fuzzer could not guess: a one-byte name `n < 6` stands for `NAMES[n]`.
const NAMES: [&str; 6] = [
    "kchain.v",
    "kchain.height",
    "kchain.prev",
    "kchain.key",
    "kchain.sig",
    "kchain.enc",
];

/// A chained-topic record (decoded as an embedded record body): its `kchain.*` headers and
/// its item. Chain headers that parse re-encode to the same values.
pub fn check_topic_mapping(data: &[u8]) {
    let Ok(mut record) = internals::decode_record_body(data) else {
        return;
    };
    for h in &mut record.headers {
        if let [n] = h.name.as_bytes() {
            if let Some(name) = NAMES.get(usize::from(*n)) {
                h.name = (*name).to_owned();
            }
        }
    }
    let item = kchain_topic::item_of(&record);
    assert!(item
        .headers
        .iter()
        .all(|(n, _)| !kchain_core::is_chain_header(n)));
    let decoded = Item::decode(&item.encode()).expect("an item decodes");
    assert_eq!(decoded, item);
    let entry = record_entry_header(
        ChainId::for_partition("t", 0),
        0,
        ZERO_HASH,
        &item.as_ref(),
        &mut Vec::new(),
    );
    assert_eq!(entry.items_root, item.leaf_hash());
    if let Ok(meta) = kchain_topic::meta_of(&record) {
        let again = Record {
            headers: meta
                .to_headers()
                .into_iter()
                .map(|(n, v)| Header::new(n, v))
                .collect(),
            ..record.clone()
        };
        assert_eq!(
            kchain_topic::meta_of(&again).expect("re-encoded meta"),
            meta
        );
        let parsed = ChainMeta::parse(meta.to_headers().iter().map(|(n, v)| (*n, v.as_slice())));
        assert_eq!(parsed.as_ref(), Ok(&meta));
    }
}

/// kchain's canonical binary encodings: entry headers and items (proof files carry both).
pub fn check_core_encoding(data: &[u8]) {
    if let Ok(h) = EntryHeader::decode(data) {
        assert_eq!(h.encode(), data);
    }
    if let Ok(item) = Item::decode(data) {
        assert_eq!(item.encode(), data);
    }
}

fn fuzz_writer() -> WriterKey {
    WriterKey::from_seed("fuzz", [7; 32])
}

/// Signed notes, checkpoints in them, note keys and cosignatures. A parsed note or checkpoint
/// prints back to its bytes.
pub fn check_note(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(cp.to_text(), text);
        }
        if let Ok(v) = NoteVerifier::parse(text) {
            assert_eq!(NoteVerifier::parse(&v.to_vkey()).as_ref(), Ok(&v));
        }
    }
    let Ok(note) = SignedNote::parse(data) else {
        return;
    };
    assert_eq!(note.to_text().as_bytes(), data);
    assert_eq!(
        SignedNote::parse(note.to_text().as_bytes()).as_ref(),
        Ok(&note)
    );
    if let Ok(cp) = Checkpoint::parse(note.text()) {
        assert_eq!(cp.to_text(), note.text());
    }
    for sig in note.signatures() {
        if let Ok(c) = Cosignature::from_note_signature(sig) {
            assert!(c.to_note_signature() == *sig);
        }
    }
    let verifier = fuzz_writer().note_signer().expect("signer").verifier();
    if let Ok(policy) = Policy::new(vec![verifier], Vec::new(), 0) {
        let _ = policy.check(&note);
    }
}

/// Proof files as `kchain verify-proof` and `kchain ledger verify-proof` read them, checked
/// against a fixed trust; and the Merkle path checks on the sizes and indexes they claim
/// (which a forged signature would otherwise stop before).
pub fn check_proof_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let writer = fuzz_writer();
    let verifier = writer.note_signer().expect("signer").verifier();
    let policy = Policy::new(vec![verifier], Vec::new(), 0).expect("policy");
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        if value["format"].as_str() == Some(CONSISTENCY_PROOF_FORMAT) {
            if let Ok(file) = serde_json::from_value::<ConsistencyProofFile>(value) {
                let _ = verify_consistency_proof(&file, &policy);
                let proof = hashes(&file.proof);
                let (a, b) = sizes_of(&file.old, &file.new);
                let _ = merkle::verify_consistency(a, b, &proof, &ZERO_HASH, &ZERO_HASH);
            }
        } else if let Ok(file) = serde_json::from_value::<InclusionProofFile>(value) {
            let _ = verify_inclusion_proof(&file, &policy);
            let proof = hashes(&file.proof);
            let size = file.index.saturating_add(u64::from(data.len() as u8));
            let _ = merkle::verify_inclusion(&ZERO_HASH, file.index, size, &proof, &ZERO_HASH);
            let _ = merkle::root_from_inclusion_proof(&ZERO_HASH, file.index, size, &proof);
        }
    }
    if let Ok(proof) = TxProof::from_json(text) {
        let sealer = SealerInfo {
            name: "fuzz".into(),
            key: writer.public(),
        };
        let genesis = Genesis::new("fuzz", vec![sealer], Default::default());
        let trust = TxProofTrust {
            sealers: TrustedSealers::Genesis(Box::new(genesis)),
            checkpoints: CheckpointTrust::default(),
        };
        let _ = verify_tx_proof(&proof, &trust);
        let again = TxProof::from_json(&proof.to_json()).expect("a printed proof parses");
        assert_eq!(again, proof);
    }
}

fn hashes(list: &[String]) -> Vec<kchain_core::Hash> {
    list.iter()
        .map(|h| kchain_core::from_hex(h).unwrap_or(ZERO_HASH))
        .collect()
}

/// The sizes of two checkpoint notes, or numbers taken from their lengths.
fn sizes_of(old: &str, new: &str) -> (u64, u64) {
    let size = |s: &str| {
        SignedNote::parse(s.as_bytes())
            .ok()
            .and_then(|n| Checkpoint::parse(n.text()).ok())
            .map_or(s.len() as u64, |c| c.size())
    };
    (size(old), size(new))
}

/// Trust files (writers, pins, witnesses and policy) and keyring files. What parses prints
/// as TOML that parses to the same value.
pub fn check_trust_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(trust) = Trust::from_toml(text) {
        let printed = trust.to_toml();
        assert_eq!(Trust::from_toml(&printed).as_ref(), Ok(&trust), "{printed}");
        let _ = trust.to_toml_keeping(text);
    }
    if let Ok(file) = TrustFile::from_toml(text) {
        // Ledger tables are kept as TOML values (a NaN there is not equal to itself), so
        // the parts kchain-core reads are compared.
        let printed = file.to_toml();
        let again = TrustFile::from_toml(&printed).expect("a printed trust file parses");
        assert_eq!(
            (&again.trust, &again.checkpoints),
            (&file.trust, &file.checkpoints)
        );
        let _ = file.policy("t", 0);
    }
    if let Ok(ring) = Keyring::from_toml(text) {
        let printed = ring.to_toml();
        let again = Keyring::from_toml(&printed).expect("a printed keyring parses");
        assert_eq!(*again.to_toml(), *printed);
    }
}

/// Ledger transactions: the JSON form, and the canonical binary body with its signature.
pub fn check_ledger_tx(data: &[u8]) {
    if let Ok(tx) = Transaction::from_json(data) {
        let json = tx.to_json();
        let again = Transaction::from_json(&json).expect("a printed transaction parses");
        assert_eq!(again, tx);
        assert_eq!(again.to_json(), json);
        let binary = Transaction::decode(tx.encoding(), *tx.signature()).expect("own encoding");
        assert_eq!(binary, tx);
    }
    if data.len() >= 64 {
        let (sig, body) = data.split_at(64);
        if let Ok(tx) = Transaction::decode(body, sig.try_into().expect("64 bytes")) {
            assert_eq!(tx.encoding(), body);
        }
    }
}

/// Ledger blocks: the JSON of a blocks-topic record, and the canonical header encoding.
pub fn check_ledger_block(data: &[u8]) {
    if let Ok(block) = StoredBlock::parse(data) {
        let _ = block.stated_hash_matches();
        assert_eq!(block.hash, block.header.hash());
        assert_eq!(
            BlockHeader::decode(&block.header.encode()).as_ref(),
            Ok(&block.header)
        );
    }
    if let Ok(h) = BlockHeader::decode(data) {
        assert_eq!(h.encode(), data);
    }
}
