//! The block explorer in a real browser: `kchain serve` on an embedded log with a chained
//! topic cosigned by a witness, the page loaded in headless Chromium (Debian's `chromium`,
//! installed by scripts/chromium.sh when missing); the DOM shows the tip height, the
//! witness's cosignature and "all verified"; after a forged record lands in the partition,
//! the overview the server keeps finds it on its own, and the reloaded page shows the
//! finding with its offset, marked as a finding. A screenshot is saved to
//! target/explorer.png for a person to look at.
//!
//! The overview alone is checked through HTTP on Kafka too (tansu), by the same binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use serde_json::Value;
use support::serve::Serving;
use support::Env;

/// `kchain serve --listen 127.0.0.1:0` of a test, stopped with SIGTERM when dropped.
struct Serve {
    _server: Serving,
    url: String,
}

impl Serve {
    fn start(env: &Env) -> Serve {
        let server = Serving::start(env, &[]);
        let url = server.url.clone();
        Serve {
            _server: server,
            url,
        }
    }

    fn overview(&self) -> Value {
        let client = kchain_http::Client::new(&Default::default()).unwrap();
        let r = client
            .get(&format!("{}/api/v1/overview", self.url))
            .unwrap();
        serde_json::from_str(&r.text()).unwrap()
    }

    /// The overview, polled until `done` holds (the server verifies on its own thread).
    fn overview_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.overview();
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what}: {v:#}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Debian's chromium, installed by the project's script when missing.
fn chromium() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chromium.sh");
    let out = Command::new(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Headless Chromium on `url` with a fresh profile, nothing fetched but the page, after a
/// virtual-time budget that lets the page's scripts and their requests finish; `what` is
/// `--dump-dom` or `--screenshot=FILE`. Returns standard output.
fn browse(dir: &Path, url: &str, what: &str) -> String {
    let profile = tempfile::tempdir_in(dir).unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(what)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A topic of 30 records (tip height 29) whose checkpoint witness `w1.example` cosigned.
fn setup(env: &Env) {
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders"], "");
    let input: String = (0..30).map(|i| format!("order {i}\n")).collect();
    env.ok(&["produce", "orders", "--batch", "8"], &input);
    let key = env.dir.path().join("w1.key");
    let key = key.to_str().unwrap();
    let out = env.ok(
        &["witness", "keygen", "--name", "w1.example", "--key", key],
        "",
    );
    let vkey = support::field(&out, "verifier key ");
    let trust = env.config().join("trust.toml");
    let mut text = std::fs::read_to_string(&trust).unwrap();
    text.push_str(&format!(
        "\n[[witness]]\nkey = \"{vkey}\"\n\n[policy]\nwitnesses = 1\n"
    ));
    std::fs::write(&trust, text).unwrap();
    let state = env.dir.path().join("w1-state");
    let state = state.to_str().unwrap();
    let run = ["witness", "run", "orders", "--key", key, "--state", state];
    env.ok(&[&run[..], &["--until-idle"]].concat(), "");
}

/// Where the screenshot goes: `target/explorer.png`, beside the binary's profile directory.
fn screenshot_path() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_kchain"));
    bin.parent().unwrap().parent().unwrap().join("explorer.png")
}

#[test]
fn the_page_shows_the_tip_then_a_forgery_in_red_with_its_offset() {
    let env = Env::new();
    setup(&env);
    let serve = Serve::start(&env);
    let v = serve.overview();
    let part = &v["topics"][0]["partitions"][0];
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(
        (part["tip_height"].as_u64(), part["end_offset"].as_u64()),
        (Some(29), Some(30))
    );
    let cosigned = &v["topics"][0]["newest_checkpoints"][0];
    assert_eq!(cosigned["size"], 30, "{v:#}");
    assert_eq!(
        cosigned["cosignatures"][0]["witness"], "w1.example",
        "{v:#}"
    );

    let client = kchain_http::Client::new(&Default::default()).unwrap();
    let metrics = client
        .get(&format!("{}/metrics", serve.url))
        .unwrap()
        .text();
    let tip = r#"kchain_tip_height{kind="topic",chain="orders/0"} 29"#;
    assert!(metrics.lines().any(|l| l == tip), "{tip} not in {metrics}");

    let page = format!("{}/explorer/", serve.url);
    let dom = browse(env.dir.path(), &page, "--dump-dom");
    assert!(dom.contains(r#"<td class="tip-height">29</td>"#), "{dom}");
    assert!(dom.contains(">all verified<"), "{dom}");
    assert!(dom.contains("w1.example"), "{dom}");
    assert!(!dom.contains(r#"class="finding""#), "{dom}");

    let intruder = kchain_core::WriterKey::generate("intruder");
    support::forge_on_embedded(&env, "orders", 0, Some(&intruder));
    let intruder = intruder.id().to_string();
    let v = serve.overview_until("the forgery found", |v| v["ok"] == false);
    let f = &v["topics"][0]["findings"][0];
    assert_eq!(
        (f["offset"].as_u64(), f["partition"].as_u64()),
        (Some(30), Some(0)),
        "{v:#}"
    );
    let kind = f["kind"].as_str().unwrap().to_owned();

    let dom = browse(env.dir.path(), &page, "--dump-dom");
    let marked = format!(r#"<li class="finding" data-offset="30" data-kind="{kind}">"#);
    assert!(dom.contains(&marked), "{marked} not in {dom}");
    assert!(dom.contains(&format!("{kind} at offset 30")), "{dom}");
    assert!(dom.contains(">findings<"), "{dom}");

    // The partition's entries from offset 20: links and signatures, the intruder's key id
    // on the forged record.
    let records = format!("{page}#/topics/orders/0/20");
    let dom = browse(env.dir.path(), &records, "--dump-dom");
    let row = r#"<tr class="finding" data-offset="30">"#;
    let row = dom
        .split(row)
        .nth(1)
        .unwrap_or_else(|| panic!("{row} not in {dom}"));
    let row = row.split("</tr>").next().unwrap();
    assert!(row.contains(&format!("<code>{intruder}</code>")), "{row}");
    assert!(
        row.contains(&format!(r#"<span class="finding">{kind}</span>"#)),
        "{row}"
    );

    let png = screenshot_path();
    let _ = std::fs::remove_file(&png);
    browse(
        env.dir.path(),
        &records,
        &format!("--screenshot={}", png.display()),
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "{}", png.display());
}

#[test]
fn the_root_redirects_to_the_explorer_and_its_assets_are_served() {
    let env = Env::new();
    env.ok(&["keygen", "--name", "acme"], "");
    let serve = Serve::start(&env);
    let client = kchain_http::Client::new(&Default::default()).unwrap();
    let page = client.get(&format!("{}/", serve.url)).unwrap().text();
    assert!(page.contains("<title>kchain explorer</title>"), "{page}");
    for asset in ["explorer.js", "explorer.css"] {
        let r = client
            .get(&format!("{}/explorer/{asset}", serve.url))
            .unwrap();
        assert!(r.text().len() > 500, "{asset}");
    }
    let v = serve.overview();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["topics"], serde_json::json!([]), "{v:#}");
}

/// On Kafka: the overview of a topic on a broker of this test's own (tansu).
#[cfg(feature = "kafka")]
#[test]
fn on_kafka_the_overview_shows_each_partition_tip() {
    let broker = kchain_testkit::Broker::start("sqlite");
    let env = Env::kafka(&broker.brokers);
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders", "--partitions", "2"], "");
    let input: String = (0..40).map(|i| format!("{i}\torder {i}\n")).collect();
    env.ok(&["produce", "orders", "-K", "\t", "--batch", "8"], &input);
    let serve = Serve::start(&env);
    let v = serve.overview();
    assert_eq!(v["backend"], "kafka", "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    let topics = v["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 1, "only the chained topic: {v:#}");
    let parts = topics[0]["partitions"].as_array().unwrap();
    let tips: u64 = parts.iter().map(|p| p["entries"].as_u64().unwrap()).sum();
    assert_eq!(tips, 40, "{v:#}");
    for p in parts {
        let entries = p["entries"].as_u64().unwrap();
        assert_eq!(p["tip_height"].as_u64(), entries.checked_sub(1), "{v:#}");
        assert_eq!(p["end_offset"].as_u64(), Some(entries), "{v:#}");
    }
}
