//! A small encoder of the Prometheus text exposition format (version 0.0.4), for servers
//! that publish `/metrics` (the monitor): families of samples, each family's `# HELP` and
//! `# TYPE` once, label values escaped.
//!
//! ```text
//!  # HELP kchain_monitor_entries_verified_total Entries verified.
//!  # TYPE kchain_monitor_entries_verified_total counter
//!  kchain_monitor_entries_verified_total{topic="orders",partition="0"} 1200
//! ```
//!
//! Reference: <https://prometheus.io/docs/instrumenting/exposition_formats/>.

use std::fmt::Write;

/// The `Content-Type` of the text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    /// Samples `<name>_bucket{le=...}` (cumulative), `<name>_sum` and `<name>_count`.
    Histogram,
}

/// Builds a metrics page, one family at a time.
#[derive(Debug, Default)]
pub struct MetricsText {
    out: String,
}

impl MetricsText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name` (a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`). Its
    /// samples follow with [`sample`](Self::sample); a family is started once per page.
    pub fn family(&mut self, name: &str, kind: MetricKind, help: &str) -> &mut Self {
        let kind = match kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample of the family last started: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
        self
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A sample value as the format writes it: integers without a fraction, `+Inf`, `NaN`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_help_type_and_escaped_labels() {
        let mut m = MetricsText::new();
        m.family("x_total", MetricKind::Counter, "Things.\nMany.")
            .sample("x_total", &[("topic", "a\"b\\c")], 3.0)
            .sample("x_total", &[], 0.5);
        m.family("up", MetricKind::Gauge, "Up.")
            .sample("up", &[], f64::INFINITY);
        assert_eq!(
            m.finish(),
            "# HELP x_total Things.\\nMany.\n# TYPE x_total counter\n\
             x_total{topic=\"a\\\"b\\\\c\"} 3\nx_total 0.5\n\
             # HELP up Up.\n# TYPE up gauge\nup +Inf\n"
        );
    }
}
