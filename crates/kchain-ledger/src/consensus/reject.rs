//! Why a transaction is refused: the reasons the state rules and the static checks give, with
//! a stable machine-readable code for each (they are written to the `rejected` topic and
//! printed by `kchain ledger status`, so a code never changes meaning).

use std::fmt;

/// Why a transaction was not sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// Not JSON, or not the shape of a transaction.
    Malformed(String),
    /// The record or the data payload is larger than allowed.
    Oversize {
        size: usize,
        limit: usize,
    },
    /// Signed for another ledger.
    WrongChain,
    BadPublicKey,
    BadSignature,
    ZeroAmount,
    /// The nonce is not one more than the sender's last.
    WrongNonce {
        expected: u64,
        got: u64,
    },
    Overdraft {
        balance: u64,
        amount: u64,
    },
    /// Already sealed (at `height`), or twice in one block (`None`).
    Duplicate {
        height: Option<u64>,
    },
    /// The recipient's balance would pass 2^64 - 1.
    Overflow,
}

impl RejectReason {
    /// The stable machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::Malformed(_) => "malformed",
            RejectReason::Oversize { .. } => "oversize",
            RejectReason::WrongChain => "wrong_chain",
            RejectReason::BadPublicKey => "bad_public_key",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::ZeroAmount => "zero_amount",
            RejectReason::WrongNonce { .. } => "wrong_nonce",
            RejectReason::Overdraft { .. } => "overdraft",
            RejectReason::Duplicate { .. } => "duplicate",
            RejectReason::Overflow => "overflow",
        }
    }

    /// The human detail.
    pub fn detail(&self) -> String {
        match self {
            RejectReason::Malformed(d) => d.clone(),
            RejectReason::Oversize { size, limit } => format!("{size} bytes, limit {limit}"),
            RejectReason::WrongChain => "signed for another ledger".into(),
            RejectReason::BadPublicKey => "public key is not a valid Ed25519 key".into(),
            RejectReason::BadSignature => "signature does not verify".into(),
            RejectReason::ZeroAmount => "amount must be greater than 0".into(),
            RejectReason::WrongNonce { expected, got } => {
                format!("nonce {got}, expected {expected}")
            }
            RejectReason::Overdraft { balance, amount } => {
                format!("balance {balance}, amount {amount}")
            }
            RejectReason::Duplicate { height: Some(h) } => format!("already sealed at height {h}"),
            RejectReason::Duplicate { height: None } => "twice in one block".into(),
            RejectReason::Overflow => "the recipient's balance would overflow".into(),
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())
    }
}
