//! Helpers for kchain's own tests, written once: the test crates of every kchain crate use
//! them instead of copying them from file to file or `#[path]`-including one another's files.
//!
//! ```text
//! broker   a private tansu broker on loopback, started by scripts/broker.sh
//! names    names no other test or earlier run uses (topics, chains on a shared broker)
//! python   the interop tests' Python (KCHAIN_PYTHON, made by scripts/py-env.sh)
//! rng      a small seeded random source, so that a failing case can be replayed
//! process  one test of this binary run in a child process (to be killed)
//! wait     polling until a condition holds; temporary directories
//! files    the bytes an embedded log stored, for tests that compare two writers' output
//! ```
//!
//! The crate is a dev-dependency only (`publish = false`); it depends on no kchain crate, so
//! that every kchain crate, the lowest included, can use it in its tests.

mod broker;
mod files;
mod names;
mod process;
mod python;
mod rng;
mod wait;

pub use broker::Broker;
pub use files::segment_bytes;
pub use names::unique_name;
pub use process::test_in_child;
pub use python::{python, run_python};
pub use rng::Rng;
pub use wait::{eventually, tempdir};
