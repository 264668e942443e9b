//! [`TopicVerifier`]: one builder for every way of verifying a chained topic, instead of
//! entry points with positional parameters.
//!
//! ```text
//!  TopicVerifier::new(&trust) .keyring(..) .checkpoints(..) .remember(..) .threads(..)
//!        │
//!        ▼ verify(&log, topic)
//!  read <topic>.checkpoints first (none may then cover more than the chain read after it)
//!        ──► verify the chains (verify.rs: partitions in parallel, decrypting with a keyring)
//!        ──► hold them against their checkpoints (checkpoints/check.rs), remember the newest
//!        ──► warn about partitions nothing outside the log anchors
//!        ──► VerifyReport { chain, checkpoints }
//! ```
//!
//! ```
//! # use kchain_core::{Item, Trust, TrustedWriter, WriterKey};
//! # use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
//! # use kchain_topic::{ChainWriter, TopicVerifier, WriterOptions};
//! # let dir = tempfile::tempdir().unwrap();
//! # let log = EmbeddedLog::create(dir.path(), EmbeddedOptions::default()).unwrap();
//! # log.create_topic("orders", &TopicConfig::default()).unwrap();
//! # let key = WriterKey::generate("app");
//! # let mut w = ChainWriter::open(&log, "orders", 0, &key, WriterOptions::default()).unwrap();
//! # w.append(vec![Item { value: Some(b"x".to_vec()), ..Item::default() }]).unwrap();
//! # let trust = Trust { writers: vec![TrustedWriter { name: "app".into(), key: key.public(),
//! #     topics: vec![] }], pins: vec![], topics: vec![] };
//! let report = TopicVerifier::new(&trust).threads(2).verify(&log, "orders").unwrap();
//! assert!(report.ok());
//! assert_eq!(report.chain.partitions[0].summary.entries, 1);
//! ```

use std::time::Duration;

use kchain_core::{CheckpointTrust, Keyring, SignedNote, Trust};
use kchain_log::Log;

use crate::checkpoints::{
    check_checkpoints_with, read_checkpoints, CheckOptions, CheckpointReport,
};
use crate::error::TopicError;
use crate::files::CheckpointStore;
use crate::report::TopicReport;
use crate::verify::{verify_chains, VerifyOptions};

/// How to verify a topic: the trust file, and optionally a keyring, the checkpoint policy,
/// the remembered checkpoints, the partitions, the grace for an unsigned tail, the threads.
/// Built once, run on any number of logs and topics.
#[derive(Clone)]
pub struct TopicVerifier<'a> {
    trust: &'a Trust,
    partitions: Option<Vec<u32>>,
    keyring: Option<&'a Keyring>,
    checkpoints: Option<&'a CheckpointTrust>,
    check: CheckOptions,
    options: VerifyOptions,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

/// What [`TopicVerifier::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The chains (and with a keyring, decryption), partition by partition.
    pub chain: TopicReport,
    /// The chains against their checkpoints, when a checkpoint policy was given.
    pub checkpoints: Option<CheckpointReport>,
}

impl VerifyReport {
    /// True when neither the chains nor their checkpoints have a finding.
    pub fn ok(&self) -> bool {
        self.chain.ok() && self.checkpoints.as_ref().is_none_or(CheckpointReport::ok)
    }
}

impl<'a> TopicVerifier<'a> {
    /// A verifier of the chains that `trust` vouches for: every partition, no keyring, no
    /// checkpoint check, [`VerifyOptions::default`].
    pub fn new(trust: &'a Trust) -> Self {
        TopicVerifier {
            trust,
            partitions: None,
            keyring: None,
            checkpoints: None,
            check: CheckOptions::default(),
            options: VerifyOptions::default(),
            progress: None,
        }
    }

    /// Verifies only `partitions` (each must exist, or be pinned by the trust file).
    pub fn partitions(mut self, partitions: &[u32]) -> Self {
        self.partitions = Some(partitions.to_vec());
        self
    }

    /// Also tries to decrypt every encrypted record with `keyring` (`None`: does not): a
    /// record whose key the keyring lacks is a `key_missing` finding, one that does not
    /// decrypt a `decrypt_failed` finding, one under a shredded key is counted. The results
    /// are in each partition's [`crate::PartitionReport::encryption`].
    pub fn keyring(mut self, keyring: impl Into<Option<&'a Keyring>>) -> Self {
        self.keyring = keyring.into();
        self
    }

    /// Also holds each chain against its signed checkpoints under `policy` (the checkpoint
    /// half of the trust file); see [`crate::check_checkpoints_with`].
    pub fn checkpoints(mut self, policy: impl Into<Option<&'a CheckpointTrust>>) -> Self {
        self.checkpoints = policy.into();
        self
    }

    /// With [`checkpoints`](Self::checkpoints): remembers the newest trusted checkpoint of
    /// each chain in `store`, for the log whose identity is `backend` (see
    /// [`CheckpointStore`]), and requires each run's chain to be consistent with it.
    pub fn remember(mut self, store: CheckpointStore, backend: impl Into<String>) -> Self {
        self.check.store = Some(store);
        self.check.backend = backend.into();
        self
    }

    /// With [`checkpoints`](Self::checkpoints): checkpoints handed over outside the log (from
    /// a witness), counted as if read from the checkpoints topic.
    pub fn handed(mut self, notes: Vec<SignedNote>) -> Self {
        self.check.handed = notes;
        self
    }

    /// Sets the checkpoint check's options at once (remembered state and handed notes).
    pub fn check_options(mut self, options: CheckOptions) -> Self {
        self.check = options;
        self
    }

    /// Worker threads; 0 (the default) means one per core.
    pub fn threads(mut self, threads: usize) -> Self {
        self.options.threads = threads;
        self
    }

    /// How long to wait for the signature of records read at the end that no signature
    /// covers yet, before calling them `unsigned` (docs/pending.md).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.options.grace = grace;
        self
    }

    /// Sets every [`VerifyOptions`] at once (threads, chunk, until, grace).
    pub fn options(mut self, options: VerifyOptions) -> Self {
        self.options = options;
        self
    }

    /// Calls `progress` with the number of records each step verified.
    pub fn progress(mut self, progress: &'a (dyn Fn(u64) + Sync)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Verifies `topic` of `log`: its chains, then (with a checkpoint policy) the chains
    /// against their checkpoints, remembering the newest trusted one when there is no
    /// finding. The chain report's warnings name the partitions nothing outside the log
    /// anchors (no pinned tip, no trusted checkpoint).
    pub fn verify(&self, log: &dyn Log, topic: &str) -> Result<VerifyReport, TopicError> {
        // Checkpoints first: one published while the chain is read then covers no more than it.
        let records = match self.checkpoints {
            Some(_) => read_checkpoints(log, topic)?,
            None => Vec::new(),
        };
        let mut chain = self.verify_chains(log, topic)?;
        let checkpoints = match self.checkpoints {
            Some(policy) => Some(check_checkpoints_with(
                log,
                &chain,
                self.trust,
                policy,
                &records,
                &self.check,
            )?),
            None => None,
        };
        let anchored = |p: u32| {
            checkpoints.as_ref().is_some_and(|c| {
                c.partitions
                    .iter()
                    .any(|x| x.partition == p && (x.newest.is_some() || x.remembered.is_some()))
            })
        };
        let warnings = anchor_warnings(&chain, self.trust, &anchored);
        chain.warnings.extend(warnings);
        Ok(VerifyReport { chain, checkpoints })
    }

    /// Verifies the chains of `topic` only: no checkpoint check and no anchor warnings,
    /// whatever was configured for them.
    pub fn verify_chains(&self, log: &dyn Log, topic: &str) -> Result<TopicReport, TopicError> {
        verify_chains(
            log,
            topic,
            self.partitions.as_deref(),
            self.trust,
            self.keyring,
            self.options,
            self.progress.unwrap_or(&|_| {}),
        )
    }
}

/// Verifies `partitions` of `topic` (all of them when `None`) against `trust`. `progress` is
/// called with the number of records each step verified. A shorthand for
/// [`TopicVerifier::verify_chains`].
pub fn verify_topic(
    log: &dyn Log,
    topic: &str,
    partitions: Option<&[u32]>,
    trust: &Trust,
    options: VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TopicReport, TopicError> {
    verify_chains(log, topic, partitions, trust, None, options, progress)
}

/// Verifies like [`verify_topic`], and also tries to decrypt every encrypted record with
/// `keyring` (see [`TopicVerifier::keyring`]). A shorthand for
/// [`TopicVerifier::verify_chains`].
pub fn verify_topic_decrypting(
    log: &dyn Log,
    topic: &str,
    partitions: Option<&[u32]>,
    trust: &Trust,
    keyring: &Keyring,
    options: VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TopicReport, TopicError> {
    verify_chains(
        log,
        topic,
        partitions,
        trust,
        Some(keyring),
        options,
        progress,
    )
}

/// Warnings for the partitions of `report` that nothing outside the log anchors: with no
/// pinned tip and no checkpoint that a policy vouches for (`anchored` says which partitions
/// a checkpoint or remembered state covers), deleting records at the tip, emptying the
/// partition or replacing it wholesale leaves no trace that the log itself could show.
pub fn anchor_warnings(
    report: &TopicReport,
    trust: &Trust,
    anchored: &dyn Fn(u32) -> bool,
) -> Vec<String> {
    let bare: Vec<u32> = report
        .partitions
        .iter()
        .map(|r| r.partition)
        .filter(|&p| {
            trust
                .pin(&report.topic, p)
                .is_none_or(|pin| pin.tip.is_none())
        })
        .filter(|&p| !anchored(p))
        .collect();
    if bare.is_empty() {
        return Vec::new();
    }
    let list = bare
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    vec![format!(
        "{topic}: partition(s) {list}: no pin and no trusted checkpoint, so truncation, \
         deletion and wholesale rewriting cannot be detected; anchor them with `kchain trust \
         pin {topic}` or a checkpoint policy in the trust file",
        topic = report.topic
    )]
}
