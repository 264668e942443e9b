//! An appender's producer and the thread that serves its events: delivery reports a whole
//! event at a time, and no spinning.
//!
//! ```text
//!  librdkafka broker thread ──► main queue: DR event (many messages), error, log
//!                                     │ rd_kafka_queue_poll(queue, 1 s): sleeps until one is there
//!  poller thread ◄────────────────────┘
//!     DR    ──► Deliveries::deliver_all (one lock and at most one wake-up per event)
//!     error ──► the context's error (logged);  log ──► the context's log
//! ```
//!
//! Why not rdkafka's `ThreadedProducer`: its thread polls in rounds of 100 ms through a
//! deadline that it turns into whole milliseconds, rounded down, so through the last
//! millisecond of every round it polls with a timeout of 0, spinning on the clock
//! (`clock_gettime` was 8% of kchain's samples in `kchain bench bridge` on Kafka, idle
//! producers included, each with its own thread); and it hands each record of a delivery
//! report to the context one call at a time. This thread blocks in librdkafka until an event
//! arrives, and is woken at once (`rd_kafka_queue_yield`) when the producer is dropped.

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rdkafka::bindings as rd;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};

use super::deliveries::{Deliveries, Outcome};

/// An appender's producer: librdkafka's, with its event thread.
pub(crate) struct KafkaProducer {
    base: Arc<BaseProducer<Deliveries>>,
    poller: Option<Poller>,
}

/// The event thread and how to stop it.
struct Poller {
    stop: Arc<AtomicBool>,
    queue: Arc<Queue>,
    thread: JoinHandle<()>,
}

/// librdkafka's main queue of a client (a reference of our own, destroyed on drop).
struct Queue(*mut rd::rd_kafka_queue_t);

// SAFETY: librdkafka queues are thread-safe; the pointer stays valid until `drop`.
unsafe impl Send for Queue {}
unsafe impl Sync for Queue {}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: our own reference, taken by rd_kafka_queue_get_main, released once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

impl KafkaProducer {
    /// Starts the event thread of `base`; nothing else polls its queue.
    pub(crate) fn start(base: BaseProducer<Deliveries>) -> KafkaProducer {
        let base = Arc::new(base);
        // SAFETY: the client handle is live while `base` is; the queue reference is ours.
        let queue = Arc::new(Queue(unsafe {
            rd::rd_kafka_queue_get_main(base.client().native_ptr())
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (base, queue, stop) = (base.clone(), queue.clone(), stop.clone());
            std::thread::Builder::new()
                .name("kchain-kafka-events".into())
                .spawn(move || serve(&base, &queue, &stop))
                .expect("spawn the Kafka producer's event thread")
        };
        KafkaProducer {
            base,
            poller: Some(Poller {
                stop,
                queue,
                thread,
            }),
        }
    }

    /// The librdkafka producer.
    pub(crate) fn base(&self) -> &BaseProducer<Deliveries> {
        &self.base
    }

    /// The delivery reports collected so far.
    pub(crate) fn context(&self) -> &Deliveries {
        self.base.context()
    }

    /// Records handed to librdkafka and not yet reported.
    pub(crate) fn in_flight_count(&self) -> i32 {
        self.base.in_flight_count()
    }
}

impl Drop for KafkaProducer {
    /// Stops the event thread (waking it at once); rdkafka then purges and flushes what is
    /// left, serving the last reports itself.
    fn drop(&mut self) {
        if let Some(p) = self.poller.take() {
            p.stop.store(true, Ordering::Release);
            // SAFETY: the queue reference is live until `p.queue` is dropped.
            unsafe { rd::rd_kafka_queue_yield(p.queue.0) };
            let _ = p.thread.join();
        }
    }
}

/// The event thread: waits for events and serves them until `stop`.
fn serve(base: &BaseProducer<Deliveries>, queue: &Queue, stop: &AtomicBool) {
    let mut messages: Vec<*mut rd::rd_kafka_message_t> = Vec::new();
    let mut outcomes: Vec<(u64, Outcome)> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        // SAFETY: a live queue; a returned event is ours until rd_kafka_event_destroy.
        let event = unsafe { rd::rd_kafka_queue_poll(queue.0, 1000) };
        if event.is_null() {
            continue;
        }
        // SAFETY: `event` is a live event of this client.
        match unsafe { rd::rd_kafka_event_type(event) } {
            rd::RD_KAFKA_EVENT_DR => {
                unsafe { reports(event, &mut messages, &mut outcomes) };
                base.context().deliver_all(outcomes.drain(..));
            }
            rd::RD_KAFKA_EVENT_ERROR => unsafe { error(base.context(), event) },
            rd::RD_KAFKA_EVENT_LOG => unsafe { log(base.context(), event) },
            _ => {}
        }
        // SAFETY: destroyed once, after its messages were read.
        unsafe { rd::rd_kafka_event_destroy(event) };
    }
}

/// The outcome of every message of a delivery report event, by sequence number (the
/// delivery opaque the feeder gave it).
///
/// # Safety
/// `event` is a live `RD_KAFKA_EVENT_DR` event.
unsafe fn reports(
    event: *mut rd::rd_kafka_event_t,
    messages: &mut Vec<*mut rd::rd_kafka_message_t>,
    outcomes: &mut Vec<(u64, Outcome)>,
) {
    let n = rd::rd_kafka_event_message_count(event);
    messages.clear();
    messages.resize(n, std::ptr::null_mut());
    let got = rd::rd_kafka_event_message_array(event, messages.as_mut_ptr().cast(), n);
    for &m in &messages[..got] {
        let m = &*m;
        let seq = m._private as usize as u64;
        let outcome = match m.err {
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(m.offset),
            code => Err(KafkaError::MessageProduction(RDKafkaErrorCode::from(code)).to_string()),
        };
        outcomes.push((seq, outcome));
    }
}

/// Hands an error event to the context (which logs it); a failed record shows in its report.
///
/// # Safety
/// `event` is a live `RD_KAFKA_EVENT_ERROR` event.
unsafe fn error(context: &Deliveries, event: *mut rd::rd_kafka_event_t) {
    let code = rd::rd_kafka_event_error(event);
    let reason = CStr::from_ptr(rd::rd_kafka_event_error_string(event)).to_string_lossy();
    context.error(KafkaError::Global(code.into()), reason.trim());
}

/// Hands a log event to the context.
///
/// # Safety
/// `event` is a live `RD_KAFKA_EVENT_LOG` event.
unsafe fn log(context: &Deliveries, event: *mut rd::rd_kafka_event_t) {
    let (mut fac, mut text, mut level) = (std::ptr::null(), std::ptr::null(), 0);
    if rd::rd_kafka_event_log(event, &mut fac, &mut text, &mut level) != 0 {
        return;
    }
    let fac = CStr::from_ptr(fac).to_string_lossy();
    let text = CStr::from_ptr(text).to_string_lossy();
    let level = match level {
        0 => RDKafkaLogLevel::Emerg,
        1 => RDKafkaLogLevel::Alert,
        2 => RDKafkaLogLevel::Critical,
        3 => RDKafkaLogLevel::Error,
        4 => RDKafkaLogLevel::Warning,
        5 => RDKafkaLogLevel::Notice,
        6 => RDKafkaLogLevel::Info,
        _ => RDKafkaLogLevel::Debug,
    };
    context.log(level, fac.trim(), text.trim());
}
