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
//!
//! [[topic]]                        # optional: the pinned shape of a topic
//! name = "orders"
//! partitions = 3                   # a partition below this that the log lacks is a finding
//!
//! [[witness]]                      # optional: a witness's C2SP verifier key (type 0x04)
//! key = "witness.example/w1+0df7cdec+BIE5dw6o..."
//!
//! [policy]                         # optional: checkpoints must meet this policy
//! witnesses = 2                    # cosignatures needed from distinct listed witnesses
//! namespace = "kchain"             # origin namespace: origins are <namespace>/<topic>/<p>
//! ```
//!
//! The checkpoint half (`[[witness]]`, `[policy]`) is read by [`CheckpointTrust::from_toml`];
//! [`Trust`] accepts files that hold it and ignores it (so `Trust::to_toml` does not write it
//! back).
//!
//! A pinned tip lets a verifier catch truncation (the chain ends below it) and a rewrite (the
//! entry at that height differs), which links and signatures alone cannot. A pinned partition
//! count catches a partition hidden by the log's metadata (a `topic.json` edited on disk, a
//! topic deleted and recreated with fewer partitions), which no record can show.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{chain_origin, Policy, PolicyError, DEFAULT_ORIGIN_NAMESPACE};
use crate::hash::Hash;
use crate::hex::{from_hex, to_hex};
use crate::keys::{KeyError, KeyId, PublicKey};
use crate::note::{NoteError, NoteVerifier};

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
    #[error("trust file: witness key {key:?}: {source}")]
    BadWitnessKey {
        key: String,
        #[source]
        source: NoteError,
    },
    #[error("trust file: writer '{name}' cannot sign checkpoints: {source}")]
    BadWriterName {
        name: String,
        #[source]
        source: NoteError,
    },
    #[error("trust file: {0}")]
    Policy(#[source] PolicyError),
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

/// The pinned shape of a topic: how many partitions it had when it was pinned. Partitions
/// only grow (Kafka cannot remove one), so a log reporting fewer is hiding some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPin {
    pub name: String,
    pub partitions: u32,
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
    /// Parses trust file text.
    pub fn from_toml(text: &str) -> Result<Trust, TrustError> {
        let file = parse_file(text)?;
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
        let topics = file
            .topic
            .into_iter()
            .map(|t| TopicPin {
                name: t.name,
                partitions: t.partitions,
            })
            .collect();
        Ok(Trust {
            writers,
            pins,
            topics,
        })
    }

    /// The trust file text for this trust.
    pub fn to_toml(&self) -> String {
        self.file_text(Vec::new(), None, Vec::new())
    }

    /// The trust file text for this trust, keeping the checkpoint half (`[[witness]]` and
    /// `[policy]`, which [`Trust`] does not hold) of `previous`, the text of the file it
    /// replaces. Fails, so that nothing is lost, if `previous` does not parse.
    pub fn to_toml_keeping(&self, previous: &str) -> Result<String, TrustError> {
        let old = parse_file(previous)?;
        Ok(self.file_text(old.witness, old.policy, old.ledger))
    }

    fn file_text(
        &self,
        witness: Vec<WitnessToml>,
        policy: Option<PolicyToml>,
        ledger: Vec<toml::Table>,
    ) -> String {
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
            topic: self
                .topics
                .iter()
                .map(|t| TopicToml {
                    name: t.name.clone(),
                    partitions: t.partitions,
                })
                .collect(),
            witness,
            policy,
            ledger,
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

    /// The partitions a verifier must find in `topic`: at least the pinned partition count,
    /// and every partition a pin names. `None` when nothing about the topic is pinned.
    pub fn pinned_partitions(&self, topic: &str) -> Option<u32> {
        let shape = self
            .topics
            .iter()
            .filter(|t| t.name == topic)
            .map(|t| t.partitions);
        let pinned = self
            .pins
            .iter()
            .filter(|p| p.topic == topic)
            .map(|p| p.partition.saturating_add(1));
        shape.chain(pinned).max()
    }

    /// Records that `topic` has `partitions` partitions, replacing any earlier count. A count
    /// never shrinks here: a caller that pins fewer partitions than were pinned before is
    /// told by [`Trust::pinned_partitions`] staying at the larger count.
    pub fn set_topic_pin(&mut self, topic: &str, partitions: u32) {
        let keep = self.pinned_partitions(topic).unwrap_or(0).max(partitions);
        self.topics.retain(|t| t.name != topic);
        self.topics.push(TopicPin {
            name: topic.to_owned(),
            partitions: keep,
        });
    }

    /// Sets the pin for a partition, replacing any earlier one.
    pub fn set_pin(&mut self, pin: Pin) {
        self.pins
            .retain(|p| !(p.topic == pin.topic && p.partition == pin.partition));
        self.pins.push(pin);
    }
}

/// The checkpoint half of a trust file: the witnesses a verifier trusts and how many of them
/// must cosign a checkpoint before the verifier holds a chain to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointTrust {
    /// Witness verifier keys (type 0x04).
    pub witnesses: Vec<NoteVerifier>,
    /// Cosignatures required from distinct listed witnesses (`[policy] witnesses`, default 0).
    pub threshold: usize,
    /// The origin namespace (`[policy] namespace`, default `kchain`).
    pub namespace: String,
}

impl Default for CheckpointTrust {
    /// No witnesses and no cosignature needed (a writer's or sealer's signature alone), in
    /// the default origin namespace: what a trust file without `[[witness]]` or `[policy]`
    /// means to commands that check checkpoints anyway.
    fn default() -> Self {
        CheckpointTrust {
            witnesses: Vec::new(),
            threshold: 0,
            namespace: crate::DEFAULT_ORIGIN_NAMESPACE.to_owned(),
        }
    }
}

impl CheckpointTrust {
    /// Reads the `[[witness]]` entries and the `[policy]` table of trust file text. `None`
    /// when the file has neither: checkpoints are then not checked.
    pub fn from_toml(text: &str) -> Result<Option<CheckpointTrust>, TrustError> {
        let file = parse_file(text)?;
        if file.witness.is_empty() && file.policy.is_none() {
            return Ok(None);
        }
        let witnesses = file
            .witness
            .iter()
            .map(|w| {
                NoteVerifier::parse(w.key.trim()).map_err(|source| TrustError::BadWitnessKey {
                    key: w.key.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policy = file.policy.unwrap_or_default();
        let trust = CheckpointTrust {
            witnesses,
            threshold: policy.witnesses,
            namespace: policy
                .namespace
                .unwrap_or_else(|| DEFAULT_ORIGIN_NAMESPACE.to_owned()),
        };
        // Reject a policy that can never be met now rather than at the first checkpoint.
        Policy::new(Vec::new(), trust.witnesses.clone(), trust.threshold)
            .map_err(TrustError::Policy)?;
        Ok(Some(trust))
    }

    /// The origin of partition `partition` of `topic`: `<namespace>/<topic>/<partition>`.
    pub fn origin(&self, topic: &str, partition: u32) -> String {
        chain_origin(&self.namespace, &format!("{topic}/{partition}"))
    }

    /// The policy for the checkpoints of one partition: signed by a writer `trust` allows for
    /// `topic` (its note key is the writer's public key under the writer's name), cosigned by
    /// `threshold` of the witnesses, for that partition's origin.
    pub fn policy(&self, trust: &Trust, topic: &str, partition: u32) -> Result<Policy, TrustError> {
        Ok(self
            .policy_with(trust, topic, self.threshold)?
            .for_origin(&self.origin(topic, partition)))
    }

    /// Like [`CheckpointTrust::policy`] but needing no cosignature: what a writer signed,
    /// whoever vouched for it (for evidence of forks, which the writer's signature proves).
    pub fn writer_policy(
        &self,
        trust: &Trust,
        topic: &str,
        partition: u32,
    ) -> Result<Policy, TrustError> {
        Ok(self
            .policy_with(trust, topic, 0)?
            .for_origin(&self.origin(topic, partition)))
    }

    fn policy_with(
        &self,
        trust: &Trust,
        topic: &str,
        threshold: usize,
    ) -> Result<Policy, TrustError> {
        let writers = trust
            .writers
            .iter()
            .filter(|w| w.topics.is_empty() || w.topics.iter().any(|t| t == topic))
            .map(|w| {
                w.key
                    .note_verifier(&w.name)
                    .map_err(|source| TrustError::BadWriterName {
                        name: w.name.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Policy::new(writers, self.witnesses.clone(), threshold).map_err(TrustError::Policy)
    }
}

fn parse_file(text: &str) -> Result<TrustFile, TrustError> {
    toml::from_str(text).map_err(|e| TrustError::Malformed {
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0),
        detail: e.message().to_owned(),
    })
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default)]
    writer: Vec<WriterToml>,
    #[serde(default)]
    pin: Vec<PinToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    topic: Vec<TopicToml>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    witness: Vec<WitnessToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<PolicyToml>,
    /// `[[ledger]]` entries (a ledger's chain, genesis and sealers), read by kchain-ledger;
    /// kept as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ledger: Vec<toml::Table>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessToml {
    key: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    #[serde(default)]
    witnesses: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
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
struct TopicToml {
    name: String,
    partitions: u32,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, Cosigner};
    use crate::keys::WriterKey;
    use crate::merkle;

    const WRITER: &str = "[[writer]]\nname = \"acme\"\npublic_key = \"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\"\n";

    #[test]
    fn trust_files_without_checkpoint_tables_are_unchanged() {
        let trust = Trust::from_toml(WRITER).unwrap();
        assert_eq!(trust.writers.len(), 1);
        assert_eq!(CheckpointTrust::from_toml(WRITER).unwrap(), None);
    }

    #[test]
    fn witnesses_and_policy_build_a_policy_per_partition() {
        let writer = WriterKey::from_seed("acme", [1; 32]);
        let w1 = Cosigner::from_seed("w1.example", [2; 32]).unwrap();
        let text = format!(
            "{WRITER}\n[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\nnamespace = \"ex.com\"\n",
            w1.verifier().to_vkey()
        );
        let trust = Trust::from_toml(&text).unwrap();
        assert_eq!(trust.writers[0].key, writer.public());
        let ct = CheckpointTrust::from_toml(&text).unwrap().unwrap();
        assert_eq!((ct.threshold, ct.witnesses.len()), (1, 1));
        assert_eq!(ct.origin("orders", 3), "ex.com/orders/3");

        let policy = ct.policy(&trust, "orders", 3).unwrap();
        let mut note = Checkpoint::new("ex.com/orders/3", 1, merkle::leaf_hash(&[0; 32]))
            .unwrap()
            .sign(&writer.note_signer().unwrap());
        assert!(matches!(
            policy.check(&note),
            Err(PolicyError::NotEnoughCosignatures { .. })
        ));
        assert!(ct
            .writer_policy(&trust, "orders", 3)
            .unwrap()
            .check(&note)
            .is_ok());
        note.add_signature(w1.cosign(note.text(), 1).to_note_signature());
        assert!(policy.check(&note).is_ok());
        assert!(matches!(
            ct.policy(&trust, "orders", 4).unwrap().check(&note),
            Err(PolicyError::WrongOrigin { .. })
        ));
    }

    #[test]
    fn bad_checkpoint_tables_are_refused() {
        let bad_key = format!("{WRITER}[[witness]]\nkey = \"nope\"\n");
        assert!(matches!(
            CheckpointTrust::from_toml(&bad_key),
            Err(TrustError::BadWitnessKey { .. })
        ));
        let too_many = format!("{WRITER}[policy]\nwitnesses = 1\n");
        assert!(matches!(
            CheckpointTrust::from_toml(&too_many),
            Err(TrustError::Policy(PolicyError::ThresholdTooHigh { .. }))
        ));
        let unknown = format!("{WRITER}[policy]\nquorum = 1\n");
        assert!(CheckpointTrust::from_toml(&unknown).is_err());
        let spaced = "[[writer]]\nname = \"acme orders\"\npublic_key = \"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\"\n[policy]\n";
        let ct = CheckpointTrust::from_toml(spaced).unwrap().unwrap();
        let trust = Trust::from_toml(spaced).unwrap();
        assert!(matches!(
            ct.policy(&trust, "orders", 0),
            Err(TrustError::BadWriterName { .. })
        ));
    }

    #[test]
    fn rewriting_a_trust_file_keeps_its_witnesses_and_policy() {
        let w = crate::Cosigner::from_seed("w1.example", [3; 32]).unwrap();
        let text = format!(
            "{WRITER}\n[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\nnamespace = \"ex.com\"\n",
            w.verifier().to_vkey()
        );
        let before = CheckpointTrust::from_toml(&text).unwrap().unwrap();
        let mut trust = Trust::from_toml(&text).unwrap();
        trust.pins.push(Pin {
            topic: "orders".into(),
            partition: 0,
            genesis: Some([1; 32]),
            tip: None,
        });
        trust.set_topic_pin("orders", 3);
        let rewritten = trust.to_toml_keeping(&text).unwrap();
        assert_eq!(Trust::from_toml(&rewritten).unwrap(), trust);
        assert_eq!(
            CheckpointTrust::from_toml(&rewritten).unwrap().unwrap(),
            before
        );
        assert!(CheckpointTrust::from_toml(&trust.to_toml())
            .unwrap()
            .is_none());
        assert!(trust.to_toml_keeping("[[writer]]\nname = 1\n").is_err());
    }

    #[test]
    fn pinned_partitions_count_the_shape_and_every_pinned_partition() {
        let mut trust = Trust::from_toml(WRITER).unwrap();
        assert_eq!(trust.pinned_partitions("orders"), None);
        trust.set_pin(Pin {
            topic: "orders".into(),
            partition: 4,
            genesis: None,
            tip: None,
        });
        assert_eq!(trust.pinned_partitions("orders"), Some(5));
        trust.set_topic_pin("orders", 8);
        assert_eq!(trust.pinned_partitions("orders"), Some(8));
        // A later pin of fewer partitions does not forget the ones pinned before.
        trust.set_topic_pin("orders", 2);
        assert_eq!(trust.pinned_partitions("orders"), Some(8));
        assert_eq!(trust.pinned_partitions("other"), None);
        let text = trust.to_toml();
        assert!(text.contains("[[topic]]"), "{text}");
        assert_eq!(Trust::from_toml(&text).unwrap(), trust);
    }
}
