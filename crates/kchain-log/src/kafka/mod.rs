//! The Kafka backend: a [`Log`] on any Kafka-API broker (Apache Kafka, Confluent, Redpanda,
//! tansu), through `rdkafka` (librdkafka). Enabled by the crate feature `kafka`.
//!
//! ```text
//! Log contract            Kafka
//! ─────────────────────   ─────────────────────────────────────────────────────────────
//! topic, partition        topic, partition (created with retention.ms=-1 unless given,
//!                         cleanup.policy=delete, message.timestamp.type=CreateTime)
//! Record.key / value      record key / value, null and empty kept apart
//! Record.headers          record headers, in order, byte for byte (a null value reads as
//!                         empty)
//! Record.timestamp_ms     record timestamp (CreateTime, set by the producer); must be
//!                         positive: librdkafka sends "now" for 0, and -1 means "none"
//! append → offsets        idempotent producer, acks=all, explicit partition; offsets from
//!                         the delivery reports
//! end / start offset      high / low watermark (ListOffsets)
//! delete_records_before   DeleteRecords (KIP-107): the low watermark moves to the offset
//! reader                  consumer with the partition assigned: no group, no commits
//! TopicInfo.settings      DescribeConfigs: retention.ms, retention.bytes, cleanup.policy,
//!                         message.timestamp.type
//! ```
//!
//! What Kafka cannot give, the backend does not pretend to: a partition cannot be locked,
//! so one [`KafkaLog`] refuses a second appender of a partition in this process, while
//! writers in other processes are caught by the layer above, which checks the offsets
//! `append` returns. Durability is the brokers' (acks=all and their replication);
//! [`Appender::flush`] has nothing to add. The mapping, the settings and the limits of the
//! test broker are in `docs/kafka.md`. The modules are:
//!
//! - [`config`]: [`KafkaOptions`] and the librdkafka configuration of each client,
//! - [`connect`]: the first contact with the brokers, and why it failed,
//! - [`common`]: what the others share (errors, name rules, partition claims),
//! - [`admin`]: topics, partition counts, watermarks, topic settings,
//! - [`appender`] and [`reader`]: the [`Appender`] and [`Reader`] implementations,
//! - [`feeder`] and [`deliveries`]: the appender's records on their way to librdkafka, one
//!   request at a time, and their delivery reports,
//! - [`poller`]: the producer and the thread that serves its events (delivery reports a
//!   whole event at a time),
//! - [`fetched`]: consumed messages read through librdkafka's C API, many per call.

mod admin;
mod appender;
mod common;
mod config;
mod connect;
mod deliveries;
mod feeder;
mod fetched;
mod poller;
mod reader;

use std::sync::Arc;

use crate::api::{Appender, Log, Reader, TopicConfig, TopicInfo};
use crate::error::LogError;
use admin::Admin;
use appender::KafkaAppender;
use common::Claims;
pub use config::KafkaOptions;
use reader::KafkaReader;

/// A [`Log`] on a Kafka cluster.
///
/// Cheap to share: all methods take `&self`. Topic and offset queries go through two
/// long-lived clients (admin and metadata); each appender has its own idempotent producer
/// and each reader its own consumer, so that they never wait on one another.
pub struct KafkaLog {
    brokers: String,
    opts: KafkaOptions,
    admin: Admin,
    claims: Arc<Claims>,
    idle: Arc<appender::IdleProducers>,
}

impl KafkaLog {
    /// Connects to the cluster whose bootstrap brokers are `brokers` (`host:port`, comma
    /// separated) and checks that it answers a metadata request within
    /// [`KafkaOptions::connect_timeout`] (or `socket.timeout.ms`, see
    /// [`KafkaOptions::resolved`]). Fails with [`LogError::InvalidArgument`] for a property
    /// librdkafka does not accept, and [`LogError::Backend`] ("cannot reach broker B
    /// (connection refused)") when no broker answers: at once when every broker refuses
    /// the connection or cannot be resolved, else when the timeout has passed.
    pub fn connect(brokers: &str, options: KafkaOptions) -> Result<KafkaLog, LogError> {
        let options = options.resolved()?;
        options.validate()?;
        if brokers.trim().is_empty() {
            return Err(LogError::InvalidArgument(
                "no Kafka brokers given".to_string(),
            ));
        }
        let admin = Admin::connect(brokers, &options)?;
        Ok(KafkaLog {
            brokers: brokers.to_string(),
            opts: options,
            admin,
            claims: Arc::default(),
            idle: Arc::default(),
        })
    }

    /// The bootstrap brokers this log was connected to.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// The settings this log was connected with, with the timeouts given as librdkafka
    /// properties carried over (see [`KafkaOptions::resolved`]).
    pub fn options(&self) -> &KafkaOptions {
        &self.opts
    }

    /// Deletes topic `name` and every record it holds (Kafka's DeleteTopics). Not part of
    /// [`Log`]: kchain never deletes a topic of its own accord; `kchain bench
    /// --delete-topics` deletes the topics it created, so that a broker keeping records in memory (tansu's `memory://`)
    /// does not slow down as the repetitions fill it. [`LogError::NoSuchTopic`] when the
    /// broker does not know it. An appender of the topic still open in this process fails
    /// at its next append. tansu 0.6's `sqlite://` engine deletes *every* topic on any
    /// DeleteTopics (its `memory://` engine only the one named): never call this on such a
    /// broker holding anything to keep.
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        self.idle.forget(name);
        self.admin.delete_topic(name)
    }
}

impl Log for KafkaLog {
    fn backend(&self) -> &'static str {
        "kafka"
    }

    fn identity(&self) -> Option<String> {
        self.admin.cluster_id().map(|id| format!("kafka:{id}"))
    }

    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<(), LogError> {
        self.admin.create_topic(name, config)
    }

    fn list_topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        let topics = self.admin.list()?;
        Ok(self.admin.describe(&topics))
    }

    fn topic(&self, name: &str) -> Result<TopicInfo, LogError> {
        let partitions = self.admin.partition_count(name)?;
        let mut infos = self.admin.describe(&[(name.to_string(), partitions)]);
        Ok(infos.remove(0))
    }

    fn appender(&self, topic: &str, partition: u32) -> Result<Box<dyn Appender>, LogError> {
        self.admin.check_partition(topic, partition)?;
        let claim = Claims::take(&self.claims, &self.brokers, topic, partition)?;
        let appender = KafkaAppender::open(
            &self.brokers,
            &self.opts,
            topic,
            partition,
            claim,
            Arc::clone(&self.idle),
        )?;
        Ok(Box::new(appender))
    }

    fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Box<dyn Reader>, LogError> {
        let (start, end) = self.admin.watermarks(topic, partition)?;
        if from > end {
            return Err(LogError::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                offset: from,
                start,
                end,
            });
        }
        let reader =
            KafkaReader::open(&self.brokers, &self.opts, topic, partition, from.max(start))?;
        Ok(Box::new(reader))
    }

    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(self.admin.watermarks(topic, partition)?.1)
    }

    fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(self.admin.watermarks(topic, partition)?.0)
    }

    /// DeleteRecords: the broker deletes every record below `offset` (any offset, not whole
    /// segments) and its low watermark, the log start offset, moves to `offset`.
    fn delete_records_before(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<u64, LogError> {
        self.admin.delete_records_before(topic, partition, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_rejects_unknown_properties() {
        let opts = KafkaOptions::default().property("no.such.property", "1");
        let err = KafkaLog::connect("127.0.0.1:1", opts).err();
        assert!(matches!(err, Some(LogError::InvalidArgument(_))), "{err:?}");
    }
}
