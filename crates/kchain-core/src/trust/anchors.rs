//! The chain verifier's half of a trust file: the writer keys it trusts, per topic, and the
//! anchors (pinned genesis, pinned tips, pinned partition counts) it holds partitions to.

use crate::checkpoint::note_key::NoteVerifier;
use crate::hash::Hash;
use crate::keys::{KeyId, PublicKey};

/// A writer key the verifier trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedWriter {
    pub name: String,
    pub key: PublicKey,
    /// Topics this key may write; empty means any topic.
    pub topics: Vec<String>,
}

/// Anchors for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub topic: String,
    pub partition: u32,
    pub genesis: Option<Hash>,
    pub tip: Option<(u64, Hash)>,
    /// The log the pin was taken on (`embedded:<dir>`, `kafka:<cluster id>`): a pin applies
    /// only there. `None` in a pin written before pins named their log: it applies to any.
    pub log: Option<String>,
}

/// The pinned shape of a topic: how many partitions it had when it was pinned. Partitions
/// only grow (Kafka cannot remove one), so a log reporting fewer is hiding some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPin {
    pub name: String,
    pub partitions: u32,
    /// The chain name the topic's chains are held under when it is not the topic name
    /// (`[[topic]] name = "orders-restored", chain = "orders"`): a topic restored or
    /// mirrored under another name keeps its chain ids and checkpoint origins.
    pub chain: Option<String>,
    /// The log the count was taken on, as in [`Pin::log`].
    pub log: Option<String>,
}

/// How a trust file judges the key that signed a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStanding<'a> {
    /// Trusted for this topic.
    Allowed(&'a PublicKey),
    /// Trusted, but not for this topic.
    OtherTopics(&'a PublicKey),
    /// Not in the trust file.
    Unknown,
}

/// A parsed trust file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    pub writers: Vec<TrustedWriter>,
    pub pins: Vec<Pin>,
    pub topics: Vec<TopicPin>,
}

impl Trust {
    /// How this trust judges key `id` for `topic`.
    pub fn standing(&self, id: KeyId, topic: &str) -> KeyStanding<'_> {
        let mut other = None;
        for w in self.writers.iter().filter(|w| w.key.id() == id) {
            if w.topics.is_empty() || w.topics.iter().any(|t| t == topic) {
                return KeyStanding::Allowed(&w.key);
            }
            other = Some(&w.key);
        }
        other.map_or(KeyStanding::Unknown, KeyStanding::OtherTopics)
    }

    /// A trust in one writer, for any topic, with no pins: what an auditor handed one public
    /// key starts from.
    pub fn for_writer(name: &str, key: PublicKey) -> Trust {
        let mut trust = Trust::default();
        trust.add_writer(TrustedWriter {
            name: name.to_owned(),
            key,
            topics: Vec::new(),
        });
        trust
    }

    /// Adds a writer, replacing one with the same public key.
    pub fn add_writer(&mut self, writer: TrustedWriter) {
        self.writers.retain(|w| w.key != writer.key);
        self.writers.push(writer);
    }

    /// The checkpoint-note verifiers of the writers this trust allows for `topic`, each
    /// under its writer's name; a writer whose name is not a valid note key name is left out.
    pub fn writer_verifiers(&self, topic: &str) -> Vec<NoteVerifier> {
        self.writers
            .iter()
            .filter(|w| w.topics.is_empty() || w.topics.iter().any(|t| t == topic))
            .filter_map(|w| w.key.note_verifier(&w.name).ok())
            .collect()
    }

    /// The pin for a partition, if any.
    pub fn pin(&self, topic: &str, partition: u32) -> Option<&Pin> {
        self.pins
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
    }

    /// The chain name `topic` is held under: the `chain` of its `[[topic]]` entry, else the
    /// topic name itself (a chain's id is `<chain name>/<partition>`, its checkpoints'
    /// origin `<namespace>/<chain name>/<partition>`).
    pub fn chain_name<'t>(&'t self, topic: &'t str) -> &'t str {
        self.chain_of(topic).unwrap_or(topic)
    }

    /// The explicit chain name of `topic`, if its `[[topic]]` entry gives one.
    pub fn chain_of(&self, topic: &str) -> Option<&str> {
        self.topics
            .iter()
            .filter(|t| t.name == topic)
            .find_map(|t| t.chain.as_deref())
    }

    /// Holds `topic`'s chains under the chain name `chain` (`None`: the topic name again)
    /// on every log, keeping its partition counts.
    pub fn set_chain_name(&mut self, topic: &str, chain: Option<&str>) {
        let chain = chain.filter(|c| *c != topic).map(str::to_owned);
        let mut found = false;
        for t in self.topics.iter_mut().filter(|t| t.name == topic) {
            t.chain = chain.clone();
            found = true;
        }
        if !found && chain.is_some() {
            self.topics.push(TopicPin {
                name: topic.to_owned(),
                partitions: 0,
                chain,
                log: None,
            });
        }
        // An entry that only named the chain names nothing now.
        self.topics
            .retain(|t| t.partitions > 0 || t.chain.is_some() || t.name != topic);
    }

    /// The partitions a verifier must find in `topic`: at least the pinned partition count,
    /// and every partition a pin names. `None` when nothing about the topic is pinned.
    pub fn pinned_partitions(&self, topic: &str) -> Option<u32> {
        let shape = self
            .topics
            .iter()
            .filter(|t| t.name == topic && t.partitions > 0)
            .map(|t| t.partitions);
        let pinned = self
            .pins
            .iter()
            .filter(|p| p.topic == topic)
            .map(|p| p.partition.saturating_add(1));
        shape.chain(pinned).max()
    }

    /// Records that `topic` has `partitions` partitions on any log (see
    /// [`Trust::set_topic_pin_on`]).
    pub fn set_topic_pin(&mut self, topic: &str, partitions: u32) {
        self.set_topic_pin_on(topic, partitions, None);
    }

    /// Records that `topic` has `partitions` partitions on `log`, replacing any earlier count
    /// for that log (and one that names no log). A count never shrinks here: a caller that
    /// pins fewer partitions than were pinned before is told by [`Trust::pinned_partitions`]
    /// staying at the larger count.
    pub fn set_topic_pin_on(&mut self, topic: &str, partitions: u32, log: Option<&str>) {
        let mine = |t: &TopicPin| t.name == topic && (t.log.is_none() || t.log.as_deref() == log);
        let before = self.topics.iter().filter(|t| mine(t)).map(|t| t.partitions);
        let keep = before.max().unwrap_or(0).max(partitions);
        let chain = self.chain_of(topic).map(str::to_owned);
        self.topics.retain(|t| !mine(t));
        self.topics.push(TopicPin {
            name: topic.to_owned(),
            partitions: keep,
            chain,
            log: log.map(str::to_owned),
        });
    }

    /// Sets the pin for a partition, replacing any earlier one of the same log (and one that
    /// names no log, which the new pin supersedes). Pins of other logs stay.
    pub fn set_pin(&mut self, pin: Pin) {
        self.pins.retain(|p| {
            !(p.topic == pin.topic
                && p.partition == pin.partition
                && (p.log.is_none() || p.log == pin.log))
        });
        self.pins.push(pin);
    }

    /// The trust that applies on the log whose identity is `log`: the pins and partition
    /// counts taken there, and those that name no log (written before pins named one) where
    /// the log has none of its own. Pins of other logs are left out.
    pub fn on_log(&self, log: &str) -> Trust {
        let here = |l: &Option<String>| l.as_deref() == Some(log);
        let pins = self.pins.iter().filter(|p| {
            here(&p.log)
                || (p.log.is_none()
                    && !self
                        .pins
                        .iter()
                        .any(|q| q.topic == p.topic && q.partition == p.partition && here(&q.log)))
        });
        let topics = self.topics.iter().filter(|t| {
            here(&t.log)
                || (t.log.is_none()
                    && !self.topics.iter().any(|u| u.name == t.name && here(&u.log)))
        });
        Trust {
            writers: self.writers.clone(),
            pins: pins.cloned().collect(),
            topics: topics.cloned().collect(),
        }
    }

    /// The logs other than `log` on which `topic` is pinned (sorted, each once): the pins
    /// [`Trust::on_log`] leaves out.
    pub fn pinned_elsewhere(&self, topic: &str, log: &str) -> Vec<String> {
        let pins = self
            .pins
            .iter()
            .filter(|p| p.topic == topic)
            .map(|p| &p.log);
        let counts = self
            .topics
            .iter()
            .filter(|t| t.name == topic)
            .map(|t| &t.log);
        let mut logs: Vec<String> = pins
            .chain(counts)
            .flatten()
            .filter(|l| l.as_str() != log)
            .cloned()
            .collect();
        logs.sort();
        logs.dedup();
        logs
    }

    /// Whether `topic` has a pin or partition count that names no log (written before pins
    /// named their log): it applies on every log.
    pub fn pinned_on_any_log(&self, topic: &str) -> bool {
        self.pins
            .iter()
            .any(|p| p.topic == topic && p.log.is_none())
            || self
                .topics
                .iter()
                .any(|t| t.name == topic && t.log.is_none())
    }
}
