//! Canonical encodings round-trip, hashes are pinned, and decoders never panic.

use kchain_core::{ChainId, KeyId, WriterKey};
use kchain_ledger::{
    Address, BlockHeader, Genesis, SealedTx, SourceRange, StoredBlock, Transaction, TxBody,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn key(i: u8) -> WriterKey {
    WriterKey::from_seed("k", [i; 32])
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_tx() -> impl Strategy<Value = Transaction> {
    let transfer = (
        any::<u8>(),
        any::<[u8; 16]>(),
        any::<[u8; 20]>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(k, c, to, amount, nonce)| {
            Transaction::transfer(&key(k), ChainId(c), Address(to), amount, nonce)
        });
    let data = (any::<u8>(), any::<[u8; 16]>(), arb_json())
        .prop_map(|(k, c, payload)| Transaction::data(&key(k), ChainId(c), payload));
    prop_oneof![transfer, data]
}

fn arb_header() -> impl Strategy<Value = BlockHeader> {
    (
        (
            any::<u8>(),
            any::<[u8; 16]>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<i64>(),
        ),
        (
            any::<[u8; 32]>(),
            any::<u32>(),
            any::<u64>(),
            any::<[u8; 8]>(),
        ),
        prop::collection::vec((any::<u32>(), any::<u64>(), any::<u64>()), 0..5),
        (any::<u8>(), any::<u64>()),
    )
        .prop_map(
            |((v, c, h, p, t), (r, n, rw, s), src, (d, nonce))| BlockHeader {
                version: v,
                chain: ChainId(c),
                height: h,
                prev: p,
                timestamp_ms: t,
                items_root: r,
                tx_count: n,
                reward: rw,
                sealer: KeyId(s),
                sources: src
                    .into_iter()
                    .map(|(partition, from, to)| SourceRange {
                        partition,
                        from,
                        to,
                    })
                    .collect(),
                difficulty: d,
                nonce,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn transaction_encodings_round_trip(tx in arb_tx()) {
        let back = Transaction::decode(tx.encoding(), *tx.signature()).unwrap();
        prop_assert_eq!(&back, &tx);
        let json = Transaction::from_json(&tx.to_json()).unwrap();
        prop_assert_eq!(json.id(), tx.id());
        prop_assert_eq!(json.encoding(), tx.encoding());
    }

    #[test]
    fn block_encodings_round_trip(header in arb_header(), txs in prop::collection::vec(arb_tx(), 0..4)) {
        prop_assert_eq!(BlockHeader::decode(&header.encode()).unwrap(), header.clone());
        let sealed: Vec<SealedTx> = txs
            .into_iter()
            .enumerate()
            .map(|(i, tx)| SealedTx { tx, partition: i as u32, offset: i as u64 * 3 })
            .collect();
        let block = kchain_ledger::Block::seal(BlockHeader { difficulty: 0, ..header }, sealed, &key(1));
        let stored = StoredBlock::parse(&block.to_json()).unwrap();
        prop_assert_eq!(&stored.header, &block.header);
        prop_assert_eq!(stored.body.unwrap(), block.txs);
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Transaction::decode(&bytes, [0; 64]);
        let _ = BlockHeader::decode(&bytes);
        let _ = StoredBlock::parse(&bytes);
        let _ = Transaction::from_json(&bytes);
        let _ = Genesis::from_file_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn decoders_never_panic_on_mutated_encodings(tx in arb_tx(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let mut body = tx.encoding().to_vec();
        let i = at % body.len();
        body[i] = byte;
        let _ = Transaction::decode(&body, [0; 64]);
        let _ = Transaction::decode(&body[..cut % body.len()], [0; 64]);
        let mut json = tx.to_json();
        let j = at % json.len();
        json[j] = byte;
        let _ = Transaction::from_json(&json);
        let _ = StoredBlock::parse(&json);
    }
}

#[test]
fn decoders_refuse_trailing_bytes_and_unknown_kinds() {
    let tx = Transaction::transfer(&key(1), ChainId([0; 16]), Address([1; 20]), 1, 1);
    let mut long = tx.encoding().to_vec();
    long.push(0);
    assert!(Transaction::decode(&long, [0; 64]).is_err());
    let mut kind = tx.encoding().to_vec();
    kind[13] = 9;
    assert!(Transaction::decode(&kind, [0; 64]).is_err());
    // A data payload that is not canonical JSON does not decode.
    let data = Transaction::data(&key(1), ChainId([0; 16]), json!({"b": 1, "a": 2}));
    let text = br#"{"b":1,"a":2}"#;
    let mut body = data.encoding()[..data.encoding().len() - 13 - 4].to_vec();
    body.extend_from_slice(&(text.len() as u32).to_be_bytes());
    body.extend_from_slice(text);
    assert!(Transaction::decode(&body, [0; 64]).is_err());
}

/// Pinned values, recomputed independently (hashlib only) by the Python in docs/ledger.md.
#[test]
fn pinned_hashes() {
    let alice = key(1);
    assert_eq!(
        alice.public().to_hex(),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    assert_eq!(
        Address::of(&alice).to_hex(),
        "7e02878ef3664b6d9989c8575511ed2859896051"
    );
    let tx = Transaction::transfer(&alice, ChainId([0xab; 16]), Address([0x22; 20]), 5, 1);
    assert_eq!(
        hex::encode(tx.encoding()),
        "0c6b636861696e3a74783a763101abababababababababababababababab8a88e3dd7409f195fd52db2d3c\
         ba5d72ca6709bf1d94121bf3748801b40f6f5c2222222222222222222222222222222222222222000000000\
         00000050000000000000001"
    );
    assert_eq!(
        hex::encode(tx.id()),
        "b0fec17e15632a3c980b10315219f6e24a53a0327ad25a1478b50cb8af9424cf"
    );
    assert!(alice.public().verify_tagged(
        kchain_ledger::TX_SIG_TAG,
        tx.id(),
        &kchain_core::Signature(*tx.signature())
    ));
    let sealer = WriterKey::from_seed("s", [2; 32]);
    let g = Genesis::new(
        "demo",
        vec![kchain_ledger::SealerInfo {
            name: "s1".into(),
            key: sealer.public(),
        }],
        [(Address::of(&alice), 1000)].into(),
    );
    assert_eq!(g.chain_id().to_string(), "eb3e5e8d1df3c8b452b209469eaa4f7c");
    assert_eq!(
        hex::encode(g.block(0).hash()),
        "8a6cfd369a44b3f829c928c7a4831a9ad1694616bfac81f1b446d4a8102d1419"
    );
    if let TxBody::Transfer { amount, .. } = tx.body() {
        assert_eq!(*amount, 5);
    }
}

#[test]
fn a_block_read_back_parses_to_what_it_was_built_from() {
    let k = key(4);
    let txs: Vec<SealedTx> = (0..3)
        .map(|i| SealedTx {
            tx: Transaction::data(&k, ChainId([5; 16]), json!({"i": i, "f": 0.1})),
            partition: 1,
            offset: i,
        })
        .collect();
    let header = BlockHeader {
        version: 1,
        chain: ChainId([5; 16]),
        height: 3,
        prev: [1; 32],
        timestamp_ms: 5,
        items_root: [0; 32],
        tx_count: 0,
        reward: 1,
        sealer: k.id(),
        sources: vec![],
        difficulty: 0,
        nonce: 0,
    };
    let block = kchain_ledger::Block::seal(header, txs, &k);
    let parsed = StoredBlock::parse(&block.to_json()).unwrap();
    let built = StoredBlock::of(&block);
    assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
}
