//! Crash and recovery tests of the embedded backend: torn tails cut at every byte, corrupt
//! batches, garbage tails, damaged indexes, segments, and other processes (a lock holder, a
//! concurrent appender, an appender killed mid-write).
//!
//! These tests know the on-disk layout (`docs/log-format.md`). Child processes re-run this
//! test binary with `KCHAIN_CRASH_CHILD` set, which makes the `child_process` test act.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use kchain_log::{
    EmbeddedLog, EmbeddedOptions, FsyncPolicy, Header, Log, LogError, Record, StoredRecord,
    TopicConfig,
};
use proptest::prelude::*;

const TOPIC: &str = "t";

fn opts() -> EmbeddedOptions {
    EmbeddedOptions {
        fsync: FsyncPolicy::Never,
        index_interval_bytes: 0,
        ..EmbeddedOptions::default()
    }
}

/// The record at offset `i` in every test here.
fn rec(i: u64) -> Record {
    Record {
        key: Some(format!("k{i}").into_bytes()),
        value: Some(vec![i as u8; (i % 50) as usize + 10]),
        headers: vec![Header::new("n", i.to_be_bytes().to_vec())],
        timestamp_ms: i as i64,
    }
}

fn partition_dir(root: &Path, partition: u32) -> PathBuf {
    root.join("topics").join(TOPIC).join(partition.to_string())
}

fn seg_path(root: &Path, base: u64) -> PathBuf {
    partition_dir(root, 0).join(format!("{base:020}.log"))
}

fn index_path(root: &Path, base: u64) -> PathBuf {
    partition_dir(root, 0).join(format!("{base:020}.index"))
}

fn len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Creates topic `t` and appends batches of the given sizes with records `rec(0..)`;
/// returns the size of segment 0 after each batch (starting with 0).
fn write_batches(root: &Path, opts: &EmbeddedOptions, sizes: &[u64]) -> Vec<u64> {
    let log = EmbeddedLog::create(root, opts.clone()).unwrap();
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    let mut appender = appender_of(&log).unwrap();
    let mut ends = vec![0];
    let mut next = 0;
    for &n in sizes {
        let batch: Vec<Record> = (next..next + n).map(rec).collect();
        assert_eq!(appender.append(&batch).unwrap()[0], next);
        next += n;
        ends.push(len(&seg_path(root, 0)));
    }
    ends
}

/// Opens the partition's appender. Other tests in this binary spawn child processes, and a
/// child holds a copy of every open descriptor (the lock file's too) between its fork and its
/// exec: a `Locked` from that window is retried, so that it is not taken for the outcome.
fn appender_of(log: &EmbeddedLog) -> Result<Box<dyn kchain_log::Appender>, LogError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match log.appender(TOPIC, 0) {
            Err(LogError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Everything readable from offset 0 right now (no waiting), or the first error.
fn read_all(log: &EmbeddedLog) -> Result<Vec<StoredRecord>, LogError> {
    let mut reader = log.reader(TOPIC, 0, 0)?;
    let mut out = Vec::new();
    loop {
        let got = reader.poll(1000, Duration::ZERO)?;
        if got.is_empty() {
            return Ok(out);
        }
        out.extend(got);
    }
}

/// Checks that `got` is exactly records `rec(0..n)` at offsets `0..n`.
fn check_records(got: &[StoredRecord], n: u64) {
    assert_eq!(got.len() as u64, n, "record count");
    for (i, r) in got.iter().enumerate() {
        assert_eq!((r.offset, &r.record), (i as u64, &rec(i as u64)));
    }
}

fn index_positions(path: &Path) -> Vec<u32> {
    fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|e| u32::from_be_bytes([e[4], e[5], e[6], e[7]]))
        .collect()
}

fn assert_corruption(err: Option<LogError>, path: &Path, position: u64) {
    match err {
        Some(LogError::Corruption {
            path: p,
            position: at,
            detail,
        }) => {
            assert_eq!((p.as_path(), at), (path, position), "{detail}");
        }
        other => panic!(
            "expected corruption in {} at {position}, got {other:?}",
            path.display()
        ),
    }
}

/// The quarantine files next to segment `seg` (sorted), with their contents.
fn quarantined(seg: &Path) -> Vec<(String, Vec<u8>)> {
    let prefix = format!("{}.quarantine-", seg.file_name().unwrap().to_string_lossy());
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(seg.parent().unwrap())
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            name.starts_with(&prefix)
                .then(|| (name, fs::read(e.path()).unwrap()))
        })
        .collect();
    out.sort();
    out
}

fn remove_quarantined(seg: &Path) {
    for (name, _) in quarantined(seg) {
        fs::remove_file(seg.parent().unwrap().join(name)).unwrap();
    }
}

#[test]
fn torn_last_batch_is_cut_at_every_byte() {
    // A batch the file ends inside is torn under every policy: cut, into quarantine.
    for fsync in [FsyncPolicy::Never, FsyncPolicy::EveryBatch] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let opts = EmbeddedOptions { fsync, ..opts() };
        let ends = write_batches(root, &opts, &[3, 1, 4, 2, 3]);
        let (seg, idx) = (seg_path(root, 0), index_path(root, 0));
        let (log_bytes, index_bytes) = (fs::read(&seg).unwrap(), fs::read(&idx).unwrap());
        let (last_start, last_end) = (ends[4], ends[5]);
        assert_eq!(
            index_positions(&idx).last().copied(),
            Some(last_start as u32),
            "the last batch has an index entry, which recovery must drop"
        );
        for cut in last_start..last_end {
            fs::write(&seg, &log_bytes[..cut as usize]).unwrap();
            fs::write(&idx, &index_bytes).unwrap();
            let log = EmbeddedLog::open(root, opts.clone()).unwrap();
            // A reader sees the acknowledged records, treats the rest as not yet written,
            // and changes nothing.
            assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 10, "cut at {cut}");
            check_records(&read_all(&log).unwrap(), 10);
            assert_eq!(len(&seg), cut, "a reader never truncates");

            let mut appender = appender_of(&log).unwrap();
            assert_eq!(appender.next_offset(), 10, "cut at {cut}");
            assert_eq!(fs::read(&seg).unwrap(), &log_bytes[..last_start as usize]);
            // Nothing is deleted: the cut bytes are in the quarantine file.
            let expected = if cut > last_start {
                vec![(
                    format!("00000000000000000000.log.quarantine-{last_start}"),
                    log_bytes[last_start as usize..cut as usize].to_vec(),
                )]
            } else {
                vec![]
            };
            assert_eq!(quarantined(&seg), expected, "cut at {cut}");
            remove_quarantined(&seg);
            assert!(index_positions(&idx)
                .iter()
                .all(|&p| u64::from(p) < last_start));
            assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 10);
            assert_eq!(appender.append(&[rec(10), rec(11)]).unwrap(), vec![10, 11]);
            check_records(&read_all(&log).unwrap(), 12);
        }
    }
}

#[test]
fn quarantine_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ends = write_batches(root, &opts(), &[2, 3]);
    let seg = seg_path(root, 0);
    let bytes = fs::read(&seg).unwrap();
    let name = format!("00000000000000000000.log.quarantine-{}", ends[1]);
    let other = b"someone else's file".to_vec();
    fs::write(partition_dir(root, 0).join(&name), &other).unwrap();
    for round in 1..=2u64 {
        fs::write(&seg, &bytes[..(ends[1] + 10 * round) as usize]).unwrap();
        let log = EmbeddedLog::open(root, opts()).unwrap();
        assert_eq!(appender_of(&log).unwrap().next_offset(), 2);
    }
    let tail = |n: u64| bytes[ends[1] as usize..(ends[1] + 10 * n) as usize].to_vec();
    assert_eq!(
        quarantined(&seg),
        vec![
            (name.clone(), other),
            (format!("{name}.1"), tail(1)),
            (format!("{name}.2"), tail(2)),
        ]
    );
}

#[test]
fn flipped_byte_in_a_middle_batch_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ends = write_batches(root, &opts(), &[2, 3, 2, 2]);
    let (seg, idx) = (seg_path(root, 0), index_path(root, 0));
    let (log_bytes, index_bytes) = (fs::read(&seg).unwrap(), fs::read(&idx).unwrap());
    for at in ends[1]..ends[2] {
        let mut bad = log_bytes.clone();
        bad[at as usize] ^= 0x40;
        fs::write(&seg, &bad).unwrap();
        fs::write(&idx, &index_bytes).unwrap();
        let log = EmbeddedLog::open(root, opts()).unwrap();
        assert_corruption(appender_of(&log).err(), &seg, ends[1]);
        assert_eq!(
            fs::read(&seg).unwrap(),
            bad,
            "nothing is cut (flip at {at})"
        );
        assert_eq!(fs::read(&idx).unwrap(), index_bytes);
        // A reader returns the records before the bad batch, then reports it.
        let mut reader = log.reader(TOPIC, 0, 0).unwrap();
        check_records(&reader.poll(100, Duration::ZERO).unwrap(), 2);
        assert_corruption(reader.poll(100, Duration::ZERO).err(), &seg, ends[1]);
        assert_corruption(reader.poll(100, Duration::ZERO).err(), &seg, ends[1]);
    }
}

#[test]
fn flipped_bit_in_the_last_batch_is_corruption_under_every_batch() {
    // Under the default policy a complete last batch was synced and acknowledged: a bad CRC
    // there is damage, not a torn write. Readers report it, the appender refuses, and no
    // byte changes.
    let every_batch = EmbeddedOptions {
        fsync: FsyncPolicy::EveryBatch,
        ..opts()
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ends = write_batches(root, &every_batch, &[2, 3, 2]);
    let (seg, idx) = (seg_path(root, 0), index_path(root, 0));
    let (pristine, index_bytes) = (fs::read(&seg).unwrap(), fs::read(&idx).unwrap());
    let last = ends[3 - 1];
    // In the payload (payload CRC), and in the header (header CRC).
    for at in [last + 50, last + 10, ends[3] - 1] {
        let mut bytes = pristine.clone();
        bytes[at as usize] ^= 1;
        fs::write(&seg, &bytes).unwrap();
        let log = EmbeddedLog::open(root, every_batch.clone()).unwrap();
        let mut reader = log.reader(TOPIC, 0, 0).unwrap();
        check_records(&reader.poll(100, Duration::ZERO).unwrap(), 5);
        assert_corruption(reader.poll(100, Duration::ZERO).err(), &seg, last);
        assert_corruption(log.end_offset(TOPIC, 0).err(), &seg, last);
        assert_corruption(appender_of(&log).err(), &seg, last);
        assert_eq!(
            fs::read(&seg).unwrap(),
            bytes,
            "flip at {at}: nothing is cut"
        );
        assert_eq!(fs::read(&idx).unwrap(), index_bytes, "flip at {at}");
        assert!(quarantined(&seg).is_empty(), "flip at {at}");
    }
}

#[test]
fn bad_crc_in_the_complete_last_batch_is_a_torn_tail_under_never() {
    // Under `Never` (and `IntervalMs`) unsynced pages may reach the disk out of order, so a
    // final batch that fails its CRC with nothing valid after it is cut, into quarantine.
    // Readers still report it until an appender has recovered the partition.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ends = write_batches(root, &opts(), &[2, 3, 2]);
    let seg = seg_path(root, 0);
    let mut bytes = fs::read(&seg).unwrap();
    let last = ends[2] as usize;
    bytes[last + 50] ^= 1;
    fs::write(&seg, &bytes).unwrap();
    let log = EmbeddedLog::open(root, opts()).unwrap();
    let mut reader = log.reader(TOPIC, 0, 0).unwrap();
    check_records(&reader.poll(100, Duration::ZERO).unwrap(), 5);
    assert_corruption(reader.poll(100, Duration::ZERO).err(), &seg, last as u64);
    assert_eq!(appender_of(&log).unwrap().next_offset(), 5);
    assert_eq!(fs::read(&seg).unwrap(), &bytes[..last]);
    assert_eq!(
        quarantined(&seg),
        vec![(
            format!("00000000000000000000.log.quarantine-{last}"),
            bytes[last..].to_vec()
        )]
    );
    check_records(&read_all(&log).unwrap(), 5);
}

#[test]
fn garbage_tail_is_cut_unless_valid_data_follows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ends = write_batches(root, &opts(), &[2, 3, 2]);
    let seg = seg_path(root, 0);
    let pristine = fs::read(&seg).unwrap();
    let mut noise = 0x9e3779b97f4a7c15u64;
    let random: Vec<u8> = (0..5000)
        .map(|_| {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            noise as u8
        })
        .collect();
    let mut fake_magic = b"KCLB\x01\0\0\0".to_vec();
    fake_magic.extend_from_slice(&random[..100]);
    let first_batch = &pristine[..ends[1] as usize];
    let every_batch = EmbeddedOptions {
        fsync: FsyncPolicy::EveryBatch,
        ..opts()
    };
    for garbage in [
        vec![0u8; 4096],
        random.clone(),
        fake_magic,
        random[..30].to_vec(),
    ] {
        let mut bytes = pristine.clone();
        bytes.extend_from_slice(&garbage);
        fs::write(&seg, &bytes).unwrap();
        let log = EmbeddedLog::open(root, opts()).unwrap();
        // 40 bytes or more make a complete (bad) header: a reader reports it; fewer are a
        // header still being written.
        let complete = garbage.len() >= 40;
        if complete {
            assert_corruption(read_all(&log).err(), &seg, ends[3]);
            assert_corruption(log.end_offset(TOPIC, 0).err(), &seg, ends[3]);
        } else {
            check_records(&read_all(&log).unwrap(), 7);
            assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 7);
        }
        assert_eq!(len(&seg), bytes.len() as u64);
        // Under `EveryBatch` only an incomplete header is a torn write.
        let strict = EmbeddedLog::open(root, every_batch.clone()).unwrap();
        if complete {
            assert_corruption(appender_of(&strict).err(), &seg, ends[3]);
            assert_eq!(fs::read(&seg).unwrap(), bytes);
            assert!(quarantined(&seg).is_empty());
        }
        assert_eq!(appender_of(&log).unwrap().next_offset(), 7);
        assert_eq!(fs::read(&seg).unwrap(), pristine);
        assert_eq!(
            quarantined(&seg),
            vec![(
                format!("00000000000000000000.log.quarantine-{}", ends[3]),
                garbage.clone()
            )]
        );
        remove_quarantined(&seg);

        // The same garbage with a valid batch after it is corruption, and nothing is cut.
        bytes.extend_from_slice(first_batch);
        fs::write(&seg, &bytes).unwrap();
        let log = EmbeddedLog::open(root, opts()).unwrap();
        assert_corruption(appender_of(&log).err(), &seg, ends[3]);
        assert_eq!(fs::read(&seg).unwrap(), bytes);
        let mut reader = log.reader(TOPIC, 0, 0).unwrap();
        check_records(&reader.poll(100, Duration::ZERO).unwrap(), 7);
        assert_corruption(reader.poll(100, Duration::ZERO).err(), &seg, ends[3]);
        assert!(quarantined(&seg).is_empty());
    }
}

#[test]
fn reader_waiting_on_a_torn_tail_sees_the_recovered_log() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ends = write_batches(root, &opts(), &[2, 3]);
    let seg = seg_path(root, 0);
    let bytes = fs::read(&seg).unwrap();
    fs::write(&seg, &bytes[..(ends[1] + 30) as usize]).unwrap();
    let log = EmbeddedLog::open(root, opts()).unwrap();
    let mut reader = log.reader(TOPIC, 0, 0).unwrap();
    check_records(&reader.poll(100, Duration::ZERO).unwrap(), 2);
    assert!(reader
        .poll(100, Duration::from_millis(20))
        .unwrap()
        .is_empty());
    // Another handle recovers (cutting the torn bytes the reader has seen) and appends
    // different bytes at the same position.
    let other = EmbeddedLog::open(root, opts()).unwrap();
    let mut appender = appender_of(&other).unwrap();
    let batch: Vec<Record> = (2..6).map(rec).collect();
    assert_eq!(appender.append(&batch).unwrap(), vec![2, 3, 4, 5]);
    let got = reader.poll(100, Duration::from_secs(5)).unwrap();
    let offsets: Vec<u64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![2, 3, 4, 5]);
    assert_eq!(got[3].record, rec(5));
}

/// Writes 40 batches of 3 records with 1 KiB segments and an entry every 256 bytes.
fn write_segmented(root: &Path) -> (EmbeddedOptions, Vec<u64>) {
    let opts = EmbeddedOptions {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        ..opts()
    };
    write_batches(root, &opts, &[3; 40]);
    let log = EmbeddedLog::open(root, opts.clone()).unwrap();
    let bases: Vec<u64> = segment_bases(root);
    assert!(bases.len() > 5, "{bases:?}");
    assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 120);
    (opts, bases)
}

fn segment_bases(root: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = fs::read_dir(partition_dir(root, 0))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log").map(|b| b.parse().unwrap())
        })
        .collect();
    bases.sort();
    bases
}

#[test]
fn missing_or_corrupt_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (opts, bases) = write_segmented(root);
    let pristine: Vec<Vec<u8>> = bases
        .iter()
        .map(|&b| fs::read(index_path(root, b)).unwrap())
        .collect();
    assert!(pristine.iter().all(|i| !i.is_empty()));
    type Damage = fn(&Path, &[u8]);
    let damages: [(&str, Damage); 7] = [
        ("deleted", |p, _| fs::remove_file(p).unwrap()),
        ("emptied", |p, _| fs::write(p, b"").unwrap()),
        ("garbage", |p, _| fs::write(p, b"not an index!").unwrap()),
        ("torn entry", |p, b| {
            fs::write(p, &b[..b.len() - 3]).unwrap()
        }),
        ("zeros appended", |p, b| {
            fs::write(p, [b, &[0u8; 16][..]].concat()).unwrap()
        }),
        ("past the end", |p, b| {
            let mut b = b.to_vec();
            b.extend_from_slice(&[0, 0, 1, 0, 0, 1, 0, 0]);
            fs::write(p, b).unwrap()
        }),
        ("shifted", |p, b| {
            let shifted: Vec<u8> = b
                .chunks_exact(8)
                .flat_map(|e| {
                    let pos = u32::from_be_bytes([e[4], e[5], e[6], e[7]]) + 7;
                    [&e[..4], &pos.to_be_bytes()[..]].concat()
                })
                .collect();
            fs::write(p, shifted).unwrap()
        }),
    ];
    for (what, damage) in damages {
        for (&base, bytes) in bases.iter().zip(&pristine) {
            damage(&index_path(root, base), bytes);
        }
        // Readers do not trust the index: every start offset still reads right.
        let log = EmbeddedLog::open(root, opts.clone()).unwrap();
        for from in 0..=120 {
            let mut reader = log.reader(TOPIC, 0, from).unwrap();
            let got = reader.poll(1000, Duration::ZERO).unwrap();
            let mut all = got.clone();
            loop {
                let more = reader.poll(1000, Duration::ZERO).unwrap();
                if more.is_empty() {
                    break;
                }
                all.extend(more);
            }
            assert_eq!(all.len() as u64, 120 - from, "{what}, from {from}");
            assert!(all
                .iter()
                .enumerate()
                .all(|(i, r)| r.offset == from + i as u64 && r.record == rec(r.offset)));
        }
        assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 120, "{what}");
        // An appender's recovery rebuilds every index.
        drop(appender_of(&log).unwrap());
        for (&base, bytes) in bases.iter().zip(&pristine) {
            assert_eq!(
                &fs::read(index_path(root, base)).unwrap(),
                bytes,
                "{what}: index {base}"
            );
        }
    }
}

#[test]
fn recovery_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (opts, bases) = write_segmented(root);
    let last = *bases.last().unwrap();
    let last_seg = seg_path(root, last);

    // Cut the last segment inside its last batch: it goes, the earlier segments stay.
    let full = fs::read(&last_seg).unwrap();
    fs::write(&last_seg, &full[..full.len() - 5]).unwrap();
    let log = EmbeddedLog::open(root, opts.clone()).unwrap();
    assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 117);
    let mut appender = appender_of(&log).unwrap();
    assert_eq!(appender.next_offset(), 117);
    for i in 0..30u64 {
        let first = 117 + 3 * i;
        assert_eq!(
            appender
                .append(&[rec(first), rec(first + 1), rec(first + 2)])
                .unwrap()[0],
            first
        );
    }
    drop(appender);
    check_records(&read_all(&log).unwrap(), 207);
    assert!(segment_bases(root).len() > bases.len());

    // A crash right after a roll leaves an empty last segment (and maybe no index).
    let empty = seg_path(root, 207);
    fs::write(&empty, b"").unwrap();
    let mut appender = appender_of(&log).unwrap();
    assert_eq!(appender.next_offset(), 207);
    assert_eq!(appender.append(&[rec(207)]).unwrap(), vec![207]);
    assert!(index_path(root, 207).exists());
    drop(appender);
    check_records(&read_all(&log).unwrap(), 208);

    // A last segment whose name does not follow the previous one is corruption.
    let bogus = seg_path(root, 300);
    fs::write(&bogus, b"").unwrap();
    assert_corruption(appender_of(&log).err(), &bogus, 0);
    let err = read_all(&log).err();
    assert_corruption(err, &bogus, 0);
    fs::remove_file(&bogus).unwrap();

    // A sealed segment that ends inside a batch is corruption, never cut.
    let sealed = seg_path(root, bases[1]);
    let sealed_bytes = fs::read(&sealed).unwrap();
    let short = &sealed_bytes[..sealed_bytes.len() - 1];
    fs::write(&sealed, short).unwrap();
    fs::remove_file(index_path(root, bases[1])).unwrap();
    let err = appender_of(&log).err();
    assert!(
        matches!(err, Some(LogError::Corruption { ref path, .. }) if *path == sealed),
        "{err:?}"
    );
    assert_eq!(fs::read(&sealed).unwrap(), short);
    assert!(
        matches!(read_all(&log), Err(LogError::Corruption { ref path, .. }) if *path == sealed)
    );
}

#[test]
fn oversized_records_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        max_record_bytes: 1000,
        ..opts()
    };
    let log = EmbeddedLog::create(dir.path(), opts).unwrap();
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    let mut appender = appender_of(&log).unwrap();
    appender.append(&[rec(0)]).unwrap();
    let before = fs::read(seg_path(dir.path(), 0)).unwrap();
    let big = Record {
        value: Some(vec![0; 1000]),
        ..Record::default()
    };
    let err = appender.append(&[rec(1), big]).err();
    assert!(
        matches!(
            err,
            Some(LogError::RecordTooLarge {
                size: 1024,
                limit: 1000
            })
        ),
        "{err:?}"
    );
    assert_eq!(fs::read(seg_path(dir.path(), 0)).unwrap(), before);
    assert_eq!(appender.append(&[rec(1)]).unwrap(), vec![1]);
}

#[test]
fn open_names_the_bad_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = EmbeddedLog::open(&missing, opts())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    let err = EmbeddedLog::open(dir.path(), opts())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a kchain data directory"), "{err}");
    EmbeddedLog::create(&missing, opts()).unwrap();
    EmbeddedLog::open(&missing, opts()).unwrap();
    let bad = EmbeddedOptions {
        segment_bytes: 0,
        ..opts()
    };
    assert!(matches!(
        EmbeddedLog::open(&missing, bad),
        Err(LogError::InvalidArgument(_))
    ));
}

#[test]
fn concurrent_create_topic_has_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    EmbeddedLog::create(root, opts()).unwrap();
    for round in 0..20u32 {
        let name = format!("race-{round}");
        let results: Vec<Result<(), LogError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let name = &name;
                    s.spawn(move || {
                        let log = EmbeddedLog::open(root, opts()).unwrap();
                        let config = TopicConfig {
                            partitions: round % 3 + 1,
                            retention_ms: None,
                        };
                        log.create_topic(name, &config)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(LogError::TopicExists(_)))));
        let log = EmbeddedLog::open(root, opts()).unwrap();
        assert_eq!(log.topic(&name).unwrap().partitions, round % 3 + 1);
    }
    let leftovers: Vec<_> = fs::read_dir(root.join("topics"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('~'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever bytes a segment and its index hold, opening, reading and recovering return
    /// values or errors, never panic; and after a successful recovery appending works.
    #[test]
    fn arbitrary_segment_bytes_never_panic(
        valid_batches in 0usize..3,
        junk in proptest::collection::vec(any::<u8>(), 0..600),
        index in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ends = write_batches(root, &opts(), &[2, 1, 3][..valid_batches]);
        let mut bytes = fs::read(seg_path(root, 0)).unwrap();
        bytes.extend_from_slice(&junk);
        fs::write(seg_path(root, 0), &bytes).unwrap();
        fs::write(index_path(root, 0), &index).unwrap();
        let log = EmbeddedLog::open(root, opts()).unwrap();
        let _ = log.end_offset(TOPIC, 0);
        let _ = read_all(&log);
        if let Ok(mut appender) = appender_of(&log) {
            let next = appender.next_offset();
            prop_assert!(len(&seg_path(root, 0)) >= ends[valid_batches]);
            prop_assert_eq!(appender.append(&[rec(next)]).unwrap(), vec![next]);
            let all = read_all(&log).unwrap();
            prop_assert_eq!(all.len() as u64, next + 1);
        }
    }
}

// ---- Other processes ----

/// Spawns this test binary as a child running `child_process` in `mode`.
fn spawn_child(
    mode: &str,
    root: &Path,
    batches: u64,
) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = kchain_testkit::test_in_child("child_process")
        .env("KCHAIN_CRASH_CHILD", mode)
        .env("KCHAIN_CRASH_DIR", root)
        .env("KCHAIN_CRASH_BATCHES", batches.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// Reads the child's stdout until a line starting with `prefix`; returns the rest of it.
fn expect_line(stdout: &mut BufReader<std::process::ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "child exited before {prefix:?}"
        );
        // libtest may print "test child_process ... " on the same line first.
        if let Some(at) = line.find(prefix) {
            return line[at + prefix.len()..].trim_end().to_string();
        }
    }
}

/// The child side: `lock` holds the appender until stdin closes; `append` appends
/// `KCHAIN_CRASH_BATCHES` batches of 5 (0: forever), printing `@@ACK <end offset>` after each.
#[test]
fn child_process() {
    let Ok(mode) = std::env::var("KCHAIN_CRASH_CHILD") else {
        return;
    };
    let root = PathBuf::from(std::env::var("KCHAIN_CRASH_DIR").unwrap());
    let batches: u64 = std::env::var("KCHAIN_CRASH_BATCHES")
        .unwrap()
        .parse()
        .unwrap();
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::EveryBatch,
        segment_bytes: 64 * 1024,
        index_interval_bytes: 1024,
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::open(&root, opts).unwrap();
    let mut appender = appender_of(&log).unwrap();
    println!("@@READY");
    match mode.as_str() {
        "lock" => {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).unwrap() > 0 {}
        }
        "append" => {
            let mut stdout = std::io::stdout();
            for b in (0..).take_while(|&b| batches == 0 || b < batches) {
                let next = appender.next_offset();
                let batch: Vec<Record> = (next..next + 5).map(rec).collect();
                appender.append(&batch).unwrap();
                if b % 10 == 0 || batches == 0 {
                    writeln!(stdout, "@@ACK {}", next + 5).unwrap();
                }
            }
            writeln!(stdout, "@@DONE").unwrap();
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn new_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::create(dir.path(), opts()).unwrap();
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    dir
}

#[test]
fn appender_lock_held_by_another_process() {
    let dir = new_root();
    let (mut child, mut stdout) = spawn_child("lock", dir.path(), 0);
    expect_line(&mut stdout, "@@READY");
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    match log.appender(TOPIC, 0).err() {
        Some(LogError::Locked {
            topic,
            partition,
            path,
        }) => {
            assert_eq!((topic.as_str(), partition), (TOPIC, 0));
            assert_eq!(path, partition_dir(dir.path(), 0).join("appender.lock"));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // Readers are not blocked by the lock.
    assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 0);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    appender_of(&log).unwrap();
}

#[test]
fn reader_follows_an_appender_in_another_process() {
    let dir = new_root();
    let (mut child, mut stdout) = spawn_child("append", dir.path(), 400);
    expect_line(&mut stdout, "@@READY");
    let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
    let mut reader = log.reader(TOPIC, 0, 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = 0;
    while next < 2000 {
        assert!(Instant::now() < deadline, "stuck at {next}");
        for r in reader.poll(500, Duration::from_millis(100)).unwrap() {
            assert_eq!((r.offset, &r.record), (next, &rec(next)));
            next += 1;
        }
    }
    expect_line(&mut stdout, "@@DONE");
    assert!(child.wait().unwrap().success());
    assert!(
        segment_bases(dir.path()).len() > 1,
        "the child rolled segments"
    );
    assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 2000);
}

#[test]
fn appender_killed_mid_write_loses_no_acknowledged_batch() {
    let dir = new_root();
    for round in 0..3 {
        let (mut child, mut stdout) = spawn_child("append", dir.path(), 0);
        expect_line(&mut stdout, "@@READY");
        let mut acked = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300 + 100 * round) {
            acked = expect_line(&mut stdout, "@@ACK ").parse().unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let log = EmbeddedLog::open(dir.path(), opts()).unwrap();
        let appender = appender_of(&log).unwrap();
        let end = appender.next_offset();
        assert!(
            end >= acked,
            "round {round}: acknowledged {acked}, recovered {end}"
        );
        drop(appender);
        check_records(&read_all(&log).unwrap(), end);
    }
}
