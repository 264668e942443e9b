//! `kchain serve`'s chained-topic routes through the binary: every endpoint on the embedded
//! log, tokens (none, wrong, another topic's), bodies too large or malformed (refused, and
//! nothing written), a JSON 404, TLS, /metrics, the OpenAPI file against the router's
//! routes, the writers flushed on SIGTERM, and produce and verify on Kafka.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{json, Value};
use support::serve::Serving;
use support::Env;

const TOKEN: &str = "orders-token-0123456789";
const OTHER: &str = "other-token-0123456789";

/// Calls on the server.
trait Calls {
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value);
    fn get(&self, path: &str) -> Value;
    fn post(&self, path: &str, body: &Value) -> (u16, Value);
}

impl Calls for Serving {
    /// `method path` with an optional bearer token and body: (status, body as JSON, or as
    /// a string when it is not JSON).
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
        let (status, body) = raw(&self.url, method, path, token, body);
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        (status, v)
    }

    fn get(&self, path: &str) -> Value {
        let (status, v) = self.call("GET", path, None, b"");
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(TOKEN), body.to_string().as_bytes())
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, body).
fn raw(url: &str, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let addr = url.strip_prefix("http://").expect("an http:// url");
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer 413 before reading the whole body, and close.
    let _ = s.write_all(body);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer: {}", String::from_utf8_lossy(&answer)));
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, answer[split + 4..].to_vec())
}

/// Writes a tokens file: TOKEN may write to `orders*` topics it is given, OTHER to `other`.
fn tokens(k: &Env, topics: &[&str]) -> String {
    let path = k.dir.path().join("tokens.toml");
    let list = topics
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &path,
        format!(
            "[[token]]\nname = \"orders\"\ntoken = \"{TOKEN}\"\ntopics = [{list}]\n\n\
             [[token]]\nname = \"other\"\ntoken = \"{OTHER}\"\ntopics = [\"other\"]\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// Starts `kchain serve --listen 127.0.0.1:0 ARGS` and reads its URL.
fn serve(k: &Env, args: &[&str]) -> Serving {
    Serving::start(k, args)
}

/// A key, a tokens file for `topics` and a server.
fn setup(k: &Env, topics: &[&str], args: &[&str]) -> Serving {
    k.ok(&["keygen", "--name", "api"], "");
    let t = tokens(k, topics);
    let mut all = vec!["--tokens", t.as_str()];
    all.extend_from_slice(args);
    serve(k, &all)
}

/// The end offset of `topic`/`p`, as the server inspects it.
fn end(s: &Serving, topic: &str, p: usize) -> u64 {
    s.get(&format!("/api/v1/topics/{topic}"))["partitions"][p]["end_offset"]
        .as_u64()
        .unwrap()
}

#[test]
fn every_topic_endpoint_on_the_embedded_log() {
    let k = Env::new();
    let s = setup(&k, &["orders"], &[]);
    let (st, v) = s.post(
        "/api/v1/topics",
        &json!({"name": "orders", "partitions": 2}),
    );
    assert_eq!((st, &v), (201, &json!({"name": "orders", "partitions": 2})));
    let (st, v) = s.post("/api/v1/topics", &json!({"name": "orders"}));
    assert_eq!((st, v["error"]["code"].as_str()), (409, Some("conflict")));
    let list = s.get("/api/v1/topics");
    assert!(list["topics"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "orders", "partitions": 2})));

    // One record with a key (Kafka's partitioner picks its partition), text and headers.
    let one = json!({"key": "k1", "value": "hello", "headers": {"source": "test"}, "partition": 0});
    let (st, v) = s.post("/api/v1/topics/orders/records", &one);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["records"],
        json!([{"partition": 0, "offset": 0, "height": 0}])
    );
    // A batch: base64 bytes that are not UTF-8, to partition 0 in order, and one keyed.
    let batch = json!({"records": [
        {"value_b64": "AP8=", "partition": 0},
        {"value": "third", "partition": 0},
        {"key": "k", "value": "elsewhere", "partition": 1},
    ]});
    let (st, v) = s.post("/api/v1/topics/orders/records", &batch);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["records"],
        json!([
            {"partition": 0, "offset": 1, "height": 1},
            {"partition": 0, "offset": 2, "height": 2},
            {"partition": 1, "offset": 0, "height": 0},
        ])
    );

    // Verified records, paged, as `consume --json` prints them.
    let page = s.get("/api/v1/topics/orders/partitions/0/records?limit=2");
    let recs = page["records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["value"], "hello");
    assert_eq!(recs[0]["key"], "k1");
    assert_eq!(recs[0]["headers"], json!({"source": "test"}));
    assert_eq!(recs[0]["verified"], true);
    assert_eq!(recs[1]["value"], json!({"base64": "AP8="}));
    assert_eq!(page["next"], 2);
    let page = s.get("/api/v1/topics/orders/partitions/0/records?from=2");
    assert_eq!(page["records"][0]["value"], "third");
    assert_eq!(page["next"], Value::Null);
    let cli = k.ok(
        &["consume", "orders", "-p", "0", "-e", "--json", "-c", "1"],
        "",
    );
    let cli: Value = serde_json::from_str(cli.lines().next().unwrap()).unwrap();
    let served = &s.get("/api/v1/topics/orders/partitions/0/records?limit=1")["records"][0];
    assert_eq!(&cli, served, "the same JSON as consume --json");

    // The verify report and its exit code.
    let v = s.get("/api/v1/topics/orders/verify");
    assert_eq!(
        (v["ok"].as_bool(), v["exit"].as_u64()),
        (Some(true), Some(0))
    );
    assert_eq!(v["partitions"][0]["entries"], 3);

    // Inspect: tips, and entries of a partition.
    let v = s.get("/api/v1/topics/orders?partition=0&count=2");
    assert_eq!(v["partitions"][0]["end_offset"], 3);
    assert_eq!(v["partitions"][0]["tip"]["height"], 2);
    assert_eq!(v["partitions"][1]["tip"]["height"], 0);
    assert_eq!(v["entries"].as_array().unwrap().len(), 2);
    assert_eq!(v["entries"][1]["link_ok"], true);

    // A checkpoint signed now, then the newest one and an inclusion proof.
    let (st, v) = s.post("/api/v1/topics/orders/checkpoint", &json!({}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["partitions"][0]["checkpoint"]["size"], 3);
    assert_eq!(v["partitions"][1]["checkpoint"]["size"], 1);
    let v = s.get("/api/v1/topics/orders/checkpoint");
    let note = v["partitions"][0]["checkpoint"]["note"].as_str().unwrap();
    assert!(note.contains("/orders/0\n3\n"), "{note}");
    let proof = s.get("/api/v1/topics/orders/partitions/0/proof?offset=1");
    let file = k.dir.path().join("proof.json");
    std::fs::write(&file, proof.to_string()).unwrap();
    let out = k.ok(&["verify-proof", file.to_str().unwrap(), "--json"], "");
    assert_eq!(support::json(&out)["ok"], true, "{out}");
    // More records, a second checkpoint, and the consistency proof between the two.
    let more = json!({"records": [{"value": "4", "partition": 0}, {"value": "5", "partition": 0}]});
    assert_eq!(s.post("/api/v1/topics/orders/records", &more).0, 200);
    assert_eq!(
        s.post("/api/v1/topics/orders/checkpoint", &json!({})).0,
        200
    );
    let proof = s.get("/api/v1/topics/orders/partitions/0/consistency?old=3");
    std::fs::write(&file, proof.to_string()).unwrap();
    let out = k.ok(&["verify-proof", file.to_str().unwrap(), "--json"], "");
    assert_eq!(support::json(&out)["ok"], true, "{out}");
    let (st, _) = s.call(
        "GET",
        "/api/v1/topics/orders/partitions/0/consistency?old=4",
        None,
        b"",
    );
    assert_eq!(st, 404, "no checkpoint of size 4");
    let (st, _) = s.call(
        "GET",
        "/api/v1/topics/orders/partitions/0/proof?offset=99",
        None,
        b"",
    );
    assert_eq!(st, 404);

    // /metrics counts the requests, the records and the tips.
    let (st, metrics) = raw(&s.url, "GET", "/metrics", None, b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert_eq!(st, 200);
    assert!(
        metrics.contains("kchain_records_produced_total 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "kchain_http_requests_total{method=\"POST\",route=\"/api/v1/topics/{topic}/records\",status=\"200\"} 3"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("kchain_tip_height{kind=\"topic\",chain=\"orders/0\"} 4"),
        "{metrics}"
    );

    // Records appended after the last checkpoint are covered by one when the server stops.
    let last = json!({"value": "6", "partition": 0});
    assert_eq!(s.post("/api/v1/topics/orders/records", &last).0, 200);
    assert_eq!(s.stop(), Some(0));
    let out = k.ok(&["prove", "orders", "--offset", "5", "--output", "-"], "");
    assert!(
        out.contains("inclusion") || out.contains("\"offset\""),
        "{out}"
    );
}

#[test]
fn writes_need_the_topic_token() {
    let k = Env::new();
    let s = setup(&k, &["orders"], &[]);
    let create = json!({"name": "orders"}).to_string();
    let path = "/api/v1/topics";
    assert_eq!(s.call("POST", path, None, create.as_bytes()).0, 401);
    let (st, v) = s.call("POST", path, Some("not-a-token-at-all"), create.as_bytes());
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (st, v) = s.call("POST", path, Some(OTHER), create.as_bytes());
    assert_eq!((st, v["error"]["code"].as_str()), (403, Some("forbidden")));
    assert!(s.get(path)["topics"].as_array().unwrap().is_empty());
    assert_eq!(s.post(path, &json!({"name": "orders"})).0, 201);

    let rec = json!({"value": "x"}).to_string();
    let records = "/api/v1/topics/orders/records";
    assert_eq!(s.call("POST", records, None, rec.as_bytes()).0, 401);
    assert_eq!(
        s.call(
            "POST",
            records,
            Some("wrong-wrong-wrong-wrong"),
            rec.as_bytes()
        )
        .0,
        401
    );
    assert_eq!(s.call("POST", records, Some(OTHER), rec.as_bytes()).0, 403);
    let sign = "/api/v1/topics/orders/checkpoint";
    assert_eq!(s.call("POST", sign, Some(OTHER), b"").0, 403);
    assert_eq!(end(&s, "orders", 0), 0, "nothing written");
    assert_eq!(s.call("POST", records, Some(TOKEN), rec.as_bytes()).0, 200);
    assert_eq!(end(&s, "orders", 0), 1);
}

#[test]
fn bad_requests_are_refused_and_write_nothing() {
    let k = Env::new();
    let s = setup(&k, &["*"], &["--max-body", "2048"]);
    assert_eq!(s.post("/api/v1/topics", &json!({"name": "orders"})).0, 201);
    let records = "/api/v1/topics/orders/records";
    let big = json!({"value": "x".repeat(4096)});
    let bad: Vec<(&[u8], u16)> = vec![
        (b"{not json", 400),
        (b"", 400),
        (br#"{"records": "no"}"#, 422),
        (br#"{"value": 7}"#, 422),
        (br#"{"value": "x", "surprise": 1}"#, 422),
        (br#"{"records": []}"#, 400),
        (br#"{"value_b64": "not base64!"}"#, 400),
        (br#"{"value": "x", "value_b64": "eA=="}"#, 400),
        (br#"{"value": "x", "partition": 9}"#, 400),
        (br#"{"value": "x", "headers": {"kchain.height": "7"}}"#, 400),
    ];
    for (body, status) in bad {
        let (st, v) = s.call("POST", records, Some(TOKEN), body);
        let text = String::from_utf8_lossy(body);
        assert_eq!(st, status, "{text}: {v}");
        assert!(v["error"]["message"].is_string(), "{text}: {v}");
    }
    let (st, v) = s.call("POST", records, Some(TOKEN), big.to_string().as_bytes());
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{v}"
    );
    assert_eq!(end(&s, "orders", 0), 0, "nothing written");

    let (st, v) = s.call("GET", "/no/such/route", None, b"");
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (st, v) = s.call("GET", "/api/v1/topics/nope/verify", None, b"");
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (st, _) = s.call(
        "GET",
        "/api/v1/topics/orders/partitions/x/records",
        None,
        b"",
    );
    assert_eq!(st, 400);
    let (st, _) = s.call(
        "GET",
        "/api/v1/topics/orders/partitions/3/records",
        None,
        b"",
    );
    assert_eq!(st, 404);
    let (st, _) = s.call(
        "GET",
        "/api/v1/topics/orders/partitions/0/records?limit=0",
        None,
        b"",
    );
    assert_eq!(st, 400);
    let (st, _) = s.call("GET", "/api/v1/topics/orders/partitions/0/proof", None, b"");
    assert_eq!(st, 400, "offset is required");
    // A valid record still goes through afterwards.
    assert_eq!(s.post(records, &json!({"value": "ok"})).0, 200);
    assert_eq!(end(&s, "orders", 0), 1);
}

#[test]
fn too_many_records_in_one_request_are_refused() {
    let k = Env::new();
    let s = setup(&k, &["orders"], &[]);
    assert_eq!(s.post("/api/v1/topics", &json!({"name": "orders"})).0, 201);
    let records: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    let (st, v) = s.post(
        "/api/v1/topics/orders/records",
        &json!({"records": records}),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(end(&s, "orders", 0), 0);
}

#[test]
fn a_finding_stops_the_page_and_verify_says_exit_3() {
    let k = Env::new();
    let s = setup(&k, &["orders"], &[]);
    let body = json!({"name": "orders", "partitions": 2});
    assert_eq!(s.post("/api/v1/topics", &body).0, 201);
    let one = json!({"value": "trusted", "partition": 0});
    assert_eq!(s.post("/api/v1/topics/orders/records", &one).0, 200);
    // Another process appends to partition 1 with a key the trust file does not hold.
    let other = k.dir.path().join("other.key");
    let other = other.to_str().unwrap();
    k.ok(&["keygen", "--key-file", other, "--no-trust"], "");
    let args = ["--key-file", other, "produce", "orders", "-p", "1"];
    k.ok(&args, "forged\n");
    let page = s.get("/api/v1/topics/orders/partitions/1/records");
    assert_eq!(page["records"], json!([]));
    assert_eq!(page["finding"]["offset"], 0, "{page}");
    assert_eq!(page["next"], Value::Null);
    assert_eq!(
        s.get("/api/v1/topics/orders/partitions/0/records")["records"][0]["value"],
        "trusted"
    );
    let v = s.get("/api/v1/topics/orders/verify");
    assert_eq!(
        (v["ok"].as_bool(), v["exit"].as_u64()),
        (Some(false), Some(3)),
        "{v}"
    );
    let (_, metrics) = raw(&s.url, "GET", "/metrics", None, b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("kchain_findings_total{kind="), "{metrics}");
}

/// The `kchain_pages_resumed_total` counter of the server's `/metrics`.
fn pages_resumed(s: &Serving) -> u64 {
    let (_, metrics) = raw(&s.url, "GET", "/metrics", None, b"");
    let metrics = String::from_utf8(metrics).unwrap();
    let line = (metrics.lines())
        .find(|l| l.starts_with("kchain_pages_resumed_total "))
        .unwrap_or_else(|| panic!("no pages counter in {metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn pages_go_on_from_the_last_page_and_a_later_forgery_is_still_found() {
    let k = Env::new();
    let s = setup(&k, &["events"], &[]);
    let body = json!({"name": "events", "partitions": 2});
    assert_eq!(s.post("/api/v1/topics", &body).0, 201);
    let lines: String = (0..250).map(|i| format!("event {i}\n")).collect();
    k.ok(&["produce", "events", "-p", "1"], &lines);

    let mut values = Vec::new();
    let mut from = 0;
    let mut pages = 0;
    loop {
        let page = s.get(&format!(
            "/api/v1/topics/events/partitions/1/records?from={from}&limit=40"
        ));
        pages += 1;
        for r in page["records"].as_array().unwrap() {
            values.push(r["value"].as_str().unwrap().to_owned());
        }
        match page["next"].as_u64() {
            Some(next) => from = next,
            None => break,
        }
    }
    let want: Vec<String> = (0..250).map(|i| format!("event {i}")).collect();
    assert_eq!(values, want);
    assert_eq!(pages, 7);
    assert_eq!(
        pages_resumed(&s),
        6,
        "every page after the first goes on from the one before"
    );
    // The same page again goes on from where that page began.
    let again = s.get("/api/v1/topics/events/partitions/1/records?from=120&limit=40");
    assert_eq!(again["records"][0]["value"], "event 120");
    assert_eq!(again["next"], 160);
    assert_eq!(pages_resumed(&s), 7);

    // A record appended later by someone without a trusted key: the next page finds it.
    let intruder = kchain_core::WriterKey::generate("intruder");
    support::forge_on_embedded(&k, "events", 1, Some(&intruder));
    let page = s.get("/api/v1/topics/events/partitions/1/records?from=250");
    assert_eq!(page["records"], json!([]));
    assert_eq!(page["finding"]["offset"], 250, "{page}");
    assert_eq!(page["next"], Value::Null);
    assert_eq!(pages_resumed(&s), 8);
    // A page before it: its records are delivered; the 250 were one signed batch, so
    // verifying them reads on to the forgery, which the page names too.
    let page = s.get("/api/v1/topics/events/partitions/1/records?from=10&limit=2");
    assert_eq!(page["records"][0]["value"], "event 10");
    assert_eq!(page["records"][1]["value"], "event 11");
    assert_eq!(page["finding"]["offset"], 250, "{page}");
}

#[test]
fn a_quiet_topic_gets_its_checkpoint_within_seconds() {
    let k = Env::new();
    let s = setup(&k, &["orders"], &[]);
    assert_eq!(s.post("/api/v1/topics", &json!({"name": "orders"})).0, 201);
    let one = json!({"value": "only"});
    assert_eq!(s.post("/api/v1/topics/orders/records", &one).0, 200);
    let size = || {
        s.get("/api/v1/topics/orders/checkpoint")["partitions"][0]["checkpoint"]["size"].as_u64()
    };
    assert_eq!(size(), None, "none yet");
    // The writer signs one 10 s after the record it does not cover, with no append since.
    assert!(kchain_testkit::eventually(20, || size() == Some(1)));
}

#[test]
fn tls_with_a_test_certificate() {
    let k = Env::new();
    let pki = kchain_http::TestPki::generate(k.dir.path()).unwrap();
    let cert = pki.server.cert.to_str().unwrap().to_owned();
    let key = pki.server.key.to_str().unwrap().to_owned();
    let s = setup(&k, &["orders"], &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let client = kchain_http::Client::new(&kchain_http::ClientOptions {
        ca_file: Some(pki.ca.clone()),
        ..Default::default()
    })
    .unwrap();
    let r = client.get(&format!("{}/api/v1/topics", s.url)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"topics": []})
    );
    // Without the CA the handshake fails.
    let plain = kchain_http::Client::new(&kchain_http::ClientOptions::default()).unwrap();
    assert!(plain.get(&format!("{}/healthz", s.url)).is_err());
}

/// The routes the router has, read from the sources of `src/serve/` (every `.route("PATH",
/// get(..).post(..))`), as (path, method).
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/serve");
    let mut files = vec![dir.clone()];
    let mut routes = BTreeSet::new();
    while let Some(f) = files.pop() {
        if f.is_dir() {
            files.extend(std::fs::read_dir(&f).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for part in text.split(".route(").skip(1) {
            let path = part.split('"').nth(1).unwrap().to_owned();
            let call = part.split(".route(").next().unwrap();
            for m in ["get", "post", "put", "delete", "patch"] {
                if call.contains(&format!("{m}(")) {
                    routes.insert((path.clone(), m.to_owned()));
                }
            }
        }
    }
    routes
}

#[test]
fn openapi_is_valid_json_and_names_every_route() {
    let k = Env::new();
    let s = serve(&k, &[]);
    let doc = s.get("/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(doc, file, "the server serves the file in docs/");
    let routes = routes_in_source();
    assert!(routes.len() >= 12, "{routes:?}");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| m.as_str() != "parameters")
                .map(move |m| (p.clone(), m.clone()))
        })
        .collect();
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in docs/openapi.json: {missing:?}"
    );
    // Every route documented is served.
    let not_served: Vec<_> = documented.difference(&routes).collect();
    assert!(
        not_served.is_empty(),
        "documented, not served: {not_served:?}"
    );
}

#[test]
fn produce_consume_and_verify_on_kafka() {
    let broker = kchain_testkit::Broker::shared();
    let k = Env::kafka(&broker.brokers);
    let topic = kchain_testkit::unique_name("api");
    let s = setup(&k, &[&topic], &[]);
    let (st, v) = s.post("/api/v1/topics", &json!({"name": topic, "partitions": 1}));
    assert_eq!(st, 201, "{v}");
    let batch = json!({"records": [{"value": "a"}, {"value": "b"}, {"value": "c"}]});
    let (st, v) = s.post(&format!("/api/v1/topics/{topic}/records"), &batch);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["records"][2],
        json!({"partition": 0, "offset": 2, "height": 2})
    );
    let page = s.get(&format!("/api/v1/topics/{topic}/partitions/0/records"));
    let values: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["a", "b", "c"]);
    let v = s.get(&format!("/api/v1/topics/{topic}/verify"));
    assert_eq!(v["exit"], 0, "{v}");
    assert_eq!(v["backend"]["kind"], "kafka");
}
