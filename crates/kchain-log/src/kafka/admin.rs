//! Topics, partitions and watermarks: the broker-side questions of the Kafka backend.
//!
//! ```text
//! create_topic ──CreateTopics(retention.ms, cleanup.policy, timestamp type)──> broker
//!              └─Metadata(topic), every 50 ms, until every partition has a leader
//! topic/list   ──Metadata──> names, partition counts
//!              └─DescribeConfigs(topics)──> settings (left empty where unsupported)
//! end/start    ──ListOffsets (fetch_watermarks)──> high / low watermark
//! delete       ──DeleteRecords(offset)──> the new low watermark (log start offset)
//! delete_topic ──DeleteTopics──> the topic and its records gone (`kchain bench` only)
//! ```
//!
//! Partition counts are cached per topic: Kafka can only add partitions, so a cached count
//! answers "does partition p exist" for every p below it, and anything else asks the broker.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigResourceResult, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};

use super::common::{backend, lock, validate_name};
use super::config::KafkaOptions;
use super::connect::{wait_for_brokers, Transport};
use crate::api::{TopicConfig, TopicInfo};
use crate::error::LogError;

/// Topic settings that `TopicInfo::settings` reports, in this order, when the broker
/// describes them: the ones that decide whether a chain can lose or change records.
pub(crate) const REPORTED_SETTINGS: [&str; 4] = [
    "retention.ms",
    "retention.bytes",
    "cleanup.policy",
    "message.timestamp.type",
];

/// The admin client, a metadata/watermark client, and the partition-count cache.
pub(crate) struct Admin {
    admin: AdminClient<DefaultClientContext>,
    meta: BaseConsumer,
    opts: KafkaOptions,
    partitions: Mutex<HashMap<String, u32>>,
    /// The cluster id, once a broker reported it: it does not change under a connection, and
    /// a command asks for it more than once (pins, remembered state, `-v`).
    cluster: OnceLock<String>,
}

impl Admin {
    /// Creates the clients and checks that the brokers answer a metadata request within
    /// `opts.connect_timeout` (see [`wait_for_brokers`]).
    pub fn connect(brokers: &str, opts: &KafkaOptions) -> Result<Self, LogError> {
        // A client of its own for the first contact, so that the long-lived ones never
        // have their event queue served by anyone but librdkafka.
        let probe: BaseConsumer<Transport> = opts
            .metadata(brokers)
            .create_with_context(Transport::default())
            .map_err(client_error)?;
        wait_for_brokers(&probe, brokers, opts.connect_timeout)?;
        drop(probe);
        let admin = opts.admin(brokers).create().map_err(client_error)?;
        let meta: BaseConsumer = opts.metadata(brokers).create().map_err(client_error)?;
        let admin = Admin {
            admin,
            meta,
            opts: opts.clone(),
            partitions: Mutex::default(),
            cluster: OnceLock::new(),
        };
        Ok(admin)
    }

    fn admin_options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.opts.request_timeout))
            .operation_timeout(Some(self.opts.request_timeout))
    }

    /// The cluster id the brokers report (Kafka 0.10.1 and later), if any.
    pub fn cluster_id(&self) -> Option<String> {
        if let Some(id) = self.cluster.get() {
            return Some(id.clone());
        }
        // A failed request is not remembered: the next call asks again.
        let id = self
            .meta
            .client()
            .fetch_cluster_id(self.opts.request_timeout)
            .filter(|id| !id.is_empty())?;
        Some(self.cluster.get_or_init(|| id).clone())
    }

    fn metadata(&self, topic: Option<&str>) -> Result<Metadata, KafkaError> {
        self.meta.fetch_metadata(topic, self.opts.request_timeout)
    }

    /// Creates a topic with kchain's settings and waits until every partition has a leader.
    pub fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<(), LogError> {
        validate_name(name)?;
        let partitions = i32::try_from(config.partitions)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| {
                LogError::InvalidArgument(format!(
                    "topic '{name}': {} partitions (must be 1 to 2147483647)",
                    config.partitions
                ))
            })?;
        let retention = config.retention_ms.unwrap_or(-1).to_string();
        let replication = self.opts.replication_factor.unwrap_or(-1);
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication))
            .set("retention.ms", &retention)
            .set("cleanup.policy", "delete")
            // The chain hashes each record's timestamp: the broker must keep the producer's.
            .set("message.timestamp.type", "CreateTime");
        let results = block_on(self.admin.create_topics([&topic], &self.admin_options()))
            .map_err(|e| backend(format!("creating topic '{name}': {e}")))?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    return Err(LogError::TopicExists(name.to_string()))
                }
                Err((_, RDKafkaErrorCode::InvalidTopic)) => {
                    return Err(LogError::InvalidTopicName {
                        name: name.to_string(),
                        reason: "the broker rejected it".to_string(),
                    })
                }
                Err((_, code)) => {
                    return Err(backend(format!("creating topic '{name}': {code}")));
                }
            }
        }
        self.wait_for_leaders(name, config.partitions)?;
        lock(&self.partitions).insert(name.to_string(), config.partitions);
        Ok(())
    }

    /// Waits until metadata shows `partitions` partitions of `name`, each with a leader:
    /// CreateTopics may answer before the topic can take records.
    fn wait_for_leaders(&self, name: &str, partitions: u32) -> Result<(), LogError> {
        let deadline = Instant::now() + self.opts.request_timeout;
        loop {
            let ready = match self.metadata(Some(name)) {
                Ok(md) => md.topics().iter().any(|t| {
                    t.name() == name
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.error().is_none() && p.leader() >= 0)
                }),
                Err(_) => false,
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(backend(format!(
                    "topic '{name}' was created but its {partitions} partitions have no leader \
                     after {:?}",
                    self.opts.request_timeout
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Names and partition counts of all topics, sorted by name, without Kafka's internal
    /// topics (`__consumer_offsets`, `__transaction_state`, ...: names starting with `__`).
    pub fn list(&self) -> Result<Vec<(String, u32)>, LogError> {
        let md = self
            .metadata(None)
            .map_err(|e| backend(format!("listing topics: {e}")))?;
        let mut topics: Vec<(String, u32)> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
            .map(|t| (t.name().to_string(), t.partitions().len() as u32))
            .collect();
        topics.sort();
        let mut cache = lock(&self.partitions);
        for (name, n) in &topics {
            cache.insert(name.clone(), *n);
        }
        Ok(topics)
    }

    /// The partition count of topic `name`, asked of the broker.
    pub fn partition_count(&self, name: &str) -> Result<u32, LogError> {
        validate_name(name).map_err(|_| LogError::NoSuchTopic(name.to_string()))?;
        let md = self
            .metadata(Some(name))
            .map_err(|e| backend(format!("metadata of topic '{name}': {e}")))?;
        let topic = md
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| LogError::NoSuchTopic(name.to_string()))?;
        match topic.error().map(RDKafkaErrorCode::from) {
            None => {}
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                lock(&self.partitions).remove(name);
                return Err(LogError::NoSuchTopic(name.to_string()));
            }
            Some(code) => return Err(backend(format!("metadata of topic '{name}': {code}"))),
        }
        let n = topic.partitions().len() as u32;
        lock(&self.partitions).insert(name.to_string(), n);
        Ok(n)
    }

    /// Checks that `topic` has partition `partition` (from the cache when it can).
    pub fn check_partition(&self, topic: &str, partition: u32) -> Result<(), LogError> {
        if matches!(lock(&self.partitions).get(topic), Some(&n) if partition < n) {
            return Ok(());
        }
        let partitions = self.partition_count(topic)?;
        if partition >= partitions {
            return Err(LogError::NoSuchPartition {
                topic: topic.to_string(),
                partition,
                partitions,
            });
        }
        Ok(())
    }

    /// The low and high watermarks of a partition: its first stored offset and the offset
    /// of the next record.
    pub fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64), LogError> {
        self.check_partition(topic, partition)?;
        watermarks(
            self.meta.client(),
            topic,
            partition,
            self.opts.request_timeout,
        )
        .map_err(|e| {
            if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) {
                lock(&self.partitions).remove(topic);
            }
            watermark_error(topic, partition, e)
        })
    }

    /// Deletes the records of a partition below `offset` (DeleteRecords, KIP-107) and
    /// returns the partition's low watermark after it, as the broker reports it. Brokers
    /// delete whole records at any offset up to the high watermark; one that does not
    /// implement the request answers with an error (or drops the connection), which is
    /// returned as it is: nothing was deleted that the caller can count on.
    pub fn delete_records_before(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<u64, LogError> {
        self.check_partition(topic, partition)?;
        let at = i64::try_from(offset).map_err(|_| {
            LogError::InvalidArgument(format!("{topic}/{partition}: offset {offset}"))
        })?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition as i32, Offset::Offset(at))
            .map_err(|e| backend(format!("deleting records of {topic}/{partition}: {e}")))?;
        let failed = |e: &dyn std::fmt::Display| {
            backend(format!(
                "deleting the records of {topic}/{partition} below offset {offset} \
                 (DeleteRecords): {e}"
            ))
        };
        let done = block_on(self.admin.delete_records(&tpl, &self.admin_options()))
            .map_err(|e| failed(&e))?;
        let low = done
            .elements_for_topic(topic)
            .into_iter()
            .find(|e| e.partition() == partition as i32)
            .ok_or_else(|| failed(&"the broker did not answer for the partition"))?;
        if let Err(e) = low.error() {
            return Err(failed(&e));
        }
        match low.offset() {
            Offset::Offset(o) if o >= 0 => Ok(o as u64),
            // Not every broker reports the new low watermark: ask for it.
            _ => self.watermarks(topic, partition).map(|(start, _)| start),
        }
    }

    /// Deletes topic `name` with its records (DeleteTopics) and forgets its partition count.
    /// [`LogError::NoSuchTopic`] when the broker does not know it.
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        validate_name(name).map_err(|_| LogError::NoSuchTopic(name.to_string()))?;
        let results = block_on(self.admin.delete_topics(&[name], &self.admin_options()))
            .map_err(|e| backend(format!("deleting topic '{name}': {e}")))?;
        lock(&self.partitions).remove(name);
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    return Err(LogError::NoSuchTopic(name.to_string()))
                }
                Err((_, code)) => return Err(backend(format!("deleting topic '{name}': {code}"))),
            }
        }
        Ok(())
    }

    /// `TopicInfo` for each of `topics` (name, partition count), with the settings the
    /// broker describes. A broker without DescribeConfigs gives empty settings.
    pub fn describe(&self, topics: &[(String, u32)]) -> Vec<TopicInfo> {
        let mut settings = self.settings(topics).unwrap_or_default();
        topics
            .iter()
            .map(|(name, partitions)| TopicInfo {
                name: name.clone(),
                partitions: *partitions,
                settings: settings.remove(name).unwrap_or_default(),
            })
            .collect()
    }

    fn settings(
        &self,
        topics: &[(String, u32)],
    ) -> Result<HashMap<String, Vec<(String, String)>>, KafkaError> {
        if topics.is_empty() {
            return Ok(HashMap::new());
        }
        let specs: Vec<ResourceSpecifier<'_>> = topics
            .iter()
            .map(|(name, _)| ResourceSpecifier::Topic(name))
            .collect();
        let results: Vec<ConfigResourceResult> =
            block_on(self.admin.describe_configs(&specs, &self.admin_options()))?;
        let mut out = HashMap::new();
        for resource in results.into_iter().flatten() {
            let rdkafka::admin::OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
                continue;
            };
            let entries = resource.entry_map();
            let settings = REPORTED_SETTINGS
                .iter()
                .filter_map(|key| {
                    let value = entries.get(key)?.value.clone()?;
                    Some((key.to_string(), value))
                })
                .collect();
            out.insert(name.clone(), settings);
        }
        Ok(out)
    }
}

/// The low and high watermarks of a partition, asked of its leader.
pub(crate) fn watermarks<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partition: u32,
    timeout: Duration,
) -> Result<(u64, u64), KafkaError> {
    let (low, high) = client.fetch_watermarks(topic, partition as i32, timeout)?;
    Ok((low.max(0) as u64, high.max(0) as u64))
}

pub(crate) fn watermark_error(topic: &str, partition: u32, e: KafkaError) -> LogError {
    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) {
        return LogError::NoSuchTopic(topic.to_string());
    }
    backend(format!("offsets of {topic}/{partition}: {e}"))
}

/// A client that could not be made: almost always a bad `-X` property.
pub(crate) fn client_error(e: KafkaError) -> LogError {
    match e {
        KafkaError::ClientConfig(_, ref desc, ref key, ref value) => {
            LogError::InvalidArgument(format!("librdkafka property {key}={value}: {desc}"))
        }
        e => LogError::InvalidArgument(format!("creating Kafka client: {e}")),
    }
}

/// Runs a future to completion on this thread. rdkafka's admin futures are completed by
/// rdkafka's own polling thread, so parking until woken is all the executor they need.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => thread::park(),
        }
    }
}
