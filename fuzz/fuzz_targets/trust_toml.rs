//! Fuzz target `trust_toml`: see `kchain_fuzz::check_trust_toml` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_trust_toml(data));
