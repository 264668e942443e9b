//! The ledger state that replaying the canonical chain builds: balances, nonces, and the
//! index from transaction id to the height that sealed it.
//!
//! ```text
//! State ──Pending::new──> Pending (changes of one block, over the state)
//!                           apply(tx) per transaction: duplicate? nonce? balance? overflow?
//!                           credit(sealer, reward)
//!                         ──into_delta──> Delta ──State::apply──> State at the new height
//! ```
//!
//! Rules (checked in this order, so every node names the same reason):
//! 1. a transaction id is sealed at most once in the chain;
//! 2. a transfer's nonce is the sender's last nonce + 1 (the first is 1);
//! 3. a transfer never takes a balance below 0, nor a recipient's balance past 2^64 - 1.
//!
//! Data records change nothing but the index. The block reward is credited after the block's
//! transactions, so a sealer cannot spend a reward in the block that pays it.

use crate::consensus::digest_map::{DigestMap, DigestSet};
use crate::consensus::genesis::Genesis;
use crate::consensus::reject::RejectReason;
use crate::consensus::tx::{Address, Transaction, TxBody, TxId};

/// Balances, nonces and sealed transaction ids at one height of the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub(crate) balances: DigestMap<Address, u64>,
    pub(crate) nonces: DigestMap<Address, u64>,
    pub(crate) sealed: DigestMap<TxId, u64>,
}

impl State {
    /// The state at height 0.
    pub fn genesis(g: &Genesis) -> State {
        State {
            balances: g
                .balances
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(a, v)| (*a, *v))
                .collect(),
            ..State::default()
        }
    }

    pub fn balance(&self, a: &Address) -> u64 {
        self.balances.get(a).copied().unwrap_or(0)
    }

    /// The last nonce `a` used (0 before its first transfer).
    pub fn nonce(&self, a: &Address) -> u64 {
        self.nonces.get(a).copied().unwrap_or(0)
    }

    /// The height that sealed transaction `id`, if any.
    pub fn sealed_at(&self, id: &TxId) -> Option<u64> {
        self.sealed.get(id).copied()
    }

    /// Number of sealed transactions.
    pub fn sealed_count(&self) -> usize {
        self.sealed.len()
    }

    /// Every account with a non-zero balance.
    pub fn balances(&self) -> impl Iterator<Item = (&Address, &u64)> {
        self.balances.iter()
    }

    /// Sum of all balances (at most the genesis total plus the rewards).
    pub fn total(&self) -> u128 {
        self.balances.values().map(|v| u128::from(*v)).sum()
    }

    /// Applies the changes of one block.
    pub fn apply(&mut self, d: Delta) {
        for (a, v) in d.balances {
            if v == 0 {
                self.balances.remove(&a);
            } else {
                self.balances.insert(a, v);
            }
        }
        self.nonces.extend(d.nonces);
        self.sealed
            .extend(d.sealed.into_iter().map(|id| (id, d.height)));
    }
}

/// The changes one block makes, computed over a [`State`] without changing it.
pub struct Pending<'a> {
    base: &'a State,
    balances: DigestMap<Address, u64>,
    nonces: DigestMap<Address, u64>,
    sealed: Vec<TxId>,
    in_block: DigestSet<TxId>,
}

/// The changes of one block, ready to apply.
#[derive(Clone, Debug, Default)]
pub struct Delta {
    pub height: u64,
    balances: Vec<(Address, u64)>,
    nonces: Vec<(Address, u64)>,
    sealed: Vec<TxId>,
}

impl<'a> Pending<'a> {
    pub fn new(base: &'a State) -> Self {
        Pending {
            base,
            balances: DigestMap::default(),
            nonces: DigestMap::default(),
            sealed: Vec::new(),
            in_block: DigestSet::default(),
        }
    }

    pub fn balance(&self, a: &Address) -> u64 {
        self.balances
            .get(a)
            .copied()
            .unwrap_or_else(|| self.base.balance(a))
    }

    pub fn nonce(&self, a: &Address) -> u64 {
        self.nonces
            .get(a)
            .copied()
            .unwrap_or_else(|| self.base.nonce(a))
    }

    /// Checks `tx` against the state so far and applies it, or says why not (and changes
    /// nothing).
    pub fn apply(&mut self, tx: &Transaction) -> Result<(), RejectReason> {
        let id = tx.id();
        if let Some(h) = self.base.sealed_at(id) {
            return Err(RejectReason::Duplicate { height: Some(h) });
        }
        if self.in_block.contains(id) {
            return Err(RejectReason::Duplicate { height: None });
        }
        if let TxBody::Transfer { to, amount, nonce } = tx.body() {
            let from = tx.sender();
            let expected = self.nonce(&from).wrapping_add(1);
            if *nonce != expected {
                return Err(RejectReason::WrongNonce {
                    expected,
                    got: *nonce,
                });
            }
            let balance = self.balance(&from);
            if balance < *amount {
                return Err(RejectReason::Overdraft {
                    balance,
                    amount: *amount,
                });
            }
            let after_debit = balance - amount;
            let received = if *to == from {
                after_debit
            } else {
                self.balance(to)
            };
            let credited = received
                .checked_add(*amount)
                .ok_or(RejectReason::Overflow)?;
            self.balances.insert(from, after_debit);
            self.balances.insert(*to, credited);
            self.nonces.insert(from, *nonce);
        }
        self.in_block.insert(*id);
        self.sealed.push(*id);
        Ok(())
    }

    /// Credits a reward.
    pub fn credit(&mut self, a: &Address, amount: u64) -> Result<(), RejectReason> {
        let v = self
            .balance(a)
            .checked_add(amount)
            .ok_or(RejectReason::Overflow)?;
        self.balances.insert(*a, v);
        Ok(())
    }

    /// The changes, for the block at `height`.
    pub fn into_delta(self, height: u64) -> Delta {
        Delta {
            height,
            balances: self.balances.into_iter().collect(),
            nonces: self.nonces.into_iter().collect(),
            sealed: self.sealed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kchain_core::{ChainId, WriterKey};

    #[test]
    fn transfers_follow_the_rules_in_order() {
        let alice = WriterKey::from_seed("a", [1; 32]);
        let bob = Address([2; 20]);
        let mut state = State::default();
        state.balances.insert(Address::of(&alice), 10);
        let chain = ChainId([0; 16]);
        let t = |amount, nonce| Transaction::transfer(&alice, chain, bob, amount, nonce);
        let mut p = Pending::new(&state);
        assert_eq!(
            p.apply(&t(5, 2)),
            Err(RejectReason::WrongNonce {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(p.apply(&t(5, 1)), Ok(()));
        assert_eq!(
            p.apply(&t(5, 1)),
            Err(RejectReason::Duplicate { height: None })
        );
        assert_eq!(
            p.apply(&t(6, 2)),
            Err(RejectReason::Overdraft {
                balance: 5,
                amount: 6
            })
        );
        assert_eq!(p.apply(&t(5, 2)), Ok(()));
        p.credit(&bob, 1).unwrap();
        let delta = p.into_delta(1);
        state.apply(delta);
        assert_eq!(state.balance(&Address::of(&alice)), 0);
        assert_eq!(state.balance(&bob), 11);
        assert_eq!(state.nonce(&Address::of(&alice)), 2);
        assert_eq!(state.sealed_at(t(5, 1).id()), Some(1));
        let mut p = Pending::new(&state);
        assert_eq!(
            p.apply(&t(5, 1)),
            Err(RejectReason::Duplicate { height: Some(1) })
        );
    }

    #[test]
    fn a_self_transfer_keeps_the_balance() {
        let alice = WriterKey::from_seed("a", [1; 32]);
        let me = Address::of(&alice);
        let mut state = State::default();
        state.balances.insert(me, 10);
        let mut p = Pending::new(&state);
        p.apply(&Transaction::transfer(&alice, ChainId([0; 16]), me, 10, 1))
            .unwrap();
        assert_eq!(p.balance(&me), 10);
    }
}
