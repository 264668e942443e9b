//! A log whose metadata hides partitions, on every backend: the trust file's pinned
//! partition count, not the log's answer, decides which partitions a verifier checks. On
//! Kafka this is a topic deleted and recreated with fewer partitions (or an admin reporting
//! fewer); here the attacker's copy of the topic simply has fewer partitions than were pinned.

mod common;

use common::{destinations, key, trust_for, unique_topic, write_chain};
use kchain_core::FindingKind;
use kchain_topic::TopicVerifier;

#[test]
fn partitions_the_log_no_longer_reports_are_missing() {
    let writer = key("acme", 1);
    for (backend, log) in destinations() {
        let log = log.as_ref();
        let topic = unique_topic("shape");
        write_chain(log, &topic, &writer, 50, 16);
        let mut trust = trust_for(&[&writer]);
        let clean = TopicVerifier::new(&trust)
            .verify_chains(log, &topic)
            .unwrap();
        assert!(clean.ok(), "{backend}: {clean:?}");

        // The topic was pinned with three partitions; the log now has one.
        trust.set_topic_pin(&topic, 3);
        let report = TopicVerifier::new(&trust)
            .verify_chains(log, &topic)
            .unwrap();
        assert!(!report.ok(), "{backend}");
        assert_eq!(report.partitions.len(), 3, "{backend}");
        assert!(report.partitions[0].summary.finding.is_none(), "{backend}");
        for p in &report.partitions[1..] {
            let f = p.summary.finding.as_ref().unwrap();
            assert_eq!(f.kind, FindingKind::PartitionMissing, "{backend}");
        }
        // Asking for a pinned partition by number is a finding too, not "no such partition".
        let one = TopicVerifier::new(&trust)
            .partitions(&[2])
            .verify_chains(log, &topic)
            .unwrap();
        assert_eq!(
            one.partitions[0].summary.finding.as_ref().unwrap().kind,
            FindingKind::PartitionMissing
        );

        // A pinned topic that the log lacks altogether is three missing partitions.
        let gone = unique_topic("gone");
        trust.set_topic_pin(&gone, 3);
        let report = TopicVerifier::new(&trust)
            .verify_chains(log, &gone)
            .unwrap();
        assert_eq!(report.partitions.len(), 3, "{backend}");
        assert!(report.partitions.iter().all(|p| {
            p.summary.finding.as_ref().map(|f| f.kind) == Some(FindingKind::PartitionMissing)
        }));
    }
}
