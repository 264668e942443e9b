//! The checkpoint half of a trust file: the witnesses a verifier trusts, how many must
//! cosign, and the origin namespace; and the checkpoint policy it gives each partition.

use super::anchors::Trust;
use super::error::TrustError;
use crate::checkpoint::note_key::NoteVerifier;
use crate::checkpoint::policy::{Policy, PolicyError};
use crate::checkpoint::text::{chain_origin, DEFAULT_ORIGIN_NAMESPACE};

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
    /// Where the witnesses that have a `url` are reached over HTTP (c2sp.org/tlog-witness):
    /// writers and sealers push checkpoints there, verifiers and monitors fetch from there.
    pub endpoints: Vec<WitnessEndpoint>,
    /// The freshness rule (`[policy] max_age`, seconds): entries past the newest trusted
    /// checkpoint must be covered by a checkpoint some witness cosigned within this long
    /// ([`crate::checkpoint::stale`]); `None`: no such rule.
    pub max_age: Option<u64>,
}

/// A witness reached over HTTP: its key and its URL (submission and monitoring prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessEndpoint {
    pub key: NoteVerifier,
    pub url: String,
}

/// Whether `url` can be a witness's URL: `http://` or `https://`, a host, no spaces.
pub fn is_witness_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

impl Default for CheckpointTrust {
    /// No witnesses and no cosignature needed (a writer's or sealer's signature alone), in
    /// the default origin namespace: what a trust file without `[[witness]]` or `[policy]`
    /// means to commands that check checkpoints anyway.
    fn default() -> Self {
        CheckpointTrust {
            witnesses: Vec::new(),
            threshold: 0,
            namespace: DEFAULT_ORIGIN_NAMESPACE.to_owned(),
            endpoints: Vec::new(),
            max_age: None,
        }
    }
}

impl CheckpointTrust {
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

    /// The policy for the checkpoints of the chain `chain_name` (origin
    /// `<namespace>/<chain_name>`): signed by one of `signers`, cosigned by `threshold` of
    /// the witnesses (this trust's threshold when `None`; 0: the signers alone). What a
    /// ledger's checkpoints are held to, its sealers being the signers.
    pub fn signers_policy(
        &self,
        signers: Vec<NoteVerifier>,
        chain_name: &str,
        threshold: Option<usize>,
    ) -> Result<Policy, PolicyError> {
        let threshold = threshold.unwrap_or(self.threshold);
        Policy::new(signers, self.witnesses.clone(), threshold)
            .map(|p| p.for_origin(&chain_origin(&self.namespace, chain_name)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::note_key::NoteSigner;

    #[test]
    fn a_signers_policy_is_bound_to_the_chains_origin() {
        let sealer = NoteSigner::from_seed("sealer", [5; 32]).unwrap().verifier();
        let trust = CheckpointTrust::default();
        let policy = trust
            .signers_policy(vec![sealer.clone()], "bank.blocks", None)
            .unwrap();
        assert_eq!(policy.origin(), Some("kchain/bank.blocks"));
        assert_eq!((policy.threshold(), policy.writers()), (0, &[sealer][..]));
        assert!(trust.signers_policy(Vec::new(), "b", Some(1)).is_err());
    }
}
