//! The trust file: what a verifier believes without asking the log.
//!
//! ```text
//! [[writer]]                       # a key allowed to sign chained topics
//! name = "acme-orders"
//! public_key = "<64 hex digits>"
//! topics = ["orders"]              # optional: absent means any topic
//!
//! [[pin]]                          # optional anchors for one partition
//! topic = "orders"
//! partition = 0
//! genesis = "<64 hex digits>"      # optional: the entry hash at height 0
//! height = 99999                   # optional, with `hash`: a trusted tip
//! hash = "<64 hex digits>"
//! ```
//!
//! A pinned tip lets a verifier catch truncation (the chain ends below it) and a rewrite (the
//! entry at that height differs), which links and signatures alone cannot.

use serde::{Deserialize, Serialize};

use crate::hash::{from_hex, to_hex, Hash};
use crate::keys::{KeyError, KeyId, PublicKey};

/// What is wrong with a trust file, with the line where it is wrong when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error("malformed trust file at line {line}: {detail}")]
    Malformed { line: usize, detail: String },
    #[error("trust file: writer '{name}': {source}")]
    BadKey {
        name: String,
        #[source]
        source: KeyError,
    },
    #[error("trust file: pin {topic}/{partition}: '{value}' is not 64 hex digits")]
    BadHash {
        topic: String,
        partition: u32,
        value: String,
    },
    #[error("trust file: pin {topic}/{partition}: `height` and `hash` go together")]
    HalfTip { topic: String, partition: u32 },
}

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
}

impl Trust {
    /// Parses trust file text.
    pub fn from_toml(text: &str) -> Result<Trust, TrustError> {
        let file: TrustFile = toml::from_str(text).map_err(|e| TrustError::Malformed {
            line: e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0),
            detail: e.message().to_owned(),
        })?;
        let mut writers = Vec::new();
        for w in file.writer {
            let key = PublicKey::from_hex(&w.public_key).map_err(|source| TrustError::BadKey {
                name: w.name.clone(),
                source,
            })?;
            writers.push(TrustedWriter {
                name: w.name,
                key,
                topics: w.topics,
            });
        }
        let mut pins = Vec::new();
        for p in file.pin {
            let parse = |v: &str| {
                from_hex(v).ok_or_else(|| TrustError::BadHash {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    value: v.to_owned(),
                })
            };
            let genesis = p.genesis.as_deref().map(parse).transpose()?;
            let tip = match (p.height, p.hash.as_deref()) {
                (Some(h), Some(x)) => Some((h, parse(x)?)),
                (None, None) => None,
                _ => {
                    return Err(TrustError::HalfTip {
                        topic: p.topic,
                        partition: p.partition,
                    })
                }
            };
            pins.push(Pin {
                topic: p.topic,
                partition: p.partition,
                genesis,
                tip,
            });
        }
        Ok(Trust { writers, pins })
    }

    /// The trust file text for this trust.
    pub fn to_toml(&self) -> String {
        let file = TrustFile {
            writer: self
                .writers
                .iter()
                .map(|w| WriterToml {
                    name: w.name.clone(),
                    public_key: w.key.to_hex(),
                    topics: w.topics.clone(),
                })
                .collect(),
            pin: self
                .pins
                .iter()
                .map(|p| PinToml {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    genesis: p.genesis.as_ref().map(to_hex),
                    height: p.tip.map(|t| t.0),
                    hash: p.tip.as_ref().map(|t| to_hex(&t.1)),
                })
                .collect(),
        };
        format!(
            "# kchain trust file: the keys and anchors a verifier trusts.\n{}",
            toml::to_string(&file).expect("trust file serializes")
        )
    }

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

    /// Adds a writer, replacing one with the same public key.
    pub fn add_writer(&mut self, writer: TrustedWriter) {
        self.writers.retain(|w| w.key != writer.key);
        self.writers.push(writer);
    }

    /// The pin for a partition, if any.
    pub fn pin(&self, topic: &str, partition: u32) -> Option<&Pin> {
        self.pins
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
    }

    /// Sets the pin for a partition, replacing any earlier one.
    pub fn set_pin(&mut self, pin: Pin) {
        self.pins
            .retain(|p| !(p.topic == pin.topic && p.partition == pin.partition));
        self.pins.push(pin);
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default)]
    writer: Vec<WriterToml>,
    #[serde(default)]
    pin: Vec<PinToml>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriterToml {
    name: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    topics: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinToml {
    topic: String,
    partition: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    genesis: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
}
