//! The monitor's `/metrics` page (Prometheus text format) and its small HTTP server with
//! `/healthz`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `kchain_monitor_entries_verified_total` | topic, partition | entries verified, all runs |
//! | `kchain_monitor_records_read_total` | topic, partition | records read by this process |
//! | `kchain_monitor_lag_records` | topic, partition | end offset minus what is verified |
//! | `kchain_monitor_lag_seconds` | topic, partition | age of the newest verified record while behind |
//! | `kchain_monitor_stopped` | topic, partition | 1 once a finding stopped verification |
//! | `kchain_monitor_alerts_total` | kind | alerts raised by this process |
//! | `kchain_monitor_checkpoint_size` | topic, partition | largest checkpoint seen |
//! | `kchain_monitor_checkpoint_age_seconds` | topic, partition | since a new checkpoint arrived |
//! | `kchain_monitor_checkpoints_unchecked_total` | topic, partition | passed without a root kept |
//! | `kchain_monitor_ledger_height` | ledger | the canonical tip's height |
//! | `kchain_monitor_ledger_ignored_total` | ledger | blocks ignored (stale, invalid) by this process |
//! | `kchain_monitor_witness_up` | witness | the witness answered the last time |
//! | `kchain_monitor_log_up`, `kchain_monitor_log_errors_total` | | the log's reachability |

use std::sync::{Arc, Mutex};

use kchain_http::axum::{http::header::CONTENT_TYPE, routing::get, Router};
use kchain_http::{
    HttpError, MetricKind, MetricsText, RunningServer, Server, ServerOptions, METRICS_CONTENT_TYPE,
};

use crate::alert::AlertKind;

/// Serves `page` at `/metrics` and `ok` at `/healthz` on `bind` (e.g. `127.0.0.1:9464`).
pub fn serve(bind: &str, page: Arc<Mutex<String>>) -> Result<RunningServer, HttpError> {
    let router = Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = page.lock().unwrap_or_else(|e| e.into_inner()).clone();
                async move { ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], text) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    Server::start(&ServerOptions::new(bind), router)
}

/// One partition's figures, as the monitor hands them over.
pub(crate) struct PartitionFigures {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    pub(crate) entries: u64,
    pub(crate) read: u64,
    pub(crate) lag_records: u64,
    pub(crate) lag_seconds: f64,
    pub(crate) stopped: bool,
    pub(crate) checkpoint_size: u64,
    /// Seconds since a new checkpoint arrived; `None` before the first.
    pub(crate) checkpoint_age: Option<f64>,
    pub(crate) unchecked: u64,
}

/// A ledger's own figures (its blocks chain has its [`PartitionFigures`] too, under its
/// blocks topic).
pub(crate) struct LedgerFigures {
    pub(crate) ledger: String,
    pub(crate) height: u64,
    pub(crate) ignored: u64,
}

/// Everything the page shows.
pub(crate) struct Figures {
    pub(crate) partitions: Vec<PartitionFigures>,
    pub(crate) ledgers: Vec<LedgerFigures>,
    /// Alerts raised, in the order of [`AlertKind::ALL`].
    pub(crate) alerts: [u64; 5],
    pub(crate) witnesses: Vec<(String, bool)>,
    pub(crate) log_up: bool,
    pub(crate) log_errors: u64,
}

/// The page for `f`.
pub(crate) fn render(f: &Figures) -> String {
    let mut t = MetricsText::new();
    type Figure = fn(&PartitionFigures) -> f64;
    let flag = |b: bool| f64::from(u8::from(b));
    let per_partition: [(&str, MetricKind, &str, Figure); 8] = [
        (
            "kchain_monitor_entries_verified_total",
            MetricKind::Counter,
            "Entries verified (all runs).",
            |p| p.entries as f64,
        ),
        (
            "kchain_monitor_records_read_total",
            MetricKind::Counter,
            "Records read by this process.",
            |p| p.read as f64,
        ),
        (
            "kchain_monitor_lag_records",
            MetricKind::Gauge,
            "Records in the log not yet verified.",
            |p| p.lag_records as f64,
        ),
        (
            "kchain_monitor_lag_seconds",
            MetricKind::Gauge,
            "Age of the newest verified record while records wait.",
            |p| p.lag_seconds,
        ),
        (
            "kchain_monitor_stopped",
            MetricKind::Gauge,
            "1 once a finding stopped verifying the partition.",
            |p| f64::from(u8::from(p.stopped)),
        ),
        (
            "kchain_monitor_checkpoint_size",
            MetricKind::Gauge,
            "The largest checkpoint seen.",
            |p| p.checkpoint_size as f64,
        ),
        (
            "kchain_monitor_checkpoint_age_seconds",
            MetricKind::Gauge,
            "Seconds since a new checkpoint arrived (-1: none yet).",
            |p| p.checkpoint_age.unwrap_or(-1.0),
        ),
        (
            "kchain_monitor_checkpoints_unchecked_total",
            MetricKind::Counter,
            "Checkpoints the tree passed where no root was kept.",
            |p| p.unchecked as f64,
        ),
    ];
    for (name, kind, help, figure) in per_partition {
        t.family(name, kind, help);
        for p in &f.partitions {
            let n = p.partition.to_string();
            let labels = [("topic", p.topic.as_str()), ("partition", n.as_str())];
            t.sample(name, &labels, figure(p));
        }
    }
    ledger_figures(&mut t, &f.ledgers);
    let name = "kchain_monitor_alerts_total";
    t.family(
        name,
        MetricKind::Counter,
        "Alerts raised by this process, by kind.",
    );
    for (k, n) in AlertKind::ALL.iter().zip(f.alerts) {
        t.sample(name, &[("kind", k.as_str())], n as f64);
    }
    let name = "kchain_monitor_witness_up";
    t.family(
        name,
        MetricKind::Gauge,
        "1 when the witness answered the last time asked.",
    );
    for (w, up) in &f.witnesses {
        t.sample(name, &[("witness", w)], flag(*up));
    }
    t.family(
        "kchain_monitor_log_up",
        MetricKind::Gauge,
        "1 when the last pass reached the log.",
    )
    .sample("kchain_monitor_log_up", &[], flag(f.log_up));
    t.family(
        "kchain_monitor_log_errors_total",
        MetricKind::Counter,
        "Passes that could not reach the log.",
    )
    .sample("kchain_monitor_log_errors_total", &[], f.log_errors as f64);
    t.finish()
}

fn ledger_figures(t: &mut MetricsText, ledgers: &[LedgerFigures]) {
    if ledgers.is_empty() {
        return;
    }
    let name = "kchain_monitor_ledger_height";
    t.family(
        name,
        MetricKind::Gauge,
        "The height of the ledger's canonical tip.",
    );
    for l in ledgers {
        t.sample(name, &[("ledger", l.ledger.as_str())], l.height as f64);
    }
    let name = "kchain_monitor_ledger_ignored_total";
    let help = "Blocks ignored (stale, invalid, not holding together at the tip) by this process.";
    t.family(name, MetricKind::Counter, help);
    for l in ledgers {
        t.sample(name, &[("ledger", l.ledger.as_str())], l.ignored as f64);
    }
}
