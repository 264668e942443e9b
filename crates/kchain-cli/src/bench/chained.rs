//! The chained measurements: append (plain, encrypted, with checkpoints, with checkpoints
//! and a witness) and verify.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kchain_core::{DataKey, Item, Trust, WriterKey};
use kchain_log::{Log, TopicConfig};
use kchain_topic::{ChainWriter, TopicVerifier, VerifyOptions, WriterOptions};

use super::raw::{Stopwatch, Took, BATCH};

/// Signed batches of [`BATCH`] records handed to one `ChainWriter::append` call: an
/// application with many records to append passes them together, and the writer builds the
/// next batch while the log writes the one before (raw append has nothing to overlap).
const BATCHES_PER_CALL: usize = 8;

/// The values as items in append batches, timestamps starting at `base`.
pub(crate) fn chunked(vals: &[Vec<u8>], base: u128) -> Vec<Vec<Item>> {
    chunked_by(vals, base, BATCH)
}

/// The values as items in calls of `per_call`, timestamps starting at `base`.
fn chunked_by(vals: &[Vec<u8>], base: u128, per_call: usize) -> Vec<Vec<Item>> {
    let t0 = 1_700_000_000_000 + (base % 1_000_000) as i64;
    vals.chunks(per_call)
        .enumerate()
        .map(|(c, vs)| {
            vs.iter()
                .enumerate()
                .map(|(i, v)| Item {
                    key: None,
                    value: Some(v.clone()),
                    headers: Vec::new(),
                    timestamp_ms: t0 + (c * per_call + i) as i64,
                })
                .collect()
        })
        .collect()
}

/// The values as the chained measurements append them: [`BATCHES_PER_CALL`] batches a call.
fn append_calls(vals: &[Vec<u8>], base: u128) -> Vec<Vec<Item>> {
    chunked_by(vals, base, BATCH * BATCHES_PER_CALL)
}

/// Appends every chunk and flushes; the time it took. The writers are pipelined (as
/// `TopicProducer`'s): each append returns once its last batch is handed to the log, and the
/// flush, inside the time, waits for every record to be written and forced to disk.
fn timed_append(w: &mut ChainWriter<'_>, chunks: Vec<Vec<Item>>) -> Result<Took> {
    let t = Stopwatch::start();
    for chunk in chunks {
        w.append(chunk)?;
    }
    w.flush()?;
    Ok(t.stop())
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the checkpointed, witnessed append measured.
pub(crate) struct Witnessed {
    pub(crate) append: Took,
    pub(crate) checkpoints: usize,
    pub(crate) cosigned: usize,
}

/// Chained append with checkpoints at the default interval (and one on the final flush),
/// while a witness thread runs passes at `kchain witness run`'s default interval. The clock
/// stops when the writer has flushed; the witness then finishes its last pass, and every
/// checkpoint must be cosigned.
pub(crate) fn witnessed_append(
    log: &dyn Log,
    key: &WriterKey,
    chunks: Vec<Vec<Item>>,
    stamp: String,
    with_witness: bool,
) -> Result<Witnessed> {
    use kchain_core::{Cosigner, Witness};
    use kchain_topic::{checkpoints::read_checkpoints, CheckpointOptions};
    use std::sync::atomic::{AtomicBool, Ordering};

    let topic = format!("kchain-bench-witnessed-{stamp}-{with_witness}");
    log.create_topic(&topic, &TopicConfig::default())?;
    let writers = vec![key.public().note_verifier(key.name())?];
    let witness = Witness::new(Cosigner::generate("bench-witness")?, writers.clone());
    let state = std::env::temp_dir().join(format!("kchain-bench-witness-{stamp}"));
    let _cleanup = RemoveOnDrop(state.clone());
    let done = AtomicBool::new(false);
    let mut cosigned = 0usize;
    let pass = || cosign_pass(log, &topic, &witness, &writers, &state);
    let append = std::thread::scope(|s| -> Result<Took> {
        let writer = s.spawn(|| -> Result<Took> {
            let mut w = ChainWriter::open(log, &topic, 0, key, WriterOptions::default())?
                .with_pipelining()
                .with_checkpoints(log, CheckpointOptions::default())?;
            let d = timed_append(&mut w, chunks)?;
            done.store(true, Ordering::Release);
            Ok(d)
        });
        while with_witness && !done.load(Ordering::Acquire) && !writer.is_finished() {
            cosigned += pass()?;
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(1000) && !writer.is_finished() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        writer.join().expect("writer thread")
    })?;
    if !with_witness {
        let checkpoints = read_checkpoints(log, &topic)?.len();
        return Ok(Witnessed {
            append,
            checkpoints,
            cosigned: 0,
        });
    }
    cosigned += pass()?;
    let checkpoints = read_checkpoints(log, &topic)?.len() - cosigned;
    if cosigned != checkpoints {
        bail!("the witness cosigned {cosigned} of {checkpoints} checkpoints");
    }
    Ok(Witnessed {
        append,
        checkpoints,
        cosigned,
    })
}

/// One witness pass over `topic`'s checkpoints: how many it cosigned (anything else fails).
fn cosign_pass(
    log: &dyn Log,
    topic: &str,
    witness: &kchain_core::Witness,
    writers: &[kchain_core::NoteVerifier],
    state: &std::path::Path,
) -> Result<usize> {
    use kchain_topic::checkpoints::{witness_pass, WitnessEvent};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let events = witness_pass(
        log,
        topic,
        witness,
        writers,
        state,
        kchain_core::DEFAULT_ORIGIN_NAMESPACE,
        now,
    )?;
    let n = events
        .iter()
        .filter(|e| matches!(e, WitnessEvent::Cosigned { .. }))
        .count();
    if let Some(e) = events
        .iter()
        .find(|e| !matches!(e, WitnessEvent::Cosigned { .. }))
    {
        bail!("the benchmark's witness did not cosign: {e:?}");
    }
    Ok(n)
}

/// The chained-append times of one repetition, each variant into a fresh topic.
pub(crate) struct Appends {
    pub(crate) plain: Took,
    /// The plain chain again, appended one signed batch a call (as `TopicProducer` and
    /// `kchain produce` call the writer): each call's batch is built while the log writes
    /// the last call's.
    pub(crate) one_batch: Took,
    pub(crate) encrypted: Took,
    pub(crate) checkpointed: Witnessed,
    pub(crate) witnessed: Option<Witnessed>,
    /// Why the witness could not be measured (on Kafka only).
    pub(crate) witness_note: Option<String>,
}

/// Chained append: hashing, linking, one signature per batch, storage; then the same with
/// every value encrypted (AES-256-GCM, a fresh nonce per record) before it is chained; with
/// signed checkpoints at the default interval; and with checkpoints and a witness cosigning
/// them as they appear, on the same cores (a real witness runs elsewhere). The plain chain
/// goes to `chained_topic`, which is verified afterwards. `measure_witness` is false once
/// the witness could not be measured on this broker.
pub(crate) fn appends(
    log: &dyn Log,
    key: &WriterKey,
    vals: &[Vec<u8>],
    chained_topic: &str,
    stamp: &str,
    on_kafka: bool,
    measure_witness: bool,
) -> Result<Appends> {
    let data_key = DataKey::generate(0)?;
    let base = stamp.len() as u128;
    let plain_run = |topic: &str, encrypt: bool, calls: Vec<Vec<Item>>| -> Result<Took> {
        log.create_topic(topic, &TopicConfig::default())?;
        let mut w = ChainWriter::open(log, topic, 0, key, WriterOptions::default())?
            .with_optional_encryption(encrypt.then_some(&data_key))
            .with_pipelining();
        timed_append(&mut w, calls)
    };
    let plain = plain_run(chained_topic, false, append_calls(vals, base))?;
    let one_batch = plain_run(
        &format!("{chained_topic}-one-batch"),
        false,
        chunked(vals, base),
    )?;
    let encrypted = plain_run(
        &format!("{chained_topic}-encrypted"),
        true,
        append_calls(vals, base),
    )?;
    let checkpointed =
        witnessed_append(log, key, append_calls(vals, base), stamp.to_owned(), false)?;
    // On Kafka the witness reads the topic through the broker, and a broker that
    // misreports offsets (tansu's memory engine, see docs/kafka.md) leaves it nothing
    // to prove with: reported, not fatal. On the embedded log it must work.
    let (mut witnessed, mut witness_note) = (None, None);
    if measure_witness {
        match witnessed_append(log, key, append_calls(vals, base), stamp.to_owned(), true) {
            Ok(w) => witnessed = Some(w),
            Err(e) if on_kafka => witness_note = Some(format!("{e:#}")),
            Err(e) => return Err(e),
        }
    }
    Ok(Appends {
        plain,
        one_batch,
        encrypted,
        checkpointed,
        witnessed,
        witness_note,
    })
}

/// Verify time of the `n`-entry chain of `topic` with `threads` threads.
pub(crate) fn verify(
    log: &dyn Log,
    topic: &str,
    trust: &Trust,
    n: u64,
    threads: usize,
) -> Result<Duration> {
    {
        let t = Instant::now();
        let r = TopicVerifier::new(trust)
            .options(VerifyOptions {
                threads,
                // The bench knows where its chain ends (tansu's memory engine reports
                // a wrong end offset).
                until: Some(n),
                ..VerifyOptions::default()
            })
            .verify_chains(log, topic)?;
        let d = t.elapsed();
        if !r.ok() || r.partitions[0].summary.entries != n {
            bail!("benchmark chain did not verify: {r:?}");
        }
        Ok(d)
    }
}
