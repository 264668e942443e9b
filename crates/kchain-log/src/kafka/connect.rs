//! The first contact with the brokers, and why it failed.
//!
//! librdkafka never fails a request because a broker is unreachable: it queues the request,
//! reconnects with a backoff and reports the failure only through its error events. So
//! `connect` asks for metadata in short slices and reads those events in between, on a probe
//! client of its own that is dropped afterwards. The long-lived clients are left exactly as
//! librdkafka runs them: when `connect` served the metadata client's event queue instead, the
//! live-writing tests (`kchain-cli/tests/adversary_live.rs`) reported gaps on the memory-engine
//! broker, for a reason not yet understood.
//!
//! ```text
//! wait_for_brokers ──Metadata (250 ms slices)──> brokers ── answer ──> connected
//!        │
//!        └─ poll: error events ──> Transport { last transport error, all brokers down }
//!             all brokers down for DOWN_GRACE ──> "cannot reach broker B (connection refused)"
//!             connect_timeout passed          ──> "cannot reach broker B (no answer within T)"
//! ```
//!
//! "All brokers down" is not final at once: `localhost` may resolve to `::1` first, refuse
//! there and answer on `127.0.0.1` one reconnect later, so the backend gives librdkafka
//! [`DOWN_GRACE`] to try the other addresses before it gives up.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::common::backend;
use crate::error::LogError;

/// How long `connect` keeps trying after librdkafka has reported every broker down.
const DOWN_GRACE: Duration = Duration::from_secs(1);

/// The longest single metadata request while waiting, so that error events are read often.
const SLICE: Duration = Duration::from_millis(250);

/// A client context that remembers what librdkafka reported about the connections: the
/// last transport error (refused, unresolvable, TLS, SASL) and whether all brokers are down.
#[derive(Default)]
pub(crate) struct Transport {
    state: Mutex<TransportState>,
}

#[derive(Default)]
struct TransportState {
    last_error: Option<String>,
    all_down: bool,
}

impl Transport {
    fn state(&self) -> MutexGuard<'_, TransportState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for Transport {
    fn error(&self, error: KafkaError, reason: &str) {
        let mut state = self.state();
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => state.all_down = true,
            _ => state.last_error = Some(reason.to_string()),
        }
    }
}

impl ConsumerContext for Transport {}

/// Waits until the brokers answer a metadata request of `probe`, a client made for this
/// alone (its event queue is served here). Fails `DOWN_GRACE` after librdkafka reported
/// every broker down, or after `timeout`, naming the brokers and the cause.
pub(crate) fn wait_for_brokers(
    probe: &BaseConsumer<Transport>,
    brokers: &str,
    timeout: Duration,
) -> Result<(), LogError> {
    let start = Instant::now();
    let mut down_since = None;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if probe.fetch_metadata(None, left.min(SLICE)).is_ok() {
            return Ok(());
        }
        // Error events reach the context only when the client's queue is served.
        while probe.poll(Duration::ZERO).is_some() {}
        let (all_down, reason) = {
            let state = probe.context().state();
            (state.all_down, state.last_error.clone())
        };
        if all_down && down_since.is_none() {
            down_since = Some(Instant::now());
        }
        let gave_up = down_since.is_some_and(|t: Instant| t.elapsed() >= DOWN_GRACE);
        if gave_up || start.elapsed() >= timeout {
            let why = match reason {
                Some(reason) => cause(&reason),
                None => format!("no answer within {}", seconds(timeout)),
            };
            return Err(backend(format!("cannot reach broker {brokers} ({why})")));
        }
    }
}

/// The cause in one of librdkafka's transport error texts, e.g. `connection refused` in
/// `127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after
/// 0ms in state CONNECT)`.
fn cause(reason: &str) -> String {
    // "<host:port>/<broker id>: " names the broker, which the message names already.
    let text = match reason.split_once(": ") {
        Some((broker, rest)) if broker.contains('/') => rest,
        _ => reason,
    };
    let text = text.split(" (after ").next().unwrap_or(text);
    let text = match text.split_once(" failed: ") {
        Some((_, cause)) => cause,
        None => text,
    };
    let mut chars = text.trim().chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown transport error".to_string(),
    }
}

/// `10 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_of_librdkafka_errors() {
        for (reason, want) in [
            (
                "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused \
                 (after 0ms in state CONNECT)",
                "connection refused",
            ),
            (
                "nohost:9092/bootstrap: Failed to resolve 'nohost:9092': Name or service not \
                 known (after 3ms in state CONNECT)",
                "failed to resolve 'nohost:9092': Name or service not known",
            ),
            (
                "b:9092/1: Disconnected (after 5ms in state APIVERSION_QUERY)",
                "disconnected",
            ),
            ("", "unknown transport error"),
        ] {
            assert_eq!(cause(reason), want, "{reason}");
        }
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
