//! Fuzz target `core_encoding`: see `kchain_fuzz::check_core_encoding` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_core_encoding(data));
