//! A checkpoint that arrives after the monitor's tree passed its size, at a size where no
//! root was kept (here: not at a batch end), is checked with the root computed from the
//! tree's frontier and the leaves read back from the log, not counted as unchecked.

mod support;

use kchain_core::{chain_leaf, merkle, observe, ChainContext, ChainId, Hash, Observation};
use kchain_log::Log;
use support::*;

/// The chain tree's root at `size`, computed independently of the monitor.
fn root_at(log: &dyn Log, topic: &str, trust: &kchain_core::Trust, size: usize) -> Hash {
    let ctx = ChainContext {
        topic,
        chain: ChainId::for_partition(topic, 0),
        trust,
    };
    let start = log.start_offset(topic, 0).unwrap();
    let records = kchain_topic::tamper::read_all(log, topic, 0).unwrap();
    let leaves: Vec<Hash> = (records.iter().enumerate().take(size))
        .map(|(i, r)| {
            let headers = r
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.value.as_slice()));
            let (k, v) = (r.key.as_deref(), r.value.as_deref());
            match observe(
                &ctx,
                start + i as u64,
                k,
                v,
                headers,
                r.timestamp_ms,
                &mut Vec::new(),
            ) {
                Observation::Entry(o) => chain_leaf(&o.hash),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    merkle::root(&leaves)
}

#[test]
fn a_late_checkpoint_between_batch_ends_is_checked_against_the_log() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "late");
        write(log, &t, &key, 95, false);
        let lines = Lines::default();
        let first = once(log, &trust, options(&t, state.path()), &lines);
        assert_eq!((first.entries, first.findings), (95, 0), "{name}");
        // The checkpoints arrive after the monitor verified the chain; batches end at 10,
        // 20, ... 90, 95, so sizes 45 and 47 have no root kept.
        publish(log, &t, &key, 45, root_at(log, &t, &trust, 45));
        let mut wrong = root_at(log, &t, &trust, 47);
        wrong[0] ^= 1;
        publish(log, &t, &key, 47, wrong);
        // 70 lies in the tree's second peak (64..80): the first is used as kept.
        publish(log, &t, &key, 70, root_at(log, &t, &trust, 70));
        let second = once(log, &trust, options(&t, state.path()), &lines);
        let alerts = lines.alerts();
        let forks: Vec<_> = alerts.iter().filter(|a| a["kind"] == "fork").collect();
        assert_eq!(forks.len(), 1, "{name}: {alerts:?}");
        assert_eq!(forks[0]["offset"].as_u64(), Some(47), "{name}");
        assert!(second.findings > 0, "{name}");
    }
}
