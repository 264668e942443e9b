//! Fuzz target `topic_mapping`: see `kchain_fuzz::check_topic_mapping` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_topic_mapping(data));
