//! The freshness rule (`[policy] max_age`) for one partition: the newest checkpoint the trust
//! policy accepts (writer signature and enough witness cosignatures), held against the
//! entries verified with kchain-core's pure `checkpoint::stale`, the rule `verify` applies.
//!
//! ```text
//!  writer-signed note ──► Policy::check ──► newest accepted (largest size, then newest cosignature)
//!  every pass: stale(newest, entries verified, now, max_age) ──► `stale` alert keyed by its size
//! ```

use kchain_core::checkpoint::{stale, Policy, TrustedCheckpoint};
use kchain_core::SignedNote;

use crate::state::PartitionState;

/// One partition's newest accepted checkpoint.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fresh {
    newest: Option<(SignedNote, TrustedCheckpoint)>,
}

impl Fresh {
    /// Keeps `note` when `policy` accepts it and it is newer than the one kept: larger, or
    /// of the same size with a newer witness cosignature.
    pub(crate) fn offer(&mut self, policy: &Policy, note: &SignedNote) {
        let Ok(t) = policy.check(note) else { return };
        let rank = |t: &TrustedCheckpoint| {
            let newest = t.cosigners.iter().map(|(_, at)| *at).max();
            (t.checkpoint.size(), newest)
        };
        if self
            .newest
            .as_ref()
            .is_none_or(|(_, old)| rank(&t) > rank(old))
        {
            self.newest = Some((note.clone(), t));
        }
    }

    /// The freshness state saved in `into`'s `accepted`, taken back with `policy`.
    pub(crate) fn load(policy: Option<&Policy>, s: &PartitionState) -> Fresh {
        let mut f = Fresh::default();
        let note = s
            .accepted
            .as_deref()
            .map(|t| SignedNote::parse(t.as_bytes()));
        if let (Some(policy), Some(Ok(note))) = (policy, note) {
            f.offer(policy, &note);
        }
        f
    }

    pub(crate) fn save(&self, into: &mut PartitionState) {
        into.accepted = self.newest.as_ref().map(|(n, _)| n.to_string());
    }

    /// The size of the newest accepted checkpoint and why the chain is stale, when it is:
    /// `entries` verified at `now` (Unix seconds) under `max_age` seconds. Nothing when no
    /// checkpoint was accepted yet (the stall rule covers a writer that never checkpoints).
    pub(crate) fn judge(&self, entries: u64, now: u64, max_age: u64) -> Option<(u64, String)> {
        let (note, t) = self.newest.as_ref()?;
        let judged = stale(note, t, entries, now, max_age)?;
        Some((t.checkpoint.size(), judged.detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kchain_core::{Checkpoint, WriterKey};

    #[test]
    fn entries_past_the_newest_accepted_checkpoint_are_stale_until_a_larger_one() {
        let key = WriterKey::from_seed("acme", [3; 32]);
        let policy = Policy::new(
            vec![key.public().note_verifier("acme").unwrap()],
            Vec::new(),
            0,
        )
        .unwrap();
        let note = |size| {
            Checkpoint::new("kchain/t/0", size, [size as u8; 32])
                .unwrap()
                .sign(&key.note_signer().unwrap())
        };
        let mut f = Fresh::default();
        assert_eq!(f.judge(10, 100, 60), None, "nothing accepted yet");
        f.offer(&policy, &note(10));
        assert_eq!(f.judge(10, 100, 60), None, "nothing past it");
        assert_eq!(f.judge(11, 100, 60).map(|(s, _)| s), Some(10));
        f.offer(&policy, &note(5));
        f.offer(&policy, &note(11));
        assert_eq!(f.judge(11, 100, 60), None);
        assert_eq!(f.judge(12, 100, 60).map(|(s, _)| s), Some(11));
    }
}
