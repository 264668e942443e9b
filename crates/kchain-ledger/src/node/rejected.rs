//! The records of the `rejected` topic: why each transaction a sealer did not seal was
//! refused ([`RejectReason`]).
//!
//! A sealer writes one rejection record for each transaction of the source ranges of its
//! block that it did not seal, *before* appending the block, naming the block's hash. A
//! rejection therefore only counts when the block it names is canonical: a sealer whose block
//! lost a race judged against a state that never happened, and its records are void.
//! Writing them first means a crash between the two appends leaves void records, never a
//! canonical block whose rejections are missing.
//!
//! ```json
//! {"partition":1,"offset":17,"reason":"overdraft","detail":"balance 3, amount 10",
//!  "tx_id":"…64 hex…","tx":{…as submitted…},"block":"…64 hex…","height":12,"sealer":"…"}
//! ```
//!
//! `tx` is the submitted JSON when it parsed as JSON and is at most 64 KiB, else `raw` holds
//! the bytes in base64 (at most 64 KiB of them; when cut, `raw_len` is the full length and
//! `raw_sha256` the hash of all of it). A rejection record is therefore at most about 90 KB,
//! whatever a producer wrote: one huge record must not stop the sealer that rejects it.

use base64::Engine as _;
use kchain_core::{Hash, KeyId};
use kchain_log::Record;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::consensus::encoding::{hex_lower, parse_hex};
use crate::consensus::reject::RejectReason;
use crate::consensus::tx::TxId;

/// Most bytes of the submitted record a rejection record keeps (as `tx`, or in `raw`).
pub const MAX_RAW: usize = 64 * 1024;
/// Most bytes of a rejection's detail (which may quote what was submitted).
pub const MAX_DETAIL: usize = 1024;

/// A transaction refused by a sealer for one candidate block.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub partition: u32,
    pub offset: u64,
    pub reason: RejectReason,
    pub tx_id: Option<TxId>,
    /// The record value as submitted (its first bytes, when it was large).
    pub raw: Submitted,
}

/// A submitted record value, kept to a bounded size: a sealer holds what it rejects until a
/// block decides it, and must not hold megabytes per junk record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The value, or its first `MAX_RAW` (64 KiB) bytes.
    pub bytes: Vec<u8>,
    /// The full length.
    pub len: usize,
    /// SHA-256 of the whole value, when `bytes` holds only its first bytes.
    pub sha256: Option<Hash>,
}

impl Submitted {
    /// Keeps `value`, or its first `MAX_RAW` (64 KiB) bytes and the hash of all of it.
    pub fn of(mut value: Vec<u8>) -> Submitted {
        let len = value.len();
        if len <= MAX_RAW {
            return Submitted {
                bytes: value,
                len,
                sha256: None,
            };
        }
        let sha256 = Some(kchain_core::sha256(&value));
        value.truncate(MAX_RAW);
        value.shrink_to_fit();
        Submitted {
            bytes: value,
            len,
            sha256,
        }
    }

    /// The whole value, when it was kept whole.
    pub fn whole(&self) -> Option<&[u8]> {
        self.sha256.is_none().then_some(&self.bytes[..])
    }
}

/// The JSON form of a rejection record, as written and as read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectionRecord {
    pub partition: u32,
    pub offset: u64,
    pub reason: String,
    pub detail: String,
    #[serde(default)]
    pub tx_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_len: Option<usize>,
    /// SHA-256 (hex) of the whole record value, when `raw` holds only its first bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
    /// The candidate block this rejection belongs to.
    pub block: String,
    pub height: u64,
    pub sealer: String,
}

impl RejectionRecord {
    /// The tx id, if the record names one.
    pub fn tx_id(&self) -> Option<TxId> {
        self.tx_id.as_deref().and_then(parse_hex)
    }

    /// The hash of the block the rejection belongs to.
    pub fn block_hash(&self) -> Option<Hash> {
        parse_hex(&self.block)
    }
}

impl Rejection {
    /// The record for the `rejected` topic, for candidate block `block` at `height`. Its
    /// size is bounded whatever was submitted: the transaction is embedded only when it is at
    /// most `MAX_RAW` (64 KiB) bytes of JSON; otherwise `raw` keeps the first `MAX_RAW` (64 KiB) bytes,
    /// `raw_len` the full length and `raw_sha256` the hash of all of it (with `partition`
    /// and `offset`, enough to find and identify the record). The detail is cut to
    /// `MAX_DETAIL` (1 KiB) bytes.
    pub fn to_record(&self, block: &Hash, height: u64, sealer: KeyId, now_ms: i64) -> Record {
        let tx: Option<Value> = self
            .raw
            .whole()
            .and_then(|v| serde_json::from_slice(v).ok());
        let (raw, raw_len, raw_sha256) = match tx {
            Some(_) => (None, None, None),
            None => (
                Some(base64::engine::general_purpose::STANDARD.encode(&self.raw.bytes)),
                self.raw.sha256.map(|_| self.raw.len),
                self.raw.sha256.as_ref().map(|h| hex_lower(h)),
            ),
        };
        let mut detail = self.reason.detail();
        if detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
            detail.push('…');
        }
        let rec = RejectionRecord {
            partition: self.partition,
            offset: self.offset,
            reason: self.reason.code().into(),
            detail,
            tx_id: self.tx_id.map(|id| hex_lower(&id)),
            tx,
            raw,
            raw_len,
            raw_sha256,
            block: hex_lower(block),
            height,
            sealer: sealer.to_string(),
        };
        Record {
            key: Some(match &rec.tx_id {
                Some(id) => id.clone().into_bytes(),
                None => format!("{}:{}", self.partition, self.offset).into_bytes(),
            }),
            value: Some(serde_json::to_vec(&rec).expect("rejection serializes")),
            headers: vec![],
            timestamp_ms: now_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_of(raw: Vec<u8>, reason: RejectReason) -> (Record, RejectionRecord) {
        let r = Rejection {
            partition: 1,
            offset: 17,
            reason,
            tx_id: None,
            raw: Submitted::of(raw),
        };
        let rec = r.to_record(&[3; 32], 5, KeyId([1; 8]), 1);
        let back = serde_json::from_slice(rec.value.as_ref().unwrap()).unwrap();
        (rec, back)
    }

    #[test]
    fn a_rejection_record_stays_small_whatever_was_submitted() {
        // A 1,000,000-byte JSON record: not embedded; its first bytes, length and hash kept.
        let mut huge = br#"{"type":"transfer","pad":""#.to_vec();
        huge.resize(999_998, b'x');
        huge.extend_from_slice(br#""}"#);
        let reason = RejectReason::Oversize {
            size: huge.len(),
            limit: 81920,
        };
        let (rec, back) = record_of(huge.clone(), reason);
        assert!(rec.value.as_ref().unwrap().len() < 100_000);
        assert_eq!(back.tx, None);
        assert_eq!(back.raw_len, Some(1_000_000));
        assert_eq!(
            back.raw_sha256.as_deref(),
            Some(hex_lower(&kchain_core::sha256(&huge)).as_str())
        );
        let kept = base64::engine::general_purpose::STANDARD
            .decode(back.raw.unwrap())
            .unwrap();
        assert_eq!(kept, huge[..MAX_RAW]);
        assert_eq!((back.partition, back.offset), (1, 17));

        // A detail quoting what was submitted is cut.
        let (rec, back) = record_of(b"{}".to_vec(), RejectReason::Malformed("y".repeat(500_000)));
        assert!(rec.value.as_ref().unwrap().len() < 4096);
        assert!(back.detail.len() <= MAX_DETAIL + '…'.len_utf8());
        assert_eq!(back.tx, Some(serde_json::json!({})));

        // A small record is kept whole.
        let (_, back) = record_of(b"not json".to_vec(), RejectReason::Malformed("x".into()));
        assert_eq!((back.raw_len, back.raw_sha256), (None, None));
    }
}
