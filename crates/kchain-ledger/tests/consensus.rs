//! Consensus by log order: racing sealers make one chain; stale and invalid blocks are ignored
//! by every node alike; proof of work. The scenarios are in `support/scenarios.rs`, shared
//! with `tests/kafka.rs`.

mod support;

use support::scenarios::*;
use support::*;

#[test]
fn three_sealers_racing_seal_every_valid_transaction_exactly_once() {
    let (_dir, log) = embedded();
    let cast = Cast::new("race", 3, 40, 1_000_000, 4);
    cast.init(&log);
    three_sealers_race(&log, [&log, &log, &log], &cast, 100);
}

#[test]
fn a_stale_block_appended_by_a_racing_sealer_is_ignored() {
    let (_dir, log) = embedded();
    stale_blocks_are_ignored(&log, "stale");
}

#[test]
fn invalid_blocks_appended_by_an_allowed_sealer_are_ignored_by_every_node() {
    let (_dir, log) = embedded();
    invalid_blocks_are_ignored(&log, "invalid");
}
