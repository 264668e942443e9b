//! Transactions: addresses, the canonical encoding, transaction ids, signatures and the JSON
//! form on the transactions topic.
//!
//! ```text
//! address   = first 20 bytes of SHA-256(0x0E "kchain:addr:v1" || 32-byte public key)
//! body      = 0x0C "kchain:tx:v1" || kind u8 || chain id (16) || public key (32) || fields
//!               kind 1 transfer: to (20) || amount u64 || nonce u64
//!               kind 2 data:     u32len(payload as canonical JSON)
//! tx id     = SHA-256(body)
//! signature = Ed25519 over (0x0F "kchain:txsig:v1" || tx id)
//! ```
//!
//! The transaction carries its sender's public key; the sender's address is derived from it,
//! and the `from` / `submitter` field of the JSON must equal that address. The chain id in the
//! body keeps a transaction signed for one ledger from being replayed on another.

use std::borrow::Cow;
use std::fmt;

use kchain_core::{sha256, ChainId, Encoder, Hash, WriterKey};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::consensus::encoding::{
    canonical_json, hex_lower, parse_hex, push_hex, push_u64, DecodeError, Decoder,
};
use crate::consensus::transfer_json;

/// Domain tag of a transaction body.
pub const TX_TAG: &str = "kchain:tx:v1";
/// Domain tag of the message a transaction signature signs.
pub const TX_SIG_TAG: &str = "kchain:txsig:v1";
/// Domain tag of an address.
pub const ADDRESS_TAG: &str = "kchain:addr:v1";

const KIND_TRANSFER: u8 = 1;
const KIND_DATA: u8 = 2;

/// The id of a transaction: SHA-256 of its body.
pub type TxId = Hash;

/// An account address: 20 bytes derived from an Ed25519 public key, written as 40 lower-case
/// hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address of a public key.
    pub fn of_key(public_key: &[u8; 32]) -> Address {
        // The encoding `Encoder::with_tag(ADDRESS_TAG).fixed(public_key)` writes, built on
        // the stack: a sealer derives the address of every transaction it parses.
        const TAG_END: usize = 1 + ADDRESS_TAG.len();
        let mut buf = [0u8; TAG_END + 32];
        buf[0] = ADDRESS_TAG.len() as u8;
        buf[1..TAG_END].copy_from_slice(ADDRESS_TAG.as_bytes());
        buf[TAG_END..].copy_from_slice(public_key);
        Address(sha256(&buf)[..20].try_into().unwrap())
    }

    /// The address of a wallet key.
    pub fn of(key: &WriterKey) -> Address {
        Address::of_key(key.public().as_bytes())
    }

    /// Parses 40 hex digits.
    pub fn from_hex(s: &str) -> Option<Address> {
        parse_hex(s.trim()).map(Address)
    }

    pub fn to_hex(&self) -> String {
        hex_lower(&self.0)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq)]
pub enum TxBody {
    /// Moves `amount` from the sender to `to`. `nonce` is one more than the sender's last.
    Transfer {
        to: Address,
        amount: u64,
        nonce: u64,
    },
    /// Records an opaque JSON payload (a shipment scan, a lab result) under the sender.
    Data { payload: Value },
}

/// A signed transaction. Built by [`Transaction::transfer`] / [`Transaction::data`] (which
/// sign) or parsed; its id, body encoding and sender address are computed once.
#[derive(Clone, Debug, PartialEq)]
pub struct Transaction {
    chain: ChainId,
    public_key: [u8; 32],
    body: TxBody,
    signature: [u8; 64],
    encoding: Encoding,
    id: TxId,
    sender: Address,
}

/// Bytes of JSON a transaction takes beyond its payload, at most: a transfer's is at most 442
/// (amount and nonce of 20 digits each), a data record's about 350 with its payload.
const JSON_ROOM: usize = 512;

/// Bytes of a transfer's body encoding: the tag, kind, chain, public key, to, amount and
/// nonce.
const TRANSFER_ENCODED_LEN: usize = 1 + TX_TAG.len() + 1 + 16 + 32 + 20 + 8 + 8;

/// A transaction's canonical body encoding. A transfer's has a fixed length and is kept in
/// the transaction itself: a sealer parses every transaction it reads and copies each into
/// its block, and a heap allocation for each (freed on another thread than the one that
/// made it) cost more than the copy.
#[derive(Clone, Debug, PartialEq)]
enum Encoding {
    Transfer([u8; TRANSFER_ENCODED_LEN]),
    Data(Vec<u8>),
}

impl Encoding {
    fn as_slice(&self) -> &[u8] {
        match self {
            Encoding::Transfer(bytes) => bytes,
            Encoding::Data(bytes) => bytes,
        }
    }
}

impl Transaction {
    /// A transfer signed with `key`.
    pub fn transfer(
        key: &WriterKey,
        chain: ChainId,
        to: Address,
        amount: u64,
        nonce: u64,
    ) -> Transaction {
        Self::signed(key, chain, TxBody::Transfer { to, amount, nonce })
    }

    /// A data record signed with `key`.
    pub fn data(key: &WriterKey, chain: ChainId, payload: Value) -> Transaction {
        Self::signed(key, chain, TxBody::Data { payload })
    }

    fn signed(key: &WriterKey, chain: ChainId, body: TxBody) -> Transaction {
        let mut tx = Self::from_parts(chain, *key.public().as_bytes(), body, [0; 64]);
        tx.signature = key.sign_tagged(TX_SIG_TAG, &tx.id).0;
        tx
    }

    /// A transaction from its fields; the signature is not checked here.
    pub fn from_parts(
        chain: ChainId,
        public_key: [u8; 32],
        body: TxBody,
        signature: [u8; 64],
    ) -> Transaction {
        Self::with_sender(
            chain,
            public_key,
            Address::of_key(&public_key),
            body,
            signature,
        )
    }

    /// [`Transaction::from_parts`] with the sender's address already derived from
    /// `public_key` (parsing derives it to check the stated one).
    fn with_sender(
        chain: ChainId,
        public_key: [u8; 32],
        sender: Address,
        body: TxBody,
        signature: [u8; 64],
    ) -> Transaction {
        let encoding = encode_body(&chain, &public_key, &body);
        Transaction {
            id: sha256(encoding.as_slice()),
            sender,
            chain,
            public_key,
            body,
            signature,
            encoding,
        }
    }

    pub fn id(&self) -> &TxId {
        &self.id
    }

    pub fn chain(&self) -> ChainId {
        self.chain
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// The sender's address (derived from the public key).
    pub fn sender(&self) -> Address {
        self.sender
    }

    pub fn body(&self) -> &TxBody {
        &self.body
    }

    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The canonical body encoding (what the id hashes).
    pub fn encoding(&self) -> &[u8] {
        self.encoding.as_slice()
    }

    /// Bytes of the canonical payload of a data record (0 for a transfer).
    pub fn payload_len(&self) -> usize {
        match self.body {
            TxBody::Transfer { .. } => 0,
            // tag (13) + kind + chain + key + u32 length.
            TxBody::Data { .. } => self.encoding().len() - (13 + 1 + 16 + 32 + 4),
        }
    }

    /// The message the signature signs: `0x0F "kchain:txsig:v1" || tx id` (48 bytes).
    pub fn signed_message(&self) -> [u8; 48] {
        let mut m = [0u8; 48];
        m[0] = TX_SIG_TAG.len() as u8;
        m[1..16].copy_from_slice(TX_SIG_TAG.as_bytes());
        m[16..].copy_from_slice(&self.id);
        m
    }

    /// Parses a canonical body encoding and a signature. Never panics; rejects trailing bytes
    /// and payloads not in canonical JSON.
    pub fn decode(body: &[u8], signature: [u8; 64]) -> Result<Transaction, DecodeError> {
        let mut d = Decoder::with_tag(body, TX_TAG)?;
        let at = d.position();
        let kind = d.u8()?;
        let chain = ChainId(d.array()?);
        let public_key = d.array()?;
        let tx_body = match kind {
            KIND_TRANSFER => TxBody::Transfer {
                to: Address(d.array()?),
                amount: d.u64()?,
                nonce: d.u64()?,
            },
            KIND_DATA => {
                let at = d.position();
                let text = d.bytes()?;
                let payload: Value = serde_json::from_slice(text)
                    .map_err(|e| d.invalid(at, format!("payload is not JSON: {e}")))?;
                let mut canonical = Vec::with_capacity(text.len());
                canonical_json(&payload, &mut canonical);
                if canonical != text {
                    return Err(d.invalid(at, "payload is not in canonical JSON"));
                }
                TxBody::Data { payload }
            }
            other => return Err(d.invalid(at, format!("unknown transaction kind {other}"))),
        };
        d.finish()?;
        Ok(Self::from_parts(chain, public_key, tx_body, signature))
    }

    /// Parses the JSON form. Shape errors (missing or extra fields, bad hex, a `from` that is
    /// not the public key's address) are returned as text for a rejection; values (amount,
    /// nonce, chain, signature) are judged later.
    ///
    /// A transfer in exactly the form [`Transaction::write_json`] writes (what kchain's
    /// clients submit) is read without serde_json's general path; the result is the same.
    pub fn from_json(json: &[u8]) -> Result<Transaction, String> {
        if let Some(tx) = Self::from_canonical_transfer(json) {
            return Ok(tx);
        }
        Self::from_json_general(json)
    }

    /// [`Transaction::from_json`] through serde_json, for any spelling of the JSON.
    fn from_json_general(json: &[u8]) -> Result<Transaction, String> {
        let w: TxWire = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        Self::from_wire(w)
    }

    /// A transfer in its canonical JSON whose `from` is its key's address; `None` for
    /// anything else (which the general parser judges, and names the error of).
    fn from_canonical_transfer(json: &[u8]) -> Option<Transaction> {
        let t = transfer_json::parse(json)?;
        let sender = Address::of_key(&t.public_key);
        let body = TxBody::Transfer {
            to: Address(t.to),
            amount: t.amount,
            nonce: t.nonce,
        };
        (sender.0 == t.from)
            .then(|| Self::with_sender(ChainId(t.chain), t.public_key, sender, body, t.signature))
    }

    /// Parses the JSON form from an already-parsed value.
    pub fn from_json_value(v: &Value) -> Result<Transaction, String> {
        let w = TxWire::deserialize(v).map_err(|e| e.to_string())?;
        Self::from_wire(w)
    }

    pub(crate) fn from_wire(w: TxWire<'_>) -> Result<Transaction, String> {
        let chain = ChainId(parse_hex(&w.chain).ok_or("chain: expected 32 hex digits")?);
        let public_key = parse_hex(&w.public_key).ok_or("public_key: expected 64 hex digits")?;
        let signature = parse_hex(&w.signature).ok_or("signature: expected 128 hex digits")?;
        let sender = Address::of_key(&public_key);
        let (body, stated, field) = match w.kind.as_ref() {
            "transfer" => {
                if w.payload.is_some() || w.submitter.is_some() {
                    return Err("a transfer has no payload or submitter".into());
                }
                let to = w.to.as_deref().ok_or("missing field `to`")?;
                let body = TxBody::Transfer {
                    to: Address::from_hex(to).ok_or("to: expected 40 hex digits")?,
                    amount: w.amount.ok_or("missing field `amount`")?,
                    nonce: w.nonce.ok_or("missing field `nonce`")?,
                };
                (body, w.from, "from")
            }
            "data" => {
                if w.to.is_some() || w.amount.is_some() || w.nonce.is_some() || w.from.is_some() {
                    return Err("a data record has no from, to, amount or nonce".into());
                }
                let payload = w.payload.ok_or("missing field `payload`")?;
                (TxBody::Data { payload }, w.submitter, "submitter")
            }
            other => return Err(format!("unknown transaction type '{other}'")),
        };
        let stated = stated.ok_or_else(|| format!("missing field `{field}`"))?;
        match Address::from_hex(&stated) {
            Some(a) if a == sender => {}
            Some(_) => return Err(format!("{field} is not the address of public_key")),
            None => return Err(format!("{field}: expected 40 hex digits")),
        }
        Ok(Self::with_sender(
            chain, public_key, sender, body, signature,
        ))
    }

    /// Appends the JSON form (one line, no whitespace).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Written piece by piece rather than with `write!`: a sealer writes every
        // transaction of every block, and clients every transaction they submit.
        let field = |out: &mut Vec<u8>, name: &[u8], bytes: &[u8]| {
            out.extend_from_slice(name);
            push_hex(out, bytes);
            out.push(b'"');
        };
        match &self.body {
            TxBody::Transfer { to, amount, nonce } => {
                field(out, br#"{"type":"transfer","chain":""#, &self.chain.0);
                field(out, br#","from":""#, &self.sender.0);
                field(out, br#","public_key":""#, &self.public_key);
                field(out, br#","to":""#, &to.0);
                out.extend_from_slice(br#","amount":"#);
                push_u64(out, *amount);
                out.extend_from_slice(br#","nonce":"#);
                push_u64(out, *nonce);
            }
            TxBody::Data { payload } => {
                field(out, br#"{"type":"data","chain":""#, &self.chain.0);
                field(out, br#","submitter":""#, &self.sender.0);
                field(out, br#","public_key":""#, &self.public_key);
                out.extend_from_slice(br#","payload":"#);
                canonical_json(payload, out);
            }
        }
        field(out, br#","signature":""#, &self.signature);
        out.push(b'}');
    }

    /// The JSON form as bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Room for all of it at once: a client writes one for every transaction it submits
        // (a transfer's is 406 bytes with a one-digit amount and a three-digit nonce, and
        // the 400 reserved before made each grow into a second buffer).
        let mut out = Vec::with_capacity(JSON_ROOM + self.payload_len());
        self.write_json(&mut out);
        out
    }

    /// The JSON form as a value.
    pub fn to_json_value(&self) -> Value {
        serde_json::from_slice(&self.to_json()).expect("a transaction's JSON parses")
    }
}

/// Writes a canonical body encoding.
fn encode_body(chain: &ChainId, public_key: &[u8; 32], body: &TxBody) -> Encoding {
    match body {
        TxBody::Transfer { to, amount, nonce } => {
            // The fields in the order and byte order of `Encoder` (fixed fields as they are,
            // numbers big-endian), written in place.
            let mut out = [0u8; TRANSFER_ENCODED_LEN];
            let mut at = 0;
            for field in [
                &[TX_TAG.len() as u8][..],
                TX_TAG.as_bytes(),
                &[KIND_TRANSFER],
                &chain.0,
                public_key,
                &to.0,
                &amount.to_be_bytes(),
                &nonce.to_be_bytes(),
            ] {
                out[at..at + field.len()].copy_from_slice(field);
                at += field.len();
            }
            debug_assert_eq!(at, TRANSFER_ENCODED_LEN);
            Encoding::Transfer(out)
        }
        TxBody::Data { payload } => {
            let mut text = Vec::new();
            canonical_json(payload, &mut text);
            let mut out = Vec::with_capacity(TRANSFER_ENCODED_LEN + text.len());
            Encoder::with_tag(&mut out, TX_TAG)
                .u8(KIND_DATA)
                .fixed(&chain.0)
                .fixed(public_key)
                .bytes(&text);
            Encoding::Data(out)
        }
    }
}

/// The JSON form as parsed: every field optional except those all kinds share, so that a
/// missing field is named in the rejection.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TxWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    chain: Cow<'a, str>,
    #[serde(borrow)]
    public_key: Cow<'a, str>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
    #[serde(default, borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    nonce: Option<u64>,
    #[serde(default, borrow)]
    submitter: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "some_value")]
    payload: Option<Value>,
}

/// A present `payload` is `Some`, even when it is JSON `null`.
fn some_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> WriterKey {
        WriterKey::from_seed("w", [i; 32])
    }

    /// The address is the first 20 bytes of SHA-256 over the tagged encoding of the key.
    #[test]
    fn an_address_hashes_the_tagged_key() {
        for i in 0..4u8 {
            let k = key(i);
            let mut buf = Vec::new();
            Encoder::with_tag(&mut buf, ADDRESS_TAG).fixed(k.public().as_bytes());
            let want: [u8; 20] = sha256(&buf)[..20].try_into().unwrap();
            assert_eq!(Address::of(&k), Address(want));
        }
        // python3 -c 'import hashlib; print(hashlib.sha256(bytes([14]) + b"kchain:addr:v1"
        //     + bytes(32)).hexdigest()[:40])'
        assert_eq!(
            Address::of_key(&[0; 32]).to_hex(),
            "5b367d5a1509a85d7f6bd0f031f57a22ff4caf6a"
        );
    }

    /// A transfer's body encoding, byte for byte, and its id, pinned:
    /// python3 -c 'import hashlib; t = b"kchain:tx:v1"; print(hashlib.sha256(bytes([len(t)])
    ///     + t + bytes([1]) + bytes([7]) * 16 + bytes([0x22]) * 32 + bytes([2]) * 20
    ///     + (5).to_bytes(8, "big") + (1).to_bytes(8, "big")).hexdigest())'
    #[test]
    fn a_transfer_encodes_as_pinned() {
        let body = TxBody::Transfer {
            to: Address([2; 20]),
            amount: 5,
            nonce: 1,
        };
        let t = Transaction::from_parts(ChainId([7; 16]), [0x22; 32], body, [0; 64]);
        assert_eq!(t.encoding().len(), TRANSFER_ENCODED_LEN);
        assert_eq!(
            hex_lower(t.id()),
            "9c72eda1be7c1628a98004a1edef9598f1659d8e163fcce74f063e5ecfa34905"
        );
        assert_eq!(Transaction::decode(t.encoding(), [0; 64]).unwrap(), t);
    }

    /// The JSON of the longest transfer and of a data record fits the room `to_json`
    /// reserves for it.
    #[test]
    fn json_fits_the_room_reserved_for_it() {
        let chain = ChainId([7; 16]);
        let longest = Transaction::transfer(&key(1), chain, Address([2; 20]), u64::MAX, u64::MAX);
        let data = Transaction::data(&key(1), chain, serde_json::json!({"k": "v".repeat(900)}));
        for t in [longest, data] {
            let json = t.to_json();
            assert!(
                json.len() <= JSON_ROOM + t.payload_len(),
                "{} bytes",
                json.len()
            );
        }
    }

    #[test]
    fn json_round_trips_and_the_id_ignores_formatting() {
        let chain = ChainId([7; 16]);
        let t = Transaction::transfer(&key(1), chain, Address([2; 20]), 5, 1);
        assert_eq!(Transaction::from_json(&t.to_json()).unwrap(), t);
        let d = Transaction::data(
            &key(1),
            chain,
            serde_json::json!({"scan": {"b": 1, "a": [true, null]}}),
        );
        let text = String::from_utf8(d.to_json()).unwrap();
        let spaced = text.replace(":", " : ").replace(",", " ,\n ");
        let back = Transaction::from_json(spaced.as_bytes()).unwrap();
        assert_eq!(back.id(), d.id());
        assert_eq!(
            Transaction::decode(d.encoding(), *d.signature()).unwrap(),
            d
        );
    }

    #[test]
    fn the_canonical_transfer_path_reads_what_the_general_parser_reads() {
        let chain = ChainId([7; 16]);
        let t = Transaction::transfer(&key(1), chain, Address([2; 20]), 0, u64::MAX);
        let canonical = String::from_utf8(t.to_json()).unwrap();
        assert!(Transaction::from_canonical_transfer(canonical.as_bytes()).is_some());
        let other_from = canonical.replace(&t.sender().to_hex(), &Address([9; 20]).to_hex());
        let variants = [
            canonical.clone(),
            canonical.replace(',', ", "),
            canonical.to_uppercase().replace("TRANSFER", "transfer"),
            canonical.replace(r#""amount":0"#, r#""amount":00"#),
            canonical.replace(r#""amount":0"#, r#""amount":0.0"#),
            canonical.replace(r#""amount":0"#, r#""amount":1e2"#),
            canonical.replace("18446744073709551615", "18446744073709551616"),
            canonical.replace(r#","nonce""#, r#","extra":1,"nonce""#),
            canonical.replace(r#""type":"transfer","#, "") + "",
            format!("{canonical} "),
            format!("{canonical}x"),
            canonical[..canonical.len() - 1].to_owned(),
            canonical.replace("to", r"t\u006f"),
            other_from,
        ];
        for v in &variants {
            let fast = Transaction::from_json(v.as_bytes());
            let general = Transaction::from_json_general(v.as_bytes());
            assert_eq!(fast, general, "{v}");
        }
        assert_eq!(Transaction::from_json(canonical.as_bytes()), Ok(t));
    }

    #[test]
    fn shape_errors_name_the_field() {
        let chain = ChainId([7; 16]);
        let t = Transaction::transfer(&key(1), chain, Address([2; 20]), 5, 1);
        let mut v = t.to_json_value();
        v["from"] = Value::String(Address([9; 20]).to_hex());
        let e = Transaction::from_json_value(&v).unwrap_err();
        assert!(e.contains("from is not the address"), "{e}");
        v.as_object_mut().unwrap().remove("amount");
        assert!(Transaction::from_json_value(&v).is_err());
        let mut v = t.to_json_value();
        v["extra"] = Value::Bool(true);
        assert!(Transaction::from_json_value(&v).is_err());
        let d = Transaction::data(&key(1), chain, Value::Null);
        let back = Transaction::from_json(&d.to_json()).unwrap();
        assert_eq!(
            back.body(),
            &TxBody::Data {
                payload: Value::Null
            }
        );
    }
}
