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

use std::ffi::{c_char, c_int, c_void, CStr};
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
    ///
    /// The headers are read straight from the record's header block in the fetch buffer
    /// ([`Fetched::unparsed_headers`]); librdkafka's own accessor, which parses the block
    /// into a list allocated per message and a copy of every header (eight allocations for
    /// a chained record, and as many frees), is the fallback.
    pub(crate) fn for_each_header(&self, f: &mut dyn FnMut(&str, &[u8])) {
        match self.unparsed_headers() {
            Some(block) => for_each_in_block(block, f),
            None => self.for_each_parsed_header(f),
        }
    }

    /// The record's header block as it came from the broker, not yet parsed by librdkafka
    /// (`rd_kafka_msg_t::rkm_u.consumer.binhdrs`, which librdkafka offers no accessor for);
    /// `None` when the message does not look exactly as [`MsgPrefix`] expects, and the
    /// caller must use librdkafka's accessor.
    ///
    /// What is checked before the block is trusted, each cheap: the fields of the prefix
    /// that the public API also returns (timestamp and its type) match it, the message is a
    /// consumed one (not a producer's) whose headers librdkafka has not parsed, its status is
    /// the one librdkafka gives every fetched message, and the block starts right where the
    /// value ends (the v2 record layout: value, then headers, in one fetch buffer) or is
    /// empty. A layout that moved in another librdkafka version fails these checks and
    /// falls back; the unit test below fails too.
    pub(crate) fn unparsed_headers(&self) -> Option<&'m [u8]> {
        let message = self.0;
        if message.err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return None;
        }
        let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        let ptr = std::ptr::from_ref(message).cast_mut();
        // SAFETY: a live message; librdkafka only reads it and writes `kind`.
        let timestamp = unsafe { rdsys::rd_kafka_message_timestamp(ptr, &mut kind) };
        let prefix = std::ptr::from_ref(message).cast::<MsgPrefix>();
        // SAFETY: every message librdkafka hands out is the first field of its
        // `rd_kafka_msg_t` (librdkafka's own accessors cast it so), which is at least as
        // large as `MsgPrefix`; the fields are read as plain integers and pointers, so any
        // bytes are valid values, and the message is not written while it is lent.
        let prefix = unsafe { prefix.read() };
        let looks_fetched = prefix.flags & MSG_F_PRODUCER == 0
            && prefix.headers.is_null()
            && prefix.status == MSG_STATUS_PERSISTED
            && prefix.tstype == kind as c_int
            && prefix.timestamp == timestamp;
        if !looks_fetched || prefix.binhdrs_len < 0 {
            return None;
        }
        if prefix.binhdrs_len == 0 {
            return Some(&[]);
        }
        let value_end = message.payload.cast::<u8>().wrapping_add(message.len);
        if message.payload.is_null() || prefix.binhdrs_data.cast::<u8>() != value_end {
            return None;
        }
        // SAFETY: the block librdkafka read within the record's bounds when it parsed the
        // fetch response; it lives in the fetch buffer, which the message keeps alive.
        unsafe { bytes(prefix.binhdrs_data, prefix.binhdrs_len as usize) }
    }

    /// [`Fetched::for_each_header`] through librdkafka's accessor (which parses and copies
    /// the headers into a list owned by the message).
    fn for_each_parsed_header(&self, f: &mut dyn FnMut(&str, &[u8])) {
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

/// The start of librdkafka's `rd_kafka_msg_t` (`rdkafka_msg.h` of librdkafka 2.12.1, the
/// version rdkafka-sys bundles and Cargo.lock pins), up to the unparsed header block of a
/// consumed message: the public message, then librdkafka's own fields, then (in the
/// consumer half of a union) the block's length and address.
#[repr(C)]
struct MsgPrefix {
    message: rdsys::rd_kafka_message_t,
    /// `rkm_link`, a TAILQ entry.
    link: [*mut c_void; 2],
    flags: c_int,
    /// `rkm_tstype`, an `rd_kafka_timestamp_type_t`, read as the integer it is stored as.
    tstype: c_int,
    timestamp: i64,
    /// `rkm_headers`: the parsed list, null until librdkafka's accessor parses the block.
    headers: *mut c_void,
    /// `rkm_status`, an `rd_kafka_msg_status_t`.
    status: c_int,
    broker_id: i32,
    /// `rkm_u.consumer.binhdrs`, an `rd_kafkap_bytes_t`: length, then address.
    binhdrs_len: i32,
    binhdrs_data: *const c_void,
}

/// `RD_KAFKA_MSG_F_PRODUCER` (`rdkafka_msg.h`): set on messages being produced.
const MSG_F_PRODUCER: c_int = 0x40000;

/// `RD_KAFKA_MSG_STATUS_PERSISTED`, the status librdkafka gives every fetched message.
const MSG_STATUS_PERSISTED: c_int = 2;

/// Calls `f` with each header of `block`, a record's header block in Kafka's v2 record
/// format, read as librdkafka reads it: all headers or none.
///
/// ```text
/// count (zigzag varint; 0 or less: no headers)
/// per header: name length (varint), name, value length (varint; -1: null), value
/// ```
///
/// A block that does not parse, or counts more than 100,000 headers, gives none at all,
/// as librdkafka's accessor does (bytes after the last header are ignored, as there).
fn for_each_in_block(block: &[u8], f: &mut dyn FnMut(&str, &[u8])) {
    if walk_block(block, &mut |_, _| {}).is_none() {
        return;
    }
    walk_block(block, &mut |name, value| {
        f(std::str::from_utf8(name).unwrap_or(NAME_NOT_UTF8), value)
    });
}

/// Walks the headers of `block` (see [`for_each_in_block`]), handing each name's raw bytes
/// and value to `f`; `None` at the first thing that does not parse.
fn walk_block(mut block: &[u8], f: &mut dyn FnMut(&[u8], &[u8])) -> Option<()> {
    let count = varint(&mut block)?;
    if count <= 0 {
        return Some(());
    }
    if count > 100_000 {
        return None;
    }
    for _ in 0..count {
        let name_len = usize::try_from(varint(&mut block)?).ok()?;
        let name = take(&mut block, name_len)?;
        let value = match varint(&mut block)? {
            -1 => &[][..],
            n => take(&mut block, usize::try_from(n).ok()?)?,
        };
        f(name, value);
    }
    Some(())
}

/// Reads a zigzag varint (at most 10 bytes) off the front of `b`.
fn varint(b: &mut &[u8]) -> Option<i64> {
    let mut n = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *b = &b[i + 1..];
            return Some((n >> 1) as i64 ^ -((n & 1) as i64));
        }
    }
    None
}

/// The first `n` bytes of `b`, taken off it.
fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if n > b.len() {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A header block as a v2 record stores it: `count`, then each (name, value), a `None`
    /// value written as length -1.
    fn block(count: i64, headers: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
        fn put(out: &mut Vec<u8>, n: i64) {
            let mut z = ((n << 1) ^ (n >> 63)) as u64;
            while z >= 0x80 {
                out.push((z as u8) | 0x80);
                z >>= 7;
            }
            out.push(z as u8);
        }
        let mut out = Vec::new();
        put(&mut out, count);
        for (name, value) in headers {
            put(&mut out, name.len() as i64);
            out.extend_from_slice(name);
            match value {
                Some(v) => {
                    put(&mut out, v.len() as i64);
                    out.extend_from_slice(v);
                }
                None => put(&mut out, -1),
            }
        }
        out
    }

    /// Headers as owned (name, value) pairs.
    type Pairs = Vec<(String, Vec<u8>)>;

    fn headers_of(block: &[u8]) -> Pairs {
        let mut out = Vec::new();
        for_each_in_block(block, &mut |n, v| out.push((n.to_owned(), v.to_vec())));
        out
    }

    fn owned(pairs: &[(&str, &[u8])]) -> Pairs {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect()
    }

    /// Each case: a description, the block, and the headers librdkafka's accessor gives
    /// for it (all or none).
    #[test]
    fn header_blocks_read_as_librdkafka_reads_them() {
        let long = vec![7u8; 300];
        let cases: Vec<(&str, Vec<u8>, Pairs)> = vec![
            ("no block", Vec::new(), Vec::new()),
            ("a count of zero", block(0, &[]), Vec::new()),
            ("a negative count", block(-3, &[]), Vec::new()),
            (
                "headers in order, duplicates kept, an empty name and value",
                block(
                    4,
                    &[
                        (b"kchain.v", Some(b"1")),
                        (b"dup", Some(b"a")),
                        (b"dup", Some(b"b")),
                        (b"", Some(b"")),
                    ],
                ),
                owned(&[("kchain.v", b"1"), ("dup", b"a"), ("dup", b"b"), ("", b"")]),
            ),
            (
                "a null value reads as empty; a long one (two-byte length) whole",
                block(2, &[(b"n", None), (b"l", Some(&long))]),
                owned(&[("n", b""), ("l", &long)]),
            ),
            (
                "a name that is not UTF-8 is the reserved name",
                block(1, &[(b"\xffname", Some(b"x"))]),
                owned(&[(NAME_NOT_UTF8, b"x")]),
            ),
            (
                "a name with a NUL is kept whole, not cut at the NUL",
                block(1, &[(b"kchain.v\0x", Some(b"1"))]),
                owned(&[("kchain.v\0x", b"1")]),
            ),
            (
                "bytes after the last counted header are ignored",
                [block(1, &[(b"a", Some(b"1"))]), vec![9, 9]].concat(),
                owned(&[("a", b"1")]),
            ),
            (
                "more headers counted than present: none",
                block(2, &[(b"a", Some(b"1"))]),
                Vec::new(),
            ),
            (
                "a value cut short: none",
                block(1, &[(b"a", Some(b"12345"))])[..6].to_vec(),
                Vec::new(),
            ),
            (
                "a negative name length: none",
                [block(1, &[]), vec![1]].concat(),
                Vec::new(),
            ),
            (
                "a value length below -1: none",
                [block(1, &[]), vec![4, b'a', b'b', 3]].concat(),
                Vec::new(),
            ),
            (
                "more than 100,000 headers counted: none",
                block(100_001, &[]),
                Vec::new(),
            ),
            ("a varint never ending: none", vec![0xff; 12], Vec::new()),
        ];
        for (what, block, want) in cases {
            assert_eq!(headers_of(&block), want, "{what}");
        }
    }

    /// Against a broker: every fetched message's header block is found where `MsgPrefix`
    /// says (a librdkafka whose layout moved fails here, not silently in the field), and
    /// reads as librdkafka's own accessor reads it.
    #[test]
    fn fetched_headers_are_read_from_the_block_as_librdkafka_reads_them() {
        use crate::api::{Header, Log, Record, TopicConfig};
        use crate::kafka::{KafkaLog, KafkaOptions};
        use rdkafka::{Offset, TopicPartitionList};

        let brokers = &kchain_testkit::Broker::shared().brokers;
        let log = KafkaLog::connect(brokers, KafkaOptions::default()).unwrap();
        let topic = kchain_testkit::unique_name("fetched-headers");
        log.create_topic(&topic, &TopicConfig::default()).unwrap();
        let mut records: Vec<Record> = (0..50u8)
            .map(|i| Record {
                key: (i % 3 == 0).then(|| vec![i]),
                value: (i % 7 != 5).then(|| vec![b'v'; usize::from(i) * 13]),
                headers: (0..i % 6)
                    .map(|h| Header::new(format!("h{h}"), vec![i; usize::from(h) * 40]))
                    .collect(),
                timestamp_ms: 1_700_000_000_000 + i64::from(i),
            })
            .collect();
        log.appender(&topic, 0).unwrap().append(&records).unwrap();
        // Another producer may write a header name with a NUL byte (kchain's appender
        // refuses one): it is read whole, where librdkafka's accessor (a C string) cut it at
        // the NUL, so that a name rewritten from `kchain.v` to `kchain.v\0x` read, and was
        // hashed, as the original.
        let nul = records.len() as i64;
        records.push(Record {
            key: None,
            value: Some(b"v".to_vec()),
            headers: vec![Header::new("kchain.v\0x", b"1".to_vec())],
            timestamp_ms: 1_700_000_000_000,
        });
        produce_raw(brokers, &topic, &records[nul as usize]);

        let consumer: BaseConsumer = KafkaOptions::default().consumer(brokers).create().unwrap();
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let mut seen = 0;
        let mut from_block = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while seen < records.len() {
            assert!(std::time::Instant::now() < deadline, "{seen} read");
            let Some(message) = consumer.poll(std::time::Duration::from_millis(200)) else {
                continue;
            };
            let message = message.unwrap();
            let fetched = Fetched::of(&message);
            let want = &records[fetched.offset() as usize];
            let block = fetched.unparsed_headers();
            // Without a value (or with an empty one, which librdkafka points at a static
            // empty string) there is no end of value to find the block at: librdkafka's
            // accessor reads it then.
            if want.value.as_ref().is_some_and(|v| !v.is_empty()) {
                assert!(block.is_some(), "offset {}", fetched.offset());
                from_block += 1;
            }
            let mut fast = Vec::new();
            fetched.for_each_header(&mut |n, v| fast.push(Header::new(n, v)));
            let mut parsed = Vec::new();
            fetched.for_each_parsed_header(&mut |n, v| parsed.push(Header::new(n, v)));
            assert_eq!(fast, want.headers, "offset {}", fetched.offset());
            if fetched.offset() == nul {
                assert_eq!(parsed, vec![Header::new("kchain.v", b"1".to_vec())]);
            } else {
                assert_eq!(fast, parsed, "offset {}", fetched.offset());
            }
            seen += 1;
        }
        assert!(from_block >= 41, "{from_block} of {seen} from the block");
    }

    /// Writes `record` to partition 0 of `topic` with a plain librdkafka producer, which
    /// takes any header name.
    fn produce_raw(brokers: &str, topic: &str, record: &crate::api::Record) {
        use rdkafka::config::ClientConfig;
        use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .unwrap();
        let headers = record.headers.iter().fold(OwnedHeaders::new(), |hs, h| {
            hs.insert(KafkaHeader {
                key: &h.name,
                value: Some(&h.value),
            })
        });
        let mut out = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(0)
            .timestamp(record.timestamp_ms)
            .headers(headers);
        if let Some(value) = &record.value {
            out = out.payload(value);
        }
        producer.send(out).map_err(|(e, _)| e).unwrap();
        producer.flush(std::time::Duration::from_secs(30)).unwrap();
    }
}
