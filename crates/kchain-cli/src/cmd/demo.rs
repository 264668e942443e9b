//! `demo`: the guided tour (`crate::demo`) on a fresh embedded log, or on Kafka with `-b`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::demo::{open_scratch, tour, TOPIC};
use crate::global::{open_log, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Events to write [default: 100,000 on the embedded log, 2,000 on Kafka (-b): the
    /// tour reads its topics several times, and a small broker such as the project's test
    /// broker (tansu with sqlite) fetches large partitions slowly].
    #[arg(long)]
    pub records: Option<u64>,
    /// Directory for the demo's data [default: a fresh temporary directory, removed after].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs the demo in `--dir` (or a temporary directory, removed after).
/// Events the demo writes by default on the embedded log.
pub const DEFAULT_RECORDS: u64 = 100_000;
/// Events the demo writes by default on Kafka (see [`DemoArgs::records`]).
pub const DEFAULT_KAFKA_RECORDS: u64 = 2_000;

pub fn run(g: &Global, a: &DemoArgs) -> Result<Outcome> {
    let records = a.records.unwrap_or(if g.brokers.is_some() {
        DEFAULT_KAFKA_RECORDS
    } else {
        DEFAULT_RECORDS
    });
    if records < 1000 {
        bail!("--records must be at least 1000 for the demo's attacks to have room");
    }
    let (dir, temporary) = match &a.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("kchain-demo-{}", std::process::id())),
            true,
        ),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "demo directory {} is not empty; pass an empty --dir",
            dir.display()
        );
    }
    let result = if g.brokers.is_some() {
        let log = open_log(g, false)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        std::fs::create_dir_all(&dir)?;
        tour(
            records,
            log.as_ref(),
            &format!("{TOPIC}-{stamp}"),
            &dir,
            "Kafka",
        )
    } else {
        open_scratch(&dir.join("log"))
            .and_then(|log| tour(records, &log, TOPIC, &dir, "the embedded log"))
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|()| Outcome::Clean)
}
