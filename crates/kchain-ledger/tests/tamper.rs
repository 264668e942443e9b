//! Tampering with stored blocks is a finding at its offset (exit 3), never "an invalid block,
//! ignored" that silently shortens the chain; a stale block appended by a racing sealer, and a
//! block that does not hold together at the tip (nothing builds on it yet), are ignored
//! (exit 0).
//!
//! The ledger below is copied record by record into a second log with one change, as an
//! attacker with write access to the topic could, and verified.

mod support;

use kchain_ledger::{
    replay, submit, verify_ledger, FindingKind, IgnoreReason, LedgerError, LedgerReport, Node,
    SourceRange, VerifyOptions,
};
use kchain_log::{Log, Record};
use kchain_topic::tamper::copy_topic_with;
use serde_json::Value;
use support::*;

/// Builds a ledger whose blocks topic is
/// `[genesis, b1, b2, b3, b4, b5, stale (height 3, on b2, sealer 1), b6]`.
fn ledger(log: &dyn Log) -> Cast {
    let cast = Cast::new("tamper", 2, 6, 1000, 2);
    cast.init(log);
    for (round, nonce) in (0..6).zip(1u64..) {
        if round == 5 {
            let chain = replay(log, &cast.genesis.topics.blocks, None)
                .unwrap()
                .chain;
            let (b2, _) = chain.block_at(2).unwrap();
            let b2_sources: Vec<SourceRange> = kchain_ledger::read_block(
                log,
                &cast.genesis.topics.blocks,
                chain.block_at(2).unwrap().1,
            )
            .unwrap()
            .header
            .sources;
            let stale = hand_block(&cast, 1, 3, b2, empty_sources(&b2_sources), vec![], |_| {});
            assert_eq!(append_block_record(log, &cast, stale.to_json()), 6);
        }
        let txs: Vec<_> = (0..3)
            .map(|w| cast.transfer(w, cast.address(w + 3), 5, nonce))
            .collect();
        submit(log, &cast.genesis, &txs).unwrap();
        seal_until_idle(log, &cast, 0, 100);
    }
    let chain = replay(log, &cast.genesis.topics.blocks, None)
        .unwrap()
        .chain;
    assert_eq!(chain.tip().height, 6);
    assert_eq!(chain.tip().offset, 7);
    cast
}

fn verify(log: &dyn Log, cast: &Cast, opts: &VerifyOptions) -> LedgerReport {
    verify_ledger(log, &cast.genesis.topics.blocks, opts, &|_| {}).unwrap()
}

fn json(r: &Record) -> Value {
    serde_json::from_slice(r.value.as_ref().unwrap()).unwrap()
}

fn set_json(r: &mut Record, v: &Value) {
    r.value = Some(serde_json::to_vec(v).unwrap());
}

fn edit(records: &mut [Record], offset: usize, f: impl FnOnce(&mut Value)) {
    let mut v = json(&records[offset]);
    f(&mut v);
    set_json(&mut records[offset], &v);
}

type Mutation = Box<dyn Fn(&mut Vec<Record>)>;

struct Case {
    name: &'static str,
    mutate: Mutation,
    /// Expected finding kind and offset; `None`: intact.
    expect: Option<(FindingKind, u64)>,
}

fn case(
    name: &'static str,
    expect: Option<(FindingKind, u64)>,
    mutate: impl Fn(&mut Vec<Record>) + 'static,
) -> Case {
    Case {
        name,
        mutate: Box::new(mutate),
        expect,
    }
}

#[test]
fn every_kind_of_tampering_is_a_finding_at_its_offset() {
    let (_src_dir, src) = embedded();
    let cast = ledger(&src);
    let base = verify(&src, &cast, &VerifyOptions::default());
    assert!(base.ok(), "{}", base.to_text());
    assert_eq!(base.height, 6);
    assert_eq!(base.ignored.len(), 1);
    assert_eq!(base.ignored[0].offset, 6);
    assert_eq!(
        base.ignored[0].reason,
        IgnoreReason::Stale { parent_height: 2 },
        "a stale block appended by a racing sealer is ignored"
    );

    use FindingKind::*;
    let cases = vec![
        case(
            "reformatted JSON (keys sorted, spaces) is not tampering",
            None,
            |r| {
                for rec in r.iter_mut() {
                    let v = json(rec);
                    rec.value = Some(serde_json::to_vec_pretty(&v).unwrap());
                }
            },
        ),
        case("amount edited", Some((BodyMismatch, 2)), |r| {
            edit(r, 2, |v| v["transactions"][0]["tx"]["amount"] = 500.into())
        }),
        case("transaction removed", Some((BodyMismatch, 3)), |r| {
            edit(r, 3, |v| {
                v["transactions"].as_array_mut().unwrap().remove(0);
            })
        }),
        case(
            "transaction removed, count and root recomputed (no key)",
            Some((BadSignature, 3)),
            |r| {
                edit(r, 3, |v| {
                    v["transactions"].as_array_mut().unwrap().remove(0);
                    let txs: Vec<kchain_ledger::SealedTx> = v["transactions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| kchain_ledger::SealedTx {
                            tx: kchain_ledger::Transaction::from_json_value(&e["tx"]).unwrap(),
                            partition: e["partition"].as_u64().unwrap() as u32,
                            offset: e["offset"].as_u64().unwrap(),
                        })
                        .collect();
                    v["tx_count"] = txs.len().into();
                    v["items_root"] = kchain_core::to_hex(&kchain_ledger::items_root(&txs)).into();
                    v.as_object_mut().unwrap().remove("hash");
                })
            },
        ),
        case("header edited (timestamp)", Some((BadSignature, 4)), |r| {
            edit(r, 4, |v| v["timestamp"] = 1.into())
        }),
        case("hash field edited", Some((HashMismatch, 5)), |r| {
            edit(r, 5, |v| v["hash"] = kchain_core::to_hex(&[7; 32]).into())
        }),
        case("block deleted", Some((MissingParent, 2)), |r| {
            r.remove(2);
        }),
        case(
            "block deleted before the stale one",
            Some((MissingParent, 4)),
            |r| {
                // b4 removed: b5 (now at offset 4) names a parent that is nowhere.
                r.remove(4);
            },
        ),
        case("blocks swapped", Some((MissingParent, 3)), |r| r.swap(3, 4)),
        case(
            "the stale block moved before the winner, so that it wins",
            Some((ParentNotCanonical, 5)),
            |r| {
                let stale = r.remove(6);
                r.insert(3, stale);
            },
        ),
        case("sealer field edited", Some((MissingParent, 5)), |r| {
            // b4 now names no allowed sealer: ignored, and b5's parent is nowhere.
            edit(r, 4, |v| v["sealer"] = "0000000000000000".into())
        }),
        case(
            "block overwritten with junk",
            Some((MissingParent, 3)),
            |r| r[2].value = Some(b"not a block".to_vec()),
        ),
        case(
            "genesis balances edited in place",
            Some((GenesisChanged, 0)),
            |r| {
                edit(r, 0, |v| {
                    for (_, b) in v["genesis"]["balances"].as_object_mut().unwrap() {
                        *b = 1_000_000.into();
                    }
                })
            },
        ),
        case(
            // Every real block is now another chain's: ignored, as a forged block of another
            // chain must be. Only an anchor (`--genesis`, a pin, the snapshot, the sealers'
            // checkpoints) catches this (`anchors_catch_what_the_log_alone_cannot`).
            "genesis balances rewritten consistently (no anchor: not visible)",
            None,
            |r| rewrite_genesis(r),
        ),
        // What anyone who can write the topic can append, holding no key: ignored, wherever
        // it points (issue 16.2).
        case(
            "a block of an unknown key on a random parent appended",
            None,
            |r| {
                let mut rec = r[7].clone();
                edit(std::slice::from_mut(&mut rec), 0, |v| {
                    v["prev"] = kchain_core::to_hex(&[0x5a; 32]).into();
                    v["sealer"] = "0123456789abcdef".into();
                    v.as_object_mut().unwrap().remove("hash");
                });
                r.push(rec);
            },
        ),
        case(
            "a block of another chain on a random parent appended",
            None,
            |r| {
                let mut rec = r[7].clone();
                edit(std::slice::from_mut(&mut rec), 0, |v| {
                    v["prev"] = kchain_core::to_hex(&[0xa5; 32]).into();
                    v["chain"] = "09".repeat(16).into();
                    v.as_object_mut().unwrap().remove("hash");
                });
                r.push(rec);
            },
        ),
        case(
            "a block stating a canonical block's hash, then that block's child replayed",
            None,
            |r| {
                let b2 = json(&r[2])["hash"].clone();
                let mut rec = r[7].clone();
                edit(std::slice::from_mut(&mut rec), 0, |v| v["hash"] = b2);
                let child = r[3].clone();
                r.push(rec);
                r.push(child);
            },
        ),
        case(
            "a canonical block's copy with a zeroed signature, then its child replayed",
            None,
            |r| {
                let mut rec = r[2].clone();
                edit(std::slice::from_mut(&mut rec), 0, |v| {
                    v["signature"] = "00".repeat(64).into()
                });
                let child = r[3].clone();
                r.push(rec);
                r.push(child);
            },
        ),
        case(
            "the last block removed (no anchor: not visible)",
            None,
            |r| {
                r.pop();
            },
        ),
        case(
            "the last block's amount edited (no anchor: ignored as broken)",
            None,
            |r| edit(r, 7, |v| v["transactions"][0]["tx"]["amount"] = 500.into()),
        ),
    ];
    // Every case is judged before any assertion fails, so that a failure names them all.
    let mut wrong = Vec::new();
    for c in &cases {
        let (_dir, dst) = embedded();
        copy_topic_with(&src, &dst, &cast.genesis.topics.blocks, |_, records| {
            (c.mutate)(records)
        })
        .unwrap();
        let report = verify(&dst, &cast, &VerifyOptions::default());
        let got = report.finding.as_ref().map(|f| (f.kind, f.offset));
        if got != c.expect {
            wrong.push(format!(
                "{}: expected {:?}, got {got:?}:\n{}",
                c.name,
                c.expect,
                report.to_text()
            ));
            continue;
        }
        if c.expect.is_none() && c.name.contains("edited") {
            let last = report.ignored.last().expect("the edited tip is ignored");
            assert_eq!((last.offset, last.reason.code()), (7, "body_mismatch"));
            assert_eq!(report.height, 5, "{}", c.name);
        }
        if c.expect.is_some_and(|(kind, _)| kind != GenesisChanged) {
            // A node refuses to go on.
            let mut events = Vec::new();
            let opened = Node::open(&dst, cast.node_options(), None, &mut events);
            assert!(
                matches!(opened, Err(LedgerError::Tampered(_))),
                "{}: a node must stop",
                c.name
            );
        }
        if c.expect.is_none() {
            // A node runs on it.
            let mut events = Vec::new();
            let opened = Node::open(&dst, cast.node_options(), None, &mut events);
            assert!(opened.is_ok(), "{}: a node must run", c.name);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn rewrite_genesis(records: &mut [Record]) {
    let v = json(&records[0]);
    let mut g = kchain_ledger::Genesis::from_json_value(&v["genesis"]).unwrap();
    for b in g.balances.values_mut() {
        *b *= 10;
    }
    records[0].value = Some(g.block(v["timestamp"].as_i64().unwrap()).to_json());
}

#[test]
fn anchors_catch_what_the_log_alone_cannot() {
    let (_src_dir, src) = embedded();
    let cast = ledger(&src);
    let chain = replay(&src, &cast.genesis.topics.blocks, None)
        .unwrap()
        .chain;
    let (b6, _) = chain.block_at(6).unwrap();
    let genesis = cast.genesis.block(1_700_000_000_000).hash();
    let pinned = VerifyOptions {
        expected_genesis: Some(genesis),
        pins: vec![(6, b6)],
        snapshot: None,
        ..VerifyOptions::default()
    };
    let report = verify(&src, &cast, &pinned);
    assert!(report.ok(), "{}", report.to_text());
    assert_eq!(report.anchors.len(), 2);

    // The last block removed: the pin shows it.
    let (_d1, cut) = embedded();
    copy_topic_with(&src, &cut, &cast.genesis.topics.blocks, |_, r| {
        r.pop();
    })
    .unwrap();
    let report = verify(&cut, &cast, &pinned);
    let f = report.finding.expect("truncation is a finding");
    assert_eq!((f.kind, f.offset), (FindingKind::Truncated, 7));
    // With the genesis alone, the cut verifies, but the report says plainly that nothing
    // anchors the tip: a genesis cannot show a truncation.
    let genesis_only = VerifyOptions {
        expected_genesis: Some(genesis),
        ..VerifyOptions::default()
    };
    let report = verify(&cut, &cast, &genesis_only);
    assert!(report.ok(), "{}", report.to_text());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("no anchor at the tip")),
        "{:?}",
        report.warnings
    );
    assert!(!verify(&src, &cast, &pinned)
        .warnings
        .iter()
        .any(|w| w.contains("no anchor")));

    // The last block's transactions edited: ignored as broken, and the pin names it.
    let (_d0, edited) = embedded();
    copy_topic_with(&src, &edited, &cast.genesis.topics.blocks, |_, r| {
        edit(r, 7, |v| v["transactions"][1]["tx"]["amount"] = 1.into())
    })
    .unwrap();
    assert!(verify(&edited, &cast, &VerifyOptions::default()).ok());
    let report = verify(&edited, &cast, &pinned);
    let f = report
        .finding
        .expect("an edited tip under a pin is a finding");
    assert_eq!((f.kind, f.offset), (FindingKind::BodyMismatch, 7), "{}", f);

    // The last block replaced by another valid one: the pin shows it too.
    let (b5, b5_offset) = chain.block_at(5).unwrap();
    let b5_sources = kchain_ledger::read_block(&src, &cast.genesis.topics.blocks, b5_offset)
        .unwrap()
        .header
        .sources;
    let (_d2, swapped) = embedded();
    copy_topic_with(&src, &swapped, &cast.genesis.topics.blocks, |_, r| {
        r.pop();
        let other = hand_block(&cast, 1, 6, b5, empty_sources(&b5_sources), vec![], |_| {});
        r.push(Record {
            value: Some(other.to_json()),
            ..Record::default()
        });
    })
    .unwrap();
    let report = verify(&swapped, &cast, &pinned);
    let f = report.finding.expect("a replaced tip is a finding");
    assert_eq!((f.kind, f.offset), (FindingKind::AnchorMismatch, 7));

    // The genesis rewritten: the genesis file shows it.
    let (_d3, regen) = embedded();
    copy_topic_with(&src, &regen, &cast.genesis.topics.blocks, |_, r| {
        rewrite_genesis(r)
    })
    .unwrap();
    let report = verify(&regen, &cast, &pinned);
    let f = report.finding.expect("a changed genesis is a finding");
    assert_eq!((f.kind, f.offset), (FindingKind::GenesisChanged, 0));
}

#[test]
fn blocks_that_do_not_hold_together_are_ignored_until_something_builds_on_them() {
    let (_dir, log) = embedded();
    let cast = ledger(&log);
    let chain = replay(&log, &cast.genesis.topics.blocks, None)
        .unwrap()
        .chain;
    let tip = chain.tip().clone();
    let at_tip = |sealer: usize| {
        hand_block(
            &cast,
            sealer,
            7,
            tip.hash,
            empty_sources(&tip.sources),
            vec![],
            |_| {},
        )
        .header
    };

    // A block by a key the genesis does not allow: ignored.
    let outsider = key("outsider", 9);
    let foreign = {
        let mut h = at_tip(0);
        h.sealer = outsider.id();
        sign_as_is(h, vec![], &outsider)
    };
    let o = append_block_record(&log, &cast, foreign.to_json());
    let report = verify(&log, &cast, &VerifyOptions::default());
    assert!(report.ok(), "{}", report.to_text());
    assert!(report
        .ignored
        .iter()
        .any(|i| i.offset == o && i.reason == IgnoreReason::UnknownSealer));

    // A block naming an allowed sealer, signed by someone else; and one whose items root its
    // sealer signed wrongly. Both are ignored by every node, which goes on from the true tip.
    let forged = sign_as_is(at_tip(0), vec![], &outsider);
    let forged_at = append_block_record(&log, &cast, forged.to_json());
    let wrong_root = {
        let mut h = at_tip(0);
        h.items_root = [1; 32];
        sign_as_is(h, vec![], &cast.sealer_key(0))
    };
    let wrong_root_at = append_block_record(&log, &cast, wrong_root.to_json());
    let report = verify(&log, &cast, &VerifyOptions::default());
    assert!(report.ok(), "{}", report.to_text());
    assert_eq!(report.height, 6);
    let reason = |o: u64| {
        report
            .ignored
            .iter()
            .find(|i| i.offset == o)
            .map(|i| i.reason.code())
    };
    assert_eq!(reason(forged_at), Some("bad_signature"));
    assert_eq!(reason(wrong_root_at), Some("body_mismatch"));
    let events = seal_until_idle(&log, &cast, 1, 100);
    assert!(
        events.iter().any(|e| matches!(
            e,
            kchain_ledger::Event::Ignored {
                reason: IgnoreReason::Broken { .. },
                ..
            }
        )),
        "a sealing node ignores them too"
    );

    // Whoever builds on a block that does not hold together shows that it was canonical
    // once: a finding at the broken block's offset, which stops nodes.
    let forged_hash = forged.header.hash();
    let child = hand_block(
        &cast,
        0,
        8,
        forged_hash,
        empty_sources(&tip.sources),
        vec![],
        |_| {},
    );
    let (_d, copy) = embedded();
    copy_topic_with(&log, &copy, &cast.genesis.topics.blocks, |_, r| {
        r.push(Record {
            value: Some(child.to_json()),
            ..Record::default()
        })
    })
    .unwrap();
    let report = verify(&copy, &cast, &VerifyOptions::default());
    let f = report
        .finding
        .expect("a child of a broken block is a finding");
    assert_eq!(
        (f.kind, f.offset),
        (FindingKind::BadSignature, forged_at),
        "{f}"
    );
    let mut events = Vec::new();
    assert!(matches!(
        Node::open(&copy, cast.node_options(), None, &mut events),
        Err(LedgerError::Tampered(_))
    ));
}
