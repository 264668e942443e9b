//! The freshness rule (`[policy] max_age`): entries past the newest accepted checkpoint that
//! no witness cosigned within max_age raise `stale` once, and a larger checkpoint re-arms it.

mod support;

use std::time::{Duration, Instant};

use kchain_monitor::Alerts;
use support::*;

#[test]
fn entries_past_a_checkpoint_no_witness_vouches_for_are_stale_once_then_re_armed() {
    for (name, log) in backends() {
        let log = log.as_ref();
        let (key, state) = (key(), kchain_testkit::tempdir());
        let trust = trust(&key);
        let t = topic(log, "fresh");
        write(log, &t, &key, 20, true);
        let lines = Lines::default();
        let alerts = Alerts::new(Box::new(lines.clone()), None);
        let mut opts = options(&t, state.path());
        opts.max_age = Some(3600);
        live(log, &trust, opts, alerts, |page| {
            wait_entries(page, &t, 20, Duration::from_secs(20));
            std::thread::sleep(Duration::from_millis(300));
            assert!(lines.alerts().is_empty(), "{name}: {:?}", lines.alerts());
            // Appending without a checkpoint: the entries past it are not vouched for.
            let act = Instant::now();
            write(log, &t, &key, 10, false);
            let took = lines.wait_for("stale", act, Duration::from_secs(10));
            assert!(
                took < Duration::from_secs(5),
                "{name}: stale after {took:?}"
            );
            // A checkpoint over all of it, then more entries: raised again, for the new size.
            write(log, &t, &key, 5, true);
            write(log, &t, &key, 5, false);
            lines.wait_for_nth("stale", 2, act, Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(500));
        });
        let stale: Vec<_> = (lines.alerts().into_iter())
            .filter(|a| a["kind"] == "stale")
            .collect();
        assert_eq!(stale.len(), 2, "{name}: {stale:?}");
        assert_eq!(stale[0]["offset"].as_u64(), Some(20), "{name}");
        assert_eq!(stale[1]["offset"].as_u64(), Some(35), "{name}");
    }
}
