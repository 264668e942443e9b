//! The server's figures for `/metrics` (Prometheus text format): requests by route and status
//! with a latency histogram, records produced and verified, findings by kind, and the tip
//! height of every chain the server has seen. Handlers count what they do; a middleware
//! counts every request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::serve::sync::lock;
use kchain_http::axum::extract::{MatchedPath, Request, State};
use kchain_http::axum::middleware::Next;
use kchain_http::axum::response::Response;
use kchain_http::{MetricKind, MetricsText};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct RouteFigures {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds: f64,
}

/// Everything `/metrics` shows.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteFigures>>,
    produced: AtomicU64,
    verified: AtomicU64,
    resumed: AtomicU64,
    findings: Mutex<BTreeMap<String, u64>>,
    tips: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    /// Records appended through the API.
    pub fn produced(&self, n: u64) {
        self.produced.fetch_add(n, Ordering::Relaxed);
    }

    /// Records (or blocks) verified while answering.
    pub fn verified(&self, n: u64) {
        self.verified.fetch_add(n, Ordering::Relaxed);
    }

    /// A page of records read on from a paused reader instead of from genesis.
    pub fn resumed(&self) {
        self.resumed.fetch_add(1, Ordering::Relaxed);
    }

    /// A finding reported by a verification, by kind (`tampered`, `fork`, ...).
    pub fn finding(&self, kind: &str) {
        *lock(&self.findings).entry(kind.to_owned()).or_default() += 1;
    }

    /// The newest height seen of a chain: `kind` is `topic` (chain = `topic/partition`) or
    /// `ledger`.
    pub fn tip(&self, kind: &str, chain: &str, height: u64) {
        lock(&self.tips).insert((kind.to_owned(), chain.to_owned()), height);
    }

    fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut routes = lock(&self.routes);
        let f = routes
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        *f.by_status.entry(status).or_default() += 1;
        f.count += 1;
        f.seconds += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                f.buckets[i] += 1;
            }
        }
    }

    /// The page.
    pub fn render(&self) -> String {
        let mut m = MetricsText::new();
        let routes = lock(&self.routes);
        m.family(
            "kchain_http_requests_total",
            MetricKind::Counter,
            "HTTP requests answered, by route and status.",
        );
        for ((method, route), f) in routes.iter() {
            for (status, n) in &f.by_status {
                let status = status.to_string();
                let labels = [
                    ("method", method.as_str()),
                    ("route", route.as_str()),
                    ("status", status.as_str()),
                ];
                m.sample("kchain_http_requests_total", &labels, *n as f64);
            }
        }
        // A histogram family in the text format: cumulative buckets, +Inf, sum and count.
        m.family(
            "kchain_http_request_seconds",
            MetricKind::Histogram,
            "Time to answer a request, by route.",
        );
        for ((method, route), f) in routes.iter() {
            let base = [("method", method.as_str()), ("route", route.as_str())];
            for (i, bound) in BUCKETS.iter().enumerate() {
                let le = bound.to_string();
                let labels = [base[0], base[1], ("le", le.as_str())];
                m.sample(
                    "kchain_http_request_seconds_bucket",
                    &labels,
                    f.buckets[i] as f64,
                );
            }
            let labels = [base[0], base[1], ("le", "+Inf")];
            m.sample(
                "kchain_http_request_seconds_bucket",
                &labels,
                f.count as f64,
            );
            m.sample("kchain_http_request_seconds_sum", &base, f.seconds);
            m.sample("kchain_http_request_seconds_count", &base, f.count as f64);
        }
        drop(routes);
        m.family(
            "kchain_records_produced_total",
            MetricKind::Counter,
            "Records appended to chained topics through the API.",
        );
        m.sample(
            "kchain_records_produced_total",
            &[],
            self.produced.load(Ordering::Relaxed) as f64,
        );
        m.family(
            "kchain_records_verified_total",
            MetricKind::Counter,
            "Records and blocks verified while answering requests.",
        );
        m.sample(
            "kchain_records_verified_total",
            &[],
            self.verified.load(Ordering::Relaxed) as f64,
        );
        m.family(
            "kchain_pages_resumed_total",
            MetricKind::Counter,
            "Pages of records verified on from where the page before stopped, not from genesis.",
        );
        m.sample(
            "kchain_pages_resumed_total",
            &[],
            self.resumed.load(Ordering::Relaxed) as f64,
        );
        m.family(
            "kchain_findings_total",
            MetricKind::Counter,
            "Findings reported by verifications, by kind.",
        );
        for (kind, n) in lock(&self.findings).iter() {
            m.sample(
                "kchain_findings_total",
                &[("kind", kind.as_str())],
                *n as f64,
            );
        }
        m.family(
            "kchain_tip_height",
            MetricKind::Gauge,
            "Newest height seen of each chain.",
        );
        for ((kind, chain), h) in lock(&self.tips).iter() {
            m.sample(
                "kchain_tip_height",
                &[("kind", kind.as_str()), ("chain", chain.as_str())],
                *h as f64,
            );
        }
        m.finish()
    }
}

/// The middleware that counts every request by its route pattern (not its path, so that
/// `/api/v1/topics/{topic}` is one series whatever the topic).
pub async fn count(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let start = Instant::now();
    let response = next.run(req).await;
    let seconds = start.elapsed().as_secs_f64();
    metrics.request(&method, &route, response.status().as_u16(), seconds);
    response
}
