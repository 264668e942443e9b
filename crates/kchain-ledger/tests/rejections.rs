//! Bad transactions of every kind go to the rejected topic with their reason and source
//! offset, and never stop a node; what a client can ask about a transaction.

mod support;

use std::collections::HashMap;

use kchain_core::ChainId;
use kchain_ledger::{
    next_nonce, replay, submit, submit_raw, tx_status, verify_ledger, RejectionRecord, Transaction,
    TxStatus, VerifyOptions,
};
use kchain_log::Log;
use serde_json::json;
use support::*;

fn bad_transactions(log: &dyn Log, cast: &Cast) {
    let chain_id = cast.genesis.chain_id();
    let g = &cast.genesis;
    let to = cast.address(9);
    // Good ones, to be sealed alongside.
    let good: Vec<Transaction> = (0..4).map(|w| cast.transfer(w, to, 10, 1)).collect();
    submit(log, g, &good).unwrap();
    seal_until_idle(log, cast, 0, 5);
    // Each bad one, with the reason it must get. Raw records go to partition 1.
    let tampered = {
        let mut v = cast.transfer(4, to, 10, 1).to_json_value();
        v["amount"] = json!(11);
        v
    };
    let small_order_key = {
        let mut k = [0u8; 32];
        k[0] = 1; // the identity point
        k
    };
    let bad_key = Transaction::from_parts(
        chain_id,
        small_order_key,
        kchain_ledger::TxBody::Transfer {
            to,
            amount: 1,
            nonce: 1,
        },
        [0; 64],
    );
    let big = "x".repeat(2000);
    let raw: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "malformed"),
        (br#"{"type":"transfer"}"#.to_vec(), "malformed"),
        (vec![], "malformed"),
        (vec![b'z'; 40_000], "oversize"),
        (serde_json::to_vec(&tampered).unwrap(), "bad_signature"),
        (bad_key.to_json(), "bad_public_key"),
        (
            Transaction::data(&cast.wallets[5], chain_id, json!({ "blob": big })).to_json(),
            "oversize",
        ),
        (
            Transaction::transfer(&cast.wallets[5], ChainId([1; 16]), to, 1, 1).to_json(),
            "wrong_chain",
        ),
        (cast.transfer(5, to, 0, 1).to_json(), "zero_amount"),
        (cast.transfer(6, to, 10, 7).to_json(), "wrong_nonce"),
        (cast.transfer(7, to, 5000, 1).to_json(), "overdraft"),
        (good[0].to_json(), "duplicate"),
    ];
    let values: Vec<Vec<u8>> = raw.iter().map(|(v, _)| v.clone()).collect();
    let offsets = submit_raw(log, g, 1, &values).unwrap();
    // And a good data record after all of them.
    let data = Transaction::data(&cast.wallets[8], chain_id, json!({"lab": "ok", "n": 1}));
    submit(log, g, std::slice::from_ref(&data)).unwrap();

    seal_until_idle(log, cast, 0, 5);

    let r = replay(log, &g.topics.blocks, None).unwrap();
    assert!(r.finding.is_none());
    let chain = r.chain;
    for tx in good.iter().chain([&data]) {
        assert!(
            chain.state().sealed_at(tx.id()).is_some(),
            "good transaction sealed"
        );
    }
    assert_eq!(chain.state().sealed_count(), 5);
    // Every bad record has a rejection naming a canonical block, with the right reason.
    let mut by_offset: HashMap<u64, RejectionRecord> = HashMap::new();
    for v in values_of(log, &g.topics.rejected) {
        let rec: RejectionRecord = serde_json::from_slice(&v).unwrap();
        let block = rec.block_hash().unwrap();
        if rec.partition == 1 && chain.height_of(&block).is_some() {
            by_offset.insert(rec.offset, rec);
        }
    }
    for ((value, reason), offset) in raw.iter().zip(&offsets) {
        let rec = by_offset
            .get(offset)
            .unwrap_or_else(|| panic!("no rejection for offset {offset} ({reason})"));
        assert_eq!(&rec.reason, reason, "offset {offset}: {}", rec.detail);
        match serde_json::from_slice::<serde_json::Value>(value) {
            Ok(v) => assert_eq!(rec.tx.as_ref(), Some(&v)),
            Err(_) => assert!(rec.raw.is_some() || value.is_empty()),
        }
    }
    // What a client is told.
    let rejected = Transaction::from_json(&raw[10].0).unwrap();
    match tx_status(log, &chain, rejected.id()).unwrap() {
        TxStatus::Rejected(rec) => assert_eq!(rec.reason, "overdraft"),
        other => panic!("{other:?}"),
    }
    match tx_status(log, &chain, data.id()).unwrap() {
        TxStatus::Sealed { tx, .. } => assert_eq!(tx.id(), data.id()),
        other => panic!("{other:?}"),
    }
    let later = cast.transfer(0, to, 1, 2);
    assert_eq!(next_nonce(log, &chain, &cast.address(0)).unwrap(), 2);
    submit(log, g, std::slice::from_ref(&later)).unwrap();
    assert_eq!(next_nonce(log, &chain, &cast.address(0)).unwrap(), 3);
    assert!(matches!(
        tx_status(log, &chain, later.id()).unwrap(),
        TxStatus::Pending { .. }
    ));
    assert_eq!(tx_status(log, &chain, &[3; 32]).unwrap(), TxStatus::Unknown);
    let report = verify_ledger(log, &g.topics.blocks, &VerifyOptions::default(), &|_| {}).unwrap();
    assert!(report.ok(), "{}", report.to_text());
}

fn values_of(log: &dyn Log, topic: &str) -> Vec<Vec<u8>> {
    values(log, topic, 0)
}

#[test]
fn every_kind_of_bad_transaction_is_rejected_with_its_reason_and_the_node_keeps_sealing() {
    let (_dir, log) = embedded();
    let mut cast = Cast::new("rejects", 1, 10, 1000, 2);
    cast.genesis.max_payload_bytes = 1000;
    cast.init(&log);
    bad_transactions(&log, &cast);
}
