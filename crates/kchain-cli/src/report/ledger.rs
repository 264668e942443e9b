//! The ledger's lists as tables for people: `ledger blocks` and `ledger rejected`, each with
//! a header line naming its columns.

use kchain_core::to_hex;
use kchain_ledger::{Genesis, RejectionRecord, StoredBlock};

use super::output::utc;

/// The header line of `ledger blocks`.
pub fn blocks_header() -> String {
    format!(
        "{:>6}  {:>6}  {:<16}  {:>5}  {:<16}  {}",
        "HEIGHT", "OFFSET", "HASH", "TXS", "SEALER", "TIME"
    )
}

/// One canonical block as a row of `ledger blocks`.
pub fn block_row(genesis: &Genesis, offset: u64, b: &StoredBlock) -> String {
    let h = &b.header;
    format!(
        "{:>6}  {:>6}  {:<16}  {:>5}  {:<16}  {}",
        h.height,
        offset,
        &to_hex(&b.hash)[..16],
        h.tx_count,
        sealer_name(genesis, b),
        utc(h.timestamp_ms)
    )
}

/// The name the genesis gives the sealer of `b` (`genesis` for block 0; the key id when the
/// genesis does not list it, which a canonical block cannot be).
pub fn sealer_name(genesis: &Genesis, b: &StoredBlock) -> String {
    if b.header.height == 0 {
        return "genesis".into();
    }
    genesis
        .sealers
        .iter()
        .find(|s| s.key.id() == b.header.sealer)
        .map_or_else(|| b.header.sealer.to_string(), |s| s.name.clone())
}

/// The header line of `ledger rejected`.
pub fn rejected_header() -> String {
    format!(
        "{:>6}  {:<9}  {:<18}  {:<16}  {:<10}  {}",
        "OFFSET", "STATUS", "REASON", "TX", "FROM", "DETAIL"
    )
}

/// One record of the rejected topic as a row of `ledger rejected`: where it is, whether the
/// block that decided it is canonical (`rejected`) or lost a race (`void`), the reason, the
/// transaction id and where the transaction was submitted (partition/offset).
pub fn rejected_row(offset: u64, status: &str, rec: &RejectionRecord) -> String {
    let tx = rec
        .tx_id
        .as_deref()
        .map_or("-".to_owned(), |id| id.chars().take(16).collect());
    format!(
        "{:>6}  {:<9}  {:<18}  {:<16}  {:<10}  {}",
        offset,
        status,
        rec.reason,
        tx,
        format!("{}/{}", rec.partition, rec.offset),
        rec.detail
    )
}
