//! The monitor under test: a chain written on either backend, the monitor running on a
//! thread of the test with its alert lines captured (and timed), and the attacker's moves.
#![allow(dead_code)]

pub mod ledger;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kchain_core::{Checkpoint, Item, Trust, TrustedWriter, WriterKey};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, Record, TopicConfig};
use kchain_monitor::{Alerts, Monitor, MonitorOptions};
use kchain_topic::{ChainWriter, CheckpointOptions, WriterOptions};

/// The logs the behaviour tests run on: embedded, and Kafka with the `kafka` feature.
pub fn backends() -> Vec<(&'static str, Box<dyn Log>)> {
    let dir = Box::leak(Box::new(kchain_testkit::tempdir()));
    let out: Vec<(&'static str, Box<dyn Log>)> = vec![("embedded", Box::new(embedded(dir.path())))];
    #[cfg(feature = "kafka")]
    let out = {
        let mut out = out;
        out.push((
            "kafka",
            Box::new(kafka(&kchain_testkit::Broker::shared().brokers)) as Box<dyn Log>,
        ));
        out
    };
    out
}

pub fn embedded(dir: &Path) -> EmbeddedLog {
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::Never,
        ..EmbeddedOptions::default()
    };
    EmbeddedLog::create(dir, opts).unwrap()
}

#[cfg(feature = "kafka")]
pub fn kafka(brokers: &str) -> kchain_log::KafkaLog {
    kchain_log::KafkaLog::connect(brokers, kchain_log::KafkaOptions::default()).unwrap()
}

pub fn key() -> WriterKey {
    WriterKey::from_seed("acme", [7; 32])
}

pub fn trust(key: &WriterKey) -> Trust {
    Trust {
        writers: vec![TrustedWriter {
            name: key.name().to_owned(),
            key: key.public(),
            topics: Vec::new(),
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    }
}

pub fn item(i: u64) -> Item {
    Item {
        key: Some(format!("k{i}").into_bytes()),
        value: Some(format!("value {i}").into_bytes()),
        headers: Vec::new(),
        timestamp_ms: kchain_core::time::now_ms(),
    }
}

/// A fresh topic of one partition.
pub fn topic(log: &dyn Log, prefix: &str) -> String {
    let t = kchain_testkit::unique_name(prefix);
    log.create_topic(&t, &TopicConfig::default()).unwrap();
    t
}

/// Appends `n` records to partition 0 in batches of 10; with `checkpoint`, also publishes a
/// checkpoint of the chain at its end. Returns the chain's size.
pub fn write(log: &dyn Log, topic: &str, key: &WriterKey, n: u64, checkpoint: bool) -> u64 {
    let opts = WriterOptions {
        max_batch_records: 10,
        ..WriterOptions::default()
    };
    let mut w = ChainWriter::open(log, topic, 0, key, opts).unwrap();
    let start = w.tip().map_or(0, |(h, _)| h + 1);
    if checkpoint {
        let copts = CheckpointOptions {
            every_entries: u64::MAX,
            every: Duration::from_secs(3600),
            ..CheckpointOptions::default()
        };
        w = w.with_checkpoints(log, copts).unwrap();
    }
    w.append((start..start + n).map(item).collect()).unwrap();
    if checkpoint {
        w.checkpoint().unwrap();
    }
    start + n
}

/// Publishes a checkpoint of partition 0 of `topic`, signed by `key`, of any size and root.
pub fn publish(log: &dyn Log, topic: &str, key: &WriterKey, size: u64, root: [u8; 32]) {
    let origin = kchain_topic::checkpoints::partition_origin("kchain", topic, 0);
    let note = Checkpoint::new(&origin, size, root)
        .unwrap()
        .sign(&key.note_signer().unwrap());
    kchain_topic::checkpoints::publish_note(log, topic, 0, &note).unwrap();
}

/// Appends raw records to partition 0, as an attacker with write access to the log.
pub fn append_raw(log: &dyn Log, topic: &str, records: &[Record]) {
    let mut a = log.appender(topic, 0).unwrap();
    a.append(records).unwrap();
    a.flush().unwrap();
}

/// A record forged after the last of partition 0, signed by a key nobody trusts.
pub fn forged_after_tip(log: &dyn Log, topic: &str) -> Record {
    let all = kchain_topic::tamper::read_all(log, topic, 0).unwrap();
    let mallory = WriterKey::from_seed("mallory", [9; 32]);
    kchain_topic::tamper::forge_after(topic, 0, all.last().unwrap(), item(999), Some(&mallory))
        .unwrap()
}

/// Alert lines as they arrive, each with when it arrived.
#[derive(Clone, Default)]
pub struct Lines(pub Arc<Mutex<Vec<(Instant, String)>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut v = self.0.lock().unwrap();
        for line in text.lines().filter(|l| !l.is_empty()) {
            v.push((Instant::now(), line.to_owned()));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// The alerts so far, as JSON.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let v = self.0.lock().unwrap();
        v.iter()
            .map(|(_, l)| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits up to `within` for an alert of `kind` and returns how long after `since` it
    /// came; panics when none does.
    pub fn wait_for(&self, kind: &str, since: Instant, within: Duration) -> Duration {
        self.wait_for_nth(kind, 1, since, within)
    }

    /// Like [`wait_for`](Self::wait_for), for the `n`th alert of `kind`.
    pub fn wait_for_nth(&self, kind: &str, n: usize, since: Instant, within: Duration) -> Duration {
        let deadline = Instant::now() + within;
        loop {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, l)| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["kind"] == kind
                })
                .nth(n - 1)
                .map(|(at, _)| at.saturating_duration_since(since));
            if let Some(d) = found {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} alert within {within:?}: {:?}",
                self.alerts()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What a finished monitor run counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub entries: u64,
    pub read: u64,
    pub findings: u64,
}

/// The options of a test monitor: passes every 100 ms, a grace of 1 s.
pub fn options(topic: &str, state: &Path) -> MonitorOptions {
    let mut o = MonitorOptions::new(vec![topic.to_owned()], state.to_owned());
    o.interval = Duration::from_millis(100);
    o.grace = Duration::from_secs(1);
    o
}

/// Runs the monitor once (`--once`), its alerts into `lines`.
pub fn once(log: &dyn Log, trust: &Trust, opts: MonitorOptions, lines: &Lines) -> Counts {
    let mut m =
        Monitor::open(log, trust, opts, Alerts::new(Box::new(lines.clone()), None)).unwrap();
    m.run_once().unwrap();
    counts(&m)
}

fn counts(m: &Monitor<'_>) -> Counts {
    Counts {
        entries: m.entries_verified(),
        read: m.records_read(),
        findings: m.findings(),
    }
}

/// Runs the monitor on a thread while `body` plays the writer and the attacker; `body` gets
/// the metrics page. Returns what `body` returns and the monitor's counts.
pub fn live<R>(
    log: &dyn Log,
    trust: &Trust,
    opts: MonitorOptions,
    alerts: Alerts,
    body: impl FnOnce(&Arc<Mutex<String>>) -> R,
) -> (R, Counts) {
    let stop = AtomicBool::new(false);
    let (tx, rx) = channel();
    std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let mut m = Monitor::open(log, trust, opts, alerts).unwrap();
            tx.send(m.metrics_page()).unwrap();
            m.run(&|| stop.load(Ordering::SeqCst)).unwrap();
            counts(&m)
        });
        let page = rx.recv().unwrap();
        let _stop = StopOnDrop(&stop);
        let r = body(&page);
        stop.store(true, Ordering::SeqCst);
        (r, monitor.join().unwrap())
    })
}

/// Stops a monitor however the test's side ends (a failed assertion too).
struct StopOnDrop<'s>(&'s AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The value of `name{labels}` on a metrics page.
pub fn metric(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

/// Waits until the page says `entries` entries are verified on partition 0 of `topic`.
pub fn wait_entries(page: &Arc<Mutex<String>>, topic: &str, entries: u64, within: Duration) {
    let name =
        format!("kchain_monitor_entries_verified_total{{topic=\"{topic}\",partition=\"0\"}}");
    let deadline = Instant::now() + within;
    loop {
        let now = metric(&page.lock().unwrap(), &name);
        if now == Some(entries as f64) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is {now:?}, not {entries}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
