//! The chain verifier against a table of mutations: a clean chain, then every way an attacker
//! can change it (edit one record, two or three in a row, a signed record, the signed tip, a
//! link, a signature; delete, insert, reorder, duplicate, append), each with the kind and
//! the offset the finding must name: the earliest record that could have changed, never a
//! later one.
//!
//! The chain is modelled at the level the verifier sees it (height, previous hash, recomputed
//! hash, signature standing), so each mutation states exactly what an edit does to those:
//! a changed record hashes differently, and a signature over its old hash no longer verifies.

use kchain_core::{
    ChainVerifier, Expectations, FindingKind, KeyId, Observation, Observed, PendingLimits,
    SigCheck, Summary,
};

const N: u64 = 30;
const BATCH: u64 = 10;
const KEY: KeyId = KeyId([7; 8]);

/// The hash of the original record at `height`, or of a changed version (`edit` > 0).
fn h(height: u64, edit: u8) -> [u8; 32] {
    let mut x = [0u8; 32];
    x[..8].copy_from_slice(&height.to_be_bytes());
    x[8] = edit;
    x[31] = 0xaa;
    x
}

/// A clean chain of N records in signed batches of `batch`.
fn chain(batch: u64) -> Vec<Observed> {
    (0..N)
        .map(|i| Observed {
            offset: 0,
            height: i,
            prev: if i == 0 { [0; 32] } else { h(i - 1, 0) },
            hash: h(i, 0),
            sig: if i % batch == batch - 1 {
                SigCheck::Valid(KEY)
            } else {
                SigCheck::None
            },
        })
        .collect()
}

/// The record's content changed in place: a new hash, and its signature (if any) fails.
fn edit(r: &mut [Observed], i: usize) {
    r[i].hash = h(r[i].height, 1);
    if let SigCheck::Valid(k) = r[i].sig {
        r[i].sig = SigCheck::Invalid(k);
    }
}

/// The record's `kchain.prev` changed: its hash changes with it.
fn edit_prev(r: &mut [Observed], i: usize) {
    r[i].prev = [0x55; 32];
    edit(r, i);
}

/// A record forged to link after `after` (recomputed hash, no signature).
fn forged_after(after: &Observed) -> Observed {
    Observed {
        offset: 0,
        height: after.height + 1,
        prev: after.hash,
        hash: h(after.height + 1, 9),
        sig: SigCheck::None,
    }
}

fn run(records: &[Observed], limits: PendingLimits) -> (Summary, Summary) {
    let mut v = ChainVerifier::with_limits(Expectations::default(), limits);
    for (i, r) in records.iter().enumerate() {
        v.push(Observation::Entry(Observed {
            offset: i as u64,
            ..*r
        }));
    }
    (v.clone().finish(), v.finish_pending())
}

type Mutation = fn(&mut Vec<Observed>);

struct Case {
    what: &'static str,
    mutate: Mutation,
    /// (offset, kind) of the finding, or None for a clean result.
    want: Option<(u64, FindingKind)>,
    /// With the tail judged as pending instead: (finding, pending count).
    pending: Option<(Option<(u64, FindingKind)>, u64)>,
}

fn cases() -> Vec<Case> {
    use FindingKind::*;
    vec![
        Case {
            what: "clean chain",
            mutate: |_| {},
            want: None,
            pending: None,
        },
        Case {
            what: "one value edited mid-batch",
            mutate: |r| edit(r, 13),
            want: Some((13, PayloadChanged)),
            pending: None,
        },
        Case {
            what: "two consecutive values edited",
            mutate: |r| {
                edit(r, 11);
                edit(r, 12)
            },
            want: Some((11, LinkBroken)),
            pending: None,
        },
        Case {
            what: "three consecutive values edited",
            mutate: |r| (11..14).for_each(|i| edit(r, i)),
            want: Some((11, LinkBroken)),
            pending: None,
        },
        Case {
            what: "first record after a signature edited",
            mutate: |r| edit(r, 20),
            want: Some((20, PayloadChanged)),
            pending: None,
        },
        Case {
            what: "a signed record mid-chain edited",
            mutate: |r| edit(r, 19),
            want: Some((19, PayloadChanged)),
            pending: None,
        },
        Case {
            what: "a signed record and the one after it edited",
            mutate: |r| {
                edit(r, 19);
                edit(r, 20)
            },
            want: Some((19, PayloadChanged)),
            pending: None,
        },
        Case {
            what: "the record before a signed one and the signed one edited",
            mutate: |r| {
                edit(r, 18);
                edit(r, 19)
            },
            want: Some((18, LinkBroken)),
            pending: None,
        },
        Case {
            what: "the signed tip edited",
            mutate: |r| edit(r, 29),
            want: Some((29, BadSignature)),
            pending: None,
        },
        Case {
            what: "the signed tip and the record before it edited",
            mutate: |r| {
                edit(r, 28);
                edit(r, 29)
            },
            want: Some((28, LinkBroken)),
            pending: None,
        },
        Case {
            what: "only a signature changed mid-chain",
            mutate: |r| r[19].sig = SigCheck::Invalid(KEY),
            want: Some((19, BadSignature)),
            pending: None,
        },
        Case {
            what: "genesis edited",
            mutate: |r| edit(r, 0),
            want: Some((0, GenesisMismatch)),
            pending: None,
        },
        Case {
            what: "genesis and record 1 edited",
            mutate: |r| {
                edit(r, 0);
                edit(r, 1)
            },
            want: Some((0, LinkBroken)),
            pending: None,
        },
        Case {
            what: "a link edited: the record before it could have changed too",
            mutate: |r| edit_prev(r, 24),
            want: Some((23, LinkBroken)),
            pending: None,
        },
        Case {
            what: "a link edited right after a signed record",
            mutate: |r| edit_prev(r, 20),
            want: Some((20, LinkBroken)),
            pending: None,
        },
        Case {
            what: "a record deleted",
            mutate: |r| {
                r.remove(25);
            },
            want: Some((25, Missing)),
            pending: None,
        },
        Case {
            what: "the signed tip deleted: its batch is unsigned, or pending",
            mutate: |r| {
                r.pop();
            },
            want: Some((20, Unsigned)),
            pending: Some((None, 9)),
        },
        Case {
            what: "a record inserted before the original of its height",
            mutate: |r| {
                let x = forged_after(&r[14]);
                r.insert(15, x);
            },
            want: Some((15, Inserted)),
            pending: None,
        },
        Case {
            what: "a record inserted after the original of its height",
            mutate: |r| {
                let x = forged_after(&r[14]);
                r.insert(16, x);
            },
            want: Some((16, Inserted)),
            pending: None,
        },
        Case {
            what: "two records swapped",
            mutate: |r| r.swap(13, 14),
            want: Some((13, Reordered)),
            pending: None,
        },
        Case {
            what: "a record duplicated",
            mutate: |r| {
                let d = r[16];
                r.insert(17, d);
            },
            want: Some((17, Duplicate)),
            pending: None,
        },
        Case {
            what: "a record forged at the tip: unsigned, or pending",
            mutate: |r| {
                let x = forged_after(&r[29]);
                r.push(x);
            },
            want: Some((30, Unsigned)),
            pending: Some((None, 1)),
        },
        Case {
            what: "a forged record signed by an unknown key at the tip",
            mutate: |r| {
                let mut x = forged_after(&r[29]);
                x.sig = SigCheck::Unknown(KeyId([9; 8]));
                r.push(x);
            },
            want: Some((30, UnknownKey)),
            pending: None,
        },
    ]
}

#[test]
fn every_mutation_names_the_earliest_record_that_could_have_changed() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut records = chain(BATCH);
        (case.mutate)(&mut records);
        let (fin, pend) = run(&records, PendingLimits::default());
        let got = fin.finding.as_ref().map(|f| (f.offset, f.kind));
        if got != case.want {
            failures.push(format!(
                "{}: want {:?}, got {:?} ({:?})",
                case.what,
                case.want,
                got,
                fin.finding.map(|f| f.detail)
            ));
        }
        // Without a pending tail of its own, a case's finding is the same either way (the
        // count of records linked after the last signature is then no matter).
        let got_finding = pend.finding.as_ref().map(|f| (f.offset, f.kind));
        let (want_pending, got_pending) = match case.pending {
            Some(p) => (p, (got_finding, pend.pending)),
            None => ((case.want, 0), (got_finding, 0)),
        };
        if got_pending != want_pending {
            failures.push(format!(
                "{} (pending tail): want {:?}, got {:?}",
                case.what, want_pending, got_pending
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_pending_tail_says_where_it_starts() {
    let mut records = chain(BATCH);
    records.truncate(25);
    let (fin, pend) = run(&records, PendingLimits::default());
    assert_eq!(
        fin.finding.map(|f| (f.offset, f.kind)),
        Some((20, FindingKind::Unsigned))
    );
    assert!(pend.ok());
    assert_eq!(
        (pend.entries, pend.pending, pend.pending_from),
        (20, 5, Some(20))
    );
    assert_eq!(pend.tip.map(|t| t.offset), Some(19));
}

#[test]
fn an_unsigned_run_longer_than_any_batch_is_a_finding_at_once() {
    let limits = PendingLimits {
        records: 10,
        ..PendingLimits::default()
    };
    // Batches of 10 fit: 9 unsigned records, then the signed one.
    let (fin, _) = run(&chain(10), limits);
    assert!(fin.ok(), "{fin:?}");
    // Batches of 15 do not; the finding comes while reading, pending or not.
    let (fin, pend) = run(&chain(15), limits);
    let f = fin.finding.unwrap();
    assert_eq!(
        (f.offset, f.kind),
        (0, FindingKind::Unsigned),
        "{}",
        f.detail
    );
    assert_eq!(
        pend.finding.map(|f| (f.offset, f.kind)),
        Some((0, FindingKind::Unsigned))
    );
    // The verifier stops at the limit: it has not taken the rest.
    let mut v = ChainVerifier::with_limits(Expectations::default(), limits);
    for (i, r) in chain(15).into_iter().enumerate() {
        v.push(Observation::Entry(Observed {
            offset: i as u64,
            ..r
        }));
        if v.finding().is_some() {
            assert!(i <= 11 + 2, "stopped at {i}");
            break;
        }
    }
    assert!(v.finding().is_some());
}

#[test]
fn a_caller_can_end_a_run_that_passed_its_byte_budget() {
    let mut v = ChainVerifier::new(Expectations::default());
    for (i, r) in chain(BATCH).into_iter().take(16).enumerate() {
        v.push(Observation::Entry(Observed {
            offset: i as u64,
            ..r
        }));
    }
    assert_eq!(v.pending_run().map(|(o, h, _)| (o, h)), Some((10, 10)));
    v.fail_pending("hold 9 MiB");
    let f = v.finish().finding.unwrap();
    assert_eq!((f.offset, f.kind), (10, FindingKind::Unsigned));
    assert!(f.detail.contains("9 MiB"), "{}", f.detail);
}
