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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kchain_core::{Checkpoint, RemoteWitness, SignedNote, Trust};
use kchain_log::Log;

use crate::alert::{Alert, AlertKind, Alerts};
use crate::book::Verdict;
use crate::error::MonitorError;
use crate::metrics::{self, Figures, PartitionFigures};
use crate::options::MonitorOptions;
use crate::state::MonitorState;
use crate::targets::{self, state_exists, state_key, FeedOf, Watched};
use crate::watch::Event;

/// What the monitor shows of itself (rendered into `/metrics`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Health {
    pub(crate) log_up: bool,
    pub(crate) log_errors: u64,
    pub(crate) witnesses: Vec<(String, bool)>,
}

/// The long-running auditor of chained topics and ledgers.
pub struct Monitor<'a> {
    log: &'a dyn Log,
    trust: &'a Trust,
    opts: MonitorOptions,
    state: MonitorState,
    pub(crate) watched: Vec<Watched>,
    feeds: Vec<FeedOf>,
    witnesses: Vec<Arc<dyn RemoteWitness>>,
    witnesses_asked: Option<Instant>,
    pub(crate) alerts: Alerts,
    pub(crate) health: Health,
    started_ms: i64,
    /// When the state was last written, and the alerts raised by then.
    saved_at: Option<Instant>,
    raised_at_save: u64,
    page: Arc<Mutex<String>>,
    status: Box<dyn FnMut(&str) + Send + 'a>,
}

impl<'a> Monitor<'a> {
    /// A monitor of `opts.topics` and `opts.ledgers` on `log`, resuming from the state in
    /// `opts.state_dir`, raising alerts through `alerts`. Every topic and ledger must exist.
    pub fn open(
        log: &'a dyn Log,
        trust: &'a Trust,
        opts: MonitorOptions,
        alerts: Alerts,
    ) -> Result<Monitor<'a>, MonitorError> {
        let state = MonitorState::load(&opts.state_dir)?;
        let (watched, feeds) = targets::open(log, trust, &opts, &state)?;
        Ok(Monitor {
            log,
            trust,
            opts,
            state,
            watched,
            feeds,
            witnesses: Vec::new(),
            witnesses_asked: None,
            alerts,
            health: Health::default(),
            started_ms: kchain_core::time::now_ms(),
            saved_at: None,
            raised_at_save: 0,
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
        self.watched.iter().map(|w| w.watch.entries()).sum()
    }

    /// Records read by this process, over all partitions.
    pub fn records_read(&self) -> u64 {
        self.watched.iter().map(|w| w.watch.read()).sum()
    }

    /// Alerts raised by this process, and partitions stopped at a finding (in any run).
    pub fn findings(&self) -> u64 {
        let raised: u64 = self.alerts.raised.iter().sum();
        let stopped = self.watched.iter().filter(|w| w.watch.stopped());
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
                return self.save(true);
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
        self.save(true)
    }

    /// One pass over everything watched. Errors are the state file's; the log's are
    /// recorded in the health and retried by the next pass. The state is saved when
    /// `save_every` has passed since it last was, or an alert was raised.
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
        self.save(false)?;
        *self.page.lock().unwrap_or_else(|e| e.into_inner()) = metrics::render(&self.figures());
        Ok(())
    }

    fn read_checkpoints(&mut self, log_error: &mut Option<String>) {
        for f in 0..self.feeds.len() {
            let FeedOf { feed, chains } = &mut self.feeds[f];
            match feed.pass(self.log, &mut self.state.checkpoint_offsets) {
                Ok(notes) => {
                    let judged: Vec<(usize, SignedNote)> = (notes.into_iter())
                        .filter_map(|(p, note)| Some((*chains.get(&p)?, note)))
                        .collect();
                    for (i, note) in judged {
                        self.judge_note(i, &note);
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
                match self.witnesses[w].latest(&self.watched[i].origin) {
                    Ok(Some(note)) => self.judge_note(i, &note),
                    Ok(None) => {}
                    Err(_) => up = false,
                }
            }
            self.health.witnesses[w].1 = up;
        }
    }

    /// Holds a note to the chain's book when one of its writers (sealers) signed it for its
    /// origin.
    fn judge_note(&mut self, i: usize, note: &SignedNote) {
        let w = &mut self.watched[i];
        if note.verify(&w.writers).is_err() {
            return;
        }
        let Ok(c) = Checkpoint::parse(note.text()) else {
            return;
        };
        if c.origin() != w.origin {
            return;
        }
        if let Some(policy) = &w.policy {
            w.fresh.offer(policy, note);
        }
        let (log, trust) = (self.log, self.trust);
        let Watched { watch, book, .. } = w;
        let now = kchain_core::time::now_ms();
        let verdict = book.observe(
            c.size(),
            *c.root(),
            watch.tree_size(),
            |s| watch.root_at(log, trust, s),
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
                Event::Tamper { offset, detail } => {
                    self.alert(i, AlertKind::Tamper, offset, format!("{offset}"), detail);
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
                    let root_at = |s| watch.root_at(log, trust, s);
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
            let gained = w.tree_size().saturating_sub(newest);
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
            if let Some((size, detail)) = w.fresh.judge(w.watch.entries(), now, max_age) {
                self.alert(i, AlertKind::Stale, size, format!("stale:{size}"), detail);
            }
        }
    }

    fn alert(&mut self, i: usize, kind: AlertKind, offset: u64, key: String, detail: String) {
        let w = &self.watched[i].watch;
        let mut alert = Alert::new(kind, w.chain(), w.partition(), offset, key, detail);
        alert.ledger = w.ledger().map(str::to_owned);
        self.alerts.raise(&mut self.state.alerts, alert);
    }

    /// Saves the state when it changed and a save is due: `always`, an alert was raised
    /// since the last save (its key must outlive a crash, so that it is raised once), or
    /// `save_every` has passed. What a watch keeps in files of its own (a ledger's
    /// snapshot) is written first, so that the state file never names more than they hold.
    fn save(&mut self, always: bool) -> Result<(), MonitorError> {
        let raised: u64 = self.alerts.raised.iter().sum();
        let due = always
            || raised != self.raised_at_save
            || self
                .saved_at
                .is_none_or(|t| t.elapsed() >= self.opts.save_every);
        if !due {
            return Ok(());
        }
        let dir = &self.opts.state_dir;
        let mut next = self.state.clone();
        for w in &self.watched {
            let key = state_key(w.watch.chain(), w.watch.partition());
            let mut s = next.partitions.remove(&key).unwrap_or_default();
            w.watch.save(&mut s, dir, always)?;
            w.book.save(&mut s);
            w.fresh.save(&mut s);
            next.partitions.insert(key, s);
        }
        if next != self.state || !state_exists(dir) {
            next.save(dir)?;
            self.state = next;
        }
        self.saved_at = Some(Instant::now());
        self.raised_at_save = raised;
        Ok(())
    }

    /// The figures of the metrics page.
    fn figures(&self) -> Figures {
        let now = kchain_core::time::now_ms();
        let secs = |ms: i64| (now - ms).max(0) as f64 / 1000.0;
        let partitions = self.watched.iter().map(|Watched { watch: w, book, .. }| {
            let (lag, tip_time_ms) = w.lag();
            PartitionFigures {
                topic: w.chain().to_owned(),
                partition: w.partition(),
                entries: w.entries(),
                read: w.read(),
                lag_records: lag,
                lag_seconds: if lag > 0 && tip_time_ms > 0 {
                    secs(tip_time_ms)
                } else {
                    0.0
                },
                stopped: w.stopped(),
                checkpoint_size: book.newest,
                checkpoint_age: (book.at_ms > 0).then(|| secs(book.at_ms)),
                unchecked: book.unchecked,
            }
        });
        Figures {
            partitions: partitions.collect(),
            ledgers: (self.watched.iter())
                .filter_map(|w| w.watch.ledger_figures())
                .collect(),
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
