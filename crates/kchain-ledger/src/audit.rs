//! An audit of a ledger's blocks topic: every record, in log order, with what the chain made
//! of it (canonical, ignored and why, or a finding), from genesis up to the first finding.
//! `kchain ledger blocks --all` prints it; an application can run it without the CLI.
//!
//! ```text
//! blocks topic ──> open_chain (genesis) ──> Chain::observe(record) ──> AuditRecord ──> each
//!                                                 │ a finding: stop
//! ```

use kchain_core::Hash;
use kchain_log::Log;

use crate::consensus::finding::{Finding, IgnoreReason, Verdict};
use crate::consensus::validate::Verifier;
use crate::error::LedgerError;
use crate::node::store::open_chain;
use crate::node::store::poll_to_end;

/// Records read per poll.
const BATCH: usize = 1024;

/// What the chain made of one record of the blocks topic.
#[derive(Clone, Debug)]
pub enum AuditVerdict {
    /// The genesis block, where the chain starts.
    Genesis,
    /// A block of the canonical chain.
    Canonical,
    /// A record that is not part of the chain, for a reason that is normal life.
    Ignored(IgnoreReason),
    /// Tampering: the audit stops here.
    Finding(Finding),
}

/// One record of the blocks topic as the audit saw it.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    pub offset: u64,
    /// The height its header claims, if it parses.
    pub height: Option<u64>,
    /// The hash of its header, if it parses.
    pub hash: Option<Hash>,
    pub verdict: AuditVerdict,
}

impl AuditRecord {
    /// The verdict as printed: `genesis`, `canonical`, `ignored:<code>` or
    /// `FINDING:<kind>`.
    pub fn label(&self) -> String {
        match &self.verdict {
            AuditVerdict::Genesis => "genesis".to_owned(),
            AuditVerdict::Canonical => "canonical".to_owned(),
            AuditVerdict::Ignored(why) => format!("ignored:{}", why.code()),
            AuditVerdict::Finding(f) => format!("FINDING:{}", f.kind.as_str()),
        }
    }

    /// Why, in words (empty for genesis and canonical blocks).
    pub fn detail(&self) -> String {
        match &self.verdict {
            AuditVerdict::Genesis | AuditVerdict::Canonical => String::new(),
            AuditVerdict::Ignored(why) => why.to_string(),
            AuditVerdict::Finding(f) => f.detail.clone(),
        }
    }
}

/// Audits the blocks topic `blocks_topic` from its genesis to its end at the time of the call,
/// calling `each` with every record (the genesis first). Stops after the first finding and
/// returns whether there was one.
pub fn audit(
    log: &dyn Log,
    blocks_topic: &str,
    mut each: impl FnMut(&AuditRecord),
) -> Result<bool, LedgerError> {
    let mut chain = open_chain(log, blocks_topic, None)?;
    let verifier = Verifier::new();
    let start = chain.tip().offset;
    each(&AuditRecord {
        offset: start,
        height: Some(0),
        hash: Some(chain.genesis_hash()),
        verdict: AuditVerdict::Genesis,
    });
    let end = log.end_offset(blocks_topic, 0)?;
    let mut reader = log.reader(blocks_topic, 0, start + 1)?;
    loop {
        let recs = poll_to_end(reader.as_mut(), end, BATCH)?;
        if recs.is_empty() {
            break;
        }
        for rec in recs {
            let seen = chain.observe(rec.offset, rec.record.value.as_deref(), &verifier);
            let verdict = match seen.verdict {
                Verdict::Canonical => AuditVerdict::Canonical,
                Verdict::Ignored(why) => AuditVerdict::Ignored(why),
                Verdict::Finding(f) => AuditVerdict::Finding(f),
            };
            let found = matches!(verdict, AuditVerdict::Finding(_));
            each(&AuditRecord {
                offset: rec.offset,
                height: seen.header.as_ref().map(|h| h.height),
                hash: seen.hash,
                verdict,
            });
            if found {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
