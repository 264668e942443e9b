//! Verifies a chained topic against the example writer's public key and prints the report:
//! exit 0 when every record verified, 3 when a partition has a finding, 1 on any other error.
//!
//! ```text
//! cargo run -p kchain --example verify -- ./example-data orders
//! ```
//!
//! With `KCHAIN_BROKERS=host:port` it verifies the topic on Kafka instead.

use std::path::Path;
use std::process::ExitCode;

use kchain::files::read_key_file;
use kchain::{Log, TopicVerifier, Trust};

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("verify: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, topic] = args.as_slice() else {
        return Err("usage: verify DATA_DIR TOPIC".into());
    };
    let log = open_log(Path::new(dir))?;
    // An auditor holds only the public key; the example reads it from the writer's key file.
    let writer = read_key_file(Path::new("example-writer.key"))?;
    let trust = Trust::for_writer("example-writer", writer.public());

    let report = TopicVerifier::new(&trust).verify(log.as_ref(), topic)?;
    for p in &report.chain.partitions {
        match &p.summary.finding {
            None => println!(
                "partition {}: {} entries verified",
                p.partition, p.summary.entries
            ),
            Some(f) => println!("partition {}: FINDING {f}", p.partition),
        }
    }
    for w in &report.chain.warnings {
        println!("warning: {w}");
    }
    Ok(report.ok())
}

/// The embedded log in `dir` (which must exist), or Kafka when `KCHAIN_BROKERS` is set.
fn open_log(dir: &Path) -> Result<Box<dyn Log>, Box<dyn std::error::Error>> {
    #[cfg(feature = "kafka")]
    if let Ok(brokers) = std::env::var("KCHAIN_BROKERS") {
        return Ok(Box::new(kchain::KafkaLog::connect(
            &brokers,
            Default::default(),
        )?));
    }
    Ok(Box::new(kchain::EmbeddedLog::open(
        dir,
        Default::default(),
    )?))
}
