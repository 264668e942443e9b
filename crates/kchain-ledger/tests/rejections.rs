//! Bad transactions of every kind go to the rejected topic with their reason and source
//! offset, and never stop a node; what a client can ask about a transaction.

mod support;

use support::scenarios::*;
use support::*;

#[test]
fn every_kind_of_bad_transaction_is_rejected_with_its_reason_and_the_node_keeps_sealing() {
    let (_dir, log) = embedded();
    let mut cast = Cast::new("rejects", 1, 10, 1000, 2);
    cast.genesis.max_payload_bytes = 1000;
    cast.init(&log);
    bad_transactions(&log, &cast);
}
