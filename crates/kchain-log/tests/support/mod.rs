//! What the conformance test files share: the backend-neutral suite (`suite.rs`). The broker
//! and unique names come from `kchain-testkit`.

#[macro_use]
pub mod suite;
