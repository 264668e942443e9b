//! Fuzz target `proof_file`: see `kchain_fuzz::check_proof_file` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_proof_file(data));
