//! Delivery reports of an appender's records in flight, filled in by the producer's event
//! thread and waited on by the appender.
//!
//! ```text
//!  send: expect(n) ──► slots [base .. base+len)   (one per record in flight)
//!  event thread (`poller`): a report event's (seq, offset | error)s ──► their slots, one lock
//!  receive: wait(first n filled) ──► drain the first n slots
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

/// One record in flight: its outcome once reported.
struct Slot {
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
    /// Bumped on every report, for a sender waiting for queue space.
    reports: u64,
    space_wanted: bool,
    /// Why records could not be handed to librdkafka (see [`Deliveries::fail_from`]).
    feed_failed: Option<String>,
    /// Whether any record failed since the last reset.
    failed: bool,
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
        acks.wanted = 0;
        acks.missing = 0;
        acks.feed_failed = None;
        acks.failed = false;
    }

    /// Adds `n` records, sent next, to the records in flight (failed at once after a failed
    /// feed).
    pub(crate) fn expect(&self, n: usize) {
        let mut acks = lock(&self.0 .0);
        let outcome = acks.feed_failed.clone().map(Err);
        for _ in 0..n {
            acks.slots.push_back(Slot {
                outcome: outcome.clone(),
            });
        }
    }

    /// Fails every record from sequence number `seq` on that has no report yet, and every
    /// one expected later, with `why`: they were not handed to librdkafka.
    pub(crate) fn fail_from(&self, seq: u64, why: &str) {
        let (acks, done) = &*self.0;
        let mut acks = lock(acks);
        acks.feed_failed = Some(why.to_owned());
        let from = seq.saturating_sub(acks.base) as usize;
        for slot in acks.slots.iter_mut().skip(from) {
            if slot.outcome.is_none() {
                slot.outcome = Some(Err(why.to_owned()));
            }
        }
        let wanted = acks.wanted;
        acks.missing = acks
            .slots
            .iter()
            .take(wanted)
            .filter(|s| s.outcome.is_none())
            .count();
        done.notify_all();
    }

    /// Waits up to `patience` until the first `n` records in flight have their reports,
    /// then takes them out and returns their outcomes; `None` after `patience`.
    pub(crate) fn wait(&self, n: usize, patience: Duration) -> Option<Vec<Outcome>> {
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
        let (mut guard, _) = done
            .wait_timeout_while(guard, patience, |a| a.missing > 0)
            .unwrap_or_else(|e| e.into_inner());
        guard.wanted = 0;
        if guard.missing > 0 {
            return None;
        }
        guard.base += n as u64;
        let outcomes = guard
            .slots
            .drain(..n)
            .map(|s| s.outcome.expect("a reported slot"))
            .collect();
        Some(outcomes)
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

    /// Takes the outcomes of one delivery report event (each by its record's sequence
    /// number) under one lock, waking a waiter at most once.
    pub(crate) fn deliver_all(&self, outcomes: impl Iterator<Item = (u64, Outcome)>) {
        let (acks, done) = &*self.0;
        let mut acks = lock(acks);
        let mut wake = false;
        for (seq, outcome) in outcomes {
            wake |= acks.take(seq, outcome);
        }
        if wake {
            done.notify_all();
        }
    }

    /// Whether a record has failed since the last [`Deliveries::reset`]: the feeder then
    /// hands librdkafka nothing more, so that no later record is written after a gap.
    pub(crate) fn any_failed(&self) -> bool {
        lock(&self.0 .0).failed
    }
}

impl Acks {
    /// Records the outcome of record `seq`; whether a waiter should wake.
    fn take(&mut self, seq: u64, outcome: Outcome) -> bool {
        self.reports += 1;
        self.failed |= outcome.is_err();
        let Some(i) = seq
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return false;
        };
        let Some(slot) = self.slots.get_mut(i) else {
            return false;
        };
        if slot.outcome.is_some() {
            return false;
        }
        slot.outcome = Some(outcome);
        let mut wake = self.space_wanted;
        if i < self.wanted {
            self.missing -= 1;
            wake |= self.missing == 0;
        }
        wake
    }
}

impl ClientContext for Deliveries {}

/// Reports served by rdkafka itself: only while a dropped producer flushes (see `poller`).
impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(message) => Ok(message.offset()),
            Err((e, _)) => Err(e.to_string()),
        };
        self.deliver_all(std::iter::once((seq as u64, outcome)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One report event's outcomes, out of order and with one from before a reset, fill
    /// their slots, and a failure is remembered until the next reset.
    #[test]
    fn a_report_event_fills_its_slots_at_once() {
        let d = Deliveries::default();
        d.reset(10);
        d.expect(3);
        let waiter = {
            let d = d.clone();
            std::thread::spawn(move || d.wait(3, Duration::from_secs(10)))
        };
        d.deliver_all([(12, Ok(7)), (3, Ok(1)), (10, Ok(5)), (11, Ok(6))].into_iter());
        let got = waiter.join().unwrap().expect("every report in");
        assert_eq!(got, vec![Ok(5), Ok(6), Ok(7)]);
        assert!(!d.any_failed());
        d.expect(2);
        d.deliver_all([(13, Err("timed out".to_string()))].into_iter());
        assert!(d.any_failed());
        d.reset(0);
        assert!(!d.any_failed());
    }
}
