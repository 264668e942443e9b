//! Fuzz target `log_record`: see `kchain_fuzz::check_log_record` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_log_record(data));
