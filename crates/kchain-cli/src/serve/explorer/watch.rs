//! The verification the explorer shows, kept by the server: a background thread looks at
//! the log every [`LOOK_EVERY`] and verifies it again when it changed (a topic, a partition,
//! a start or end offset) or when the last pass is older than [`FULL_EVERY`] (an edit in
//! place moves no offset); requests read the cached result and never wait for a pass, except
//! the first one and `?refresh=true`. A pass verifies from genesis, so on a log that grows
//! all the time the thread rests four times as long as its last pass took: the explorer
//! takes at most a fifth of a core from the API it sits beside. The thread starts with the
//! first overview request: a server nobody opens the explorer on verifies nothing.
//!
//! ```text
//!  thread: every LOOK_EVERY ──► fingerprint(log) ──changed or stale──► overview::verify_all
//!                                                                         │
//!  GET /api/v1/overview ──► cached (Mutex<Option<Pass>>) ◄────────────────┘
//!                       └─► ?refresh=true or nothing cached: a pass now
//! ```

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::serve::explorer::overview;
use crate::serve::metrics::Metrics;
use crate::serve::state::AppState;
use crate::serve::sync::lock;

/// How often the thread looks at the log's offsets.
pub const LOOK_EVERY: Duration = Duration::from_secs(2);
/// How old a pass may grow before the log is verified again though no offset moved.
pub const FULL_EVERY: Duration = Duration::from_secs(20);

/// Where each partition of each topic starts and ends: a pass is redone when this changes.
type Fingerprint = Vec<(String, u32, u64, u64)>;

/// One verification pass, when it ran and how long it took.
struct Pass {
    overview: Arc<Value>,
    fingerprint: Fingerprint,
    done: Instant,
    took: Duration,
}

/// The kept verification (one per server, shared by the overview's handler).
#[derive(Default)]
pub struct Watch {
    last: Mutex<Option<Pass>>,
    /// One pass at a time: a request that asks for one while the thread runs one waits for
    /// it and then runs its own, so that it sees the log as it is after its request.
    running: Mutex<u64>,
    thread: OnceLock<()>,
}

impl Watch {
    /// The newest overview; the first call starts the thread and runs a pass, as does
    /// `refresh`.
    pub fn overview(self: &Arc<Self>, st: &Arc<AppState>, refresh: bool) -> Arc<Value> {
        self.thread.get_or_init(|| self.start(st.clone()));
        if !refresh {
            if let Some(p) = lock(&self.last).as_ref() {
                return p.overview.clone();
            }
        }
        self.pass(st, fingerprint(st))
    }

    fn start(self: &Arc<Self>, st: Arc<AppState>) {
        let watch = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("explorer-verify".into())
            .spawn(move || loop {
                let rest = match watch.upgrade() {
                    Some(w) => lock(&w.last)
                        .as_ref()
                        .map_or(Duration::ZERO, |p| p.took * 4),
                    None => return,
                };
                std::thread::sleep(LOOK_EVERY.max(rest));
                let Some(watch) = watch.upgrade() else { return };
                if let Some(fp) = watch.due(&st) {
                    watch.pass(&st, fp);
                }
            });
        if let Err(e) = spawned {
            eprintln!("kchain: warning: the explorer verifies only on request: {e}");
        }
    }

    /// The log's fingerprint when it moved since the last pass or the pass is older than
    /// FULL_EVERY (a pass is due, and verifies the log as fingerprinted or later); else None.
    fn due(&self, st: &AppState) -> Option<Fingerprint> {
        let now = fingerprint(st);
        let due = match lock(&self.last).as_ref() {
            Some(p) => p.fingerprint != now || p.done.elapsed() >= FULL_EVERY,
            None => true,
        };
        due.then_some(now)
    }

    /// Verifies everything now and keeps the result.
    fn pass(&self, st: &AppState, fingerprint: Fingerprint) -> Arc<Value> {
        let mut passes = lock(&self.running);
        *passes += 1;
        let started = Instant::now();
        let mut v = match overview::verify_all(&st.global, st.log.as_ref()) {
            Ok(v) => v,
            Err(e) => json!({
                "ok": false, "topics": [], "ledgers": [], "error": format!("{e:#}"),
            }),
        };
        count(&st.metrics, &v);
        v["backend"] = json!(st.log.backend());
        v["verified_at"] = json!(kchain_core::time::now_ms());
        let took = started.elapsed();
        v["pass_ms"] = json!(took.as_millis() as u64);
        v["passes"] = json!(*passes);
        v["look_every_ms"] = json!(LOOK_EVERY.as_millis() as u64);
        let overview = Arc::new(v);
        *lock(&self.last) = Some(Pass {
            overview: overview.clone(),
            fingerprint,
            done: Instant::now(),
            took,
        });
        overview
    }
}

/// A pass in `/metrics`: the entries it verified and every chain's tip height.
fn count(metrics: &Metrics, v: &Value) {
    let mut entries = 0;
    for t in v["topics"].as_array().into_iter().flatten() {
        for p in t["partitions"].as_array().into_iter().flatten() {
            entries += p["entries"].as_u64().unwrap_or(0);
            if let (Some(topic), Some(n), Some(h)) = (
                t["topic"].as_str(),
                p["partition"].as_u64(),
                p["tip_height"].as_u64(),
            ) {
                metrics.tip("topic", &format!("{topic}/{n}"), h);
            }
        }
    }
    for l in v["ledgers"].as_array().into_iter().flatten() {
        entries += l["records"].as_u64().unwrap_or(0);
        if let (Some(c), Some(h)) = (l["ledger"].as_str(), l["height"].as_u64()) {
            metrics.tip("ledger", c, h);
        }
    }
    metrics.verified(entries);
}

/// Every topic's partitions with their start and end offsets (a partition that cannot be
/// read counts as changed the next time it can).
fn fingerprint(st: &AppState) -> Fingerprint {
    let log = st.log.as_ref();
    let Ok(topics) = log.list_topics() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in topics {
        for p in 0..t.partitions {
            let start = log.start_offset(&t.name, p).unwrap_or(u64::MAX);
            let end = log.end_offset(&t.name, p).unwrap_or(u64::MAX);
            out.push((t.name.clone(), p, start, end));
        }
    }
    out
}
