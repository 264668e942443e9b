//! The streaming chain verifier.
//!
//! Verification has two halves. [`observe`] turns one stored record into an [`Observation`]:
//! it parses the `kchain.*` headers, recomputes the item leaf hash and the entry hash, and
//! checks the signature if the record ends a batch. Observations are independent of each
//! other, so callers compute them in parallel. [`ChainVerifier`] then takes observations in
//! log order and checks what is sequential: genesis, height continuity, links, and that every
//! record is covered by a valid signature of a trusted writer.
//!
//! ```text
//!  records ──► observe (parallel; PairObserver: two records' hashes at once)
//!          ──► ChainVerifier::push (in order) ──► Summary
//!                                         │ window of 3 observations:
//!                                         │ a record is judged with the next two in view
//! ```
//!
//! The verifier holds O(1) memory: the current tip, the last signed record and a window of
//! three observations. The small look-ahead is what lets it name the *first* bad record and
//! say what happened to it: when record `i` no longer links to record `i-1`, either `i-1` was
//! changed (and `i+1` still links to `i`) or `i`'s link was changed (and `i+1` does not).
//!
//! **Which record a finding names.** A record is vouched for by a valid signature over its
//! hash, or by a successor that links to it. A finding names the earliest record that could
//! have changed given that evidence, never a later one: when `i` links neither to `i-1` nor
//! from `i+1`, it names `i-1` unless a signature vouches for `i-1` (either `i`'s link alone was
//! changed, or both records were); when a signature does not verify, it names the signed
//! record itself if the records before it still link to it. An attacker who edits a record
//! and recomputes the links after it up to the next signature moves the break to that
//! signature; only the signature can catch that, and it cannot say which of its records
//! changed.
//!
//! **Pending records.** Records at the end of what was read that no signature covers yet are
//! *pending*: a reader can see part of a batch before the record that signs it (a Kafka
//! producer splits one batch over several requests). [`ChainVerifier::finish_pending`]
//! reports them as pending, [`ChainVerifier::finish`] as `unsigned`; the caller decides which
//! after waiting a grace of its own clock (see `docs/pending.md`). A run of unsigned records
//! longer than any writer's batch ([`PendingLimits`]) is `unsigned` at once.

mod decide;
mod finding;
mod observe;
mod pairs;
mod verifier;

pub use finding::{Finding, FindingKind};
pub use observe::{observe, ChainContext, Observation, Observed, SigCheck};
pub use pairs::PairObserver;
pub use verifier::{ChainVerifier, Expectations, Link, PendingLimits, Summary};
