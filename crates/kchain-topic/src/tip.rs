//! A writer's tip: the last record of its partition, which it resumes from only if its own
//! key signed it.

use std::time::Duration;

use kchain_core::{
    observe, ChainContext, ChainId, Hash, Observation, SigCheck, Trust, TrustedWriter, WriterKey,
};
use kchain_log::Log;

use crate::error::TopicError;

/// Reads the record at `offset` and checks that it is a tip signed by `key`.
pub(crate) fn read_own_tip(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    chain: ChainId,
    key: &WriterKey,
    offset: u64,
) -> Result<(u64, Hash), TopicError> {
    let mut reader = log.reader(topic, partition, offset)?;
    let rec = reader
        .poll(1, Duration::from_secs(10))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            TopicError::Invalid(format!(
                "{topic}/{partition}: cannot read the tip at offset {offset}"
            ))
        })?;
    let trust = Trust {
        writers: vec![TrustedWriter {
            name: key.name().to_owned(),
            key: key.public(),
            topics: Vec::new(),
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    };
    let ctx = ChainContext {
        topic,
        chain,
        trust: &trust,
    };
    let r = &rec.record;
    let obs = observe(
        &ctx,
        rec.offset,
        r.key.as_deref(),
        r.value.as_deref(),
        r.headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_slice())),
        r.timestamp_ms,
        &mut Vec::new(),
    );
    let foreign = |detail: String| TopicError::ForeignRecord {
        topic: topic.to_owned(),
        partition,
        offset,
        detail,
    };
    match obs {
        Observation::Entry(o) if o.sig == SigCheck::Valid(key.id()) => Ok((o.height, o.hash)),
        Observation::Entry(o) => Err(foreign(match o.sig {
            SigCheck::None => "the tip is not signed".into(),
            SigCheck::Unknown(id) | SigCheck::OtherTopics(id) => {
                format!(
                    "the tip is signed by key {id}, not by this writer's key {}",
                    key.id()
                )
            }
            _ => "the tip's signature does not verify".into(),
        })),
        Observation::Malformed { error, .. } => Err(foreign(error.to_string())),
    }
}
