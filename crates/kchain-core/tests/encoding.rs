//! Round trips and robustness of every kchain-core encoding: items, entry headers, chain
//! headers, key files and trust files. Decoders must never panic, whatever the bytes.

use kchain_core::{
    sha256, ChainId, ChainMeta, EntryHeader, Item, KeyId, PublicKey, Signature, Trust, TrustError,
    WriterKey, ENTRY_ENCODED_LEN,
};
use proptest::prelude::*;

fn arb_item() -> impl Strategy<Value = Item> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::collection::vec(
            (
                "[a-z.-]{0,12}",
                proptest::collection::vec(any::<u8>(), 0..20),
            ),
            0..5,
        ),
        any::<i64>(),
    )
        .prop_map(|(key, value, headers, timestamp_ms)| Item {
            key,
            value,
            headers,
            timestamp_ms,
        })
}

fn arb_header() -> impl Strategy<Value = EntryHeader> {
    (
        any::<u8>(),
        any::<[u8; 16]>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<i64>(),
        any::<[u8; 32]>(),
        any::<u32>(),
    )
        .prop_map(
            |(version, chain, height, prev, timestamp_ms, items_root, item_count)| EntryHeader {
                version,
                chain: ChainId(chain),
                height,
                prev,
                timestamp_ms,
                items_root,
                item_count,
            },
        )
}

proptest! {
    #[test]
    fn item_round_trips(item in arb_item()) {
        let enc = item.encode();
        prop_assert_eq!(Item::decode(&enc).unwrap(), item);
    }

    #[test]
    fn entry_header_round_trips_and_hash_matches_encoding(h in arb_header()) {
        let enc = h.encode();
        prop_assert_eq!(enc.len(), ENTRY_ENCODED_LEN);
        prop_assert_eq!(EntryHeader::decode(&enc).unwrap(), h);
        prop_assert_eq!(h.hash(), sha256(&enc));
    }

    #[test]
    fn chain_meta_round_trips(height in any::<u64>(), prev in any::<[u8; 32]>(),
                              signed in any::<bool>(), id in any::<[u8; 8]>(),
                              sig in proptest::collection::vec(any::<u8>(), 64)) {
        let meta = ChainMeta {
            version: 1,
            height,
            prev,
            signature: signed.then(|| (KeyId(id), Signature(sig.try_into().unwrap()))),
        };
        let headers = meta.to_headers();
        let parsed = ChainMeta::parse(headers.iter().map(|(n, v)| (*n, v.as_slice()))).unwrap();
        prop_assert_eq!(parsed, meta);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Item::decode(&bytes);
        let _ = EntryHeader::decode(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = Trust::from_toml(&text);
        let _ = WriterKey::from_key_file(&text);
        let _ = ChainMeta::parse([("kchain.v", &bytes[..]), ("kchain.height", &bytes[..]),
                                  ("kchain.prev", &bytes[..])].into_iter());
    }

    #[test]
    fn item_changes_change_the_leaf_hash(item in arb_item(), flip in any::<usize>()) {
        // Any single-bit change of the encoding changes the leaf hash, and a changed value
        // never decodes to the same item.
        let mut enc = item.encode();
        let i = flip % enc.len();
        enc[i] ^= 1;
        if let Ok(other) = Item::decode(&enc) {
            prop_assert_ne!(other.leaf_hash(), item.leaf_hash());
        }
    }

    #[test]
    fn mutated_encodings_are_rejected(h in arb_header(), cut in 0usize..ENTRY_ENCODED_LEN) {
        let enc = h.encode();
        prop_assert!(EntryHeader::decode(&enc[..cut]).is_err(), "truncated");
        let mut longer = enc.clone();
        longer.push(0);
        prop_assert!(EntryHeader::decode(&longer).is_err(), "trailing garbage");
    }
}

/// Pinned hashes, computed independently of this code with Python's hashlib from the byte
/// layout in docs/format.md (the script is `scripts/known-hashes.py`).
#[test]
fn known_hashes_are_stable() {
    let item = Item {
        key: Some(b"k".to_vec()),
        value: Some(b"hello".to_vec()),
        headers: vec![("h".into(), b"v".to_vec())],
        timestamp_ms: 1_700_000_000_000,
    };
    assert_eq!(
        hex::encode(item.encode()),
        concat!(
            "0e6b636861696e3a6974656d3a7631", // 0x0E "kchain:item:v1"
            "0000018bcfe56800",               // timestamp 1700000000000
            "01000000016b",                   // key: present, length 1, "k"
            "010000000568656c6c6f",           // value: present, length 5, "hello"
            "00000001",                       // one header
            "0000000168",                     // name: length 1, "h"
            "0000000176",                     // value: length 1, "v"
        )
    );
    assert_eq!(
        kchain_core::to_hex(&item.leaf_hash()),
        "75a001b16e0b22579f03af76879a733615baa97e9611163dd223c00da28d68db"
    );
    let chain = ChainId::for_partition("orders", 0);
    assert_eq!(chain.to_string(), "6ed26b07017b30215d2f07ef9805ea29");
    let header = EntryHeader {
        version: 1,
        chain,
        height: 0,
        prev: [0; 32],
        timestamp_ms: 1_700_000_000_000,
        items_root: item.leaf_hash(),
        item_count: 1,
    };
    assert_eq!(
        kchain_core::to_hex(&header.hash()),
        "56514198688d01efc873cba66e5fbcc84ff3c7d8d6d30b485d3eabaa382de3dc"
    );
    assert_eq!(header.hash(), sha256(&header.encode()));
}

#[test]
fn key_file_round_trip_and_errors_do_not_leak_the_secret() {
    let key = WriterKey::from_seed("w", [42; 32]);
    let text = key.to_key_file();
    let back = WriterKey::from_key_file(&text).unwrap();
    assert_eq!(back.public(), key.public());
    let secret_hex = hex::encode([42u8; 32]);
    assert!(!format!("{back:?}").contains(&secret_hex));
    let broken = text.replace(
        &key.public().to_hex(),
        &WriterKey::from_seed("x", [1; 32]).public().to_hex(),
    );
    let err = WriterKey::from_key_file(&broken).unwrap_err().to_string();
    assert!(!err.contains(&secret_hex), "{err}");
    let sig = key.sign_entry(&[9; 32]);
    assert!(key.public().verify_entry(&[9; 32], &sig));
    assert!(!key.public().verify_entry(&[8; 32], &sig));
}

#[test]
fn trust_file_round_trip_and_errors_name_the_line() {
    let key = WriterKey::from_seed("w", [42; 32]);
    let text = format!(
        "[[writer]]\nname = \"acme\"\npublic_key = \"{}\"\ntopics = [\"orders\"]\n\n[[pin]]\ntopic = \"orders\"\npartition = 0\nheight = 5\nhash = \"{}\"\n",
        key.public().to_hex(),
        "ab".repeat(32)
    );
    let trust = Trust::from_toml(&text).unwrap();
    assert_eq!(Trust::from_toml(&trust.to_toml()).unwrap(), trust);
    assert!(matches!(
        trust.standing(key.id(), "orders"),
        kchain_core::KeyStanding::Allowed(_)
    ));
    assert!(matches!(
        trust.standing(key.id(), "payments"),
        kchain_core::KeyStanding::OtherTopics(_)
    ));
    let bad = text.replace("partition = 0", "partition = \"zero\"");
    match Trust::from_toml(&bad) {
        Err(TrustError::Malformed { line, .. }) => assert_eq!(line, 8),
        other => panic!("{other:?}"),
    }
    let bad_key = text.replace(&key.public().to_hex(), "00");
    assert!(matches!(
        Trust::from_toml(&bad_key),
        Err(TrustError::BadKey { .. })
    ));
    let half = text.replace("height = 5\n", "");
    assert!(matches!(
        Trust::from_toml(&half),
        Err(TrustError::HalfTip { .. })
    ));
    assert!(PublicKey::from_hex("zz").is_err());
}
