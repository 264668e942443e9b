//! Fuzz target `ledger_tx`: see `kchain_fuzz::check_ledger_tx` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kchain_fuzz::check_ledger_tx(data));
