//! The mapping between kchain items and log records (see `docs/format.md`): the application's
//! key, value, headers and timestamp stay as they are; kchain adds its `kchain.*` headers
//! after the application's.

use kchain_core::{is_chain_header, ChainMeta, Item};
use kchain_log::{Header, Record};

/// The record headers for an item: the application's headers, then kchain's.
pub(crate) fn record_headers(meta: &ChainMeta, app: Vec<(String, Vec<u8>)>) -> Vec<Header> {
    let chain = meta.to_headers();
    let mut out = Vec::with_capacity(app.len() + chain.len());
    out.extend(app.into_iter().map(|(name, value)| Header { name, value }));
    out.extend(chain.into_iter().map(|(n, v)| Header::new(n, v)));
    out
}

/// The application's view of a record: everything but kchain's headers.
pub fn item_of(record: &Record) -> Item {
    Item {
        key: record.key.clone(),
        value: record.value.clone(),
        headers: record
            .headers
            .iter()
            .filter(|h| !is_chain_header(&h.name))
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        timestamp_ms: record.timestamp_ms,
    }
}

/// Parses a record's `kchain.*` headers.
pub fn meta_of(record: &Record) -> Result<ChainMeta, kchain_core::MetaError> {
    ChainMeta::parse(
        record
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_slice())),
    )
}

/// Turns a log record's header list into (name, value) pairs.
pub(crate) fn header_pairs(headers: &[Header]) -> impl Iterator<Item = (&str, &[u8])> + Clone {
    headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_slice()))
}
