//! The bench report: what was asked and measured over interleaved repetitions, each rate in
//! records per second and each ratio of figures measured side by side, as the median with
//! its spread (min–max) over the repetitions and, for the ratios kchain has a target for,
//! the target and whether the run met it. As a table, or one JSON line (which `kchain bench
//! chart` draws).

use serde_json::{json, Map, Value};

use super::chained::Appends;
use super::raw::{rate, Took, BATCH};

/// What to measure.
pub struct Params {
    /// Records per measurement.
    pub records: u64,
    /// Value size in bytes.
    pub size: usize,
    /// Signed transfers for the ledger measurement (0 skips it).
    pub ledger_txs: usize,
    /// Interleaved repetitions of the whole set.
    pub repeat: usize,
    /// One JSON line instead of a table.
    pub json: bool,
}

/// Every measurement of one repetition.
pub(crate) struct Measured {
    pub(crate) sha: std::time::Duration,
    /// Raw SHA-256 over each value, two at a time (informational; see `raw::sha_x2`).
    pub(crate) sha_x2: std::time::Duration,
    pub(crate) raw_append: Took,
    pub(crate) raw_read: std::time::Duration,
    pub(crate) appends: Appends,
    pub(crate) verify1: std::time::Duration,
    pub(crate) verify2: std::time::Duration,
    pub(crate) ledger: Option<kchain_ledger::BenchReport>,
    /// On Kafka, the same ledger measurement on an embedded log, in the same repetition.
    pub(crate) ledger_embedded: Option<kchain_ledger::BenchReport>,
}

/// The rates of one repetition, in records (or transactions, signatures) per second.
fn rates(n: u64, m: &Measured) -> Vec<(&'static str, f64)> {
    let a = &m.appends;
    let mut rows = vec![
        ("raw SHA-256 over each value", rate(n, m.sha)),
        (
            "raw SHA-256 over each value, 2 at a time",
            rate(n, m.sha_x2),
        ),
        ("raw append (no chain)", rate(n, m.raw_append.wall)),
        ("raw read (no verify)", rate(n, m.raw_read)),
        ("chained append", rate(n, a.plain.wall)),
        (
            "chained append, one signed batch a call",
            rate(n, a.one_batch.wall),
        ),
        ("chained append, encrypted", rate(n, a.encrypted.wall)),
        (
            "chained append + checkpoints",
            rate(n, a.checkpointed.append.wall),
        ),
    ];
    if let Some(w) = &a.witnessed {
        rows.push((
            "chained append + checkpoints + witness",
            rate(n, w.append.wall),
        ));
    }
    rows.push(("verify, 1 thread", rate(n, m.verify1)));
    rows.push(("verify, 2 threads", rate(n, m.verify2)));
    if let Some(l) = &m.ledger {
        rows.push(("ledger: sealed end to end, tx/s", l.sealed_per_sec));
        rows.push((
            "ledger: Ed25519 batch verify (node's batches), sig/s",
            l.batch_verify_per_sec,
        ));
        rows.push((
            "ledger: ed25519-dalek batch verify (batches of 128), sig/s",
            l.dalek_batch_verify_per_sec,
        ));
    }
    if let Some(e) = &m.ledger_embedded {
        rows.push(("ledger: sealed, embedded log, tx/s", e.sealed_per_sec));
    }
    rows
}

/// The ratios of one repetition's figures, measured side by side. On the embedded log, where
/// this process does all the work, the appends are also compared per CPU-second (what each
/// variant costs, whatever share of the two cores it kept busy); on Kafka the broker's share
/// is not in this process's CPU time.
fn ratios(m: &Measured, kafka: bool) -> Vec<(&'static str, f64)> {
    let a = &m.appends;
    let s = |d: std::time::Duration| d.as_secs_f64().max(1e-9);
    let cpu = |t: &Took| t.cpu.max(1e-9);
    let mut pairs = vec![
        (
            "chained append / raw append",
            s(m.raw_append.wall) / s(a.plain.wall),
        ),
        (
            "one signed batch a call / raw append",
            s(m.raw_append.wall) / s(a.one_batch.wall),
        ),
        (
            "encrypted / plain chained append",
            s(a.plain.wall) / s(a.encrypted.wall),
        ),
        (
            "with checkpoints / without",
            s(a.plain.wall) / s(a.checkpointed.append.wall),
        ),
    ];
    if let Some(w) = &a.witnessed {
        pairs.push((
            "with checkpoints + witness / without",
            s(a.plain.wall) / s(w.append.wall),
        ));
    }
    if !kafka {
        pairs.extend([
            (
                "chained / raw append per CPU-second",
                cpu(&m.raw_append) / cpu(&a.plain),
            ),
            (
                "encrypted / plain per CPU-second",
                cpu(&a.plain) / cpu(&a.encrypted),
            ),
            (
                "checkpoints / without per CPU-second",
                cpu(&a.plain) / cpu(&a.checkpointed.append),
            ),
        ]);
    }
    pairs.extend([
        ("verify 1 thread / raw SHA-256", s(m.sha) / s(m.verify1)),
        ("verify 1 thread / raw read", s(m.raw_read) / s(m.verify1)),
        ("verify 2 threads / raw read", s(m.raw_read) / s(m.verify2)),
        ("verify 2 threads / 1 thread", s(m.verify1) / s(m.verify2)),
    ]);
    if let Some(l) = &m.ledger {
        // The target's baseline is the node's own batch verification: a baseline slower per
        // signature than what the node does would let the ratio pass 1.0.
        pairs.push(("ledger sealed / Ed25519 batch verify", l.ratio()));
        // The same per CPU-second of the process: what sealing costs beside verifying,
        // whatever share of the cores the run got.
        pairs.push(("ledger per CPU-second / batch verify", l.cpu_ratio()));
        pairs.push((
            "ledger sealed / ed25519-dalek batches of 128",
            l.sealed_per_sec / l.dalek_batch_verify_per_sec,
        ));
        if let Some(e) = &m.ledger_embedded {
            pairs.push((
                "ledger on Kafka / embedded",
                l.sealed_per_sec / e.sealed_per_sec,
            ));
        }
    }
    pairs
}

/// How a target is judged: on the median, or on every repetition (the smallest).
#[derive(Clone, Copy)]
enum Rule {
    Median,
    EveryRun,
}

/// kchain's target for a ratio on a backend (docs/benchmarks.md), if it has one.
fn target(backend: &str, ratio: &str) -> Option<(f64, Rule)> {
    let kafka = backend == "Kafka";
    match ratio {
        "chained append / raw append" if kafka => Some((0.9, Rule::Median)),
        "chained append / raw append" => Some((0.6, Rule::Median)),
        "verify 2 threads / raw read" if kafka => Some((0.95, Rule::Median)),
        "verify 1 thread / raw SHA-256" if !kafka => Some((0.5, Rule::Median)),
        "with checkpoints / without" if !kafka => Some((0.97, Rule::EveryRun)),
        "encrypted / plain chained append" if !kafka => Some((0.9, Rule::Median)),
        "ledger sealed / Ed25519 batch verify" if !kafka => Some((0.75, Rule::Median)),
        "ledger on Kafka / embedded" if kafka => Some((0.5, Rule::Median)),
        _ => None,
    }
}

/// Median and spread of one figure over the repetitions.
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) runs: Vec<f64>,
}

impl Stat {
    pub(crate) fn of(mut runs: Vec<f64>) -> Stat {
        let in_order = runs.clone();
        runs.sort_by(f64::total_cmp);
        let k = runs.len();
        let median = match k {
            0 => f64::NAN,
            _ if k % 2 == 1 => runs[k / 2],
            _ => (runs[k / 2 - 1] + runs[k / 2]) / 2.0,
        };
        Stat {
            median,
            min: runs.first().copied().unwrap_or(f64::NAN),
            max: runs.last().copied().unwrap_or(f64::NAN),
            runs: in_order,
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({"median": self.median, "min": self.min, "max": self.max, "runs": self.runs})
    }
}

/// One figure's name and its statistics, in the order the figures were first measured.
type Figures = Vec<(&'static str, Stat)>;

/// Gathers a figure's value from every repetition that has it.
fn gather(per_rep: Vec<Vec<(&'static str, f64)>>) -> Figures {
    let mut names: Vec<&'static str> = Vec::new();
    for rep in &per_rep {
        for (name, _) in rep {
            if !names.contains(name) {
                names.push(name);
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let runs = per_rep
                .iter()
                .filter_map(|rep| rep.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
                .collect();
            (name, Stat::of(runs))
        })
        .collect()
}

/// The whole run, summarised.
pub(crate) struct Summary<'a> {
    p: &'a Params,
    backend: &'a str,
    reps: &'a [Measured],
    rates: Figures,
    ratios: Figures,
}

impl<'a> Summary<'a> {
    pub(crate) fn new(p: &'a Params, backend: &'a str, reps: &'a [Measured]) -> Self {
        let rates = gather(reps.iter().map(|m| rates(p.records, m)).collect());
        let kafka = backend == "Kafka";
        let ratios = gather(reps.iter().map(|m| ratios(m, kafka)).collect());
        Summary {
            p,
            backend,
            reps,
            rates,
            ratios,
        }
    }

    /// The target of a ratio, and whether this run met it.
    fn judged(&self, name: &str, s: &Stat) -> Option<(f64, Rule, bool)> {
        target(self.backend, name).map(|(t, rule)| {
            let value = match rule {
                Rule::Median => s.median,
                Rule::EveryRun => s.min,
            };
            (t, rule, value >= t)
        })
    }

    /// The report as one JSON object.
    pub(crate) fn json(&self) -> Value {
        let mut o = Map::new();
        o.insert("records".into(), json!(self.p.records));
        o.insert("value_bytes".into(), json!(self.p.size));
        o.insert("backend".into(), json!(self.backend));
        o.insert("cores".into(), json!(cores()));
        o.insert("repetitions".into(), json!(self.reps.len()));
        let rates: Map<String, Value> = (self.rates.iter())
            .map(|(name, s)| (name.to_string(), s.json()))
            .collect();
        o.insert("rates".into(), Value::Object(rates));
        let mut ratios = Map::new();
        for (name, s) in &self.ratios {
            let mut r = s.json();
            if let Some((t, rule, met)) = self.judged(name, s) {
                r["target"] = json!(t);
                r["rule"] = json!(match rule {
                    Rule::Median => "median",
                    Rule::EveryRun => "every run",
                });
                r["met"] = json!(met);
            }
            ratios.insert(name.to_string(), r);
        }
        o.insert("ratios".into(), Value::Object(ratios));
        if let Some(last) = self.reps.last() {
            let a = &last.appends;
            o.insert(
                "checkpoints".into(),
                json!({
                    "published_without_witness": a.checkpointed.checkpoints,
                    "published_with_witness": a.witnessed.as_ref().map(|w| w.checkpoints),
                    "cosigned": a.witnessed.as_ref().map(|w| w.cosigned),
                    "witness_error": a.witness_note,
                }),
            );
            if let Some(l) = &last.ledger {
                o.insert(
                    "ledger".into(),
                    json!({
                        "transactions": l.transactions,
                        "blocks": l.blocks,
                        "seconds": l.seconds,
                        "stages": l
                            .stages
                            .iter()
                            .map(|(stage, secs)| (stage.name().to_string(), json!(secs)))
                            .collect::<Map<String, Value>>(),
                    }),
                );
            }
        }
        Value::Object(o)
    }

    /// The report as tables.
    pub(crate) fn print(&self) {
        let p = self.p;
        println!(
            "kchain bench: {} records of {} bytes, {}, batches of {BATCH}, {} core(s), {} \
             interleaved repetition(s)",
            p.records,
            p.size,
            self.backend,
            cores(),
            self.reps.len()
        );
        println!(
            "{:<40} {:>12} {:>25} {:>9}",
            "measurement (median)", "per second", "spread (min-max)", "MB/s"
        );
        for (name, s) in &self.rates {
            let mb = if name.starts_with("ledger") {
                String::new()
            } else {
                format!("{:.1}", s.median * p.size as f64 / 1e6)
            };
            let spread = format!("{:.0}-{:.0}", s.min, s.max);
            println!("{name:<40} {:>12.0} {spread:>25} {mb:>9}", s.median);
        }
        println!(
            "\n{:<40} {:>7} {:>13}  target",
            "ratio (side by side)", "median", "min-max"
        );
        for (name, s) in &self.ratios {
            let spread = format!("{:.3}-{:.3}", s.min, s.max);
            let judged = match self.judged(name, s) {
                Some((t, Rule::Median, met)) => format!(">= {t} {}", verdict(met)),
                Some((t, Rule::EveryRun, met)) => format!(">= {t} in every run {}", verdict(met)),
                None => String::new(),
            };
            println!("{name:<40} {:>7.3} {spread:>13}  {judged}", s.median);
        }
        if let Some(last) = self.reps.last() {
            match (&last.appends.witnessed, &last.appends.witness_note) {
                (Some(w), _) => println!(
                    "\ncheckpoints published and cosigned during the last witnessed append: {} \
                     and {}",
                    w.checkpoints, w.cosigned
                ),
                (None, Some(e)) => {
                    println!("\nthe witness could not be measured on this broker: {e}")
                }
                (None, None) => {}
            }
            if let Some(l) = &last.ledger {
                println!(
                    "ledger: {} signed transfers per repetition ({} blocks in the last, {:.2} s: \
                     {}; CPU {:.2} s, of which the node's thread {:.2} s, the submitter's {:.2} s; \
                     {:.0} signatures a batch)",
                    l.transactions,
                    l.blocks,
                    l.seconds,
                    stages(l),
                    l.sealing_cpu_seconds,
                    l.node_cpu_seconds,
                    l.submit_cpu_seconds,
                    l.mean_batch
                );
            }
        }
    }
}

/// Where the sealing node's time went in a ledger run: `ingest 0.41 s, build 0.12 s, ...`.
fn stages(l: &kchain_ledger::BenchReport) -> String {
    let parts: Vec<String> = l
        .stages
        .iter()
        .map(|(stage, secs)| format!("{} {secs:.2} s", stage.name()))
        .collect();
    parts.join(", ")
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = Stat::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.runs, vec![3.0, 1.0, 2.0]);
        assert_eq!(Stat::of(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn targets_follow_the_backend() {
        assert_eq!(
            target("embedded", "chained append / raw append").unwrap().0,
            0.6
        );
        assert_eq!(
            target("Kafka", "chained append / raw append").unwrap().0,
            0.9
        );
        assert!(target("Kafka", "with checkpoints / without").is_none());
        assert!(target("embedded", "verify 2 threads / 1 thread").is_none());
    }

    fn took(wall_ms: u64, cpu: f64) -> Took {
        Took {
            wall: std::time::Duration::from_millis(wall_ms),
            cpu,
        }
    }

    #[test]
    fn appends_per_cpu_second_on_the_embedded_log_only() {
        use super::super::chained::{Appends, Witnessed};
        let ms = std::time::Duration::from_millis;
        let m = Measured {
            sha: ms(100),
            sha_x2: ms(80),
            raw_append: took(150, 0.15),
            raw_read: ms(90),
            appends: Appends {
                plain: took(400, 0.6),
                one_batch: took(420, 0.6),
                encrypted: took(500, 0.8),
                checkpointed: Witnessed {
                    append: took(440, 0.75),
                    checkpoints: 10,
                    cosigned: 0,
                },
                witnessed: None,
                witness_note: None,
            },
            verify1: ms(350),
            verify2: ms(200),
            ledger: None,
            ledger_embedded: None,
        };
        let find = |pairs: &[(&str, f64)], name: &str| {
            pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        };
        let embedded = ratios(&m, false);
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(find(&embedded, "chained append / raw append"), 0.375));
        assert!(close(
            find(&embedded, "chained / raw append per CPU-second"),
            0.25
        ));
        assert!(close(
            find(&embedded, "encrypted / plain per CPU-second"),
            0.75
        ));
        assert!(close(
            find(&embedded, "checkpoints / without per CPU-second"),
            0.8
        ));
        let kafka = ratios(&m, true);
        assert!(close(find(&kafka, "chained append / raw append"), 0.375));
        assert!(kafka.iter().all(|(n, _)| !n.contains("CPU-second")));
    }
}
