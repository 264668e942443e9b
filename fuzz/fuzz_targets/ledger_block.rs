//! Fuzz target `ledger_block`: see `kchain_fuzz::check_ledger_block` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_ledger_block(data));
