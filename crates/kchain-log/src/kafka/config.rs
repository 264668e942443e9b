//! Settings of the Kafka backend and the librdkafka configurations built from them.
//!
//! Every client starts from kchain's defaults for its role (below) and then applies
//! [`KafkaOptions::properties`] in order, so that a user's `-X key=value` always wins, as in
//! kcat. The defaults that correctness rests on are the producer's `enable.idempotence=true`
//! and `acks=all` (no loss, no duplicates, no reordering within a partition), and the
//! consumer's `auto.offset.reset=error` (a reader never skips records silently).
//!
//! librdkafka's own timeouts given as properties also set the backend's waits (see
//! [`KafkaOptions::resolved`]): `-X socket.timeout.ms=2000` makes `connect` give up after 2 s,
//! not after kchain's default.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;

use crate::error::LogError;

/// Settings of a [`KafkaLog`](super::KafkaLog).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaOptions {
    /// librdkafka properties for every client, applied after kchain's defaults so they win:
    /// `security.protocol`, `sasl.*`, `ssl.*`, `client.id`, or a tuning knob such as
    /// `linger.ms`. Producer-only properties given to a consumer (and the reverse) make
    /// librdkafka log a warning and are otherwise ignored.
    pub properties: Vec<(String, String)>,
    /// How long `KafkaLog::connect` waits for the brokers' first answer (a metadata
    /// request) before it fails. A broker that refuses the connection fails it at once.
    pub connect_timeout: Duration,
    /// How long metadata, offset and admin requests may take before they fail.
    pub request_timeout: Duration,
    /// How long the producer keeps retrying a record before `append` fails
    /// (librdkafka's `message.timeout.ms`).
    pub delivery_timeout: Duration,
    /// Replication factor of topics that `create_topic` makes; `None` asks for the broker's
    /// `default.replication.factor` (KIP-464, brokers 2.4 and later).
    pub replication_factor: Option<i32>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            properties: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(120),
            replication_factor: None,
        }
    }
}

impl KafkaOptions {
    /// Adds one librdkafka property (like kcat's `-X key=value`).
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// The last value given for `key` in [`properties`](Self::properties).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// These options with librdkafka's timeouts given as [`properties`](Self::properties)
    /// carried over to the backend's own waits, so that a `-X` timeout wins as every `-X`
    /// does: `socket.timeout.ms` sets [`connect_timeout`](Self::connect_timeout) and
    /// [`request_timeout`](Self::request_timeout), `message.timeout.ms` sets
    /// [`delivery_timeout`](Self::delivery_timeout). Fails with
    /// [`LogError::InvalidArgument`] for a value that is not a number of milliseconds.
    pub fn resolved(&self) -> Result<KafkaOptions, LogError> {
        let mut out = self.clone();
        if let Some(t) = self.millis_property("socket.timeout.ms")? {
            out.connect_timeout = t;
            out.request_timeout = t;
        }
        if let Some(t) = self.millis_property("message.timeout.ms")? {
            out.delivery_timeout = t;
        }
        Ok(out)
    }

    /// The last value of property `key` as a duration in milliseconds.
    fn millis_property(&self, key: &str) -> Result<Option<Duration>, LogError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value.trim().parse::<u64>() {
            Ok(ms) => Ok(Some(Duration::from_millis(ms))),
            Err(_) => Err(LogError::InvalidArgument(format!(
                "librdkafka property {key}={value}: expected a number of milliseconds"
            ))),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), LogError> {
        if self.connect_timeout.is_zero()
            || self.request_timeout.is_zero()
            || self.delivery_timeout.is_zero()
        {
            return Err(LogError::InvalidArgument(
                "connect_timeout, request_timeout and delivery_timeout must be positive"
                    .to_string(),
            ));
        }
        if let Some((k, _)) = self.properties.iter().find(|(k, _)| k.trim().is_empty()) {
            return Err(LogError::InvalidArgument(format!(
                "empty librdkafka property name {k:?}"
            )));
        }
        Ok(())
    }

    /// The largest record the producer sends (librdkafka's `message.max.bytes`).
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.get("message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    }

    /// The most bytes of records one produce request of the producer carries: librdkafka
    /// cuts requests at `batch.size` or `message.max.bytes`, whichever is smaller.
    pub(crate) fn max_request_bytes(&self) -> u64 {
        let batch: u64 = self
            .get("batch.size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(BATCH_SIZE);
        batch.min(self.max_record_bytes() as u64)
    }

    fn base(&self, brokers: &str, role: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers)
            .set("client.id", format!("kchain-{role}"))
            .set(
                "socket.timeout.ms",
                millis(self.request_timeout.max(Duration::from_secs(10))),
            )
            // The backend reports its own errors; librdkafka's logs go to the `log` crate.
            .set("log.connection.close", "false");
        c
    }

    fn finish(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.properties {
            c.set(k.trim(), v);
        }
        c
    }

    /// An idempotent producer for one appender (see the module docs of `appender`).
    pub(crate) fn producer(&self, brokers: &str) -> ClientConfig {
        let mut c = self.base(brokers, "producer");
        c.set("enable.idempotence", "true")
            .set("enable.gapless.guarantee", "true")
            .set("acks", "all")
            // A topic deleted under an appender must not come back, empty, on a broker
            // that creates topics on first use.
            .set("allow.auto.create.topics", "false")
            // Idempotence keeps order with up to 5 requests in flight per partition.
            .set("max.in.flight.requests.per.connection", "5")
            .set("message.timeout.ms", millis(self.delivery_timeout))
            // Requests of up to just under the broker's default 1 MiB batch limit
            // (`message.max.bytes` of Kafka). The appender hands librdkafka one request's
            // worth at a time and pushes it out itself (see `feeder`), so linger matters
            // little; a long one would not help: librdkafka wakes its broker thread by timer
            // while a request is out (measured: 100 ms cut chained produce on tansu to a
            // third when whole batches were queued, 1,000 ms to a twentieth).
            .set("linger.ms", "5")
            .set("batch.size", BATCH_SIZE.to_string())
            .set("batch.num.messages", "100000")
            .set("compression.type", "none")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576");
        self.finish(c)
    }

    /// A consumer that reads assigned partitions only: no group, no commits, never resets.
    pub(crate) fn consumer(&self, brokers: &str) -> ClientConfig {
        let mut c = self.base(brokers, "reader");
        // librdkafka wants a group.id even for assigned partitions; the reader never joins
        // the group or commits to it, so a name of its own keeps it out of everyone's way.
        c.set("group.id", unique_group_id())
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            // Records past the start offset never vanish silently under a reader.
            .set("auto.offset.reset", "error")
            // kchain writes no transactions; reading up to the high watermark does not
            // depend on the broker's last-stable-offset bookkeeping.
            .set("isolation.level", "read_uncommitted")
            // A broker answers a fetch as soon as it has a record (fetch.min.bytes=1) or
            // after this long: how often an idle reader asks again. Kafka answers at once
            // when records are there, but some brokers do not: tansu 0.6 holds every fetch
            // for the full wait, which capped a reader at one 5 MiB fetch per 100 ms
            // (~140,000 chained records/s) and put 100 ms into each hop's lag. 10 ms costs
            // an idle reader 100 small requests a second; `-X fetch.wait.max.ms=500`
            // (librdkafka's default) suits many idle followers on a real cluster.
            .set("fetch.wait.max.ms", "10")
            .set("fetch.error.backoff.ms", "50")
            .set("max.partition.fetch.bytes", "8388608")
            .set("fetch.max.bytes", "67108864")
            .set("receive.message.max.bytes", "100000000")
            .set("queued.min.messages", "100000")
            .set("queued.max.messages.kbytes", "262144");
        self.finish(c)
    }

    /// A consumer used only for metadata and watermark queries.
    pub(crate) fn metadata(&self, brokers: &str) -> ClientConfig {
        let mut c = self.base(brokers, "metadata");
        c.set("enable.auto.commit", "false")
            .set("allow.auto.create.topics", "false")
            .set("isolation.level", "read_uncommitted");
        self.finish(c)
    }

    /// The admin client (create topics, describe configs).
    pub(crate) fn admin(&self, brokers: &str) -> ClientConfig {
        let c = self.base(brokers, "admin");
        self.finish(c)
    }
}

/// The producer's `batch.size`: the most bytes of one produce request.
const BATCH_SIZE: u64 = 1_000_000;

/// `kchain-reader-<pid>-<time>-<n>`: unique per reader, so no two readers share a group.
fn unique_group_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "kchain-reader-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn millis(d: Duration) -> String {
    d.as_millis().min(i32::MAX as u128).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_win() {
        let opts = KafkaOptions::default()
            .property("linger.ms", "50")
            .property("security.protocol", "ssl");
        let c = opts.producer("localhost:9092");
        assert_eq!(c.get("linger.ms"), Some("50"));
        assert_eq!(c.get("security.protocol"), Some("ssl"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(opts.consumer("b").get("auto.offset.reset"), Some("error"));
    }

    /// A broker that holds every fetch for the full wait (tansu) must not cap a reader at
    /// one fetch per 100 ms; a user's `-X` still wins.
    #[test]
    fn readers_ask_again_after_10_ms() {
        let c = KafkaOptions::default().consumer("b");
        assert_eq!(c.get("fetch.wait.max.ms"), Some("10"));
        assert_eq!(
            c.get("fetch.min.bytes"),
            None,
            "librdkafka's default, 1 byte"
        );
        let slow = KafkaOptions::default().property("fetch.wait.max.ms", "500");
        assert_eq!(slow.consumer("b").get("fetch.wait.max.ms"), Some("500"));
    }

    #[test]
    fn timeout_properties_set_the_backend_waits() {
        let opts = KafkaOptions::default()
            .property("socket.timeout.ms", "2000")
            .property("message.timeout.ms", "7000")
            .resolved()
            .unwrap();
        assert_eq!(opts.connect_timeout, Duration::from_secs(2));
        assert_eq!(opts.request_timeout, Duration::from_secs(2));
        assert_eq!(opts.delivery_timeout, Duration::from_secs(7));
        assert_eq!(opts.producer("b").get("socket.timeout.ms"), Some("2000"));
        let untouched = KafkaOptions::default().resolved().unwrap();
        assert_eq!(untouched, KafkaOptions::default());
        let bad = KafkaOptions::default().property("socket.timeout.ms", "2s");
        assert!(matches!(bad.resolved(), Err(LogError::InvalidArgument(_))));
    }

    #[test]
    fn max_record_bytes_follows_the_property() {
        assert_eq!(KafkaOptions::default().max_record_bytes(), 1_000_000);
        let opts = KafkaOptions::default().property("message.max.bytes", "2000000");
        assert_eq!(opts.max_record_bytes(), 2_000_000);
    }
}
