//! The monitor's `/metrics` page parses and carries its figures, `/healthz` answers, and a
//! webhook receives the alert as JSON.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kchain_http::axum::{routing::post, Router};
use kchain_http::{Client, ClientOptions, Server, ServerOptions};
use kchain_monitor::Alerts;
use support::*;

#[test]
fn metrics_carry_the_figures_and_the_webhook_gets_the_alert() {
    let dir = kchain_testkit::tempdir();
    let log = embedded(dir.path());
    let (key, state) = (key(), kchain_testkit::tempdir());
    let trust = trust(&key);
    let t = topic(&log, "metrics");
    write(&log, &t, &key, 30, true);
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&got);
    let hook = Router::new().route(
        "/hook",
        post(move |body: String| {
            sink.lock().unwrap().push(body);
            async { "ok" }
        }),
    );
    let hook = Server::start(&ServerOptions::new("127.0.0.1:0"), hook).unwrap();
    let client = Client::new(&ClientOptions::default()).unwrap();
    let lines = Lines::default();
    let alerts = Alerts::new(
        Box::new(lines.clone()),
        Some((format!("{}/hook", hook.url()), client.clone())),
    );
    let (page, _) = live(&log, &trust, options(&t, state.path()), alerts, |page| {
        let server = kchain_monitor::serve("127.0.0.1:0", Arc::clone(page)).unwrap();
        wait_entries(page, &t, 30, Duration::from_secs(20));
        let health = client.get(&format!("{}/healthz", server.url())).unwrap();
        assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
        append_raw(&log, &t, &[forged_after_tip(&log, &t)]);
        lines.wait_for("tamper", Instant::now(), Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(300));
        let r = client.get(&format!("{}/metrics", server.url())).unwrap();
        assert_eq!(r.status, 200);
        assert!(r
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        r.text()
    });
    let labels = format!("{{topic=\"{t}\",partition=\"0\"}}");
    let m = |name: &str| metric(&page, &format!("{name}{labels}"));
    assert_eq!(
        m("kchain_monitor_entries_verified_total"),
        Some(30.0),
        "{page}"
    );
    assert_eq!(m("kchain_monitor_records_read_total"), Some(31.0), "{page}");
    assert_eq!(m("kchain_monitor_stopped"), Some(1.0));
    assert_eq!(m("kchain_monitor_checkpoint_size"), Some(30.0));
    assert!(m("kchain_monitor_checkpoint_age_seconds").unwrap() >= 0.0);
    let tamper = metric(&page, "kchain_monitor_alerts_total{kind=\"tamper\"}");
    assert_eq!(tamper, Some(1.0), "{page}");
    assert_eq!(metric(&page, "kchain_monitor_log_up"), Some(1.0));
    // Every sample line is `name{labels} value` under its family's HELP and TYPE.
    for l in page.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = l.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{l}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let posted = got.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let alert: serde_json::Value = serde_json::from_str(&posted[0]).unwrap();
    assert_eq!(alert["kind"], "tamper");
}
