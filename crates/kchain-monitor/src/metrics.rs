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
//! | `kchain_monitor_witness_up` | witness | the witness answered the last time |
//! | `kchain_monitor_log_up`, `kchain_monitor_log_errors_total` | | the log's reachability |

use std::sync::{Arc, Mutex};

use kchain_http::axum::{http::header::CONTENT_TYPE, routing::get, Router};
use kchain_http::{
    HttpError, MetricKind, MetricsText, RunningServer, Server, ServerOptions, METRICS_CONTENT_TYPE,
};

use crate::alert::AlertKind;
use crate::monitor::Monitor;

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

/// The page for the monitor as it stands.
pub(crate) fn render(m: &Monitor<'_>) -> String {
    let now = kchain_core::time::now_ms();
    let mut t = MetricsText::new();
    type Figure = fn(&crate::monitor::Watched, i64) -> f64;
    let per_partition: [(&str, MetricKind, &str, Figure); 8] = [
        (
            "kchain_monitor_entries_verified_total",
            MetricKind::Counter,
            "Entries verified (all runs).",
            |w, _| w.watch.entries as f64,
        ),
        (
            "kchain_monitor_records_read_total",
            MetricKind::Counter,
            "Records read by this process.",
            |w, _| w.watch.read as f64,
        ),
        (
            "kchain_monitor_lag_records",
            MetricKind::Gauge,
            "Records in the log not yet verified.",
            |w, _| w.watch.end.saturating_sub(w.watch.verified_next()) as f64,
        ),
        (
            "kchain_monitor_lag_seconds",
            MetricKind::Gauge,
            "Age of the newest verified record while records wait.",
            |w, now| {
                let behind = w.watch.end > w.watch.verified_next();
                if behind && w.watch.tip_time_ms > 0 {
                    (now - w.watch.tip_time_ms).max(0) as f64 / 1000.0
                } else {
                    0.0
                }
            },
        ),
        (
            "kchain_monitor_stopped",
            MetricKind::Gauge,
            "1 once a finding stopped verifying the partition.",
            |w, _| f64::from(u8::from(w.watch.stopped.is_some())),
        ),
        (
            "kchain_monitor_checkpoint_size",
            MetricKind::Gauge,
            "The largest checkpoint seen.",
            |w, _| w.book.newest as f64,
        ),
        (
            "kchain_monitor_checkpoint_age_seconds",
            MetricKind::Gauge,
            "Seconds since a new checkpoint arrived (-1: none yet).",
            |w, now| {
                if w.book.at_ms == 0 {
                    -1.0
                } else {
                    (now - w.book.at_ms).max(0) as f64 / 1000.0
                }
            },
        ),
        (
            "kchain_monitor_checkpoints_unchecked_total",
            MetricKind::Counter,
            "Checkpoints the tree passed where no root was kept.",
            |w, _| w.book.unchecked as f64,
        ),
    ];
    for (name, kind, help, figure) in per_partition {
        t.family(name, kind, help);
        for w in &m.watched {
            let p = w.watch.partition.to_string();
            let labels = [("topic", w.watch.topic.as_str()), ("partition", p.as_str())];
            t.sample(name, &labels, figure(w, now));
        }
    }
    let name = "kchain_monitor_alerts_total";
    t.family(
        name,
        MetricKind::Counter,
        "Alerts raised by this process, by kind.",
    );
    for (k, n) in AlertKind::ALL.iter().zip(m.alerts.raised) {
        t.sample(name, &[("kind", k.as_str())], n as f64);
    }
    let name = "kchain_monitor_witness_up";
    t.family(
        name,
        MetricKind::Gauge,
        "1 when the witness answered the last time asked.",
    );
    for (w, up) in &m.health.witnesses {
        t.sample(name, &[("witness", w)], f64::from(u8::from(*up)));
    }
    t.family(
        "kchain_monitor_log_up",
        MetricKind::Gauge,
        "1 when the last pass reached the log.",
    )
    .sample(
        "kchain_monitor_log_up",
        &[],
        f64::from(u8::from(m.health.log_up)),
    );
    t.family(
        "kchain_monitor_log_errors_total",
        MetricKind::Counter,
        "Passes that could not reach the log.",
    )
    .sample(
        "kchain_monitor_log_errors_total",
        &[],
        m.health.log_errors as f64,
    );
    t.finish()
}
