//! Pipelined appends (`ChainWriter::with_pipelining`, as `TopicProducer` uses it): `append`
//! returns once its last batch is handed to the log, `wait_written` and `flush` wait for it.
//! The records are those of the default writer, byte for byte; a batch the log could not
//! write fails the next call; and what `flush` acknowledged survives SIGKILL.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use kchain_log::{
    Appender, EmbeddedLog, EmbeddedOptions, EncodedRecords, FsyncPolicy, Log, LogError, Record,
    TopicConfig,
};
use kchain_topic::{ChainWriter, TopicError, TopicVerifier, WriterOptions};

const TOPIC: &str = "orders";

fn small_batches() -> WriterOptions {
    WriterOptions {
        max_batch_records: 7,
        ..WriterOptions::default()
    }
}

fn segment(root: &Path) -> Vec<u8> {
    let path = root
        .join("topics")
        .join(TOPIC)
        .join("0")
        .join(format!("{:020}.log", 0));
    std::fs::read(path).unwrap()
}

#[test]
fn pipelined_appends_write_the_default_writers_bytes_once_waited_for() {
    let key = key("acme", 3);
    let calls: Vec<std::ops::Range<u64>> = vec![0..3, 3..20, 20..21, 21..60];
    let mut segments = Vec::new();
    for pipelined in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
        let mut w = ChainWriter::open(&log, TOPIC, 0, &key, small_batches()).unwrap();
        if pipelined {
            w = w.with_pipelining();
        }
        let mut next = 0;
        for call in &calls {
            let r = w.append(call.clone().map(item).collect()).unwrap();
            assert_eq!((r.first_offset, r.last_offset), (next, call.end - 1));
            assert_eq!(w.tip().map(|t| t.0), Some(call.end - 1));
            next = call.end;
        }
        w.wait_written().unwrap();
        assert_eq!(
            log.end_offset(TOPIC, 0).unwrap(),
            60,
            "pipelined: {pipelined}"
        );
        w.flush().unwrap();
        drop(w);
        let report = TopicVerifier::new(&trust_for(&[&key]))
            .verify_chains(&log, TOPIC)
            .unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.partitions[0].summary.entries, 60);
        segments.push(segment(dir.path()));
    }
    assert_eq!(segments[0], segments[1]);
}

#[test]
fn a_dropped_pipelined_writer_still_writes_what_it_handed_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    let key = key("acme", 3);
    let mut w = ChainWriter::open(&log, TOPIC, 0, &key, small_batches())
        .unwrap()
        .with_pipelining();
    w.append((0..30).map(item).collect()).unwrap();
    drop(w);
    assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 30);
    // The next writer resumes from the tip the first one signed.
    let mut w = ChainWriter::open(&log, TOPIC, 0, &key, small_batches()).unwrap();
    assert_eq!(w.tip().map(|t| t.0), Some(29));
    w.append((30..31).map(item).collect()).unwrap();
}

/// A pipelined writer of [`TOPIC`] in batches of 7, with checkpoints due every `every`
/// entries (never by time alone).
fn checkpointing<'k>(
    log: &'k dyn Log,
    key: &'k kchain_core::WriterKey,
    every: u64,
) -> ChainWriter<'k> {
    let options = kchain_topic::CheckpointOptions {
        every_entries: every,
        every: Duration::from_secs(3600),
        ..kchain_topic::CheckpointOptions::default()
    };
    ChainWriter::open(log, TOPIC, 0, key, small_batches())
        .unwrap()
        .with_pipelining()
        .with_checkpoints(log, options)
        .unwrap()
}

/// The sizes of the checkpoints on [`TOPIC`]'s checkpoints topic, in order.
fn checkpoint_sizes(log: &dyn Log) -> Vec<u64> {
    let records = kchain_topic::checkpoints::read_checkpoints(log, TOPIC).unwrap();
    let parse = |r: &kchain_topic::checkpoints::CheckpointRecord| {
        kchain_core::Checkpoint::parse(r.note.text())
            .unwrap()
            .size()
    };
    records.iter().map(parse).collect()
}

/// Opening a checkpointing writer creates the checkpoints topic, so that its first
/// checkpoint does not wait for that in the middle of the appends.
#[test]
fn a_checkpointing_writer_creates_the_checkpoints_topic_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    let name = kchain_topic::checkpoints::checkpoints_topic(TOPIC);
    assert!(log.topic(&name).is_err());
    let key = key("acme", 3);
    let _w = checkpointing(&log, &key, 10);
    assert_eq!(log.topic(&name).unwrap().partitions, 1);
    assert_eq!(checkpoint_sizes(&log), Vec::<u64>::new());
}

#[test]
fn a_pipelined_writers_checkpoints_sign_only_written_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    let key = key("acme", 3);
    let mut w = checkpointing(&log, &key, 10);
    let sizes = checkpoint_sizes;
    for call in 0..8u64 {
        w.append((call * 9..call * 9 + 9).map(item).collect())
            .unwrap();
        // Read after the call: every checkpoint signed so far covers records in the log.
        let end = log.end_offset(TOPIC, 0).unwrap();
        let signed = sizes(&log);
        assert!(
            signed.iter().all(|&s| s <= end),
            "call {call}: {signed:?} beyond {end}"
        );
    }
    // Checkpoints are published on a thread of their own: the last one signed may still be
    // on its way to the checkpoints topic until the writer waits for it.
    // Due checkpoints are signed once the tree thread has their roots (by a later call or
    // the wait): at least the first, due at 10 entries, is signed by now.
    w.wait_written().unwrap();
    let signed = sizes(&log);
    assert!(!signed.is_empty(), "due every 10 entries: {signed:?}");
    w.flush().unwrap();
    assert_eq!(
        sizes(&log).last(),
        Some(&72),
        "the flush signs the whole chain"
    );
    let report = TopicVerifier::new(&trust_for(&[&key]))
        .verify_chains(&log, TOPIC)
        .unwrap();
    assert!(report.ok(), "{report:?}");
}

/// A due checkpoint is published while the log writes the batch after the ones it signs
/// (handed to the log thread first), not with the log idle.
#[test]
fn a_pipelined_writer_publishes_a_checkpoint_while_the_next_batch_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (watch, log) = watched(dir.path());
    let key = key("acme", 3);
    let mut w = checkpointing(&log, &key, 10);
    for call in 0..6u64 {
        w.append((call * 9..call * 9 + 9).map(item).collect())
            .unwrap();
    }
    // The checkpoints are published on a thread of their own: waiting for the records waits
    // for them too.
    w.wait_written().unwrap();
    let during = watch.published.lock().unwrap().clone();
    // Each due checkpoint is signed once the tree thread has its root, by a later call or
    // the wait: how many of the 5 due in these fast calls get signed depends on when that
    // thread runs.
    assert!(!during.is_empty(), "due every 10 entries: {during:?}");
    for (size, started) in during {
        assert!(
            started as u64 > size,
            "checkpoint of {size} published with {started} records handed to the log"
        );
    }
    w.flush().unwrap();
}

/// A pipelined writer does not wait for a checkpoint's publication (its append and fsync on
/// the checkpoints topic): its appends return while the checkpoint is held back, and
/// `wait_written` and `flush` wait for it.
#[test]
fn a_pipelined_writer_goes_on_while_its_checkpoint_is_published() {
    use kchain_core::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    let (watch, log) = watched(dir.path());
    let key = key("acme", 3);
    let mut w = checkpointing(&log, &key, 10);
    let sizes = checkpoint_sizes;
    watch.held.store(true, Ordering::SeqCst);
    let t = Instant::now();
    // Batches of 7: the second call's batch finds 14 entries written, and asks the tree
    // thread for their root; the third's signs it if the tree thread has answered (it does
    // not wait for it), and finds 7 more, not due.
    w.append((0..14).map(item).collect()).unwrap();
    w.append((14..21).map(item).collect()).unwrap();
    w.append((21..28).map(item).collect()).unwrap();
    let returned = t.elapsed();
    assert_eq!(sizes(&log), Vec::<u64>::new(), "held back");
    assert!(returned < HELD_AT_MOST / 2, "the appends took {returned:?}");
    let signed = w
        .last_checkpoint()
        .map(|n| Checkpoint::parse(n.text()).unwrap().size());
    assert!(matches!(signed, None | Some(14)), "{signed:?}");
    watch.held.store(false, Ordering::SeqCst);
    w.wait_written().unwrap();
    assert_eq!(sizes(&log), vec![14]);
    w.flush().unwrap();
    assert_eq!(sizes(&log), vec![14, 28], "the flush signs the whole chain");
}

/// A checkpoint whose publication failed fails the call that waits for it, not the writer;
/// the next checkpoint publishes it, even with no entry appended since.
#[test]
fn a_checkpoint_that_could_not_be_published_is_published_by_the_next() {
    use kchain_core::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    let (watch, log) = watched(dir.path());
    watch.fail_notes.store(1, Ordering::SeqCst);
    let key = key("acme", 3);
    let mut w = checkpointing(&log, &key, 100_000);
    let sizes = checkpoint_sizes;
    w.append((0..14).map(item).collect()).unwrap();
    let err = w.checkpoint().unwrap_err();
    assert!(
        err.to_string().contains("checkpoints disk is full"),
        "{err}"
    );
    assert_eq!(sizes(&log), Vec::<u64>::new());
    let note = w.checkpoint().unwrap().expect("signed again");
    assert_eq!(Checkpoint::parse(note.text()).unwrap().size(), 14);
    assert_eq!(sizes(&log), vec![14]);
    assert_eq!(
        w.checkpoint().unwrap(),
        None,
        "published: nothing new to sign"
    );
    w.append((14..15).map(item).collect()).unwrap();
    w.flush().unwrap();
    assert_eq!(sizes(&log), vec![14, 15]);
}

/// The longest an append to a checkpoints topic is held back by [`Watch::held`].
const HELD_AT_MOST: Duration = Duration::from_secs(10);

/// The embedded log, whose appenders fail every encoded batch after the first `ok` ones.
/// With `watch`, it counts the records of the encoded batches started, and an append to a
/// checkpoints topic first waits (at most 2 s) for a batch past the checkpoint's size to
/// start, then notes (size, records started).
struct Failing {
    ok: usize,
    watch: Option<Watch>,
}

fn failing(dir: &std::path::Path, ok: usize, watch: Option<Watch>) -> Hooked<Failing> {
    Hooked {
        log: open_log(dir),
        hooks: Failing { ok, watch },
    }
}

/// The log of [`failing`] that fails nothing, with [`TOPIC`] created, and its watch.
fn watched(dir: &std::path::Path) -> (Watch, Hooked<Failing>) {
    let watch = Watch::default();
    let log = failing(dir, usize::MAX, Some(watch.clone()));
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    (watch, log)
}

#[derive(Clone, Default)]
struct Watch {
    started: Arc<AtomicUsize>,
    published: Arc<std::sync::Mutex<Vec<(u64, usize)>>>,
    /// While set, an append to a checkpoints topic waits (at most [`HELD_AT_MOST`]).
    held: Arc<std::sync::atomic::AtomicBool>,
    /// Appends to a checkpoints topic to fail before the others succeed.
    fail_notes: Arc<AtomicUsize>,
}

struct FailingAppender {
    inner: Box<dyn Appender>,
    left: Arc<AtomicUsize>,
    watch: Option<Watch>,
    checkpoints: bool,
}

impl Appender for FailingAppender {
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError> {
        if let (Some(w), true) = (&self.watch, self.checkpoints) {
            let fail = w
                .fail_notes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if fail.is_ok() {
                return Err(LogError::InvalidArgument(
                    "the checkpoints disk is full".into(),
                ));
            }
            let text = String::from_utf8(records[0].value.clone().unwrap()).unwrap();
            let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
            let t = Instant::now();
            while w.held.load(Ordering::SeqCst) && t.elapsed() < HELD_AT_MOST {
                std::thread::sleep(Duration::from_millis(1));
            }
            let t = Instant::now();
            while (w.started.load(Ordering::SeqCst) as u64) <= size
                && t.elapsed() < Duration::from_secs(2)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            let started = w.started.load(Ordering::SeqCst);
            w.published.lock().unwrap().push((size, started));
        }
        self.inner.append(records)
    }
    fn takes_encoded(&self) -> bool {
        true
    }
    fn append_encoded(&mut self, records: &mut EncodedRecords) -> Result<Vec<u64>, LogError> {
        if let Some(w) = &self.watch {
            w.started.fetch_add(records.len(), Ordering::SeqCst);
        }
        match self.left.fetch_sub(1, Ordering::SeqCst) {
            0 => {
                self.left.store(0, Ordering::SeqCst);
                Err(LogError::InvalidArgument("the disk is full".into()))
            }
            _ => self.inner.append_encoded(records),
        }
    }
    fn flush(&mut self) -> Result<(), LogError> {
        self.inner.flush()
    }
    fn next_offset(&self) -> u64 {
        self.inner.next_offset()
    }
}

impl Hooks for Failing {
    fn appender(
        &self,
        log: &EmbeddedLog,
        topic: &str,
        partition: u32,
    ) -> Result<Box<dyn Appender>, LogError> {
        Ok(Box::new(FailingAppender {
            inner: log.appender(topic, partition)?,
            left: Arc::new(AtomicUsize::new(self.ok)),
            watch: self.watch.clone(),
            checkpoints: topic.ends_with(".checkpoints"),
        }))
    }
}

#[test]
fn a_batch_the_log_could_not_write_fails_the_next_call_and_poisons_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = failing(dir.path(), 2, None);
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    let key = key("acme", 3);
    let mut w = ChainWriter::open(&log, TOPIC, 0, &key, small_batches())
        .unwrap()
        .with_pipelining();
    // Two batches of 7 are written; the third is handed over and fails on the log thread.
    w.append((0..14).map(item).collect()).unwrap();
    w.append((14..21).map(item).collect()).unwrap();
    let err = w.append((21..22).map(item).collect()).unwrap_err();
    assert!(err.to_string().contains("the disk is full"), "{err}");
    assert!(matches!(
        w.append((21..22).map(item).collect()),
        Err(TopicError::Poisoned { .. })
    ));
    assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 14);

    // Without pipelining, the call that handed the batch over fails.
    let dir = tempfile::tempdir().unwrap();
    let log = failing(dir.path(), 1, None);
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    let mut w = ChainWriter::open(&log, TOPIC, 0, &key, small_batches()).unwrap();
    w.append((0..7).map(item).collect()).unwrap();
    let err = w.append((7..8).map(item).collect()).unwrap_err();
    assert!(err.to_string().contains("the disk is full"), "{err}");
    assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 7);
}

// ---- SIGKILL ----

fn crash_opts() -> EmbeddedOptions {
    EmbeddedOptions {
        fsync: FsyncPolicy::IntervalMs(1000),
        segment_bytes: 256 * 1024,
        ..EmbeddedOptions::default()
    }
}

#[test]
fn records_acknowledged_by_flush_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    EmbeddedLog::create(dir.path(), crash_opts())
        .unwrap()
        .create_topic(TOPIC, &TopicConfig::default())
        .unwrap();
    let key = key("acme", 3);
    for round in 0..3u64 {
        let mut child = kchain_testkit::test_in_child("pipelined_child")
            .env("KCHAIN_PIPELINED_CHILD", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut flushed = expect_flushed(&mut stdout, &mut child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(200 + 150 * round) {
            flushed = expect_flushed(&mut stdout, &mut child);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let log = EmbeddedLog::open(dir.path(), crash_opts()).unwrap();
        // Opening the writer runs recovery, and finds the tip its key signed.
        let w = ChainWriter::open(&log, TOPIC, 0, &key, WriterOptions::default()).unwrap();
        let end = log.end_offset(TOPIC, 0).unwrap();
        assert!(
            end >= flushed,
            "round {round}: flushed {flushed}, recovered {end}"
        );
        assert_eq!(w.tip().map(|t| t.0 + 1), Some(end));
        drop(w);
        let report = TopicVerifier::new(&trust_for(&[&key]))
            .verify_chains(&log, TOPIC)
            .unwrap();
        assert!(report.ok(), "round {round}: {report:?}");
    }
}

/// Reads the child's stdout to its next `@@FLUSHED <end offset>` line.
fn expect_flushed(stdout: &mut BufReader<std::process::ChildStdout>, child: &mut Child) -> u64 {
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("the child exited: {:?}", child.wait());
        }
        if let Some(at) = line.find("@@FLUSHED ") {
            return line[at + 10..].trim_end().parse().unwrap();
        }
    }
}

/// The child side: appends pipelined calls of a few batches forever, flushing every third
/// call and printing `@@FLUSHED <end offset>` after each flush.
#[test]
fn pipelined_child() {
    let Some(root) = std::env::var_os("KCHAIN_PIPELINED_CHILD").map(PathBuf::from) else {
        return;
    };
    let log = EmbeddedLog::open(&root, crash_opts()).unwrap();
    let key = key("acme", 3);
    let options = WriterOptions {
        max_batch_records: 50,
        ..WriterOptions::default()
    };
    let mut w = ChainWriter::open(&log, TOPIC, 0, &key, options)
        .unwrap()
        .with_pipelining();
    let mut stdout = std::io::stdout();
    for call in 0u64.. {
        let next = w.tip().map_or(0, |t| t.0 + 1);
        w.append((next..next + 120).map(item).collect()).unwrap();
        if call % 3 == 2 {
            w.flush().unwrap();
            writeln!(stdout, "@@FLUSHED {}", next + 120).unwrap();
        }
    }
}

// ---- cost per thread ----

/// CPU seconds (user + system) of each live thread of this process, by thread name.
fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let (Ok(stat), Ok(comm)) = (
            std::fs::read_to_string(task.path().join("stat")),
            std::fs::read_to_string(task.path().join("comm")),
        ) else {
            continue;
        };
        let cpu = kchain_log::cpu::from_stat(&stat).expect("CPU times in a task's stat");
        *out.entry(comm.trim().to_owned()).or_insert(0.0) += cpu;
    }
    out
}

/// The bench's chained append (1,000,000 records of 256 bytes by default, in calls of 8
/// batches of 8,192, pipelined, fsync every 100 ms) with each thread's CPU time, for
/// profiles that the load of other processes does not blur (`perf record` it): `VARIANT=
/// plain|encrypted|checkpoints RECORDS=n BATCH=records-a-signed-batch BENCH_DIR=dir cargo
/// test --release -p kchain-topic --test pipelined -- --ignored --nocapture
/// append_cpu_by_thread`.
#[test]
#[ignore]
fn append_cpu_by_thread() {
    let variant = std::env::var("VARIANT").unwrap_or_else(|_| "plain".into());
    let n: usize = std::env::var("RECORDS").map_or(1_000_000, |r| r.parse().unwrap());
    let base =
        std::env::var("BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let dir = tempfile::tempdir_in(base).unwrap();
    let log = EmbeddedLog::create(
        dir.path(),
        EmbeddedOptions {
            fsync: FsyncPolicy::IntervalMs(100),
            ..EmbeddedOptions::default()
        },
    )
    .unwrap();
    log.create_topic(TOPIC, &TopicConfig::default()).unwrap();
    let key = key("acme", 3);
    let data_key = kchain_core::DataKey::generate(0).unwrap();
    let calls: Vec<Vec<kchain_core::Item>> = (0..n)
        .map(|i| kchain_core::Item {
            value: Some(vec![(i % 251) as u8; 256]),
            timestamp_ms: 1_700_000_000_000 + i as i64,
            ..kchain_core::Item::default()
        })
        .collect::<Vec<_>>()
        .chunks(8 * 8192)
        .map(<[kchain_core::Item]>::to_vec)
        .collect();
    let options = WriterOptions {
        max_batch_records: std::env::var("BATCH").map_or(8192, |b| b.parse().unwrap()),
        ..WriterOptions::default()
    };
    let mut w = ChainWriter::open(&log, TOPIC, 0, &key, options)
        .unwrap()
        .with_optional_encryption((variant == "encrypted").then_some(&data_key))
        .with_pipelining();
    if variant == "checkpoints" {
        w = w
            .with_checkpoints(&log, kchain_topic::CheckpointOptions::default())
            .unwrap();
    }
    let before = cpu_by_thread();
    let t = Instant::now();
    for call in calls {
        w.append(call).unwrap();
    }
    w.flush().unwrap();
    let took = t.elapsed();
    let after = cpu_by_thread();
    println!(
        "{variant}: {n} records in {:.3} s = {:.0}/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    let mut total = 0.0;
    for (name, cpu) in &after {
        let cpu = cpu - before.get(name).copied().unwrap_or(0.0);
        total += cpu;
        println!("  {name:<24} {cpu:7.2} s on cpu");
    }
    println!("  {:<24} {total:7.2} s on cpu", "all threads");
}
