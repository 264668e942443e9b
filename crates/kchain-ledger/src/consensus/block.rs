//! Blocks: the header and its canonical encoding, the block hash, proof of work, the sealer's
//! signature, transaction leaves and the JSON form on the blocks topic.
//!
//! ```text
//! block hash = SHA-256( 0x0F "kchain:block:v1"
//!                       version u8 (1) || chain id (16) || height u64 || prev (32)
//!                       || timestamp i64 || items root (32) || tx count u32 || reward u64
//!                       || sealer key id (8)
//!                       || source count u32 || per source: partition u32, from u64, to u64
//!                       || difficulty u8 || nonce u64 )
//! tx leaf    = SHA-256(0x00 || tx body || signature (64) || partition u32 || offset u64)
//! items root = RFC 6962 root over the tx leaves, in block order
//! signature  = Ed25519 over (0x12 "kchain:blocksig:v1" || block hash)
//! proof      = the block hash has at least `difficulty` leading zero bits
//! ```
//!
//! The nonce comes last so that a miner hashes the rest once and only the last 8 bytes per
//! try. A leaf commits to the transaction's signature and to where the sealer read it, so no
//! byte of a stored block that means anything escapes its hash.

use std::borrow::Cow;
use std::io::Write;

use kchain_core::merkle::{self, Hash};
use kchain_core::{ChainId, Encoder, KeyId, Signature, WriterKey};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::consensus::encoding::{hex_lower, parse_hex, push_u64, DecodeError, Decoder};
use crate::consensus::genesis::Genesis;
use crate::consensus::tx::{Transaction, TxWire};

/// Domain tag of a block header.
pub const BLOCK_TAG: &str = "kchain:block:v1";
/// Domain tag of the message a sealer signs.
pub const BLOCK_SIG_TAG: &str = "kchain:blocksig:v1";
/// The block format version this code writes and validates.
pub const BLOCK_VERSION: u8 = 1;

/// The offsets of one transactions partition that a block consumed: `from..to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceRange {
    pub partition: u32,
    pub from: u64,
    pub to: u64,
}

/// Everything a block hash commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub version: u8,
    pub chain: ChainId,
    /// 0 for genesis.
    pub height: u64,
    /// Hash of the parent block (zeros for genesis).
    pub prev: Hash,
    pub timestamp_ms: i64,
    pub items_root: Hash,
    pub tx_count: u32,
    /// Paid to the sealer's address after the block's transactions.
    pub reward: u64,
    /// Key id of the sealer (zeros for genesis).
    pub sealer: KeyId,
    /// One range per transactions partition, in partition order.
    pub sources: Vec<SourceRange>,
    /// Leading zero bits the block hash must have (0: no proof of work).
    pub difficulty: u8,
    pub nonce: u64,
}

impl BlockHeader {
    /// Writes the encoding without the nonce (what a miner hashes once).
    fn encode_prefix(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::with_tag(out, BLOCK_TAG);
        e.u8(self.version)
            .fixed(&self.chain.0)
            .u64(self.height)
            .fixed(&self.prev)
            .i64(self.timestamp_ms)
            .fixed(&self.items_root)
            .u32(self.tx_count)
            .u64(self.reward)
            .fixed(&self.sealer.0)
            .u32(self.sources.len() as u32);
        for s in &self.sources {
            e.u32(s.partition).u64(s.from).u64(s.to);
        }
        e.u8(self.difficulty);
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + 20 * self.sources.len());
        self.encode_prefix(&mut out);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out
    }

    /// The block hash.
    pub fn hash(&self) -> Hash {
        kchain_core::sha256(&self.encode())
    }

    /// Parses a canonical encoding. Never panics; rejects trailing bytes.
    pub fn decode(data: &[u8]) -> Result<BlockHeader, DecodeError> {
        let mut d = Decoder::with_tag(data, BLOCK_TAG)?;
        let version = d.u8()?;
        let chain = ChainId(d.array()?);
        let height = d.u64()?;
        let prev = d.hash()?;
        let timestamp_ms = d.i64()?;
        let items_root = d.hash()?;
        let tx_count = d.u32()?;
        let reward = d.u64()?;
        let sealer = KeyId(d.array()?);
        let count = d.u32()?;
        let mut sources = Vec::new();
        for _ in 0..count {
            sources.push(SourceRange {
                partition: d.u32()?,
                from: d.u64()?,
                to: d.u64()?,
            });
        }
        let header = BlockHeader {
            version,
            chain,
            height,
            prev,
            timestamp_ms,
            items_root,
            tx_count,
            reward,
            sealer,
            sources,
            difficulty: d.u8()?,
            nonce: d.u64()?,
        };
        d.finish()?;
        Ok(header)
    }

    /// Finds the first nonce from `start` whose block hash meets the difficulty, and sets it.
    /// Expected work: 2^difficulty hashes.
    pub fn mine(&mut self, start: u64) {
        let mut prefix = Vec::new();
        self.encode_prefix(&mut prefix);
        let base = Sha256::new_with_prefix(&prefix);
        let mut nonce = start;
        loop {
            let h: Hash = base
                .clone()
                .chain_update(nonce.to_be_bytes())
                .finalize()
                .into();
            if leading_zero_bits(&h) >= u32::from(self.difficulty) {
                self.nonce = nonce;
                return;
            }
            nonce = nonce.wrapping_add(1);
        }
    }
}

/// Leading zero bits of a hash.
pub fn leading_zero_bits(h: &Hash) -> u32 {
    let mut n = 0;
    for b in h {
        if *b != 0 {
            return n + b.leading_zeros();
        }
        n += 8;
    }
    n
}

/// A transaction as sealed in a block, with the transactions-topic partition and offset the
/// sealer read it from.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedTx {
    pub tx: Transaction,
    pub partition: u32,
    pub offset: u64,
}

impl SealedTx {
    /// The RFC 6962 leaf hash of this transaction in its block.
    pub fn leaf_hash(&self) -> Hash {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(self.tx.encoding());
        h.update(self.tx.signature());
        h.update(self.partition.to_be_bytes());
        h.update(self.offset.to_be_bytes());
        h.finalize().into()
    }

    /// Writes the leaf's data (what [`SealedTx::leaf_hash`] hashes after its 0x00 prefix)
    /// into `out`, which is cleared first.
    fn leaf_data(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(self.tx.encoding());
        out.extend_from_slice(self.tx.signature());
        out.extend_from_slice(&self.partition.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
    }
}

/// The items root of a list of sealed transactions: `merkle::root` of their
/// [`SealedTx::leaf_hash`]es, computed the fast way, since a sealer computes it for every
/// block it builds and a node for every block of another sealer it reads: the leaves two
/// at a time ([`merkle::leaf_hash_x2`]) and the tree a level at a time, two nodes at once
/// ([`merkle::TreeBuilder::extend`]).
pub fn items_root(txs: &[SealedTx]) -> Hash {
    let mut leaves = Vec::with_capacity(txs.len());
    // A transfer's leaf data is 177 bytes; data records' grow these as needed.
    let (mut a, mut b) = (Vec::with_capacity(256), Vec::with_capacity(256));
    let mut pairs = txs.chunks_exact(2);
    for pair in &mut pairs {
        pair[0].leaf_data(&mut a);
        pair[1].leaf_data(&mut b);
        leaves.extend(merkle::leaf_hash_x2(&a, &b));
    }
    leaves.extend(pairs.remainder().iter().map(SealedTx::leaf_hash));
    let mut tree = merkle::TreeBuilder::new();
    tree.extend(&leaves);
    tree.root()
}

/// A block: header, sealer signature (none for genesis), transactions, and for genesis the
/// ledger's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub header: BlockHeader,
    pub signature: Option<Signature>,
    pub txs: Vec<SealedTx>,
    pub genesis: Option<Genesis>,
}

impl Block {
    /// Completes `header` for `txs` (items root, count, sealer), solves its proof of work and
    /// signs it with `key`.
    pub fn seal(mut header: BlockHeader, txs: Vec<SealedTx>, key: &WriterKey) -> Block {
        header.items_root = items_root(&txs);
        header.tx_count = txs.len() as u32;
        header.sealer = key.id();
        if header.difficulty > 0 {
            header.mine(header.nonce);
        }
        let signature = Some(key.sign_tagged(BLOCK_SIG_TAG, &header.hash()));
        Block {
            header,
            signature,
            txs,
            genesis: None,
        }
    }

    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The JSON form on the blocks topic (one line).
    pub fn to_json(&self) -> Vec<u8> {
        let h = &self.header;
        // About what it takes (a transfer's entry is about 420 bytes): one allocation, no
        // copy of a nearly whole block into a twice-as-large one.
        let size: usize = self.txs.iter().map(|s| 448 + s.tx.payload_len()).sum();
        let mut out = Vec::with_capacity(512 + size);
        let _ = write!(
            out,
            r#"{{"version":{},"chain":"{}","height":{},"prev":"{}","timestamp":{},"items_root":"{}","tx_count":{},"reward":{},"sealer":"{}","sources":["#,
            h.version,
            hex_lower(&h.chain.0),
            h.height,
            hex_lower(&h.prev),
            h.timestamp_ms,
            hex_lower(&h.items_root),
            h.tx_count,
            h.reward,
            h.sealer,
        );
        for (i, s) in h.sources.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(
                out,
                r#"{sep}{{"partition":{},"from":{},"to":{}}}"#,
                s.partition, s.from, s.to
            );
        }
        let _ = write!(
            out,
            r#"],"difficulty":{},"nonce":{},"hash":"{}""#,
            h.difficulty,
            h.nonce,
            hex_lower(&self.hash())
        );
        if let Some(sig) = &self.signature {
            let _ = write!(out, r#","signature":"{}""#, sig.to_hex());
        }
        if let Some(g) = &self.genesis {
            out.extend_from_slice(br#","genesis":"#);
            serde_json::to_writer(&mut out, &g.to_json_value()).expect("genesis serializes");
        }
        out.extend_from_slice(br#","transactions":["#);
        for (i, s) in self.txs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"partition":"#);
            push_u64(&mut out, s.partition.into());
            out.extend_from_slice(br#","offset":"#);
            push_u64(&mut out, s.offset);
            out.extend_from_slice(br#","tx":"#);
            s.tx.write_json(&mut out);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// A record of the blocks topic parsed as far as it goes, for judging it.
#[derive(Clone, Debug)]
pub struct StoredBlock {
    pub header: BlockHeader,
    /// The hash recomputed from the header.
    pub hash: Hash,
    /// The `hash` field of the JSON, if any (informational; compared with `hash`).
    pub stated_hash: Option<String>,
    pub signature: Option<Signature>,
    /// The transactions, or why they do not parse.
    pub body: Result<Vec<SealedTx>, String>,
    /// The `genesis` field, parsed, if present.
    pub genesis: Option<Result<Genesis, String>>,
}

impl StoredBlock {
    /// What [`StoredBlock::parse`] gives for the JSON of `block` (without parsing it).
    pub fn of(block: &Block) -> StoredBlock {
        let hash = block.hash();
        StoredBlock {
            header: block.header.clone(),
            hash,
            stated_hash: Some(hex_lower(&hash)),
            signature: block.signature,
            body: Ok(block.txs.clone()),
            genesis: block.genesis.clone().map(Ok),
        }
    }

    /// [`StoredBlock::of`] taking the block (and its hash, already computed), without
    /// copying its transactions.
    pub fn from_block(block: Block, hash: Hash) -> StoredBlock {
        StoredBlock {
            header: block.header,
            hash,
            stated_hash: Some(hex_lower(&hash)),
            signature: block.signature,
            body: Ok(block.txs),
            genesis: block.genesis.map(Ok),
        }
    }

    /// Parses a record value. `Err` when not even the header parses (the record is not a
    /// block); a header that parses with a body that does not is returned with `body: Err`.
    pub fn parse(json: &[u8]) -> Result<StoredBlock, String> {
        match serde_json::from_slice::<BlockWire<Vec<TxEntryWire>>>(json) {
            Ok(w) => {
                let (header, transactions) = w.into_parts();
                let body = transactions
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| {
                        Transaction::from_wire(e.tx)
                            .map(|tx| SealedTx {
                                tx,
                                partition: e.partition,
                                offset: e.offset,
                            })
                            .map_err(|err| format!("transaction {i}: {err}"))
                    })
                    .collect();
                Self::from_header(header, body)
            }
            Err(full) => {
                let w: BlockWire<IgnoredAny> =
                    serde_json::from_slice(json).map_err(|e| e.to_string())?;
                Self::from_header(w.into_parts().0, Err(full.to_string()))
            }
        }
    }

    fn from_header(
        w: HeaderWire<'_>,
        body: Result<Vec<SealedTx>, String>,
    ) -> Result<StoredBlock, String> {
        let sources = w.sources;
        let header = BlockHeader {
            version: w.version,
            chain: ChainId(parse_hex(&w.chain).ok_or("chain: expected 32 hex digits")?),
            height: w.height,
            prev: parse_hex(&w.prev).ok_or("prev: expected 64 hex digits")?,
            timestamp_ms: w.timestamp,
            items_root: parse_hex(&w.items_root).ok_or("items_root: expected 64 hex digits")?,
            tx_count: w.tx_count,
            reward: w.reward,
            sealer: KeyId(parse_hex(&w.sealer).ok_or("sealer: expected 16 hex digits")?),
            sources,
            difficulty: w.difficulty,
            nonce: w.nonce,
        };
        let signature = match &w.signature {
            None => None,
            Some(s) => Some(Signature(
                parse_hex(s).ok_or("signature: expected 128 hex digits")?,
            )),
        };
        let genesis = w.genesis.as_ref().map(Genesis::from_json_value);
        Ok(StoredBlock {
            hash: header.hash(),
            header,
            stated_hash: w.hash.map(Cow::into_owned),
            signature,
            body,
            genesis,
        })
    }

    /// Whether the JSON `hash` field, if present, names the recomputed hash.
    pub fn stated_hash_matches(&self) -> bool {
        match &self.stated_hash {
            None => true,
            Some(s) => parse_hex::<32>(s) == Some(self.hash),
        }
    }
}

/// The JSON form of a block; `T` is the transactions, or `IgnoredAny` to read the header
/// alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockWire<'a, T> {
    version: u8,
    #[serde(borrow)]
    chain: Cow<'a, str>,
    height: u64,
    #[serde(borrow)]
    prev: Cow<'a, str>,
    timestamp: i64,
    #[serde(borrow)]
    items_root: Cow<'a, str>,
    tx_count: u32,
    reward: u64,
    #[serde(borrow)]
    sealer: Cow<'a, str>,
    sources: Vec<SourceRange>,
    difficulty: u8,
    nonce: u64,
    #[serde(default, borrow)]
    hash: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(default)]
    genesis: Option<Value>,
    transactions: T,
}

impl<'a, T> BlockWire<'a, T> {
    fn into_parts(self) -> (HeaderWire<'a>, T) {
        (
            HeaderWire {
                version: self.version,
                chain: self.chain,
                height: self.height,
                prev: self.prev,
                timestamp: self.timestamp,
                items_root: self.items_root,
                tx_count: self.tx_count,
                reward: self.reward,
                sealer: self.sealer,
                sources: self.sources,
                difficulty: self.difficulty,
                nonce: self.nonce,
                hash: self.hash,
                signature: self.signature,
                genesis: self.genesis,
            },
            self.transactions,
        )
    }
}

struct HeaderWire<'a> {
    version: u8,
    chain: Cow<'a, str>,
    height: u64,
    prev: Cow<'a, str>,
    timestamp: i64,
    items_root: Cow<'a, str>,
    tx_count: u32,
    reward: u64,
    sealer: Cow<'a, str>,
    sources: Vec<SourceRange>,
    difficulty: u8,
    nonce: u64,
    hash: Option<Cow<'a, str>>,
    signature: Option<Cow<'a, str>>,
    genesis: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxEntryWire<'a> {
    partition: u32,
    offset: u64,
    #[serde(borrow)]
    tx: TxWire<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn header() -> BlockHeader {
        BlockHeader {
            version: BLOCK_VERSION,
            chain: ChainId([3; 16]),
            height: 7,
            prev: [9; 32],
            timestamp_ms: 1_700_000_000_000,
            items_root: [0; 32],
            tx_count: 0,
            reward: 1,
            sealer: KeyId([0; 8]),
            sources: vec![
                SourceRange {
                    partition: 0,
                    from: 0,
                    to: 4,
                },
                SourceRange {
                    partition: 1,
                    from: 2,
                    to: 2,
                },
            ],
            difficulty: 0,
            nonce: 0,
        }
    }

    #[test]
    fn proof_of_work_meets_the_difficulty() {
        let mut h = header();
        h.difficulty = 12;
        h.mine(0);
        assert!(leading_zero_bits(&h.hash()) >= 12);
        assert_eq!(BlockHeader::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn json_round_trips() {
        let key = WriterKey::from_seed("s", [1; 32]);
        let tx = Transaction::transfer(&key, ChainId([3; 16]), Default::default(), 3, 1);
        let b = Block::seal(
            header(),
            vec![SealedTx {
                tx,
                partition: 0,
                offset: 2,
            }],
            &key,
        );
        let s = StoredBlock::parse(&b.to_json()).unwrap();
        assert_eq!(s.header, b.header);
        assert_eq!(s.hash, b.hash());
        assert!(s.stated_hash_matches());
        assert_eq!(s.body.unwrap(), b.txs);
        assert_eq!(s.signature, b.signature);
    }

    #[test]
    fn a_body_that_does_not_parse_keeps_its_header() {
        let key = WriterKey::from_seed("s", [1; 32]);
        let b = Block::seal(header(), vec![], &key);
        let text = String::from_utf8(b.to_json()).unwrap();
        let broken = text.replace(r#""transactions":[]"#, r#""transactions":[{"x":1}]"#);
        let s = StoredBlock::parse(broken.as_bytes()).unwrap();
        assert!(s.body.is_err());
        assert_eq!(s.hash, b.hash());
        assert!(StoredBlock::parse(b"{\"version\":1}").is_err());
    }

    /// The items root is the RFC 6962 root of the leaf hashes, one by one
    /// ([`merkle::root`] of [`SealedTx::leaf_hash`], the reference), for every count up to
    /// past a few powers of two, odd and even, with leaves of different lengths (transfers
    /// and data records, one of them several SHA-256 blocks long) in every position.
    #[test]
    fn the_items_root_is_the_root_of_the_leaf_hashes() {
        let key = WriterKey::from_seed("s", [1; 32]);
        let chain = ChainId([3; 16]);
        let txs: Vec<SealedTx> = (0..70u64)
            .map(|i| SealedTx {
                tx: match i % 3 {
                    0 => Transaction::transfer(&key, chain, Default::default(), i + 1, i),
                    1 => Transaction::data(&key, chain, serde_json::json!({ "i": i })),
                    _ => Transaction::data(
                        &key,
                        chain,
                        serde_json::json!("x".repeat(i as usize * 7)),
                    ),
                },
                partition: (i % 4) as u32,
                offset: i * 1000,
            })
            .collect();
        for n in 0..=txs.len() {
            for block in [&txs[..n], &txs[txs.len() - n..]] {
                let leaves: Vec<Hash> = block.iter().map(SealedTx::leaf_hash).collect();
                assert_eq!(items_root(block), merkle::root(&leaves), "{n} transactions");
            }
        }
    }
}
