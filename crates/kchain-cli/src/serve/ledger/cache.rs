//! The replayed state of every ledger the server has been asked about, kept between requests
//! and brought up to date at each one, so that balances and statuses need not replay the
//! whole blocks topic every time.
//!
//! ```text
//!  request for ledger C ──► Ledgers::with(C)
//!     first time:   replay C.blocks (from the node snapshot, as the commands do)
//!     afterwards:   catch_up: read only the blocks appended since
//!                   └─ the topic shrank or its tip record changed ──► replay anew
//!     ──► metrics (records verified, findings, tip) ──► the handler runs on the chain
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kchain_ledger::{catch_up, replay, state_dir, LedgerError, Replayed};
use kchain_log::LogError;

use crate::serve::error::{ApiError, ApiResult};
use crate::serve::state::AppState;
use crate::serve::sync::lock;

/// One ledger's chain, replayed once, then extended; `None` until the first request.
type Slot = Arc<Mutex<Option<Replayed>>>;

/// The ledgers the server has replayed, by name.
#[derive(Default)]
pub struct Ledgers {
    slots: Mutex<HashMap<String, Slot>>,
}

/// The blocks topic of ledger `name` (the commands' default, `<name>.blocks`).
pub fn blocks_topic(name: &str) -> String {
    format!("{name}.blocks")
}

impl Ledgers {
    /// Runs `f` on ledger `name` replayed to the current end of its blocks topic, holding
    /// that ledger's lock (requests to one ledger take turns; other ledgers go on).
    pub fn with<T>(
        &self,
        st: &AppState,
        name: &str,
        f: impl FnOnce(&Replayed) -> ApiResult<T>,
    ) -> ApiResult<T> {
        let slot = lock(&self.slots)
            .entry(name.to_owned())
            .or_default()
            .clone();
        let mut guard = lock(&slot);
        let blocks = blocks_topic(name);
        let had_finding = guard.as_ref().is_some_and(|r| r.finding.is_some());
        let caught_up = match guard.as_mut() {
            Some(r) => catch_up(st.log.as_ref(), &blocks, r).map_err(|e| ledger_error(e, name))?,
            None => None,
        };
        match caught_up {
            Some(read) => st.metrics.verified(read),
            None => {
                let dir = state_dir(&st.global.data_dir, &blocks);
                match replay(st.log.as_ref(), &blocks, Some(&dir)) {
                    Ok(r) => {
                        st.metrics.verified(r.chain.next_offset());
                        *guard = Some(r);
                    }
                    Err(e) => {
                        if guard.is_none() {
                            // Not a ledger (yet): remember nothing of the name.
                            lock(&self.slots).remove(name);
                        }
                        return Err(ledger_error(e, name));
                    }
                }
            }
        }
        let r = guard.as_ref().expect("replayed above");
        if let (Some(f), false) = (&r.finding, had_finding) {
            st.metrics.finding(f.kind.as_str());
        }
        st.metrics.tip("ledger", name, r.chain.tip().height);
        f(r)
    }
}

/// A ledger error as an answer: 404 for a ledger that does not exist (no blocks topic, or
/// one without a genesis block), 503 when the log cannot be reached, else 500.
pub fn ledger_error(e: LedgerError, name: &str) -> ApiError {
    match e {
        LedgerError::Log(LogError::NoSuchTopic(_) | LogError::InvalidTopicName { .. })
        | LedgerError::NoGenesis { .. } => ApiError::not_found(format!("no ledger {name} ({e})")),
        LedgerError::Log(e) => ApiError::unavailable(format!("ledger {name}: {e}")),
        e => ApiError::internal(format!("ledger {name}: {e}")),
    }
}
