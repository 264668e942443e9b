//! `kchain bench`: interleaved repetitions give every figure a median and a spread, the
//! ratios kchain has targets for carry them and a verdict, and `bench chart` draws the JSON.
//! (The figures themselves are measured by running the bench, not by tests.)

mod support;

use support::{json, Env};

#[test]
fn repetitions_give_medians_spreads_and_targets_and_the_chart_draws_them() {
    let env = Env::new();
    let out = env.ok(
        &[
            "bench",
            "--records",
            "600",
            "--ledger-txs",
            "40",
            "--repeat",
            "2",
            "--json",
        ],
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
    // Beside the raw SHA-256 floor, the same hashing two values at a time (informational).
    let x2 = &run["rates"]["raw SHA-256 over each value, 2 at a time"];
    assert_eq!(x2["runs"].as_array().unwrap().len(), 2, "{x2}");
    assert!(x2["median"].as_f64().unwrap() > 0.0, "{x2}");
    let chained = &run["ratios"]["chained append / raw append"];
    assert_eq!(chained["target"], 0.6, "{chained}");
    assert!(chained["met"].is_boolean());
    assert_eq!(
        run["ratios"]["with checkpoints / without"]["rule"],
        "every run"
    );
    assert!(run["ratios"]["verify 2 threads / 1 thread"]
        .get("target")
        .is_none());
    assert!(run["ratios"]["ledger sealed / Ed25519 batch verify"]["median"].is_number());
    // Where the sealing node's time went, stage by stage.
    for stage in ["ingest", "build", "append", "follow", "confirm", "wait"] {
        assert!(
            run["ledger"]["stages"][stage].is_number(),
            "{}",
            run["ledger"]
        );
    }
    assert!(run["ratios"].get("ledger on Kafka / embedded").is_none());

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
    assert!(
        err.contains("other.json line 1") && err.contains("ratios"),
        "{err}"
    );
}

/// A small bench on Kafka (the repetitions and options follow).
#[cfg(feature = "kafka")]
const SMALL_BENCH: [&str; 5] = ["bench", "--records", "200", "--ledger-txs", "40"];

/// On Kafka the ledger is also measured on an embedded log in the same repetition, and the
/// ratio of the two carries its target.
#[cfg(feature = "kafka")]
#[test]
fn on_kafka_the_ledger_is_compared_with_the_embedded_log_in_the_same_run() {
    let broker = kchain_testkit::Broker::shared();
    let env = Env::kafka(&broker.brokers);
    let out = env.ok(
        &[&SMALL_BENCH[..], &["--repeat", "1", "--json"]].concat(),
        "",
    );
    let run = json(&out);
    assert!(
        run["rates"]["ledger: sealed, embedded log, tx/s"]["median"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let ratio = &run["ratios"]["ledger on Kafka / embedded"];
    assert_eq!(ratio["target"], 0.5, "{ratio}");
    assert!(ratio["median"].as_f64().unwrap() > 0.0, "{ratio}");
}

/// The topic names on the Kafka log of `env`.
#[cfg(feature = "kafka")]
fn topic_names(env: &Env) -> Vec<String> {
    json(&env.ok(&["topic", "list", "--json"], ""))
        .as_array()
        .expect("a list of topics")
        .iter()
        .map(|t| t["topic"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A broker of the test's own with `storage`, holding one topic that is not the bench's
/// (`keep-me`), and an environment on it.
#[cfg(feature = "kafka")]
fn broker_with_a_topic(storage: &str) -> (kchain_testkit::Broker, Env) {
    let broker = kchain_testkit::Broker::start(storage);
    let env = Env::kafka(&broker.brokers);
    env.ok(&["topic", "create", "keep-me"], "");
    (broker, env)
}

/// `--delete-topics` deletes each repetition's topics when it ends, and no other: on a broker
/// of this test's own (tansu's memory engine, which deletes only the topic named), a topic
/// made before the bench is still there after it, and none of the bench's is.
#[cfg(feature = "kafka")]
#[test]
fn delete_topics_deletes_the_bench_topics_and_no_other() {
    let (_broker, env) = broker_with_a_topic("memory://");
    let out = env.ok(
        &[
            &SMALL_BENCH[..],
            &["--repeat", "2", "--json", "--delete-topics"],
        ]
        .concat(),
        "",
    );
    assert_eq!(json(&out)["repetitions"], 2);
    let names = topic_names(&env);
    assert!(names.iter().any(|n| n == "keep-me"), "{names:?}");
    let left: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("kchain-bench-"))
        .collect();
    assert!(left.is_empty(), "the bench left {left:?}");
}

/// A broker whose DeleteTopics deletes more than the topic named (tansu 0.6's sqlite engine
/// deletes every topic) stops `--delete-topics` at the first repetition, with an error that
/// says so, instead of going on deleting what is not the bench's.
#[cfg(feature = "kafka")]
#[test]
fn delete_topics_stops_when_the_broker_deletes_more_than_asked() {
    let (_broker, env) = broker_with_a_topic("sqlite");
    env.error(
        &[&SMALL_BENCH[..], &["--repeat", "2", "--delete-topics"]].concat(),
        "did not ask it to delete (keep-me",
    );
}

/// `--delete-topics` is for Kafka: on the embedded log it is refused, naming why.
#[test]
fn delete_topics_needs_kafka() {
    Env::new().error(
        &["bench", "--records", "10", "--delete-topics"],
        "--delete-topics is for Kafka (-b BROKERS)",
    );
}

/// The tutorial's Python node and kchain's ledger on one broker: both seal what they were
/// given (the Python node a block per three transactions), and the report names both.
#[cfg(feature = "kafka")]
#[test]
fn peer_runs_the_tutorial_node_beside_the_ledger_on_one_broker() {
    let broker = kchain_testkit::Broker::shared();
    let env = Env::kafka(&broker.brokers);
    let python = kchain_testkit::python();
    let out = env.ok(
        &[
            "bench",
            "peer",
            "--transactions",
            "9",
            "--kchain-transactions",
            "60",
            "--python",
            python.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    let run = json(&out);
    let node = &run["tutorial_node"];
    assert_eq!(node["transactions"], 9, "{run}");
    assert_eq!(node["blocks"], 3, "{run}");
    assert!(node["tx_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(run["kchain"]["transactions"], 60, "{run}");
    assert!(run["kchain_over_tutorial_node"].as_f64().unwrap() > 0.0);
}

#[test]
fn peer_needs_kafka() {
    let env = Env::new();
    let out = env.run(&["bench", "peer"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass -b BROKERS"));
}

#[test]
fn bench_monitor_reports_what_checkpoints_cost_verify() {
    let env = Env::new();
    let out = env.ok(
        &["bench", "monitor", "--records", "300", "--size", "16"],
        "",
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("verify with checkpoints / verify chains only: "))
        .unwrap_or_else(|| panic!("no checkpoint ratio in:\n{out}"));
    let ratio: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(ratio > 0.0, "{line}");
}

/// On the embedded log each repetition writes a log of its own (so that none starts behind
/// the dirty pages of the ones before); `--dir` keeps them all, one directory each.
#[test]
fn each_repetition_writes_its_own_log_and_dir_keeps_them() {
    let env = Env::new();
    let dir = env.data().join("bench");
    let dir_arg = dir.to_str().unwrap();
    env.ok(
        &[
            "bench",
            "--records",
            "300",
            "--ledger-txs",
            "0",
            "--repeat",
            "2",
            "--json",
            "--dir",
            dir_arg,
        ],
        "",
    );
    for rep in ["rep-0", "rep-1"] {
        let topics = std::fs::read_dir(dir.join(rep).join("topics"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        let suffix = format!("-{}", &rep[4..]);
        assert!(
            topics
                .iter()
                .any(|t| t.starts_with("kchain-bench-raw-") && t.ends_with(&suffix)),
            "{rep}: {topics:?}"
        );
        assert!(
            topics
                .iter()
                .all(|t| !t.starts_with("kchain-bench-raw-") || t.ends_with(&suffix)),
            "{rep} holds another repetition's raw topic: {topics:?}"
        );
    }
}
