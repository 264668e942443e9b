//! Records built in place (`EncodedRecords`, `RecordEncoder`) and appended with
//! `append_encoded`: the same bytes on disk as `append` of the same records, and a malformed
//! record refused before anything is written.

use std::path::Path;

use kchain_log::{
    EmbeddedLog, EmbeddedOptions, EncodedRecords, FsyncPolicy, Header, Log, LogError, Record,
    RecordEncoder, TopicConfig,
};

fn records(n: u64) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: (i % 3 != 0).then(|| format!("k{i}").into_bytes()),
            value: (i % 5 != 4).then(|| vec![i as u8; (i % 40) as usize]),
            headers: (0..i % 4)
                .map(|h| Header::new(format!("h{h}.\u{e9}"), vec![h as u8; h as usize]))
                .collect(),
            timestamp_ms: 1_700_000_000_000 + (i as i64 * 7919) % 1000,
        })
        .collect()
}

/// `recs` built in place, reusing `buf`, with the encoders' receipts handed over when
/// `confirm`.
fn encode_with(recs: &[Record], buf: Vec<u8>, confirm: bool) -> EncodedRecords {
    let lens = recs.iter().map(|r| {
        RecordEncoder::len(
            r.key.as_ref().map(Vec::len),
            r.value.as_ref().map(Vec::len),
            r.headers.iter().map(|h| (h.name.len(), h.value.len())),
        )
    });
    let mut enc = EncodedRecords::with_lengths(buf, lens);
    let mut receipts = Vec::new();
    for (slot, r) in enc.record_slots().into_iter().zip(recs) {
        let mut e = RecordEncoder::new(slot, r.timestamp_ms);
        e.key(r.key.as_deref());
        if let (Some(v), Some(val)) = (e.value_slot(r.value.as_ref().map(Vec::len)), &r.value) {
            v.copy_from_slice(val);
        }
        e.header_count(r.headers.len());
        for h in &r.headers {
            e.header(&h.name, &h.value);
        }
        assert_eq!(e.remaining(), 0);
        receipts.push(e.finish().expect("a whole record"));
    }
    if confirm {
        assert!(enc.confirm(receipts));
    }
    enc
}

fn encode(recs: &[Record], buf: Vec<u8>) -> EncodedRecords {
    encode_with(recs, buf, false)
}

fn log(dir: &Path) -> EmbeddedLog {
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::Never,
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::create(dir, opts).unwrap();
    for t in ["plain", "encoded"] {
        log.create_topic(t, &TopicConfig::default()).unwrap();
    }
    log
}

#[test]
fn encoded_batches_are_the_bytes_append_writes() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path());
    let mut plain = log.appender("plain", 0).unwrap();
    let mut encoded = log.appender("encoded", 0).unwrap();
    assert!(encoded.takes_encoded());
    let recs = records(300);
    let mut buf = vec![0xee; 7];
    for (i, chunk) in recs.chunks(97).enumerate() {
        let a = plain.append(chunk).unwrap();
        let mut enc = encode_with(chunk, buf, i % 2 == 0);
        let b = encoded.append_encoded(&mut enc).unwrap();
        assert_eq!(a, b);
        buf = enc.into_buffer();
    }
    assert_eq!(
        kchain_testkit::segment_bytes(dir.path(), "plain", 0),
        kchain_testkit::segment_bytes(dir.path(), "encoded", 0)
    );
    let mut r = log.reader("encoded", 0, 0).unwrap();
    let back = r.poll(1000, std::time::Duration::ZERO).unwrap();
    let back: Vec<Record> = back.into_iter().map(|s| s.record).collect();
    assert_eq!(back, recs);
}

#[test]
fn a_malformed_encoded_record_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path());
    let mut app = log.appender("encoded", 0).unwrap();
    let recs = records(4);
    // A record whose header count is never written: its last bytes stay zero, one too many.
    let lens = [RecordEncoder::len(None, Some(3), [(1, 1)])];
    let mut bad = EncodedRecords::with_lengths(Vec::new(), lens);
    let mut e = RecordEncoder::new(bad.record_slots().remove(0), 1);
    e.key(None);
    e.value(Some(b"abc"));
    let err = app.append_encoded(&mut bad).unwrap_err();
    assert!(matches!(err, LogError::InvalidArgument(_)), "{err}");
    assert_eq!(app.next_offset(), 0);
    let mut good = encode(&recs, bad.into_buffer());
    assert_eq!(app.append_encoded(&mut good).unwrap(), vec![0, 1, 2, 3]);
    let mut empty = EncodedRecords::with_lengths(Vec::new(), []);
    assert!(empty.is_empty());
    assert_eq!(app.append_encoded(&mut empty).unwrap(), Vec::<u64>::new());
}

#[test]
fn receipts_count_only_for_the_slots_last_handed_out() {
    let recs = records(5);
    let mut enc = encode_with(&recs, Vec::new(), false);
    let _ = enc.record_slots();
    assert!(!enc.confirm([]), "fewer receipts than records");
    // A receipt of another batch never counts.
    let lens = [RecordEncoder::len(None, None, [])];
    let mut one = EncodedRecords::with_lengths(Vec::new(), lens);
    let mut e = RecordEncoder::new(one.record_slots().remove(0), 1);
    e.key(None);
    e.value(None);
    e.header_count(0);
    let receipt = e.finish().unwrap();
    assert!(!enc.confirm([receipt]));
    assert!(one.confirm([receipt]));
    let _ = one.record_slots();
    assert!(
        !one.confirm([receipt]),
        "a receipt of slots handed out before"
    );
}

#[test]
#[should_panic(expected = "out of order")]
fn an_encoder_call_out_of_order_panics() {
    let mut enc = EncodedRecords::with_lengths(Vec::new(), [RecordEncoder::len(None, None, [])]);
    let mut e = RecordEncoder::new(enc.record_slots().remove(0), 1);
    e.value(None);
}

#[test]
fn an_unfinished_record_gets_no_receipt() {
    let mut enc =
        EncodedRecords::with_lengths(Vec::new(), [RecordEncoder::len(None, None, [(1, 1)])]);
    let mut e = RecordEncoder::new(enc.record_slots().remove(0), 1);
    e.key(None);
    e.value(None);
    e.header_count(1);
    assert!(e.finish().is_none());
}
