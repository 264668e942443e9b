//! Alerts: what the monitor tells its operator, once each, as JSON lines on standard output
//! and optionally as webhook POSTs.
//!
//! ```text
//!  Monitor ──► Alerts::raise ──► seen before (state)? drop
//!                   │ new
//!                   ├──► stdout: one JSON line, flushed
//!                   └──► channel ──► webhook thread: POST, retries with backoff
//!                                    (verification never waits for it)
//! ```

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// A record fails verification: forged, modified, a broken link, unsigned.
    Tamper,
    /// A writer-signed checkpoint whose root is not the monitor's tree at its size, or two
    /// checkpoints of one size with different roots.
    Fork,
    /// The log ends below what the monitor verified, a checkpoint is smaller than one seen
    /// before, or the record at the resume point changed.
    Rollback,
    /// No new checkpoint for longer than the stall limit.
    Stall,
    /// The chain holds entries past the newest checkpoint the trust policy accepts, and that
    /// checkpoint's newest witness cosignature is older than `[policy] max_age`.
    Stale,
}

impl AlertKind {
    /// The stable machine name (`tamper`, `fork`, `rollback`, `stall`, `stale`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Tamper => "tamper",
            AlertKind::Fork => "fork",
            AlertKind::Rollback => "rollback",
            AlertKind::Stall => "stall",
            AlertKind::Stale => "stale",
        }
    }

    /// Every kind, for metrics that list them all.
    pub const ALL: [AlertKind; 5] = [
        AlertKind::Tamper,
        AlertKind::Fork,
        AlertKind::Rollback,
        AlertKind::Stall,
        AlertKind::Stale,
    ];
}

/// One alert: a JSON line `{"kind", "chain", "partition", "offset", "detail", "time"}`, and
/// `"ledger"` when the chain is a ledger's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// The chained topic (or ledger chain) it is about.
    pub chain: String,
    pub partition: u32,
    /// The offset (or tree size, for checkpoints) it names.
    pub offset: u64,
    pub detail: String,
    /// Seconds since the Unix epoch when it was raised.
    pub time: u64,
    /// The ledger's name, when `chain` is a ledger's blocks topic (not printed otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
    /// What makes it the same alert again (not printed): a restart does not re-raise it.
    #[serde(skip)]
    pub key: String,
}

impl Alert {
    /// An alert raised now; `key` names what it is about, so that it is raised once.
    pub fn new(
        kind: AlertKind,
        chain: &str,
        partition: u32,
        offset: u64,
        key: String,
        detail: String,
    ) -> Alert {
        Alert {
            kind,
            chain: chain.to_owned(),
            partition,
            offset,
            detail,
            time: (kchain_core::time::now_ms() / 1000) as u64,
            ledger: None,
            key: format!("{}:{chain}:{partition}:{key}", kind.as_str()),
        }
    }

    /// The JSON line (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an alert always serializes")
    }
}

/// Where alerts go: standard output (or any writer), the webhook, and the counts.
pub struct Alerts {
    out: Box<dyn Write + Send>,
    webhook: Option<(Sender<String>, JoinHandle<()>)>,
    /// How many alerts of each kind this process raised.
    pub raised: [u64; 5],
}

impl Alerts {
    /// Alerts written to `out`, and POSTed to `webhook` with `client` when given.
    pub fn new(out: Box<dyn Write + Send>, webhook: Option<(String, kchain_http::Client)>) -> Self {
        let webhook = webhook.map(|(url, client)| {
            let (tx, rx) = channel();
            let thread = std::thread::spawn(move || post_all(&url, &client, rx));
            (tx, thread)
        });
        Alerts {
            out,
            webhook,
            raised: [0; 5],
        }
    }

    /// Raises `alert` unless `seen` holds its key already (then it returns false). Remembers
    /// the key in `seen`; the caller saves it with the monitor's state.
    pub fn raise(&mut self, seen: &mut BTreeSet<String>, alert: Alert) -> bool {
        if !seen.insert(alert.key.clone()) {
            return false;
        }
        let line = alert.to_json();
        // An operator who closed standard output still gets the webhook and the metrics.
        let _ = writeln!(self.out, "{line}").and_then(|_| self.out.flush());
        if let Some((tx, _)) = &self.webhook {
            let _ = tx.send(line);
        }
        let i = AlertKind::ALL.iter().position(|k| *k == alert.kind);
        self.raised[i.expect("every kind is listed")] += 1;
        true
    }

    /// Waits (up to a few seconds) for the webhook to take the alerts raised so far.
    pub fn close(mut self) {
        if let Some((tx, thread)) = self.webhook.take() {
            drop(tx);
            let _ = thread.join();
        }
    }
}

/// The webhook thread: POSTs each line as JSON, retrying with backoff (5 tries, from 200 ms),
/// and drops a line it could not deliver (the stdout line and the metrics still carry it).
fn post_all(url: &str, client: &kchain_http::Client, rx: Receiver<String>) {
    for line in rx {
        let mut wait = Duration::from_millis(200);
        for _ in 0..5 {
            match client.post(url, "application/json", line.as_bytes()) {
                Ok(r) if (200..300).contains(&r.status) => break,
                _ => {
                    std::thread::sleep(wait);
                    wait *= 2;
                }
            }
        }
    }
}
