//! The demo's setting: its topic and scratch logs, a deterministic stream of supply-chain
//! events, and the edit an attacker makes to one of them.

use std::path::Path;

use anyhow::{Context, Result};
use kchain_core::Item;
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy};

/// The demo topic's name (on Kafka, with a time stamp appended).
pub const TOPIC: &str = "shipments";
/// Partitions of the demo topic.
pub const PARTITIONS: u32 = 4;

/// Opens (creating it) an embedded log for the demo's scratch data, forcing appends to disk
/// every 200 ms.
pub fn open_scratch(dir: &Path) -> Result<EmbeddedLog> {
    EmbeddedLog::create(
        dir,
        EmbeddedOptions {
            fsync: FsyncPolicy::IntervalMs(200),
            ..EmbeddedOptions::default()
        },
    )
    .with_context(|| format!("demo data directory {}", dir.display()))
}

/// A small deterministic generator, so that every run tells the same story.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const SITES: &[&str] = &[
    "Rotterdam DC",
    "Hamburg Port",
    "Antwerp Hub",
    "Lyon Cold Store",
    "Milan Crossdock",
    "Gdansk Terminal",
];
const EVENTS: &[&str] = &[
    "picked",
    "packed",
    "loaded",
    "scanned",
    "customs_cleared",
    "unloaded",
];
const GOODS: &[&str] = &[
    "vaccines",
    "insulin",
    "seafood",
    "berries",
    "electronics",
    "textiles",
];

pub(crate) fn event(rng: &mut Rng, i: u64, t0: i64) -> Item {
    let shipment = format!("SHP-{:06}", rng.next() % 20_000);
    let temp = (rng.next() % 90) as f64 / 10.0 - 1.0;
    let value = format!(
        "{{\"seq\":{i},\"shipment\":\"{shipment}\",\"event\":\"{}\",\"site\":\"{}\",\
         \"goods\":\"{}\",\"temp_c\":{temp:.1},\"handler\":\"emp-{:04}\",\"ts\":{}}}",
        rng.pick(EVENTS),
        rng.pick(SITES),
        rng.pick(GOODS),
        rng.next() % 5000,
        t0 + i as i64
    );
    Item {
        key: Some(shipment.into_bytes()),
        value: Some(value.into_bytes()),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        timestamp_ms: t0 + i as i64,
    }
}

pub(crate) fn temp_of(json: &str) -> String {
    json.split("\"temp_c\":")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("?")
        .to_owned()
}

pub(crate) fn edit_temperature(json: &str) -> String {
    let old = format!("\"temp_c\":{}", temp_of(json));
    let new = if old == "\"temp_c\":3.0" {
        "\"temp_c\":3.1"
    } else {
        "\"temp_c\":3.0"
    };
    json.replacen(&old, new, 1)
}
