//! [`TopicVerifier`]: one builder for every way of verifying a chained topic, instead of
//! entry points with positional parameters.
//!
//! ```text
//!  TopicVerifier::new(&trust) .keyring(..) .checkpoints(..) .remember(..) .threads(..)
//!        │
//!        ▼ verify(&log, topic)
//!  read <topic>.checkpoints first (none may then cover more than the chain read after it;
//!  not at all with ignore_checkpoints_topic)
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

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use kchain_core::{CheckpointTrust, Keyring, SignedNote, Trust};
use kchain_log::Log;

use crate::checkpoints::{
    check_grown, read_checkpoints, ChainTree, CheckOptions, CheckpointReport, Known,
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
    log: Option<String>,
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
            log: None,
        }
    }

    /// Names the log being verified (`embedded:<dir>`, `kafka:<cluster id>`; see
    /// [`crate::DataDir::log_identity`]): only the pins taken on it apply (and pins that
    /// name no log, with a warning), and the report warns about pins of the topic taken on
    /// other logs, which are not applied. Without it every pin applies. It also keys the
    /// remembered checkpoints when [`remember`](Self::remember) did not name the log.
    pub fn log(mut self, identity: impl Into<String>) -> Self {
        self.log = Some(identity.into());
        self
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
    /// half of the trust file); see [`crate::checkpoints::check_checkpoints_with`].
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

    /// With [`checkpoints`](Self::checkpoints): fetches each partition's newest cosigned
    /// checkpoint from `witnesses` and holds the chain to it like the others; a witness
    /// unreachable or answering garbage is a warning (see [`crate::checkpoints::fetch_latest`]).
    pub fn witnesses(
        mut self,
        witnesses: Vec<std::sync::Arc<dyn kchain_core::RemoteWitness>>,
    ) -> Self {
        self.check.witnesses = crate::checkpoints::RemoteWitnesses(witnesses);
        self
    }

    /// With [`checkpoints`](Self::checkpoints): never reads the checkpoints topic; the
    /// chains are held to the checkpoints handed over, fetched and remembered alone.
    pub fn ignore_checkpoints_topic(mut self) -> Self {
        self.check.ignore_topic = true;
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
        let trust = self.applied_trust();
        // Checkpoints first: one published while the chain is read then covers no more than it.
        let records = match self.checkpoints {
            Some(_) if !self.check.ignore_topic => {
                let mut records = read_checkpoints(log, topic)?;
                // A topic restored or mirrored under another name on the same log: the
                // checkpoints its chain name was published under count too (they name the
                // chain's origin; notes of any other origin are left out by the check).
                let name = trust.chain_name(topic);
                if name != topic {
                    records.extend(read_checkpoints(log, name)?);
                }
                records
            }
            _ => Vec::new(),
        };
        let mut check = self.check.clone();
        if check.backend.is_empty() {
            check.backend = self.log.clone().unwrap_or_default();
        }
        // The chain tree is grown during the chain pass, at the sizes of the checkpoints
        // known now: the log is read once.
        let known = self
            .checkpoints
            .map(|policy| Known::new(topic, &trust, policy, &records, &check));
        let (mut chain, trees) = self.chains(log, topic, &trust, known.as_ref())?;
        let checkpoints = match self.checkpoints {
            Some(policy) => {
                let c = check_grown(log, &chain, (&trust, policy), &records, &check, &trees)?;
                Some(c)
            }
            None => None,
        };
        let anchored = |p: u32| {
            checkpoints.as_ref().is_some_and(|c| {
                c.partitions
                    .iter()
                    .any(|x| x.partition == p && (x.newest.is_some() || x.remembered.is_some()))
            })
        };
        let warnings = anchor_warnings(&chain, &trust, &anchored);
        chain.warnings.extend(self.log_warnings(topic));
        chain.warnings.extend(warnings);
        Ok(VerifyReport { chain, checkpoints })
    }

    /// Verifies the chains of `topic` only: no checkpoint check and no anchor warnings,
    /// whatever was configured for them.
    pub fn verify_chains(&self, log: &dyn Log, topic: &str) -> Result<TopicReport, TopicError> {
        Ok(self.chains(log, topic, &self.applied_trust(), None)?.0)
    }

    /// The trust the chains are held to: with [`log`](Self::log), only the pins of that log.
    pub fn applied_trust(&self) -> Cow<'a, Trust> {
        match &self.log {
            Some(id) => Cow::Owned(self.trust.on_log(id)),
            None => Cow::Borrowed(self.trust),
        }
    }

    /// The chains, and with `grow` their chain trees grown in the same pass.
    fn chains(
        &self,
        log: &dyn Log,
        topic: &str,
        trust: &Trust,
        grow: Option<&Known<'_>>,
    ) -> Result<(TopicReport, HashMap<u32, ChainTree>), TopicError> {
        verify_chains(
            log,
            topic,
            self.partitions.as_deref(),
            (trust, self.keyring),
            self.options,
            self.progress.unwrap_or(&|_| {}),
            grow,
        )
    }

    /// With [`log`](Self::log): warnings about the pins of `topic` that name another log
    /// (not applied) or no log (applied everywhere).
    fn log_warnings(&self, topic: &str) -> Vec<String> {
        let Some(here) = &self.log else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let applied = self.trust.on_log(here);
        let elsewhere = self.trust.pinned_elsewhere(topic, here);
        if !elsewhere.is_empty() && applied.pinned_partitions(topic).is_none() {
            let there: Vec<String> = elsewhere.iter().map(|l| describe_log(l)).collect();
            out.push(format!(
                "{topic} is pinned on {}, not on {}: pins not applied; run `kchain trust pin \
                 {topic}` to pin it here",
                there.join(" and "),
                describe_log(here)
            ));
        }
        if self.trust.pinned_on_any_log(topic)
            && applied
                .pins
                .iter()
                .any(|p| p.topic == topic && p.log.is_none())
        {
            out.push(format!(
                "{topic}: some pins name no log (written by an older kchain) and are applied \
                 on {}; run `kchain trust pin {topic}` here to record the log they belong to",
                describe_log(here)
            ));
        }
        out
    }
}

/// A log identity in words: `embedded:/x` is "embedded log /x", `kafka:ID` "kafka cluster
/// ID".
pub fn describe_log(identity: &str) -> String {
    match identity.split_once(':') {
        Some(("embedded", dir)) => format!("embedded log {dir}"),
        Some(("kafka", id)) => format!("kafka cluster {id}"),
        _ => identity.to_owned(),
    }
}

/// Warnings for the partitions of `report` that nothing outside the log anchors: with no
/// pinned tip and no checkpoint that a policy vouches for (`anchored` says which partitions
/// a checkpoint or remembered state covers), deleting records at the tip, emptying the
/// partition or replacing it wholesale leaves no trace that the log itself could show.
fn anchor_warnings(
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
