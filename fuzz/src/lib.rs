//! kchain's fuzz targets' checks, one `check_*` function per target: they live in
//! `crates/kchain-fuzz-checks`, so that the corpus replay test in `crates/kchain-cli` runs
//! the same functions on stable Rust without libFuzzer.

pub use kchain_fuzz_checks::*;
