//! A whole trust file, parsed once and written back without losing a part of it.

use serde::{Deserialize, Serialize};

use super::anchors::{Pin, TopicPin, Trust, TrustedWriter};
use super::checkpoints::{is_witness_url, CheckpointTrust, WitnessEndpoint};
use super::error::TrustError;
use crate::checkpoint::note_key::NoteVerifier;
use crate::checkpoint::policy::Policy;
use crate::checkpoint::text::DEFAULT_ORIGIN_NAMESPACE;
use crate::hex::{from_hex, to_hex};
use crate::keys::PublicKey;

/// A parsed trust file: every part of it, each in the form its reader needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustFile {
    /// `[[writer]]`, `[[pin]]` and `[[topic]]`: what the chain verifier holds records to.
    pub trust: Trust,
    /// `[[witness]]` and `[policy]`; `None` when the file has neither (checkpoints are then
    /// not required).
    pub checkpoints: Option<CheckpointTrust>,
    /// `[[ledger]]` entries (a ledger's chain, genesis and sealers): read by kchain-ledger,
    /// kept here as written.
    pub ledgers: Vec<toml::Table>,
}

impl TrustFile {
    /// Parses trust file text, checking every key, hash and the checkpoint policy.
    pub fn from_toml(text: &str) -> Result<TrustFile, TrustError> {
        let file = parse(text)?;
        Ok(TrustFile {
            trust: Trust {
                writers: file
                    .writer
                    .into_iter()
                    .map(writer)
                    .collect::<Result<_, _>>()?,
                pins: file.pin.into_iter().map(pin).collect::<Result<_, _>>()?,
                topics: file.topic.into_iter().map(topic).collect(),
            },
            checkpoints: checkpoint_trust(file.witness, file.policy)?,
            ledgers: file.ledger,
        })
    }

    /// The trust file text: every part this file holds.
    pub fn to_toml(&self) -> String {
        let (witness, policy) = match &self.checkpoints {
            Some(c) => (
                c.witnesses.iter().map(|w| witness_toml(w, c)).collect(),
                Some(policy_toml(c)),
            ),
            None => (Vec::new(), None),
        };
        let file = FileToml {
            writer: self.trust.writers.iter().map(writer_toml).collect(),
            pin: self.trust.pins.iter().map(pin_toml).collect(),
            topic: self.trust.topics.iter().map(topic_toml).collect(),
            witness,
            policy,
            ledger: self.ledgers.clone(),
        };
        format!(
            "# kchain trust file: the keys and anchors a verifier trusts.\n{}",
            toml::to_string(&file).expect("trust file serializes")
        )
    }

    /// The checkpoint half, or the default one (no witnesses, no cosignature needed, the
    /// default namespace) when the file has none: what commands that check checkpoints
    /// anyway hold them to.
    pub fn checkpoints_or_default(&self) -> CheckpointTrust {
        self.checkpoints.clone().unwrap_or_default()
    }

    /// The checkpoint policy for one partition (see [`CheckpointTrust::policy`]), under the
    /// file's checkpoint half or the default one.
    pub fn policy(&self, topic: &str, partition: u32) -> Result<Policy, TrustError> {
        self.checkpoints_or_default()
            .policy(&self.trust, topic, partition)
    }
}

impl Trust {
    /// Parses trust file text and keeps the chain verifier's half (see [`TrustFile`]).
    pub fn from_toml(text: &str) -> Result<Trust, TrustError> {
        TrustFile::from_toml(text).map(|f| f.trust)
    }

    /// The trust file text for this trust alone (no checkpoint half, no ledgers).
    pub fn to_toml(&self) -> String {
        TrustFile {
            trust: self.clone(),
            ..TrustFile::default()
        }
        .to_toml()
    }

    /// The trust file text for this trust, keeping the other parts (`[[witness]]`,
    /// `[policy]`, `[[ledger]]`) of `previous`, the text of the file it replaces. Fails, so
    /// that nothing is lost, if `previous` does not parse.
    pub fn to_toml_keeping(&self, previous: &str) -> Result<String, TrustError> {
        let mut file = TrustFile::from_toml(previous)?;
        file.trust = self.clone();
        Ok(file.to_toml())
    }
}

fn parse(text: &str) -> Result<FileToml, TrustError> {
    toml::from_str(text).map_err(|e| TrustError::Malformed {
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0),
        detail: e.message().to_owned(),
    })
}

fn writer(w: WriterToml) -> Result<TrustedWriter, TrustError> {
    let key = PublicKey::from_hex(&w.public_key).map_err(|source| TrustError::BadKey {
        name: w.name.clone(),
        source,
    })?;
    Ok(TrustedWriter {
        name: w.name,
        key,
        topics: w.topics,
    })
}

fn pin(p: PinToml) -> Result<Pin, TrustError> {
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
    Ok(Pin {
        topic: p.topic,
        partition: p.partition,
        genesis,
        tip,
        log: p.log,
    })
}

fn topic(t: TopicToml) -> TopicPin {
    TopicPin {
        name: t.name,
        partitions: t.partitions,
        chain: t.chain,
        log: t.log,
    }
}

fn checkpoint_trust(
    witness: Vec<WitnessToml>,
    policy: Option<PolicyToml>,
) -> Result<Option<CheckpointTrust>, TrustError> {
    if witness.is_empty() && policy.is_none() {
        return Ok(None);
    }
    let witnesses = witness
        .iter()
        .map(|w| {
            NoteVerifier::parse(w.key.trim()).map_err(|source| TrustError::BadWitnessKey {
                key: w.key.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut endpoints = Vec::new();
    for (w, key) in witness.iter().zip(&witnesses) {
        if let Some(url) = &w.url {
            if !is_witness_url(url) {
                return Err(TrustError::BadWitnessUrl { url: url.clone() });
            }
            endpoints.push(WitnessEndpoint {
                key: key.clone(),
                url: url.clone(),
            });
        }
    }
    let policy = policy.unwrap_or_default();
    let trust = CheckpointTrust {
        witnesses,
        endpoints,
        threshold: policy.witnesses,
        namespace: policy
            .namespace
            .unwrap_or_else(|| DEFAULT_ORIGIN_NAMESPACE.to_owned()),
        max_age: policy.max_age,
    };
    // Reject a policy that can never be met now rather than at the first checkpoint.
    Policy::new(Vec::new(), trust.witnesses.clone(), trust.threshold)
        .map_err(TrustError::Policy)?;
    Ok(Some(trust))
}

fn writer_toml(w: &TrustedWriter) -> WriterToml {
    WriterToml {
        name: w.name.clone(),
        public_key: w.key.to_hex(),
        topics: w.topics.clone(),
    }
}

fn pin_toml(p: &Pin) -> PinToml {
    PinToml {
        topic: p.topic.clone(),
        partition: p.partition,
        genesis: p.genesis.as_ref().map(to_hex),
        height: p.tip.map(|t| t.0),
        hash: p.tip.as_ref().map(|t| to_hex(&t.1)),
        log: p.log.clone(),
    }
}

fn topic_toml(t: &TopicPin) -> TopicToml {
    TopicToml {
        name: t.name.clone(),
        partitions: t.partitions,
        chain: t.chain.clone(),
        log: t.log.clone(),
    }
}

fn witness_toml(w: &NoteVerifier, c: &CheckpointTrust) -> WitnessToml {
    WitnessToml {
        key: w.to_vkey(),
        url: c
            .endpoints
            .iter()
            .find(|e| &e.key == w)
            .map(|e| e.url.clone()),
    }
}

/// The `[policy]` table; the namespace is written only when it is not the default one.
fn policy_toml(c: &CheckpointTrust) -> PolicyToml {
    PolicyToml {
        witnesses: c.threshold,
        namespace: (c.namespace != DEFAULT_ORIGIN_NAMESPACE).then(|| c.namespace.clone()),
        max_age: c.max_age,
    }
}

/// The trust file as TOML sees it.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileToml {
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ledger: Vec<toml::Table>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessToml {
    key: String,
    /// Where the witness is reached over HTTP (c2sp.org/tlog-witness), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    #[serde(default)]
    witnesses: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// Seconds within which a witness must have cosigned the checkpoint that covers the
    /// chain's newest entries (the freshness rule), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<u64>,
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
    /// Absent in an entry that only names the topic's chain.
    #[serde(default)]
    partitions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<String>,
}
