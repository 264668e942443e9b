//! The verifying reader: yields a partition's records only once the chain has verified
//! them, and stops at the first finding.
//!
//! A record is verified when it links back to genesis and a valid writer signature covers it
//! (the signature at the end of its batch). The reader therefore holds back at most one
//! batch of records, and judges each record with the next two in view.
//!
//! Each verified record also says what became of its value: not encrypted, decrypted with a
//! keyring key ([`VerifyingReader::with_keyring`]), or unreadable (key shredded, key missing,
//! or a ciphertext that does not authenticate). Without a keyring, every encrypted record
//! reads as key missing.

use std::collections::VecDeque;

use kchain_core::{
    decrypt_record, ChainContext, ChainId, ChainVerifier, Decryption, Finding, Hash, Item, Keyring,
    Observation, RecordPlace, Summary, Trust,
};
use kchain_log::{Log, StoredRecord};

use crate::error::TopicError;
use crate::mapping::item_of;
use crate::verify::{expectations, observe_record, Chunks};
use crate::writer::header_pairs;

static NO_KEYS: Keyring = Keyring::EMPTY;

/// A record that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRecord {
    pub offset: u64,
    pub height: u64,
    /// The record's entry hash.
    pub hash: Hash,
    /// The application's record as stored (chain headers removed): for an encrypted record,
    /// the value is the ciphertext and the `kchain.enc` header is among the headers.
    pub item: Item,
    /// What became of the value: [`Decryption::Plain`] when it is not encrypted, else the
    /// plaintext or why there is none.
    pub decryption: Decryption,
}

impl VerifiedRecord {
    /// The application's value, decrypted when it was encrypted: `Ok(None)` for a record
    /// without a value; `Err` with the outcome when an encrypted value cannot be read.
    pub fn value(&self) -> Result<Option<&[u8]>, &Decryption> {
        match &self.decryption {
            Decryption::Plain => Ok(self.item.value.as_deref()),
            Decryption::Decrypted { value, .. } => Ok(Some(value)),
            other => Err(other),
        }
    }
}

/// Reads one chained partition, verifying from genesis, and yields verified records from a
/// chosen offset up to the end offset the partition had when the reader opened.
pub struct VerifyingReader<'t> {
    chunks: Chunks,
    verifier: Option<ChainVerifier>,
    topic: String,
    partition: u32,
    chain: ChainId,
    trust: &'t Trust,
    keyring: Option<&'t Keyring>,
    from: u64,
    held: VecDeque<(StoredRecord, u64, Hash)>,
    summary: Option<Summary>,
    scratch: Vec<u8>,
}

impl<'t> VerifyingReader<'t> {
    /// Opens a reader that verifies `topic`/`partition` from its start and yields records at
    /// offsets `>= from`.
    pub fn open(
        log: &dyn Log,
        topic: &str,
        partition: u32,
        trust: &'t Trust,
        from: u64,
    ) -> Result<Self, TopicError> {
        let start = log.start_offset(topic, partition)?;
        let end = log.end_offset(topic, partition)?;
        let reader = log.reader(topic, partition, start)?;
        Ok(VerifyingReader {
            chunks: Chunks::new(reader, end, 4096),
            verifier: Some(ChainVerifier::new(expectations(trust, topic, partition))),
            topic: topic.to_owned(),
            partition,
            chain: ChainId::for_partition(topic, partition),
            trust,
            keyring: None,
            from,
            held: VecDeque::new(),
            summary: None,
            scratch: Vec::new(),
        })
    }

    /// This reader, decrypting encrypted values with `keyring`'s keys.
    pub fn with_keyring(mut self, keyring: &'t Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The outcome once the reader has returned `None`.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// The finding that stopped the reader, if any.
    pub fn finding(&self) -> Option<&Finding> {
        self.summary.as_ref().and_then(|s| s.finding.as_ref())
    }

    fn verified_through(&self) -> Option<u64> {
        match (&self.summary, &self.verifier) {
            (Some(s), _) => s.tip.map(|t| t.offset),
            (None, Some(v)) => v.verified_through(),
            (None, None) => None,
        }
    }

    fn read_more(&mut self) -> Result<(), TopicError> {
        let Some(verifier) = self.verifier.as_mut() else {
            return Ok(());
        };
        match self.chunks.next_chunk()? {
            Some(recs) => {
                let ctx = ChainContext {
                    topic: &self.topic,
                    chain: self.chain,
                    trust: self.trust,
                };
                for r in recs {
                    let obs = observe_record(&ctx, &r, &mut self.scratch);
                    let (height, hash) = match &obs {
                        Observation::Entry(o) => (o.height, o.hash),
                        Observation::Malformed { .. } => (0, [0; 32]),
                    };
                    verifier.push(obs);
                    self.held.push_back((r, height, hash));
                }
                if verifier.finding().is_some() {
                    self.finish();
                }
            }
            None => self.finish(),
        }
        Ok(())
    }

    fn finish(&mut self) {
        if let Some(v) = self.verifier.take() {
            self.summary = Some(v.finish());
        }
    }
}

impl Iterator for VerifyingReader<'_> {
    type Item = Result<VerifiedRecord, TopicError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let through = self.verified_through();
            if let Some((r, _, _)) = self.held.front() {
                if through.is_some_and(|t| r.offset <= t) {
                    let (r, height, hash) = self.held.pop_front().expect("front exists");
                    if r.offset < self.from {
                        continue;
                    }
                    let place = RecordPlace {
                        chain: self.chain,
                        partition: self.partition,
                        height,
                    };
                    let rec = &r.record;
                    let decryption = decrypt_record(
                        self.keyring.unwrap_or(&NO_KEYS),
                        &place,
                        rec.value.as_deref(),
                        header_pairs(&rec.headers),
                    );
                    return Some(Ok(VerifiedRecord {
                        offset: r.offset,
                        height,
                        hash,
                        item: item_of(rec),
                        decryption,
                    }));
                }
            }
            if self.summary.is_some() {
                self.held.clear();
                return None;
            }
            if let Err(e) = self.read_more() {
                self.verifier = None;
                self.summary = None;
                self.held.clear();
                return Some(Err(e));
            }
        }
    }
}
