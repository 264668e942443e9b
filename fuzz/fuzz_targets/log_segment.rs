//! Fuzz target `log_segment`: see `kchain_fuzz::check_log_segment` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_log_segment(data));
