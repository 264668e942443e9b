//! `kchain bench`: interleaved repetitions give every figure a median and a spread, the
//! ratios kchain has targets for carry them and a verdict, and `bench chart` draws the JSON.
//! (The figures themselves are measured by running the bench, not by tests.)

mod support;

use support::{json, Env};

#[test]
fn repetitions_give_medians_spreads_and_targets_and_the_chart_draws_them() {
    let env = Env::new();
    let out = env.ok(
        &["bench", "--records", "600", "--ledger-txs", "40", "--repeat", "2", "--json"],
        "",
    );
    let run = json(&out);
    assert_eq!(run["repetitions"], 2);
    let verify = &run["rates"]["verify, 1 thread"];
    assert_eq!(verify["runs"].as_array().unwrap().len(), 2);
    let (min, median, max) = (
        verify["min"].as_f64().unwrap(),
        verify["median"].as_f64().unwrap(),
        verify["max"].as_f64().unwrap(),
    );
    assert!(min > 0.0 && min <= median && median <= max, "{verify}");
    let chained = &run["ratios"]["chained append / raw append"];
    assert_eq!(chained["target"], 0.6, "{chained}");
    assert!(chained["met"].is_boolean());
    assert_eq!(run["ratios"]["with checkpoints / without"]["rule"], "every run");
    assert!(run["ratios"]["verify 2 threads / 1 thread"]
        .get("target")
        .is_none());
    assert!(run["ratios"]["ledger sealed / Ed25519 batch verify"]["median"].is_number());

    let file = env.dir.path().join("bench.json");
    std::fs::write(&file, &out).unwrap();
    let svg = env.ok(&["bench", "chart", file.to_str().unwrap()], "");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("chained append / raw append (embedded log)"));
    assert!(svg.contains("target 0.6"));
}

#[test]
fn chart_names_a_file_that_is_not_bench_output() {
    let env = Env::new();
    let file = env.dir.path().join("other.json");
    std::fs::write(&file, "{\"backend\": \"embedded\"}\n").unwrap();
    let out = env.run(&["bench", "chart", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("other.json line 1") && err.contains("ratios"), "{err}");
}
