//! `ledger verify`: replays a ledger's blocks topic from genesis and reports the canonical
//! chain, every ignored record with its reason, and the first finding.
//!
//! ```text
//! exit 0  intact (ignored blocks are normal life: stale races, invalid appends)
//! exit 3  a finding: a block changed, removed or reordered after it was stored, or an
//!         anchor (expected genesis, pinned block, the node's snapshot, a trusted signed
//!         checkpoint) no longer holds
//! exit 1  the ledger could not be read (no genesis, log errors)
//! ```
//!
//! Anchors matter for the end of the chain: removing or replacing the last blocks leaves no
//! trace in the log itself (nothing refers to them yet), so a verifier should hold a pin: the
//! genesis file (`--genesis`), a (height, hash) it saw earlier, or a node's snapshot; and,
//! with [`VerifyOptions::checkpoints`], the sealers' signed checkpoints, which a policy
//! (k of n witnesses) can make independent of the sealers.

use std::path::PathBuf;

use kchain_core::{ChainId, CheckpointTrust, Hash};
use kchain_log::Log;
use kchain_topic::checkpoints::CheckpointRecord;
use serde_json::{json, Value};

use crate::checkpoints::{self, CheckpointFinding, CheckpointStatus};
use crate::consensus::block::StoredBlock;
use crate::consensus::chain::Chain;
use crate::consensus::encoding::hex_lower;
use crate::consensus::finding::{Finding, FindingKind, IgnoreReason, Verdict};
use crate::consensus::validate::Verifier;
use crate::error::LedgerError;
use crate::node::snapshot;
use crate::node::store::open_chain;
use crate::node::store::poll_to_end;
use crate::node::store::read_record;

/// What to check beyond the log itself: [`verify_ledger`]'s options, `Default` for none.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The genesis hash the ledger must have (from the genesis file).
    pub expected_genesis: Option<Hash>,
    /// Blocks that must be canonical: (height, hash).
    pub pins: Vec<(u64, Hash)>,
    /// A node's snapshot file, whose tip is used as a pin when it is of this ledger.
    pub snapshot: Option<PathBuf>,
    /// The remembered checkpoint and handed-over checkpoints (with `checkpoints` given).
    pub checkpoint_anchors: checkpoints::CheckpointAnchors,
    /// When given, and the chain has no finding, the canonical chain is held against the
    /// newest checkpoint on `<blocks topic>.checkpoints` that meets this policy: signed by a
    /// sealer of the genesis (under its name there), cosigned by the trust's threshold of its
    /// witnesses, of origin `<namespace>/<blocks topic>`. A chain shorter than it is
    /// `checkpoint_truncated` (at the end of the topic), another root at a trusted
    /// checkpoint's size is `checkpoint_rewritten`, two roots signed for one size are
    /// `checkpoint_fork`.
    pub checkpoints: Option<CheckpointTrust>,
}

/// An ignored record of the blocks topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredBlock {
    pub offset: u64,
    pub height: Option<u64>,
    pub hash: Option<Hash>,
    pub reason: IgnoreReason,
}

/// The result of verifying a ledger.
#[derive(Clone, Debug)]
pub struct LedgerReport {
    pub blocks_topic: String,
    pub chain: String,
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    /// Records read, and the topic's offsets.
    pub records: u64,
    pub start_offset: u64,
    pub end_offset: u64,
    pub height: u64,
    pub tip_hash: Hash,
    pub tip_offset: u64,
    /// Transactions in the canonical chain.
    pub transactions: u64,
    pub ignored: Vec<IgnoredBlock>,
    pub finding: Option<Finding>,
    /// How the chain stands against its signed checkpoints, when they were checked.
    pub checkpoints: Option<CheckpointStatus>,
    /// A contradiction between the chain and a trusted checkpoint (truncated, rewritten,
    /// forked): tampering like [`LedgerReport::finding`].
    pub checkpoint_finding: Option<CheckpointFinding>,
    /// The anchors that were checked, described.
    pub anchors: Vec<String>,
    pub warnings: Vec<String>,
}

impl LedgerReport {
    /// True when there is no finding, in the chain or against its checkpoints.
    pub fn ok(&self) -> bool {
        self.finding.is_none() && self.checkpoint_finding.is_none()
    }

    /// The `--json` form.
    pub fn to_json(&self) -> Value {
        json!({
            "blocks_topic": self.blocks_topic,
            "chain": self.chain,
            "chain_id": hex_lower(&self.chain_id.0),
            "genesis": hex_lower(&self.genesis_hash),
            "ok": self.ok(),
            "records": self.records,
            "start_offset": self.start_offset,
            "end_offset": self.end_offset,
            "height": self.height,
            "tip": hex_lower(&self.tip_hash),
            "tip_offset": self.tip_offset,
            "transactions": self.transactions,
            "ignored": self.ignored.iter().map(|i| json!({
                "offset": i.offset,
                "height": i.height,
                "hash": i.hash.map(|h| hex_lower(&h)),
                "reason": i.reason.code(),
                "detail": i.reason.to_string(),
            })).collect::<Vec<_>>(),
            // The first finding of either kind, so that one member tells what is wrong.
            "finding": match (&self.finding, &self.checkpoint_finding) {
                (Some(f), _) => json!({
                    "offset": f.offset,
                    "height": f.height,
                    "kind": f.kind.as_str(),
                    "detail": f.detail,
                }),
                (None, Some(f)) => checkpoint_finding_json(f),
                (None, None) => Value::Null,
            },
            "checkpoint_finding": self.checkpoint_finding.as_ref().map(checkpoint_finding_json),
            "checkpoints": self.checkpoints.as_ref().map(|c| json!({
                "origin": c.origin,
                "seen": c.seen,
                "untrusted": c.untrusted,
                "newest": c.newest.as_ref().map(|(n, t)| json!({
                    "size": t.checkpoint.size(),
                    "root": hex_lower(t.checkpoint.root()),
                    "writers": t.writers,
                    "cosigners": t.cosigners.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                    "note": n.to_text(),
                })),
            })),
            "anchors": self.anchors,
            "warnings": self.warnings,
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = if self.ok() {
            format!(
                "ledger '{}' ({}): OK, height {}, {} transactions, tip {} at offset {}\n",
                self.chain,
                self.blocks_topic,
                self.height,
                self.transactions,
                &hex_lower(&self.tip_hash)[..16],
                self.tip_offset
            )
        } else {
            format!(
                "ledger '{}' ({}): TAMPERING FOUND; canonical up to height {} before it\n",
                self.chain, self.blocks_topic, self.height
            )
        };
        out += &format!(
            "  genesis {}  chain id {}\n  {} records read (offsets {}..{}), {} ignored\n",
            hex_lower(&self.genesis_hash),
            hex_lower(&self.chain_id.0),
            self.records,
            self.start_offset,
            self.end_offset,
            self.ignored.len()
        );
        for i in &self.ignored {
            let h = i.height.map_or("-".into(), |h| h.to_string());
            out += &format!("    ignored offset {} height {h}: {}\n", i.offset, i.reason);
        }
        if let Some(f) = &self.finding {
            out += &format!("  FINDING {f}\n");
        }
        self.checkpoints_text(&mut out);
        for a in &self.anchors {
            out += &format!("  anchor: {a}\n");
        }
        for w in &self.warnings {
            out += &format!("  warning: {w}\n");
        }
        out
    }
}

impl LedgerReport {
    /// The checkpoint lines of [`LedgerReport::to_text`]: the status, and a contradiction
    /// with its evidence.
    fn checkpoints_text(&self, out: &mut String) {
        if let Some(c) = &self.checkpoints {
            let newest = c.newest.as_ref().map_or("none".to_owned(), |(_, t)| {
                format!(
                    "size {} signed by {} cosigned by {} witness(es)",
                    t.checkpoint.size(),
                    t.writers.join(", "),
                    t.cosigners.len()
                )
            });
            *out += &format!(
                "  checkpoints {}: {} seen, {} untrusted, newest trusted {newest}\n",
                c.origin, c.seen, c.untrusted
            );
        }
        if let Some(f) = &self.checkpoint_finding {
            *out += &format!("  FINDING {f}\n");
            for n in &f.evidence {
                *out += "    evidence:\n";
                for line in n.to_text().lines() {
                    *out += &format!("      {line}\n");
                }
            }
        }
    }
}

fn checkpoint_finding_json(f: &CheckpointFinding) -> Value {
    json!({
        "offset": f.offset,
        "height": f.height,
        "kind": f.kind.as_str(),
        "detail": f.detail,
        "evidence": f.evidence.iter().map(|n| n.to_text()).collect::<Vec<_>>(),
    })
}

/// Verifies the ledger whose blocks topic is `blocks_topic`, from genesis to the topic's
/// current end, against the anchors of `opts`. `progress` is called with each offset read.
///
/// ```text
/// checkpoints topic read ─> genesis (or a broken one: a finding) ─> genesis anchor
///   ─> replay to the end (ignored blocks, the first finding) ─> pins and snapshot
///   ─> checkpoints (with opts.checkpoints) ─> warnings (retention, no anchor at the tip)
/// ```
pub fn verify_ledger(
    log: &dyn Log,
    blocks_topic: &str,
    opts: &VerifyOptions,
    progress: &dyn Fn(u64),
) -> Result<LedgerReport, LedgerError> {
    // Read before the topic's end is taken: every checkpoint read then covers only blocks
    // below that end (a sealer publishes one only for blocks it read back), so one published
    // while this runs cannot look like a truncation.
    let records = match &opts.checkpoints {
        Some(_) if opts.checkpoint_anchors.ignore_topic => Some(Vec::new()),
        Some(_) => Some(kchain_topic::checkpoints::read_checkpoints(
            log,
            blocks_topic,
        )?),
        None => None,
    };
    let start = log.start_offset(blocks_topic, 0)?;
    let end = log.end_offset(blocks_topic, 0)?;
    let mut chain = match open_or_broken(log, blocks_topic, start, end)? {
        Ok(chain) => chain,
        Err(broken) => return Ok(broken),
    };
    let mut report = LedgerReport::of_genesis(blocks_topic, &chain, start, end);
    if let Some(want) = opts.expected_genesis {
        report.anchors.push(format!("genesis {}", hex_lower(&want)));
        if want != chain.genesis_hash() {
            report.finding = Some(genesis_changed(
                start,
                format!(
                    "the genesis block hashes to {}, but the genesis file gives {}",
                    hex_lower(&chain.genesis_hash()),
                    hex_lower(&want)
                ),
            ));
            return Ok(report);
        }
    }
    // A genesis anchor proves where the chain starts, not where it ends: only the anchors
    // added after it (a pinned block, the node's snapshot, a trusted checkpoint) can show
    // that the last blocks were removed or replaced.
    let start_anchors = report.anchors.len();
    replay_into(log, &mut chain, end, &mut report, progress)?;
    if report.finding.is_none() {
        check_anchors(&chain, opts, end, &mut report);
    }
    if let (Some(trust), Some(records), None) = (&opts.checkpoints, &records, &report.finding) {
        hold_to_checkpoints(&chain, trust, records, end, opts, &mut report)?;
    }
    retention_warning(log, blocks_topic, &mut report);
    if report.anchors.len() == start_anchors {
        report.warnings.push(
            "no anchor at the tip: removing or replacing the last blocks would leave no trace \
             (a genesis anchor cannot show it); pass --pin HEIGHT:HASH or --trust with a \
             checkpoint policy, or keep a node's snapshot"
                .into(),
        );
    }
    Ok(report)
}

/// Holds the replayed `chain` against its checkpoints (`records`, read before the topic's
/// `end` was taken) under `trust`, recording the status, the newest trusted checkpoint as an
/// anchor, and a contradiction as the report's checkpoint finding.
fn hold_to_checkpoints(
    chain: &Chain,
    trust: &CheckpointTrust,
    records: &[CheckpointRecord],
    end: u64,
    opts: &VerifyOptions,
    report: &mut LedgerReport,
) -> Result<(), LedgerError> {
    let (status, finding) = checkpoints::check(
        chain,
        &report.blocks_topic,
        records,
        trust,
        end,
        &opts.checkpoint_anchors,
    )?;
    if let Some((_, t)) = &status.newest {
        report.anchors.push(format!(
            "checkpoint size {} signed by {} ({} cosignature(s))",
            t.checkpoint.size(),
            t.writers.join(", "),
            t.cosigners.len()
        ));
    }
    report.warnings.extend(status.warnings.iter().cloned());
    report.checkpoints = Some(status);
    report.checkpoint_finding = finding;
    Ok(())
}

/// The chain from the genesis block at `start`; a report with a `genesis_changed` finding
/// when that record is a height-0 block whose content no longer adds up (it was changed);
/// an error when the topic does not start with a genesis block at all.
fn open_or_broken(
    log: &dyn Log,
    blocks_topic: &str,
    start: u64,
    end: u64,
) -> Result<Result<Chain, LedgerReport>, LedgerError> {
    match open_chain(log, blocks_topic, None) {
        Ok(chain) => Ok(Ok(chain)),
        Err(LedgerError::NoGenesis { detail, .. }) => {
            match stored_genesis(log, blocks_topic, start)? {
                Some(b) => Ok(Err(broken_genesis(blocks_topic, start, end, &b, detail))),
                None => Err(LedgerError::NoGenesis {
                    topic: blocks_topic.to_owned(),
                    offset: start,
                    detail,
                }),
            }
        }
        Err(e) => Err(e),
    }
}

/// Replays the blocks after genesis up to `end` into `chain`, recording in `report` every
/// record read, every ignored block, the first finding (where it stops) and the tip.
fn replay_into(
    log: &dyn Log,
    chain: &mut Chain,
    end: u64,
    report: &mut LedgerReport,
    progress: &dyn Fn(u64),
) -> Result<(), LedgerError> {
    let verifier = Verifier::new();
    let mut reader = log.reader(&report.blocks_topic, 0, report.start_offset + 1)?;
    'read: loop {
        let recs = poll_to_end(reader.as_mut(), end, 1024)?;
        if recs.is_empty() {
            break;
        }
        for r in recs {
            if r.offset >= end {
                break 'read;
            }
            report.records += 1;
            progress(r.offset);
            let seen = chain.observe(r.offset, r.record.value.as_deref(), &verifier);
            match seen.verdict {
                Verdict::Canonical => {}
                Verdict::Ignored(reason) => report.ignored.push(IgnoredBlock {
                    offset: r.offset,
                    height: seen.header.map(|h| h.height),
                    hash: seen.hash,
                    reason,
                }),
                Verdict::Finding(f) => {
                    report.finding = Some(f);
                    break 'read;
                }
            }
        }
    }
    let tip = chain.tip();
    report.height = tip.height;
    report.tip_hash = tip.hash;
    report.tip_offset = tip.offset;
    report.transactions = chain.state().sealed_count() as u64;
    Ok(())
}

fn genesis_changed(start: u64, detail: String) -> Finding {
    Finding {
        offset: start,
        height: Some(0),
        kind: FindingKind::GenesisChanged,
        detail,
    }
}

/// The first record, if it is a block at height 0 with a genesis field.
fn stored_genesis(
    log: &dyn Log,
    topic: &str,
    start: u64,
) -> Result<Option<StoredBlock>, LedgerError> {
    let rec = read_record(log, topic, 0, start)?;
    Ok(rec
        .and_then(|r| r.record.value)
        .and_then(|v| StoredBlock::parse(&v).ok())
        .filter(|b| b.header.height == 0 && b.genesis.is_some()))
}

fn broken_genesis(
    topic: &str,
    start: u64,
    end: u64,
    b: &StoredBlock,
    detail: String,
) -> LedgerReport {
    let chain = match &b.genesis {
        Some(Ok(g)) => g.chain.clone(),
        _ => "?".into(),
    };
    let mut report = LedgerReport::new(topic, chain, b.header.chain, b.hash, start, end);
    report.finding = Some(genesis_changed(
        start,
        format!("the genesis block does not add up: {detail}"),
    ));
    report
}

impl LedgerReport {
    /// A report of a chain of genesis alone, at offset `start` of a topic that ends at `end`.
    fn new(
        topic: &str,
        chain: String,
        chain_id: ChainId,
        genesis_hash: Hash,
        start: u64,
        end: u64,
    ) -> LedgerReport {
        LedgerReport {
            blocks_topic: topic.to_owned(),
            chain,
            chain_id,
            genesis_hash,
            records: 1,
            start_offset: start,
            end_offset: end,
            height: 0,
            tip_hash: genesis_hash,
            tip_offset: start,
            transactions: 0,
            ignored: vec![],
            finding: None,
            checkpoints: None,
            checkpoint_finding: None,
            anchors: vec![],
            warnings: vec![],
        }
    }

    /// [`LedgerReport::new`] for an opened chain's genesis.
    fn of_genesis(topic: &str, chain: &Chain, start: u64, end: u64) -> LedgerReport {
        let g = chain.genesis();
        LedgerReport::new(
            topic,
            g.chain.clone(),
            chain.chain_id(),
            chain.genesis_hash(),
            start,
            end,
        )
    }
}

fn check_anchors(chain: &Chain, opts: &VerifyOptions, end: u64, report: &mut LedgerReport) {
    let mut pins = opts.pins.clone();
    for (h, hash) in &opts.pins {
        report
            .anchors
            .push(format!("pin height {h} {}", hex_lower(hash)));
    }
    if let Some(path) = &opts.snapshot {
        match snapshot::anchor(path) {
            Some((genesis, height, hash)) if genesis == chain.genesis_hash() => {
                report.anchors.push(format!(
                    "snapshot {} (height {height} {})",
                    path.display(),
                    hex_lower(&hash)
                ));
                pins.push((height, hash));
            }
            Some(_) => report.warnings.push(format!(
                "snapshot {} belongs to another ledger; not used as an anchor",
                path.display()
            )),
            None if path.exists() => report.warnings.push(format!(
                "snapshot {} does not parse or its checksum fails; not used as an anchor",
                path.display()
            )),
            None => {}
        }
    }
    for (height, hash) in pins {
        if let Some(f) = chain.anchor_finding(height, &hash, end) {
            report.finding = Some(f);
            return;
        }
    }
}

fn retention_warning(log: &dyn Log, topic: &str, report: &mut LedgerReport) {
    if let Ok(info) = log.topic(topic) {
        for (k, v) in &info.settings {
            if k == "retention.ms" && v != "-1" {
                report.warnings.push(format!(
                    "{topic} has retention.ms={v}: retention could delete the genesis block"
                ));
            }
        }
    }
}
