//! The monitor: every pass reads the new checkpoints (from the checkpoints topics and the
//! witnesses), verifies what each partition gained, holds the checkpoints to the chain
//! trees, looks for stalled writers, raises alerts, saves its state and renders its metrics.
//!
//! ```text
//!  pass ─┬─ Feed::pass (checkpoints topics) ─┐
//!        ├─ RemoteWitness::latest (witnesses)├─► judge_note ─► Book::observe ─► fork/rollback
//!        ├─ PartitionWatch::pass ─► Finding ─► tamper;  EndBelow/ResumePointChanged ─► rollback
//!        │                          Root ─► Book::reached ─► fork
//!        ├─ stall: no new checkpoint for stall_after ─► stall (re-armed by the next one)
//!        └─ MonitorState::save (when changed), metrics::render
//! ```
//!
//! A log that cannot be reached is not a finding: the pass records the error (a status line
//! and `kchain_monitor_log_up 0`), and the next pass goes on from the same place.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kchain_core::checkpoint::Policy;
use kchain_core::{Checkpoint, NoteVerifier, RemoteWitness, SignedNote, Trust};
use kchain_log::Log;
use kchain_topic::checkpoints::{partition_origin, writer_verifiers};

use crate::alert::{Alert, AlertKind, Alerts};
use crate::book::{Book, Verdict};
use crate::chain::{Event, PartitionWatch};
use crate::error::MonitorError;
use crate::feed::Feed;
use crate::fresh::Fresh;
use crate::metrics::{self, Figures, PartitionFigures};
use crate::state::MonitorState;

/// How the monitor runs.
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    /// The chained topics to watch (every partition of each).
    pub topics: Vec<String>,
    /// Where the state file lives.
    pub state_dir: PathBuf,
    /// Alert when no new checkpoint arrives for this long (none: never).
    pub stall_after: Option<Duration>,
    /// The pause between passes.
    pub interval: Duration,
    /// How long a tail may wait for its signature before it is `unsigned`.
    pub grace: Duration,
    /// How often the witnesses are asked for their newest checkpoints.
    pub witness_interval: Duration,
    /// The origin namespace of the checkpoints.
    pub namespace: String,
    /// The freshness rule (`[policy] max_age`, seconds): a `stale` alert when entries past
    /// the newest accepted checkpoint wait longer than this for a witness cosignature.
    pub max_age: Option<u64>,
    /// The witnesses of the trust policy (type 0x04 keys) and how many must cosign a
    /// checkpoint for the freshness rule to accept it.
    pub witnesses: Vec<NoteVerifier>,
    pub threshold: usize,
}

impl MonitorOptions {
    /// Defaults for `topics` and `state_dir`: a pass every 500 ms, a grace of 2 s, witnesses
    /// every 5 s, no stall limit, the default namespace.
    pub fn new(topics: Vec<String>, state_dir: PathBuf) -> MonitorOptions {
        MonitorOptions {
            topics,
            state_dir,
            stall_after: None,
            interval: Duration::from_millis(500),
            grace: Duration::from_secs(2),
            witness_interval: Duration::from_secs(5),
            namespace: kchain_core::DEFAULT_ORIGIN_NAMESPACE.to_owned(),
            max_age: None,
            witnesses: Vec::new(),
            threshold: 0,
        }
    }
}

/// One watched partition with its checkpoints.
pub(crate) struct Watched {
    pub(crate) watch: PartitionWatch,
    pub(crate) book: Book,
    fresh: Fresh,
}

/// What the monitor shows of itself (rendered into `/metrics`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Health {
    pub(crate) log_up: bool,
    pub(crate) log_errors: u64,
    pub(crate) witnesses: Vec<(String, bool)>,
}

/// The long-running auditor of chained topics.
pub struct Monitor<'a> {
    log: &'a dyn Log,
    trust: &'a Trust,
    opts: MonitorOptions,
    state: MonitorState,
    pub(crate) watched: Vec<Watched>,
    feeds: Vec<(String, Feed, Vec<NoteVerifier>)>,
    /// Per feed, the trust policy the freshness rule accepts checkpoints by (with max_age).
    policies: Vec<Option<Policy>>,
    witnesses: Vec<Arc<dyn RemoteWitness>>,
    witnesses_asked: Option<Instant>,
    pub(crate) alerts: Alerts,
    pub(crate) health: Health,
    started_ms: i64,
    page: Arc<Mutex<String>>,
    status: Box<dyn FnMut(&str) + Send + 'a>,
}

impl<'a> Monitor<'a> {
    /// A monitor of `opts.topics` on `log`, resuming from the state in `opts.state_dir`,
    /// raising alerts through `alerts`.
    pub fn open(
        log: &'a dyn Log,
        trust: &'a Trust,
        opts: MonitorOptions,
        alerts: Alerts,
    ) -> Result<Monitor<'a>, MonitorError> {
        let state = MonitorState::load(&opts.state_dir)?;
        let mut watched = Vec::new();
        let mut feeds = Vec::new();
        let mut policies = Vec::new();
        for topic in &opts.topics {
            let writers = writer_verifiers(trust, topic);
            let policy = match opts.max_age {
                Some(_) => Some(
                    Policy::new(writers.clone(), opts.witnesses.clone(), opts.threshold)
                        .map_err(|e| MonitorError::Policy(e.to_string()))?,
                ),
                None => None,
            };
            let partitions = log.topic(topic)?.partitions;
            for p in 0..partitions {
                let saved = state
                    .partitions
                    .get(&format!("{topic}/{p}"))
                    .cloned()
                    .unwrap_or_default();
                watched.push(Watched {
                    watch: PartitionWatch::resume(topic, p, trust, &saved, opts.grace),
                    book: Book::load(&saved),
                    fresh: Fresh::load(policy.as_ref(), &saved),
                });
            }
            policies.push(policy);
            feeds.push((topic.clone(), Feed::new(topic), writers));
        }
        Ok(Monitor {
            log,
            trust,
            opts,
            state,
            watched,
            feeds,
            policies,
            witnesses: Vec::new(),
            witnesses_asked: None,
            alerts,
            health: Health::default(),
            started_ms: kchain_core::time::now_ms(),
            page: Arc::new(Mutex::new(String::new())),
            status: Box::new(|_| {}),
        })
    }

    /// This monitor, also asking `witnesses` for their newest cosigned checkpoints.
    pub fn with_witnesses(mut self, witnesses: Vec<Arc<dyn RemoteWitness>>) -> Self {
        self.health.witnesses = witnesses.iter().map(|w| (w.describe(), false)).collect();
        self.witnesses = witnesses;
        self
    }

    /// This monitor, telling `status` when the log becomes unreachable or reachable again.
    pub fn on_status(mut self, status: impl FnMut(&str) + Send + 'a) -> Self {
        self.status = Box::new(status);
        self
    }

    /// The metrics page, kept up to date after every pass (for [`crate::serve`]).
    pub fn metrics_page(&self) -> Arc<Mutex<String>> {
        Arc::clone(&self.page)
    }

    /// Entries verified so far, over all partitions and runs.
    pub fn entries_verified(&self) -> u64 {
        self.watched.iter().map(|w| w.watch.entries).sum()
    }

    /// Records read by this process, over all partitions.
    pub fn records_read(&self) -> u64 {
        self.watched.iter().map(|w| w.watch.read).sum()
    }

    /// Alerts raised by this process, and partitions stopped at a finding (in any run).
    pub fn findings(&self) -> u64 {
        let raised: u64 = self.alerts.raised.iter().sum();
        let stopped = self.watched.iter().filter(|w| w.watch.stopped.is_some());
        raised + stopped.count() as u64
    }

    /// Passes until every partition is read to its end with no tail waiting for a
    /// signature (or the grace ran out): what `--once` runs.
    pub fn run_once(&mut self) -> Result<(), MonitorError> {
        let started = Instant::now();
        loop {
            self.pass()?;
            let settled = self.health.log_up && self.watched.iter().all(|w| w.watch.settled());
            if self.behind() {
                continue;
            }
            if settled || started.elapsed() > self.opts.grace + Duration::from_secs(1) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether a partition has records left to read that the last pass's budget did not
    /// reach: the next pass then starts at once.
    fn behind(&self) -> bool {
        self.health.log_up && self.watched.iter().any(|w| w.watch.behind())
    }

    /// Passes until `stop()` says so, pausing `interval` between them, and backing off (up
    /// to 5 s) while the log cannot be reached.
    pub fn run(&mut self, stop: &dyn Fn() -> bool) -> Result<(), MonitorError> {
        let mut pause = self.opts.interval;
        while !stop() {
            self.pass()?;
            pause = if self.behind() {
                Duration::ZERO
            } else if self.health.log_up {
                self.opts.interval
            } else {
                (pause * 2).clamp(self.opts.interval, Duration::from_secs(5))
            };
            let until = Instant::now() + pause;
            while Instant::now() < until && !stop() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// One pass over everything watched. Errors are the state file's; the log's are
    /// recorded in the health and retried by the next pass.
    pub fn pass(&mut self) -> Result<(), MonitorError> {
        let mut log_error = None;
        self.read_checkpoints(&mut log_error);
        self.ask_witnesses();
        for i in 0..self.watched.len() {
            match self.watched[i].watch.pass(self.log, self.trust) {
                Ok(events) => self.handle(i, events),
                Err(e) => log_error = Some(e.to_string()),
            }
        }
        self.check_stalls();
        self.check_freshness();
        let was_up = self.health.log_up;
        self.health.log_up = log_error.is_none();
        match &log_error {
            Some(e) => {
                self.health.log_errors += 1;
                (self.status)(&format!("log unreachable, retrying: {e}"));
            }
            None if !was_up && self.health.log_errors > 0 => (self.status)("log reachable again"),
            None => {}
        }
        self.save()?;
        *self.page.lock().unwrap_or_else(|e| e.into_inner()) = metrics::render(&self.figures());
        Ok(())
    }

    fn read_checkpoints(&mut self, log_error: &mut Option<String>) {
        for f in 0..self.feeds.len() {
            let (topic, feed, _) = &mut self.feeds[f];
            let topic = topic.clone();
            match feed.pass(self.log, &mut self.state.checkpoint_offsets) {
                Ok(notes) => {
                    for (p, note) in notes {
                        self.judge_note(f, &topic, p, &note);
                    }
                }
                Err(e) => *log_error = Some(e.to_string()),
            }
        }
    }

    fn ask_witnesses(&mut self) {
        let due = self
            .witnesses_asked
            .is_none_or(|t| t.elapsed() >= self.opts.witness_interval);
        if self.witnesses.is_empty() || !due {
            return;
        }
        self.witnesses_asked = Some(Instant::now());
        for w in 0..self.witnesses.len() {
            let mut up = true;
            for i in 0..self.watched.len() {
                let (topic, p) = (
                    self.watched[i].watch.topic.clone(),
                    self.watched[i].watch.partition,
                );
                let origin = partition_origin(&self.opts.namespace, &topic, p);
                match self.witnesses[w].latest(&origin) {
                    Ok(Some(note)) => {
                        let f = self.feeds.iter().position(|(t, _, _)| *t == topic);
                        self.judge_note(f.expect("a feed per topic"), &topic, p, &note);
                    }
                    Ok(None) => {}
                    Err(_) => up = false,
                }
            }
            self.health.witnesses[w].1 = up;
        }
    }

    /// Holds a note to the partition's book when the topic's writer signed it.
    fn judge_note(&mut self, feed: usize, topic: &str, p: u32, note: &SignedNote) {
        if note.verify(&self.feeds[feed].2).is_err() {
            return;
        }
        let Ok(c) = Checkpoint::parse(note.text()) else {
            return;
        };
        if c.origin() != partition_origin(&self.opts.namespace, topic, p) {
            return;
        }
        let Some(i) = self.index(topic, p) else {
            return;
        };
        if let Some(policy) = &self.policies[feed] {
            self.watched[i].fresh.offer(policy, note);
        }
        let (log, trust) = (self.log, self.trust);
        let Watched { watch, book, .. } = &mut self.watched[i];
        let now = kchain_core::time::now_ms();
        let verdict = book.observe(
            c.size(),
            *c.root(),
            watch.tree.size(),
            |s| (watch.root_at(s)).or_else(|| watch.root_from_log(log, trust, s)),
            now,
        );
        self.verdict(i, c.size(), verdict);
    }

    fn verdict(&mut self, i: usize, size: u64, verdict: Verdict) {
        let (kind, detail) = match verdict {
            Verdict::Fork(d) => (AlertKind::Fork, d),
            Verdict::Rollback(d) => (AlertKind::Rollback, d),
            Verdict::Fine | Verdict::Copy | Verdict::Unchecked => return,
        };
        self.alert(i, kind, size, format!("checkpoint:{size}"), detail);
    }

    fn handle(&mut self, i: usize, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Finding(f) => {
                    let detail = format!("{}: {}", f.kind.as_str(), f.detail);
                    self.alert(
                        i,
                        AlertKind::Tamper,
                        f.offset,
                        format!("{}", f.offset),
                        detail,
                    );
                }
                Event::EndBelow { end, verified } => {
                    let detail = format!(
                        "the log ends at offset {end}, but the monitor verified records up to \
                         offset {}",
                        verified - 1
                    );
                    self.alert(i, AlertKind::Rollback, end, format!("end:{end}"), detail);
                }
                Event::ResumePointChanged { offset } => {
                    let detail = format!(
                        "the record at offset {offset}, the last the monitor verified, has changed"
                    );
                    self.alert(
                        i,
                        AlertKind::Rollback,
                        offset,
                        format!("resume:{offset}"),
                        detail,
                    );
                }
                Event::Root { size, root } => {
                    let (log, trust) = (self.log, self.trust);
                    let Watched { watch, book, .. } = &mut self.watched[i];
                    let root_at =
                        |s| (watch.root_at(s)).or_else(|| watch.root_from_log(log, trust, s));
                    for (s, v) in book.reached(size, root, root_at) {
                        self.verdict(i, s, v);
                    }
                }
            }
        }
    }

    fn check_stalls(&mut self) {
        let Some(limit) = self.opts.stall_after else {
            return;
        };
        let now = kchain_core::time::now_ms();
        for i in 0..self.watched.len() {
            let book = &self.watched[i].book;
            let since = book.at_ms.max(self.started_ms);
            let quiet = Duration::from_millis((now - since).max(0) as u64);
            if quiet < limit {
                continue;
            }
            let newest = book.newest;
            let w = &self.watched[i].watch;
            let gained = w.tree.size().saturating_sub(newest);
            let detail = format!(
                "no new checkpoint for {} s (newest of size {newest}; {gained} entries verified \
                 since)",
                quiet.as_secs()
            );
            // Keyed by the newest checkpoint: the next one re-arms the alert.
            self.alert(
                i,
                AlertKind::Stall,
                newest,
                format!("after:{newest}"),
                detail,
            );
        }
    }

    /// The freshness rule, keyed by the newest accepted checkpoint's size: a larger one
    /// re-arms it.
    fn check_freshness(&mut self) {
        let Some(max_age) = self.opts.max_age else {
            return;
        };
        let now = (kchain_core::time::now_ms() / 1000).max(0) as u64;
        for i in 0..self.watched.len() {
            let w = &self.watched[i];
            if let Some((size, detail)) = w.fresh.judge(w.watch.entries, now, max_age) {
                self.alert(i, AlertKind::Stale, size, format!("stale:{size}"), detail);
            }
        }
    }

    fn alert(&mut self, i: usize, kind: AlertKind, offset: u64, key: String, detail: String) {
        let w = &self.watched[i].watch;
        let alert = Alert::new(kind, &w.topic, w.partition, offset, key, detail);
        self.alerts.raise(&mut self.state.alerts, alert);
    }

    fn index(&self, topic: &str, p: u32) -> Option<usize> {
        self.watched
            .iter()
            .position(|w| w.watch.topic == topic && w.watch.partition == p)
    }

    /// Saves the state when it changed.
    fn save(&mut self) -> Result<(), MonitorError> {
        let mut next = self.state.clone();
        for w in &self.watched {
            let key = format!("{}/{}", w.watch.topic, w.watch.partition);
            let mut s = next.partitions.remove(&key).unwrap_or_default();
            w.watch.save(&mut s);
            w.book.save(&mut s);
            w.fresh.save(&mut s);
            next.partitions.insert(key, s);
        }
        if next != self.state || !self.opts.state_dir.join(crate::state::STATE_FILE).exists() {
            next.save(&self.opts.state_dir)?;
            self.state = next;
        }
        Ok(())
    }

    /// The figures of the metrics page.
    fn figures(&self) -> Figures {
        let now = kchain_core::time::now_ms();
        let secs = |ms: i64| (now - ms).max(0) as f64 / 1000.0;
        let partitions = self.watched.iter().map(|Watched { watch: w, book, .. }| {
            let lag = w.end.saturating_sub(w.verified_next());
            PartitionFigures {
                topic: w.topic.clone(),
                partition: w.partition,
                entries: w.entries,
                read: w.read,
                lag_records: lag,
                lag_seconds: if lag > 0 && w.tip_time_ms > 0 {
                    secs(w.tip_time_ms)
                } else {
                    0.0
                },
                stopped: w.stopped.is_some(),
                checkpoint_size: book.newest,
                checkpoint_age: (book.at_ms > 0).then(|| secs(book.at_ms)),
                unchecked: book.unchecked,
            }
        });
        Figures {
            partitions: partitions.collect(),
            alerts: self.alerts.raised,
            witnesses: self.health.witnesses.clone(),
            log_up: self.health.log_up,
            log_errors: self.health.log_errors,
        }
    }

    /// The alert keys raised so far (in any run).
    pub fn raised_keys(&self) -> &BTreeSet<String> {
        &self.state.alerts
    }
}
