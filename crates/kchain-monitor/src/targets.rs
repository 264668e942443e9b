//! What the monitor watches, opened from its options and its state: every partition of each
//! chained topic, and each ledger's blocks chain, each with its checkpoints' origin, the
//! keys that may sign them (the topic's trusted writers; the ledger's genesis sealers) and
//! the freshness policy; and the checkpoints topics they are read from.
//!
//! ```text
//!  topic T   ──► partitions p ──► Watched { PartitionWatch, origin "<ns>/T/p", writers }
//!  ledger L  ──► L.blocks     ──► Watched { LedgerWatch,    origin "<ns>/L.blocks", sealers }
//!  each      ──► Feed of "<topic>.checkpoints", chain partition ──► its Watched
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use kchain_core::checkpoint::Policy;
use kchain_core::{CheckpointTrust, NoteVerifier, Trust};
use kchain_ledger::{ledger_origin, ledger_policy, sealer_verifiers, Topics};
use kchain_log::Log;
use kchain_topic::checkpoints::{partition_origin, writer_verifiers};

use crate::book::Book;
use crate::chain::PartitionWatch;
use crate::error::MonitorError;
use crate::feed::Feed;
use crate::fresh::Fresh;
use crate::ledger::LedgerWatch;
use crate::options::MonitorOptions;
use crate::state::{MonitorState, PartitionState};
use crate::watch::Watch;

/// One watched chain with its checkpoints.
pub(crate) struct Watched {
    pub(crate) watch: Box<dyn Watch>,
    pub(crate) book: Book,
    pub(crate) fresh: Fresh,
    /// The origin of its checkpoints, who may sign them, and (with `max_age`) the policy
    /// the freshness rule accepts them by.
    pub(crate) origin: String,
    pub(crate) writers: Vec<NoteVerifier>,
    pub(crate) policy: Option<Policy>,
}

/// A checkpoints topic, and which watched chain each of its chain partitions is.
pub(crate) struct FeedOf {
    pub(crate) feed: Feed,
    pub(crate) chains: BTreeMap<u32, usize>,
}

/// Opens every chain `opts` names, going on from `state`.
pub(crate) fn open(
    log: &dyn Log,
    trust: &Trust,
    opts: &MonitorOptions,
    state: &MonitorState,
) -> Result<(Vec<Watched>, Vec<FeedOf>), MonitorError> {
    let (mut watched, mut feeds) = (Vec::new(), Vec::new());
    for topic in &opts.topics {
        let writers = writer_verifiers(trust, topic);
        let policy = freshness(opts, writers.clone())?;
        let mut chains = BTreeMap::new();
        for p in 0..log.topic(topic)?.partitions {
            let saved = saved(state, topic, p);
            chains.insert(p, watched.len());
            watched.push(Watched {
                watch: Box::new(PartitionWatch::resume(topic, p, trust, &saved, opts.grace)),
                book: Book::load(&saved),
                fresh: Fresh::load(policy.as_ref(), &saved),
                origin: partition_origin(&opts.namespace, topic, p),
                writers: writers.clone(),
                policy: policy.clone(),
            });
        }
        feeds.push(FeedOf {
            feed: Feed::new(topic),
            chains,
        });
    }
    for ledger in &opts.ledgers {
        let blocks = Topics::for_chain(ledger).blocks;
        let saved = saved(state, &blocks, 0);
        let watch = LedgerWatch::open(log, ledger, &blocks, &saved, &opts.state_dir)?;
        let genesis = watch.replayed().genesis().clone();
        let policy = match opts.max_age {
            Some(_) => Some(ledger_policy(
                &genesis,
                &blocks,
                &checkpoint_trust(opts),
                None,
            )?),
            None => None,
        };
        feeds.push(FeedOf {
            feed: Feed::new(&blocks),
            chains: BTreeMap::from([(0, watched.len())]),
        });
        watched.push(Watched {
            watch: Box::new(watch),
            book: Book::load(&saved),
            fresh: Fresh::load(policy.as_ref(), &saved),
            origin: ledger_origin(&opts.namespace, &blocks),
            writers: sealer_verifiers(&genesis),
            policy,
        });
    }
    Ok((watched, feeds))
}

/// The state saved for partition `p` of `chain` (a fresh one when there is none).
fn saved(state: &MonitorState, chain: &str, p: u32) -> PartitionState {
    let key = state_key(chain, p);
    state.partitions.get(&key).cloned().unwrap_or_default()
}

/// The key of a chain partition in the state file: `"<topic>/<partition>"`.
pub(crate) fn state_key(chain: &str, p: u32) -> String {
    format!("{chain}/{p}")
}

/// The freshness policy of a topic (with `max_age`): its writers, the trust's witnesses.
fn freshness(
    opts: &MonitorOptions,
    writers: Vec<NoteVerifier>,
) -> Result<Option<Policy>, MonitorError> {
    if opts.max_age.is_none() {
        return Ok(None);
    }
    Policy::new(writers, opts.witnesses.clone(), opts.threshold)
        .map(Some)
        .map_err(|e| MonitorError::Policy(e.to_string()))
}

/// The trust's checkpoint policy as kchain-ledger takes it.
fn checkpoint_trust(opts: &MonitorOptions) -> CheckpointTrust {
    CheckpointTrust {
        witnesses: opts.witnesses.clone(),
        threshold: opts.threshold,
        namespace: opts.namespace.clone(),
        max_age: opts.max_age,
        ..CheckpointTrust::default()
    }
}

/// Whether `dir` holds the state file.
pub(crate) fn state_exists(dir: &Path) -> bool {
    dir.join(crate::state::STATE_FILE).exists()
}
