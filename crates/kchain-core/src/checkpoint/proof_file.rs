//! A proof file as a verifier meets it: JSON of one of two formats, told apart by its `format`
//! member, and held to the checkpoint policy that a trust file gives the chain its checkpoint
//! names.
//!
//! ```text
//!  proof file (JSON) ──► "format" ─┬─ kchain-consistency-proof/v1 ─► ConsistencyProofFile
//!                                  └─ anything else ──────────────► InclusionProofFile
//!                                            │
//!  trust file ─► policy for the checkpoint's origin <namespace>/<topic>/<partition>
//!                (an origin outside the namespace: every writer trusted for all topics,
//!                 which the proof then fails)
//!                                            │
//!                                            ▼
//!                        Ok(ProofVerdict) or Err(ProofError): the proof holds or not
//! ```
//!
//! A file that is not JSON, does not fit its format, or a trust file whose policy cannot be
//! built is an error of the caller's input ([`ProofFileError`]); a proof that does not hold is
//! a verdict ([`ProofError`]), which a command reports as a finding.

use std::fmt;

use super::note::SignedNote;
use super::policy::Policy;
use super::proof::{
    verify_consistency_proof, verify_inclusion_proof, ConsistencyProofFile, InclusionProofFile,
    ProofError, VerifiedConsistency, VerifiedInclusion, CONSISTENCY_PROOF_FORMAT,
};
use super::text::Checkpoint;
use crate::hex::to_hex;
use crate::trust::{TrustError, TrustFile};

/// Why a proof file could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofFileError {
    /// The file is not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The file is JSON but not a proof file of the format it names (or, with no known
    /// format, of an inclusion proof).
    #[error("{0}")]
    Malformed(#[source] serde_json::Error),
    /// The trust file gives no policy for the proof's checkpoint.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// What a proof file proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofVerdict {
    Inclusion(VerifiedInclusion),
    Consistency(VerifiedConsistency),
}

impl fmt::Display for ProofVerdict {
    /// One line for a person: what is proven, in which checkpoint, and who vouched for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofVerdict::Consistency(v) => write!(
                f,
                "consistent: {} size {} is a prefix of size {} (cosigned by {} witness(es))",
                v.new.checkpoint.origin(),
                v.old.checkpoint.size(),
                v.new.checkpoint.size(),
                v.new.cosigners.len()
            ),
            ProofVerdict::Inclusion(v) => write!(
                f,
                "included: entry {} at height {} is in {} of size {} signed by {} (cosigned by \
                 {} witness(es))",
                to_hex(&v.entry_hash),
                v.index,
                v.checkpoint.checkpoint.origin(),
                v.checkpoint.checkpoint.size(),
                v.checkpoint.writers.join(", "),
                v.checkpoint.cosigners.len()
            ),
        }
    }
}

/// Checks the proof file `text` under `trust` (see the module documentation). The outer
/// error: the file or the trust file cannot be used; the inner one: the proof does not hold.
pub fn verify_proof_file(
    text: &str,
    trust: &TrustFile,
) -> Result<Result<ProofVerdict, ProofError>, ProofFileError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(ProofFileError::NotJson)?;
    if value["format"].as_str() == Some(CONSISTENCY_PROOF_FORMAT) {
        let file: ConsistencyProofFile =
            serde_json::from_value(value).map_err(ProofFileError::Malformed)?;
        let policy = policy_for_note(trust, &file.new)?;
        Ok(verify_consistency_proof(&file, &policy).map(ProofVerdict::Consistency))
    } else {
        let file: InclusionProofFile =
            serde_json::from_value(value).map_err(ProofFileError::Malformed)?;
        let policy = policy_for_note(trust, &file.checkpoint)?;
        Ok(verify_inclusion_proof(&file, &policy).map(ProofVerdict::Inclusion))
    }
}

/// The policy for the chain a checkpoint note names, under `trust`'s checkpoint half (or the
/// default one); when the note names no partition under the trust file's namespace, one with
/// every writer trusted for all topics, which the proof then fails on its origin or signer.
pub fn policy_for_note(trust: &TrustFile, note: &str) -> Result<Policy, TrustError> {
    let checkpoints = trust.checkpoints_or_default();
    let origin = SignedNote::parse(note.as_bytes())
        .ok()
        .and_then(|n| Checkpoint::parse(n.text()).ok())
        .map(|c| c.origin().to_owned());
    if let Some((topic, partition)) = origin
        .as_deref()
        .and_then(|o| split_origin(&checkpoints.namespace, o))
    {
        return checkpoints.policy(&trust.trust, topic, partition);
    }
    let writers = trust.trust.writer_verifiers("");
    Policy::new(
        writers,
        checkpoints.witnesses.clone(),
        checkpoints.threshold,
    )
    .map_err(TrustError::Policy)
}

/// The topic and partition of a partition's checkpoint origin `<namespace>/<topic>/<p>`, when
/// `origin` is one under `namespace` with a canonical partition number (no sign, no leading
/// zero).
pub fn split_origin<'o>(namespace: &str, origin: &'o str) -> Option<(&'o str, u32)> {
    let rest = origin.strip_prefix(namespace)?.strip_prefix('/')?;
    let (topic, p) = rest.rsplit_once('/')?;
    let canonical = !p.is_empty() && (p == "0" || !p.starts_with('0'));
    (!topic.is_empty() && canonical)
        .then(|| p.parse().ok().map(|p| (topic, p)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::text::chain_leaf;
    use crate::keys::WriterKey;
    use crate::merkle;

    const TRUST: &str = "[[writer]]\nname = \"acme\"\npublic_key = \"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\"\n";

    /// A chain of `n` entries and its checkpoint signed by the writer of [`TRUST`].
    fn signed(origin: &str, leaves: &[[u8; 32]]) -> SignedNote {
        let writer = WriterKey::from_seed("acme", [1; 32]).note_signer().unwrap();
        let tree: Vec<_> = leaves.iter().map(chain_leaf).collect();
        Checkpoint::new(origin, leaves.len() as u64, merkle::root(&tree))
            .unwrap()
            .sign(&writer)
    }

    fn inclusion(origin: &str) -> String {
        let leaves = [[7; 32], [8; 32]];
        let tree: Vec<_> = leaves.iter().map(chain_leaf).collect();
        let proof = merkle::inclusion_proof(&tree, 1).unwrap();
        let file = InclusionProofFile::new(1, &leaves[1], &proof, &signed(origin, &leaves));
        serde_json::to_string(&file).unwrap()
    }

    #[test]
    fn an_inclusion_proof_holds_under_its_partitions_policy() {
        let trust = TrustFile::from_toml(TRUST).unwrap();
        let verdict = verify_proof_file(&inclusion("kchain/orders/0"), &trust)
            .unwrap()
            .unwrap();
        assert!(
            verdict.to_string().starts_with("included: entry 0808"),
            "{verdict}"
        );
        assert!(verdict
            .to_string()
            .contains("in kchain/orders/0 of size 2 signed by acme"));
    }

    #[test]
    fn a_writer_key_trusted_under_another_name_matches_by_key_material() {
        // The auditor calls acme's key "shop-inc"; the checkpoint's line names "acme".
        let trust = TrustFile::from_toml(&TRUST.replace("\"acme\"", "\"shop-inc\"")).unwrap();
        let verdict = verify_proof_file(&inclusion("kchain/orders/0"), &trust)
            .unwrap()
            .unwrap();
        assert!(
            verdict.to_string().contains("signed by shop-inc"),
            "{verdict}"
        );
        // Another key under the writer's own name does not match.
        let other = WriterKey::from_seed("acme", [9; 32]).public().to_hex();
        let impostor = TrustFile::from_toml(&format!(
            "[[writer]]\nname = \"acme\"\npublic_key = \"{other}\"\n"
        ))
        .unwrap();
        assert!(verify_proof_file(&inclusion("kchain/orders/0"), &impostor)
            .unwrap()
            .is_err());
    }

    #[test]
    fn a_consistency_proof_is_told_apart_by_its_format() {
        let leaves = [[1; 32], [2; 32], [3; 32]];
        let tree: Vec<_> = leaves.iter().map(chain_leaf).collect();
        let proof = merkle::consistency_proof(&tree, 2).unwrap();
        let (old, new) = (
            signed("kchain/t/1", &leaves[..2]),
            signed("kchain/t/1", &leaves),
        );
        let file = ConsistencyProofFile::new(&old, &new, &proof);
        let text = serde_json::to_string(&file).unwrap();
        let trust = TrustFile::from_toml(TRUST).unwrap();
        let verdict = verify_proof_file(&text, &trust).unwrap().unwrap();
        assert_eq!(
            verdict.to_string(),
            "consistent: kchain/t/1 size 2 is a prefix of size 3 (cosigned by 0 witness(es))"
        );
    }

    #[test]
    fn a_proof_that_fails_is_a_verdict_and_a_bad_file_an_error() {
        let trust = TrustFile::from_toml(TRUST).unwrap();
        // A checkpoint outside the namespace gets the all-topics policy, bound to no origin.
        assert!(verify_proof_file(&inclusion("elsewhere/orders/0"), &trust)
            .unwrap()
            .is_ok());
        let needs_witness = format!(
            "{TRUST}[[witness]]\nkey = \"{}\"\n[policy]\nwitnesses = 1\n",
            crate::checkpoint::cosign::Cosigner::from_seed("w", [2; 32])
                .unwrap()
                .verifier()
                .to_vkey()
        );
        let strict = TrustFile::from_toml(&needs_witness).unwrap();
        assert!(matches!(
            verify_proof_file(&inclusion("kchain/orders/0"), &strict).unwrap(),
            Err(ProofError::Policy { .. })
        ));
        let tampered = inclusion("kchain/orders/0").replace("\"index\":1", "\"index\":0");
        assert!(verify_proof_file(&tampered, &trust).unwrap().is_err());
        assert!(matches!(
            verify_proof_file("{", &trust),
            Err(ProofFileError::NotJson(_))
        ));
        assert!(matches!(
            verify_proof_file("{\"format\": 1}", &trust),
            Err(ProofFileError::Malformed(_))
        ));
    }

    #[test]
    fn origins_split_into_topic_and_canonical_partition() {
        assert_eq!(split_origin("kchain", "kchain/a/b/3"), Some(("a/b", 3)));
        assert_eq!(split_origin("kchain", "kchain/a/0"), Some(("a", 0)));
        for bad in [
            "kchain/a/01",
            "kchain/a/",
            "kchain//1",
            "other/a/1",
            "kchaina/1",
            "kchain/a/-1",
        ] {
            assert_eq!(split_origin("kchain", bad), None, "{bad}");
        }
    }
}
