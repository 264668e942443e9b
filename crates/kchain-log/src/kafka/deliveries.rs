//! Delivery reports of an appender's records in flight, filled in by the producer's polling
//! thread and waited on by the appender.
//!
//! ```text
//!  send: expect(n records, sizes) ──► slots [base .. base+len)   (one per record in flight)
//!  polling thread: delivery(seq) ──► slot seq-base = offset | error;  bytes in flight -= size
//!  receive: wait(first n filled  |  bytes in flight <= a bound) ──► drain the first n slots
//! ```
//!
//! Each record's delivery opaque is its sequence number in the appender, so a report finds
//! its slot without a search, and a report from before a [`Deliveries::reset`] is ignored.
//! The waiting thread is woken once when what it waits for is there, not once per report.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;

use super::common::lock;

/// The outcome of one record: its offset, or why it was not written.
pub(crate) type Outcome = Result<i64, String>;

/// One record in flight: its size as counted for the bytes in flight, and its outcome once
/// reported.
struct Slot {
    size: u64,
    outcome: Option<Outcome>,
}

/// The records in flight and what a waiter waits for.
#[derive(Default)]
struct Acks {
    /// Sequence number of `slots[0]`.
    base: u64,
    slots: VecDeque<Slot>,
    /// The waiter waits for the first `wanted` slots; `missing` of them have no report yet.
    wanted: usize,
    missing: usize,
    /// Bytes of the records without a report yet.
    bytes: u64,
    /// Wake the waiter once `bytes` falls to this.
    wake_below: Option<u64>,
    /// Bumped on every report, for a sender waiting for queue space.
    reports: u64,
    space_wanted: bool,
}

/// What [`Deliveries::wait`] found.
pub(crate) enum Waited {
    /// Every record of the batch has its report, in order.
    Done(Vec<Outcome>),
    /// The bytes without a report fell to the bound asked for.
    Below,
    /// Neither within the time given.
    TimedOut,
}

/// The producer context: collects delivery reports into [`Acks`].
#[derive(Default, Clone)]
pub(crate) struct Deliveries(Arc<(Mutex<Acks>, Condvar)>);

impl Deliveries {
    /// Forgets every record in flight: the next one sent has sequence number `base`.
    pub(crate) fn reset(&self, base: u64) {
        let mut acks = lock(&self.0 .0);
        acks.base = base;
        acks.slots.clear();
        acks.bytes = 0;
        acks.wanted = 0;
        acks.missing = 0;
        acks.wake_below = None;
    }

    /// Adds records of the given sizes, sent next, to the records in flight.
    pub(crate) fn expect(&self, sizes: impl Iterator<Item = u64>) {
        let mut acks = lock(&self.0 .0);
        for size in sizes {
            acks.bytes += size;
            acks.slots.push_back(Slot {
                size,
                outcome: None,
            });
        }
    }

    /// Waits up to `patience` until the first `n` records in flight have their reports
    /// (then takes them out and returns their outcomes) or, with `wake_below`, until the
    /// bytes without a report fall to it.
    pub(crate) fn wait(&self, n: usize, wake_below: Option<u64>, patience: Duration) -> Waited {
        let (acks, done) = &*self.0;
        let mut guard = lock(acks);
        let n = n.min(guard.slots.len());
        guard.wanted = n;
        guard.missing = guard
            .slots
            .iter()
            .take(n)
            .filter(|s| s.outcome.is_none())
            .count();
        guard.wake_below = wake_below;
        let below = |a: &Acks| a.wake_below.is_some_and(|b| a.bytes <= b);
        let (mut guard, _) = done
            .wait_timeout_while(guard, patience, |a| a.missing > 0 && !below(a))
            .unwrap_or_else(|e| e.into_inner());
        let is_below = below(&guard);
        guard.wake_below = None;
        if guard.missing == 0 {
            guard.wanted = 0;
            guard.base += n as u64;
            let outcomes = guard
                .slots
                .drain(..n)
                .map(|s| s.outcome.expect("a reported slot"))
                .collect();
            return Waited::Done(outcomes);
        }
        guard.wanted = 0;
        match is_below {
            true => Waited::Below,
            false => Waited::TimedOut,
        }
    }

    /// Waits up to `timeout` for any delivery report (which frees queue space).
    pub(crate) fn wait_for_any(&self, timeout: Duration) {
        let (acks, done) = &*self.0;
        let mut guard = lock(acks);
        guard.space_wanted = true;
        let seen = guard.reports;
        let (mut guard, _) = done
            .wait_timeout_while(guard, timeout, |a| a.reports == seen)
            .unwrap_or_else(|e| e.into_inner());
        guard.space_wanted = false;
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(message) => Ok(message.offset()),
            Err((e, _)) => Err(e.to_string()),
        };
        let (acks, done) = &*self.0;
        let mut acks = lock(acks);
        acks.reports += 1;
        let Some(i) = (seq as u64)
            .checked_sub(acks.base)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        let Some(slot) = acks.slots.get_mut(i) else {
            return;
        };
        if slot.outcome.is_some() {
            return;
        }
        slot.outcome = Some(outcome);
        let size = slot.size;
        acks.bytes -= size;
        let mut wake = acks.space_wanted;
        if i < acks.wanted {
            acks.missing -= 1;
            wake |= acks.missing == 0;
        }
        wake |= acks.wake_below.is_some_and(|b| acks.bytes <= b);
        if wake {
            done.notify_all();
        }
    }
}
