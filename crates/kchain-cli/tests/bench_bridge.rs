//! `kchain bench bridge`: rounds of chained produce and the bridge on the same records, the
//! ratio as the median of the rounds' ratios with its spread, the writers' opening kept out
//! of both clocks, and the CPU each side costs per record. (The figures themselves are
//! measured by running the bench.)

mod support;

use support::{json, Env};

/// Checks one `bench bridge --json` line of `rounds` rounds.
fn check_rounds(out: &str, rounds: usize) {
    let run = json(out);
    assert_eq!(run["rounds"], rounds, "{run}");
    let ratios: Vec<f64> = (run["ratios"].as_array().expect("per-round ratios").iter())
        .map(|r| r.as_f64().unwrap())
        .collect();
    assert_eq!(ratios.len(), rounds, "{run}");
    let (lo, median, hi) = (
        run["ratio_min"].as_f64().unwrap(),
        run["ratio"].as_f64().unwrap(),
        run["ratio_max"].as_f64().unwrap(),
    );
    assert!(
        ratios.iter().all(|r| *r > 0.0 && lo <= *r && *r <= hi),
        "{run}"
    );
    assert!(lo <= median && median <= hi, "{run}");
    assert!(
        run["chained_produce_per_s"].as_f64().unwrap() > 0.0,
        "{run}"
    );
    assert!(run["bridge_per_s"].as_f64().unwrap() > 0.0, "{run}");
    // Opening the writers is measured, and kept out of both clocks.
    assert!(run["produce_open_ms"].as_f64().unwrap() >= 0.0, "{run}");
    assert!(run["bridge_open_ms"].as_f64().unwrap() >= 0.0, "{run}");
    // CPU per record of each side, and their ratio, beside the wall figures.
    for k in [
        "produce_cpu_us_per_record",
        "bridge_cpu_us_per_record",
        "cpu_ratio",
    ] {
        assert!(run[k].as_f64().unwrap() > 0.0, "{k}: {run}");
    }
    assert_eq!(run["cpu_of"], "kchain", "{run}");
    assert_eq!(run["lag_records"], 200, "{run}");
}

#[test]
fn rounds_give_a_median_ratio_and_its_spread() {
    let env = Env::new();
    let args = [
        "bench",
        "bridge",
        "--records",
        "3000",
        "--rounds",
        "3",
        "--rate",
        "200",
        "--lag-secs",
        "1",
        "--json",
    ];
    check_rounds(&env.ok(&args, ""), 3);
    let text = env.ok(&args[..args.len() - 1], "");
    assert!(text.contains("bridge / chained produce"), "{text}");
    assert!(text.contains("3 rounds"), "{text}");
    assert!(text.contains("CPU of kchain per record"), "{text}");
    let zero = env.run(&["bench", "bridge", "--rounds", "0"], "");
    assert!(!zero.status.success());
}

#[cfg(feature = "kafka")]
#[test]
fn on_kafka_too() {
    let broker = kchain_testkit::Broker::shared();
    let env = Env::kafka(&broker.brokers);
    let out = env.ok(
        &[
            "bench",
            "bridge",
            "--records",
            "2000",
            "--rounds",
            "2",
            "--rate",
            "200",
            "--lag-secs",
            "1",
            "--json",
        ],
        "",
    );
    check_rounds(&out, 2);
}
