//! The conformance suite (`support/suite.rs`) against the embedded backend, with small
//! segments and a dense index (so that it crosses segment boundaries and uses index entries)
//! and with the defaults. `kafka_conformance.rs` runs the same suite against Kafka.

#[macro_use]
mod support;

use support::suite;

use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log};

/// A fresh embedded log in a temporary directory, with small segments and a dense index so
/// that the suite crosses segment boundaries and uses index entries.
struct Embedded {
    log: EmbeddedLog,
    _dir: tempfile::TempDir,
}

impl Embedded {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let opts = EmbeddedOptions {
            fsync: FsyncPolicy::IntervalMs(50),
            segment_bytes: 16 * 1024,
            index_interval_bytes: 256,
            ..EmbeddedOptions::default()
        };
        let log = EmbeddedLog::create(dir.path().join("data"), opts).unwrap();
        Embedded { log, _dir: dir }
    }

    fn log(&self) -> &dyn Log {
        &self.log
    }
}

conformance!(embedded, Embedded::new());

/// The same suite with the defaults (one segment per partition, fsync on every batch).
struct EmbeddedDefaults(Embedded);

impl EmbeddedDefaults {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::create(dir.path(), EmbeddedOptions::default()).unwrap();
        EmbeddedDefaults(Embedded { log, _dir: dir })
    }

    fn log(&self) -> &dyn Log {
        &self.0.log
    }
}

conformance!(embedded_defaults, EmbeddedDefaults::new());
