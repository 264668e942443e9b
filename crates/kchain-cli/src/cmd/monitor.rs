//! `monitor`: the long-running auditor of chained topics and ledgers (kchain-monitor), with
//! its alerts on standard output, an optional webhook and `/metrics`.
//!
//! ```text
//!  trust file ──► writers, [policy] namespace, [[witness]] url ──► RemoteWitness (HTTP)
//!  --ledger CHAIN ──► CHAIN.blocks (its genesis names the sealers; no trust file needed)
//!  the log (-b or --data-dir) ──► Monitor::run until SIGINT/SIGTERM (or --once)
//!      alerts ──► stdout (JSON lines), --webhook;   figures ──► --metrics /metrics, /healthz
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use kchain_core::{CheckpointTrust, Trust};
use kchain_monitor::{Alerts, Monitor, MonitorOptions};

use crate::cmd::anchors::read_checkpoint_trust;
use crate::global::{load_trust_on, open_log, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// The chained topics to watch (every partition of each).
    #[arg(required_unless_present = "ledgers")]
    pub topics: Vec<String>,
    /// The monitor's own state: where each partition's verification stands, its chain
    /// trees, the checkpoints seen and the alerts raised (resumed on restart).
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Serve Prometheus metrics at http://ADDR/metrics (and /healthz), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// POST every alert as JSON to this URL (retried; never holds verification up).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Alert when no new checkpoint arrives for this many seconds.
    #[arg(long, value_name = "SECS")]
    pub stall_after: Option<u64>,
    /// Milliseconds between passes.
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,
    /// One pass (until every partition is read to its end), then exit: 0 clean, 3
    /// findings, 1 error.
    #[arg(long)]
    pub once: bool,
    /// A ledger to watch (its blocks topic is CHAIN.blocks), by the rules of `ledger
    /// verify`, with its sealers' checkpoints; repeat for more.
    #[arg(long = "ledger", value_name = "CHAIN")]
    pub ledgers: Vec<String>,
}

pub fn monitor(g: &Global, a: &MonitorArgs) -> Result<Outcome> {
    let log = open_log(g, false)?;
    // Ledgers alone need no trust file: their genesis names the sealers.
    let no_trust = a.topics.is_empty() && g.trust.is_none() && !g.trust_path().exists();
    let (trust, checkpoint_trust) = if no_trust {
        (Trust::default(), CheckpointTrust::default())
    } else {
        let ct = read_checkpoint_trust(&g.trust_path())?.1;
        (load_trust_on(g, log.as_ref())?, ct.unwrap_or_default())
    };
    let mut opts = MonitorOptions::new(a.topics.clone(), a.state.clone());
    opts.ledgers = a.ledgers.clone();
    opts.interval = Duration::from_millis(a.interval_ms.max(10));
    opts.stall_after = a.stall_after.map(Duration::from_secs);
    opts.namespace = checkpoint_trust.namespace.clone();
    opts.max_age = checkpoint_trust.max_age;
    opts.witnesses = checkpoint_trust.witnesses.clone();
    opts.threshold = checkpoint_trust.threshold;
    let webhook = match &a.webhook {
        Some(url) => Some((url.clone(), g.http_client()?)),
        None => None,
    };
    let alerts = Alerts::new(Box::new(std::io::stdout()), webhook);
    let urls: Vec<String> = (checkpoint_trust.endpoints.iter())
        .map(|e| e.url.clone())
        .collect();
    let quiet = g.quiet;
    let mut m = Monitor::open(log.as_ref(), &trust, opts, alerts)
        .context("starting the monitor")?
        .with_witnesses(g.remote_witnesses(&urls)?)
        .on_status(move |s| {
            if !quiet {
                eprintln!("kchain monitor: {s}");
            }
        });
    let _server = match &a.metrics {
        Some(bind) => {
            let server = kchain_monitor::serve(bind, m.metrics_page())
                .with_context(|| format!("serving metrics on {bind}"))?;
            if !g.quiet {
                eprintln!("kchain monitor: metrics at {}/metrics", server.url());
            }
            Some(server)
        }
        None => None,
    };
    if a.once {
        m.run_once()?;
    } else {
        crate::stop::watch();
        m.run(&|| crate::stop::requested().is_some())?;
    }
    if !g.quiet {
        eprintln!(
            "kchain monitor: {} entries verified ({} records read by this run)",
            m.entries_verified(),
            m.records_read()
        );
    }
    Ok(if m.findings() > 0 {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}
