//! `kchain bridge run`, killed with SIGKILL at random points while raw records keep arriving,
//! on the embedded log and on Kafka (tansu): every raw record is in the chained topic exactly
//! once, in order per partition, with its key, value, headers and timestamp, and the chained
//! topic verifies. On Kafka the raw records come from kafka-python and the chained topic is
//! read back with it.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use kchain_log::{EmbeddedLog, EmbeddedOptions, Header, Log, Record};
use kchain_testkit::Rng;

mod support;

use support::Env;

/// SIGKILLs of the bridge per backend.
const KILLS: usize = 12;

/// Starts `bridge run` with a random batch size (and, with `extra`, more options).
fn spawn_bridge(env: &Env, (raw, to): (&str, &str), rng: &mut Rng, extra: &[&str]) -> Child {
    let batch = ["1", "7", "64", "500", "8192"][rng.below(5) as usize];
    let mut args = extra.to_vec();
    args.extend(["bridge", "run", "--from", raw, "--to", to, "--batch", batch]);
    args.extend(["--checkpoint-secs", "1", "--poll-ms", "20"]);
    env.command(&args).spawn().unwrap()
}

/// Runs and kills the bridge `KILLS` times: every fourth run at a random point of its
/// start-up, the others at a random point after it has found where to resume (while it
/// copies). Returns how many partitions resumed by adopting a batch a kill had cut short.
fn kill_repeatedly(
    env: &Env,
    topics: (&str, &str),
    seed: u64,
    extra: &dyn Fn(usize) -> Vec<String>,
) -> usize {
    let mut rng = Rng(seed);
    let mut adopted = 0;
    for i in 0..KILLS {
        let x = extra(i);
        let x: Vec<&str> = x.iter().map(String::as_str).collect();
        let mut child = spawn_bridge(env, topics, &mut rng, &x);
        let lines = stderr_lines(&mut child);
        if i % 4 != 3 {
            // The first status line comes once every partition has opened.
            let open = Instant::now() + Duration::from_secs(30);
            while Instant::now() < open {
                match lines.recv_timeout(Duration::from_millis(50)) {
                    Ok(l) if l.contains("tip height") => break,
                    _ => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(700)));
        if let Ok(Some(status)) = child.try_wait() {
            let err: Vec<String> = lines.try_iter().collect();
            panic!("the bridge ended before it was killed ({status}): {err:?}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        adopted += lines.iter().filter(|l| l.contains("adopted")).count();
    }
    adopted
}

/// The lines of a child's standard error, as they come.
fn stderr_lines(child: &mut Child) -> Receiver<String> {
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The last run: copies what is left, then exits; its JSON summary.
fn finish(env: &Env, (raw, to): (&str, &str)) -> serde_json::Value {
    let out = env.ok(
        &[
            "bridge",
            "run",
            "--from",
            raw,
            "--to",
            to,
            "--until-idle",
            "--json",
        ],
        "",
    );
    serde_json::from_str(out.trim()).unwrap()
}

fn raw_record(rng: &mut Rng, i: u64) -> Record {
    let len = rng.below(300) as usize;
    Record {
        key: (!i.is_multiple_of(4)).then(|| format!("key-{}", i % 9).into_bytes()),
        value: (!i.is_multiple_of(11)).then(|| rng.bytes(len)),
        headers: vec![
            Header::new("n", i.to_string()),
            Header::new("bin", rng.bytes(3)),
        ],
        timestamp_ms: 1_700_000_000_000 + i as i64 * 3,
    }
}

fn read_all(log: &dyn Log, topic: &str, p: u32) -> Vec<kchain_log::StoredRecord> {
    let end = log.end_offset(topic, p).unwrap();
    let mut r = log.reader(topic, p, 0).unwrap();
    let mut out = Vec::new();
    while r.position() < end {
        out.extend(r.poll(10_000, Duration::from_secs(5)).unwrap());
    }
    out
}

#[test]
fn sigkilled_bridge_copies_exactly_once_on_the_embedded_log() {
    let t0 = Instant::now();
    let env = Env::new();
    env.ok(&["keygen", "--name", "bridge"], "");
    env.ok(&["topic", "create", "raw", "--partitions", "2"], "");
    let log = EmbeddedLog::open(env.data(), EmbeddedOptions::default()).unwrap();
    let done = AtomicBool::new(false);
    let produced = std::thread::scope(|s| {
        // A plain producer: random small batches to both partitions, until the kills end.
        let producer = s.spawn(|| {
            let mut rng = Rng(0x5eed);
            let mut appenders = [
                log.appender("raw", 0).unwrap(),
                log.appender("raw", 1).unwrap(),
            ];
            let mut i = 0u64;
            while !done.load(Ordering::Relaxed) {
                let p = rng.below(2) as usize;
                let batch: Vec<Record> = (0..1 + rng.below(40))
                    .map(|k| raw_record(&mut rng, i + k))
                    .collect();
                i += batch.len() as u64;
                appenders[p].append(&batch).unwrap();
                std::thread::sleep(Duration::from_millis(rng.below(15)));
            }
            i
        });
        let adopted = kill_repeatedly(&env, ("raw", "chained"), 0xb1d6e, &|_| Vec::new());
        // The embedded log appends each batch at once: nothing is ever left to adopt.
        assert_eq!(adopted, 0);
        done.store(true, Ordering::Relaxed);
        producer.join().unwrap()
    });
    let summary = finish(&env, ("raw", "chained"));
    assert!(produced > 1000, "{produced} raw records");
    let log = EmbeddedLog::open(env.data(), EmbeddedOptions::default()).unwrap();
    let mut total = 0;
    for p in 0..2 {
        let raw = read_all(&log, "raw", p);
        let chained = read_all(&log, "chained", p);
        assert_eq!(chained.len(), raw.len(), "partition {p}: {summary}");
        for (c, r) in chained.iter().zip(&raw) {
            let src = c.record.header("kchain.src").unwrap();
            assert_eq!(src, r.offset.to_string().as_bytes(), "partition {p}");
            let app: Vec<&Header> = (c.record.headers.iter())
                .filter(|h| !h.name.starts_with("kchain."))
                .collect();
            assert_eq!(app, r.record.headers.iter().collect::<Vec<_>>());
            assert_eq!(
                (&c.record.key, &c.record.value, c.record.timestamp_ms),
                (&r.record.key, &r.record.value, r.record.timestamp_ms)
            );
        }
        total += raw.len() as u64;
    }
    assert_eq!(total, produced);
    env.ok(&["verify", "chained"], "");
    eprintln!(
        "embedded: {produced} records, {KILLS} kills, {:?}",
        t0.elapsed()
    );
}

#[test]
fn sigterm_stops_cleanly_and_a_recreated_raw_topic_stops_the_bridge() {
    let env = Env::new();
    env.ok(&["keygen", "--name", "bridge"], "");
    env.ok(&["topic", "create", "raw", "--partitions", "2"], "");
    env.ok(&["topic", "create", "short", "--partitions", "2"], "");
    env.ok(&["topic", "create", "narrow"], "");
    let log = EmbeddedLog::open(env.data(), EmbeddedOptions::default()).unwrap();
    let mut rng = Rng(7);
    for (topic, n) in [("raw", 30), ("short", 5)] {
        for p in 0..2 {
            let recs: Vec<Record> = (0..n).map(|i| raw_record(&mut rng, i)).collect();
            log.appender(topic, p).unwrap().append(&recs).unwrap();
        }
    }
    // Following until SIGTERM: everything read is appended, the summary printed, exit 0.
    let mut child = env
        .command(&[
            "bridge", "run", "--from", "raw", "--to", "chained", "--json",
        ])
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    assert!(lines.iter().any(|l| l.contains("tip height")));
    // The status line can come before the copy: wait until both partitions hold all 30.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..2).any(|p| log.end_offset("chained", p).unwrap_or(0) < 30) {
        assert!(Instant::now() < deadline, "the bridge copied too little");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: a plain kill(2) of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["copied"], 60, "{summary}");
    assert_eq!(summary["stopped_by"], "SIGTERM");
    env.ok(&["verify", "chained"], "");
    // The raw topic "recreated" with fewer records than the chain copied.
    env.error(
        &[
            "-q",
            "bridge",
            "run",
            "--from",
            "short",
            "--to",
            "chained",
            "--until-idle",
        ],
        "the raw topic was recreated or truncated",
    );
    env.error(
        &[
            "-q",
            "bridge",
            "run",
            "--from",
            "raw",
            "--to",
            "narrow",
            "--until-idle",
        ],
        "has 1 partition(s), fewer than the 2 of the raw topic raw",
    );
}

#[cfg(feature = "kafka")]
mod kafka {
    use super::*;
    use base64::Engine as _;
    use kchain_testkit::{unique_name, Broker};
    use support::kclient;

    /// A plain producer in Python (kafka-python): `n` records, record i to partition i % 2
    /// with its number in header `n`, in bursts of 200 with a pause between (a backlog
    /// for each restarted bridge, whose appends to the slow sqlite broker a kill then cuts).
    const PRODUCER: &str = r#"
import sys, time, kafka
brokers, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = kafka.KafkaProducer(bootstrap_servers=brokers, acks="all", retries=5,
                        max_in_flight_requests_per_connection=1, linger_ms=5)
for i in range(n):
    key = None if i % 4 == 0 else ("key-%d" % (i % 9)).encode()
    value = None if i % 11 == 0 else ("value %d " % i).encode() + b"x" * (i % 97)
    if key is None and value is None:
        value = b""  # kafka-python sends no record with neither
    headers = [("n", str(i).encode()), ("bin", bytes([i % 256, 0, 255]))]
    p.send(topic, key=key, value=value, headers=headers, partition=i % 2,
           timestamp_ms=1700000000000 + 3 * i)
    if i % 200 == 199:
        p.flush()
        time.sleep(0.8)
p.flush()
p.close()
"#;

    fn b64(v: &serde_json::Value) -> Option<Vec<u8>> {
        v.as_str()
            .map(|s| base64::engine::general_purpose::STANDARD.decode(s).unwrap())
    }

    fn read(brokers: &str, topic: &str, p: u32) -> Vec<serde_json::Value> {
        let p = p.to_string();
        let args = [
            "read",
            "--client",
            "kafka-python",
            "-b",
            brokers,
            "-t",
            topic,
            "-p",
            &p,
        ];
        (kclient(&args).lines())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn headers(v: &serde_json::Value, kchain: bool) -> Vec<(String, Vec<u8>)> {
        (v["headers"].as_array().unwrap().iter())
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    b64(&h[1]).unwrap_or_default(),
                )
            })
            .filter(|(n, _)| n.starts_with("kchain.") == kchain)
            .collect()
    }

    #[test]
    fn sigkilled_bridge_copies_exactly_once_on_kafka() {
        let t0 = Instant::now();
        let brokers = Broker::shared().brokers.clone();
        let env = Env::kafka(&brokers);
        env.ok(&["keygen", "--name", "bridge"], "");
        let raw = unique_name("bridge-raw");
        let to = unique_name("bridge-chained");
        env.ok(&["topic", "create", &raw, "--partitions", "2"], "");
        let n = 2000;
        let mut producer = std::process::Command::new(kchain_testkit::python())
            .args(["-c", PRODUCER, &brokers, &raw, &n.to_string()])
            .spawn()
            .unwrap();
        // Every other run sends each signed batch in many small produce requests, so that
        // a kill cuts batches short and the next run must adopt them.
        let adopted = kill_repeatedly(&env, (&raw, &to), 0xcafe, &|i| match i % 2 {
            0 => vec!["-X".into(), "batch.size=2048".into()],
            _ => Vec::new(),
        });
        assert!(
            producer.wait().unwrap().success(),
            "the Python producer failed"
        );
        let summary = finish(&env, (&raw, &to));
        let mut seen = vec![false; n];
        for p in 0..2 {
            let raws = read(&brokers, &raw, p);
            let chained = read(&brokers, &to, p);
            assert_eq!(chained.len(), raws.len(), "partition {p}: {summary}");
            for (c, r) in chained.iter().zip(&raws) {
                let src = headers(c, true)
                    .into_iter()
                    .find(|(n, _)| n == "kchain.src")
                    .unwrap();
                assert_eq!(src.1, r["offset"].to_string().into_bytes());
                for f in ["key", "value", "timestamp"] {
                    assert_eq!(c[f], r[f], "partition {p} offset {}", r["offset"]);
                }
                assert_eq!(headers(c, false), headers(r, false));
                let i: usize = String::from_utf8(headers(r, false)[0].1.clone())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(!seen[i], "raw record {i} twice");
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|s| *s), "every raw record arrived");
        env.ok(&["verify", &to], "");
        eprintln!(
            "kafka: {n} records, {KILLS} kills, {adopted} cut batch(es) adopted, {:?}",
            t0.elapsed()
        );
    }
}
