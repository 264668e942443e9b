//! Messages a Kafka consumer has fetched, read through librdkafka's C API: one message
//! lent for a visit ([`Fetched`]), and the messages taken off the consumer queue in one
//! call and held until the reader has visited them ([`Held`]).
//!
//! ```text
//! consumer queue ──rd_kafka_consume_batch_queue(timeout 0, up to n)──► Held: [m0 m1 m2 ..]
//!                                                                         │ next()
//!   reader ◄── Fetched (key, value, headers, offset, timestamp, error) ◄──┘ destroyed
//!                                                                           after the visit
//! ```
//!
//! Taking many messages per call is what makes a drain of already-fetched messages cheap:
//! rdkafka's event poll pays, per message, a queue poll with its clock reads and an
//! allocated event handle. Nothing here knows about topics or offsets beyond reading them.

use std::ffi::{c_char, c_void, CStr};
use std::ptr::NonNull;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;

use super::common::backend;
use crate::error::LogError;

/// The name passed for a header whose name is not valid UTF-8: kchain-core's
/// `H_NAME_NOT_UTF8`, a reserved name that makes the record malformed. (This crate does not
/// depend on the core; the adversary tests check both ends agree.)
const NAME_NOT_UTF8: &str = "kchain.!name-not-utf8";

/// One fetched message, borrowed from librdkafka for as long as `'m`.
pub(crate) struct Fetched<'m>(&'m rdsys::rd_kafka_message_t);

impl<'m> Fetched<'m> {
    /// The message under one of rdkafka's borrowed messages.
    pub(crate) fn of(message: &'m BorrowedMessage<'_>) -> Fetched<'m> {
        // SAFETY: `ptr()` is the live message `message` wraps, valid for its lifetime.
        Fetched(unsafe { &*message.ptr() })
    }

    /// The error librdkafka attached to this message in place of a record, if any.
    pub(crate) fn error(&self) -> Option<KafkaError> {
        let err = self.0.err;
        (err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
            .then(|| KafkaError::MessageConsumption(err.into()))
    }

    pub(crate) fn offset(&self) -> i64 {
        self.0.offset
    }

    /// The key; `None` for a null key (an empty one is `Some(&[])`).
    pub(crate) fn key(&self) -> Option<&'m [u8]> {
        // SAFETY: librdkafka points `key` at `key_len` bytes owned by the message, or null.
        unsafe { bytes(self.0.key, self.0.key_len) }
    }

    /// The value; `None` for a null value (an empty one is `Some(&[])`).
    pub(crate) fn value(&self) -> Option<&'m [u8]> {
        // SAFETY: as for the key: `payload` points at `len` bytes, or is null.
        unsafe { bytes(self.0.payload, self.0.len) }
    }

    /// The timestamp whatever its type (CreateTime, or LogAppendTime on a topic that the
    /// broker stamps), -1 when it has none.
    pub(crate) fn timestamp_ms(&self) -> i64 {
        let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        let ptr = std::ptr::from_ref(self.0).cast_mut();
        // SAFETY: a live message; librdkafka only reads it and writes `kind`.
        let ts = unsafe { rdsys::rd_kafka_message_timestamp(ptr, &mut kind) };
        if kind == rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE {
            -1
        } else {
            ts
        }
    }

    /// Calls `f` with each header, in order. rdkafka's safe accessor panics on a header
    /// name that is not UTF-8, which any other producer may write. Such a name is never
    /// converted lossily (a lossy conversion maps many names to one, and headers are
    /// hashed): it is passed as [`NAME_NOT_UTF8`], which the verifier reports as
    /// malformed. A null header value reads as empty.
    pub(crate) fn for_each_header(&self, f: &mut dyn FnMut(&str, &[u8])) {
        let mut native: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
        let ptr = std::ptr::from_ref(self.0).cast_mut();
        // SAFETY: a live message; librdkafka returns a pointer to headers owned by it (or an
        // error and no pointer).
        let err = unsafe { rdsys::rd_kafka_message_headers(ptr, &mut native) };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || native.is_null() {
            return;
        }
        // SAFETY: `native` is valid while the message is.
        let count = unsafe { rdsys::rd_kafka_header_cnt(native) };
        for idx in 0..count {
            let mut name: *const c_char = std::ptr::null();
            let mut value: *const c_void = std::ptr::null();
            let mut size: usize = 0;
            // SAFETY: `idx < count`; on success librdkafka points `name` at a NUL-terminated
            // string and `value` at `size` bytes (or null), both owned by the headers.
            let err = unsafe {
                rdsys::rd_kafka_header_get_all(native, idx, &mut name, &mut value, &mut size)
            };
            if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                break;
            }
            // SAFETY: as above; both stay valid while the message does, which outlives
            // `f`'s use of them.
            let (name, value) = unsafe {
                let value = bytes(value, size).unwrap_or(&[]);
                (CStr::from_ptr(name).to_str(), value)
            };
            f(name.unwrap_or(NAME_NOT_UTF8), value);
        }
    }
}

/// `len` bytes at `ptr`, or `None` for a null pointer.
///
/// # Safety
/// A non-null `ptr` must point at `len` readable bytes that live for `'a`.
unsafe fn bytes<'a>(ptr: *const c_void, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(ptr.cast::<u8>(), len))
    }
}

/// A message taken off the consumer queue; destroyed (its fetch buffer released) on drop.
pub(crate) struct Taken(NonNull<rdsys::rd_kafka_message_t>);

impl Taken {
    pub(crate) fn view(&self) -> Fetched<'_> {
        // SAFETY: the message stays alive until `self` is dropped.
        Fetched(unsafe { self.0.as_ref() })
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        // SAFETY: librdkafka handed this message to us alone; it is destroyed once.
        unsafe { rdsys::rd_kafka_message_destroy(self.0.as_ptr()) }
    }
}

/// Messages taken off one consumer's queue and not yet visited, in order.
///
/// Must be dropped before the consumer whose queue it reads (the messages point into its
/// fetch buffers): the reader declares it before the consumer.
pub(crate) struct Held {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    /// Taken messages; those before `next` are already visited (and destroyed).
    messages: Vec<*mut rdsys::rd_kafka_message_t>,
    next: usize,
}

// SAFETY: librdkafka's queues and messages may be used from any thread (one at a time,
// which `&mut self` ensures).
unsafe impl Send for Held {}

impl Held {
    /// The consumer queue of `consumer` (whose partitions are assigned, not subscribed).
    pub(crate) fn new(consumer: &BaseConsumer) -> Result<Held, LogError> {
        // SAFETY: a live consumer handle; the returned queue holds a reference of its own
        // until `rd_kafka_queue_destroy`.
        let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        let queue = NonNull::new(queue)
            .ok_or_else(|| backend("the consumer has no consumer queue".to_string()))?;
        Ok(Held {
            queue,
            messages: Vec::new(),
            next: 0,
        })
    }

    /// The next held message, taken out of the holding.
    pub(crate) fn next(&mut self) -> Option<Taken> {
        let message = *self.messages.get(self.next)?;
        self.next += 1;
        NonNull::new(message).map(Taken)
    }

    /// Takes up to `n` messages that librdkafka has already fetched, without waiting;
    /// false when there were none. Requires the holding to be empty.
    pub(crate) fn refill(&mut self, n: usize) -> bool {
        debug_assert!(self.next >= self.messages.len());
        self.messages.clear();
        self.next = 0;
        self.messages.resize(n, std::ptr::null_mut());
        // SAFETY: the queue is live; librdkafka writes at most `n` message pointers into
        // the buffer and returns how many (or -1 on error).
        let got = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.queue.as_ptr(),
                0,
                self.messages.as_mut_ptr(),
                n,
            )
        };
        self.messages.truncate(usize::try_from(got).unwrap_or(0));
        !self.messages.is_empty()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        while let Some(message) = self.next() {
            drop(message);
        }
        // SAFETY: the queue reference taken in `new`, released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) }
    }
}
