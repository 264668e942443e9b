//! Fuzz target `note`: see `kchain_fuzz::check_note` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_note(data));
