//! `kchain bench chart`: draws the ratios of one or more `kchain bench --json` runs as an SVG
//! (one horizontal bar per ratio at its median, a whisker from min to max, and a mark at its
//! target; green where the run met the target, red where it missed, grey without one), so
//! that docs/benchmarks.md shows each figure against its target, drawn from the JSON alone.

use std::fmt::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

#[derive(Args, Debug)]
pub struct ChartArgs {
    /// Files of `kchain bench --json` output (one JSON line per run).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// One bar.
struct Bar {
    label: String,
    median: f64,
    min: f64,
    max: f64,
    target: Option<f64>,
    met: Option<bool>,
}

const WIDTH: f64 = 860.0;
const LABEL: f64 = 380.0;
const ROW: f64 = 26.0;
const TOP: f64 = 40.0;

/// Prints the chart of every run in `files`.
pub fn run(a: &ChartArgs) -> Result<()> {
    let mut bars = Vec::new();
    for path in &a.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let at = || format!("{} line {}", path.display(), i + 1);
            let run: Value = serde_json::from_str(line).with_context(at)?;
            bars.extend(bars_of(&run).with_context(at)?);
        }
    }
    if bars.is_empty() {
        bail!("no ratios in the files given (expected `kchain bench --json` output)");
    }
    print!("{}", svg(&bars));
    Ok(())
}

/// The bars of one run: its ratios, labelled with the backend.
fn bars_of(run: &Value) -> Result<Vec<Bar>> {
    let backend = run["backend"].as_str().context("no \"backend\"")?;
    let backend = backend.split(" (").next().unwrap_or(backend);
    let ratios = run["ratios"]
        .as_object()
        .context("no \"ratios\" object (output of an older kchain bench?)")?;
    let num = |v: &Value, k: &str| v[k].as_f64().with_context(|| format!("no number \"{k}\""));
    ratios
        .iter()
        .map(|(name, r)| {
            Ok(Bar {
                label: format!("{name} ({backend})"),
                median: num(r, "median")?,
                min: num(r, "min")?,
                max: num(r, "max")?,
                target: r["target"].as_f64(),
                met: r["met"].as_bool(),
            })
        })
        .collect()
}

/// The SVG: the scale runs from 0 to the largest value or target (at least 1).
fn svg(bars: &[Bar]) -> String {
    let top = (bars.iter())
        .flat_map(|b| [b.max, b.target.unwrap_or(0.0)])
        .fold(1.0f64, f64::max);
    // Room on the right for the value printed past the longest whisker.
    let plot = WIDTH - LABEL - 60.0;
    let x = |v: f64| LABEL + plot * (v.clamp(0.0, top) / top);
    let height = TOP + ROW * bars.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"20\" font-size=\"14\">kchain bench: ratios (median bar, min-max \
         whisker, target mark)</text>"
    );
    for tick in 0..=((top * 4.0).ceil() as usize) {
        let v = tick as f64 / 4.0;
        if v > top {
            break;
        }
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#ddd\"/>\
             <text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\" fill=\"#666\">{v}</text>",
            x(v),
            TOP - 6.0,
            height - 24.0,
            height - 10.0
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let colour = match b.met {
            Some(true) => "#2e7d32",
            Some(false) => "#c62828",
            None => "#9e9e9e",
        };
        let _ = writeln!(
            s,
            "<text x=\"{0}\" y=\"{1:.1}\" text-anchor=\"end\">{2}</text>\
             <rect x=\"{3}\" y=\"{4:.1}\" width=\"{5:.1}\" height=\"14\" fill=\"{colour}\"/>\
             <line x1=\"{6:.1}\" y1=\"{7:.1}\" x2=\"{8:.1}\" y2=\"{7:.1}\" stroke=\"#000\"/>\
             <text x=\"{9:.1}\" y=\"{1:.1}\" fill=\"#000\">{10:.2}</text>",
            LABEL - 8.0,
            y + 12.0,
            escape(&b.label),
            LABEL,
            y + 2.0,
            x(b.median) - LABEL,
            x(b.min),
            y + 9.0,
            x(b.max),
            x(b.max) + 4.0,
            b.median
        );
        if let Some(t) = b.target {
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#000\" \
                 stroke-width=\"2\" stroke-dasharray=\"3,2\"><title>target {t}</title></line>",
                x(t),
                y,
                y + 18.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_ratio_with_its_target() {
        let run = serde_json::json!({
            "backend": "embedded log (fsync every 100 ms)",
            "ratios": {
                "chained append / raw append":
                    {"median": 0.25, "min": 0.2, "max": 0.3, "target": 0.6, "met": false},
                "verify 2 threads / 1 thread": {"median": 1.8, "min": 1.7, "max": 1.9}
            }
        });
        let bars = bars_of(&run).unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].label, "chained append / raw append (embedded log)");
        let svg = svg(&bars);
        assert!(svg.contains("#c62828"), "a missed target is red");
        assert!(svg.contains("#9e9e9e"), "a ratio without a target is grey");
        assert!(svg.contains("target 0.6"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(bars_of(&serde_json::json!({"backend": "x"})).is_err());
    }
}
