//! Appends lines of standard input to a chained topic, one record per line, keyed by the text
//! before the first `:` (if any).
//!
//! ```text
//! printf 'order-1:{"amount":12}\norder-2:{"amount":7}\n' |
//!     cargo run -p kchain --example produce -- ./example-data orders
//! cargo run -p kchain --example verify -- ./example-data orders
//! ```
//!
//! With `KCHAIN_BROKERS=host:port` the records go to Kafka instead of the embedded log in
//! the directory. The writer key is kept in `example-writer.key` (mode 0600) beside the
//! working directory, apart from the data it signs.

use std::io::BufRead;
use std::path::Path;

use kchain::files::{read_key_file, write_key_file};
use kchain::{Log, TopicConfig, TopicProducer, WriterKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, topic] = args.as_slice() else {
        return Err("usage: produce DATA_DIR TOPIC < lines".into());
    };
    let log = open_log(Path::new(dir))?;
    if log.topic(topic).is_err() {
        log.create_topic(
            topic,
            &TopicConfig {
                partitions: 3,
                retention_ms: None,
            },
        )?;
    }
    let key = writer_key(Path::new("example-writer.key"))?;

    let mut producer = TopicProducer::open(log.as_ref(), topic, &key, Default::default())?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let (k, v) = match line.split_once(':') {
            Some((k, v)) => (Some(k.as_bytes().to_vec()), v),
            None => (None, line.as_str()),
        };
        producer.send(k, Some(v.as_bytes().to_vec()), vec![], kchain::now_ms())?;
    }
    for r in producer.flush()? {
        let a = &r.receipt;
        eprintln!(
            "partition {}: {} records at offsets {}..={}, tip height {}",
            r.partition, a.records, a.first_offset, a.last_offset, a.tip_height
        );
    }
    Ok(())
}

/// The embedded log in `dir`, or Kafka when `KCHAIN_BROKERS` is set.
fn open_log(dir: &Path) -> Result<Box<dyn Log>, Box<dyn std::error::Error>> {
    #[cfg(feature = "kafka")]
    if let Ok(brokers) = std::env::var("KCHAIN_BROKERS") {
        return Ok(Box::new(kchain::KafkaLog::connect(
            &brokers,
            Default::default(),
        )?));
    }
    Ok(Box::new(kchain::EmbeddedLog::create(
        dir,
        Default::default(),
    )?))
}

/// The writer key in `path`, made on first use.
fn writer_key(path: &Path) -> Result<WriterKey, Box<dyn std::error::Error>> {
    if path.exists() {
        return Ok(read_key_file(path)?);
    }
    let key = WriterKey::generate("example-writer");
    write_key_file(path, &key)?;
    Ok(key)
}
