//! The genesis: a ledger's configuration, read from a genesis file (TOML or JSON) and stored
//! as block 0 of the blocks topic.
//!
//! ```text
//! genesis   = 0x11 "kchain:genesis:v1" || u32len(chain name)
//!             || u32len(transactions topic) || u32len(blocks topic) || u32len(rejected topic)
//!             || transaction partitions u32 || reward u64 || difficulty u8
//!             || max block txs u32 || max payload bytes u32
//!             || sealer count u32 || per sealer: u32len(name) || public key (32)
//!             || balance count u32 || per balance, by address: address (20) || amount u64
//! chain id  = first 16 bytes of SHA-256(genesis)
//! block 0   = header { height 0, prev zeros, items root = RFC 6962 leaf hash of genesis,
//!                      tx count 0, reward 0, sealer zeros, sources (p, 0, 0) for every p,
//!                      difficulty 0, nonce 0, timestamp from the file or 0 }, no signature
//! ```
//!
//! The genesis block is a pure function of the file, so anyone holding the file can recompute
//! the genesis hash and check a ledger against it (`kchain ledger verify --genesis FILE`).
//! The chain id depends on everything in the genesis, so transactions signed for one ledger
//! never verify on another, even one of the same name.

use std::collections::BTreeMap;

use kchain_core::{sha256, ChainId, Encoder, KeyId, NoteVerifier, PublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::consensus::error::ConsensusError;
use crate::consensus::tx::Address;

/// Domain tag of the genesis encoding.
pub const GENESIS_TAG: &str = "kchain:genesis:v1";

/// The names of a ledger's topics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// Many partitions; clients append transactions.
    pub transactions: String,
    /// One partition; sealers append blocks.
    pub blocks: String,
    /// One partition; sealers append the transactions they refused, with the reason.
    pub rejected: String,
}

impl Topics {
    /// `<chain>.transactions`, `<chain>.blocks`, `<chain>.rejected`.
    pub fn for_chain(chain: &str) -> Topics {
        Topics {
            transactions: format!("{chain}.transactions"),
            blocks: format!("{chain}.blocks"),
            rejected: format!("{chain}.rejected"),
        }
    }
}

/// A sealer allowed to seal blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealerInfo {
    pub name: String,
    pub key: PublicKey,
}

/// A ledger's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// A human name (the topics are named after it by default).
    pub chain: String,
    pub topics: Topics,
    pub transaction_partitions: u32,
    /// Paid to the sealer of each block.
    pub reward: u64,
    /// Leading zero bits every block hash must have (0: no proof of work).
    pub difficulty: u8,
    pub max_block_txs: u32,
    /// Largest canonical JSON payload of a data record, in bytes.
    pub max_payload_bytes: u32,
    pub sealers: Vec<SealerInfo>,
    pub balances: BTreeMap<Address, u64>,
}

/// Default transaction partitions.
pub const DEFAULT_PARTITIONS: u32 = 4;
/// Default largest block, in transactions.
pub const DEFAULT_MAX_BLOCK_TXS: u32 = 10_000;
/// Default largest data payload, in bytes.
pub const DEFAULT_MAX_PAYLOAD: u32 = 64 * 1024;

impl Genesis {
    /// A genesis with defaults: 4 partitions, reward 1, no proof of work.
    pub fn new(chain: &str, sealers: Vec<SealerInfo>, balances: BTreeMap<Address, u64>) -> Self {
        Genesis {
            chain: chain.to_owned(),
            topics: Topics::for_chain(chain),
            transaction_partitions: DEFAULT_PARTITIONS,
            reward: 1,
            difficulty: 0,
            max_block_txs: DEFAULT_MAX_BLOCK_TXS,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD,
            sealers,
            balances,
        }
    }

    /// Parses a genesis file, TOML or JSON (JSON when the text starts with `{`). Returns the
    /// genesis and the file's `timestamp` (ms; 0 when absent).
    pub fn from_file_text(text: &str) -> Result<(Genesis, i64), ConsensusError> {
        let file: GenesisFile = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| ConsensusError::Genesis(e.to_string()))?
        } else {
            toml::from_str(text).map_err(|e| ConsensusError::Genesis(e.message().to_owned()))?
        };
        let timestamp = file.timestamp.unwrap_or(0);
        Ok((
            Self::from_file(file).map_err(ConsensusError::Genesis)?,
            timestamp,
        ))
    }

    /// Parses the `genesis` field of block 0.
    pub fn from_json_value(v: &Value) -> Result<Genesis, String> {
        let file = GenesisFile::deserialize(v).map_err(|e| e.to_string())?;
        if file.timestamp.is_some() {
            return Err("the genesis of a block has no timestamp (the header has it)".into());
        }
        Self::from_file(file)
    }

    fn from_file(f: GenesisFile) -> Result<Genesis, String> {
        let defaults = Topics::for_chain(&f.chain);
        let topics = f.topics.unwrap_or_default();
        let mut sealers = Vec::new();
        for s in f.sealers {
            let key = PublicKey::from_hex(&s.public_key)
                .map_err(|e| format!("sealer '{}': {e}", s.name))?;
            sealers.push(SealerInfo { name: s.name, key });
        }
        let mut balances = BTreeMap::new();
        for (a, amount) in f.balances {
            let addr = Address::from_hex(&a).ok_or(format!("balance for '{a}': not an address"))?;
            if balances.insert(addr, amount).is_some() {
                return Err(format!("address {addr} is listed twice"));
            }
        }
        let g = Genesis {
            topics: Topics {
                transactions: topics.transactions.unwrap_or(defaults.transactions),
                blocks: topics.blocks.unwrap_or(defaults.blocks),
                rejected: topics.rejected.unwrap_or(defaults.rejected),
            },
            chain: f.chain,
            transaction_partitions: f.transaction_partitions,
            reward: f.reward,
            difficulty: f.difficulty,
            max_block_txs: f.max_block_txs,
            max_payload_bytes: f.max_payload_bytes,
            sealers,
            balances,
        };
        g.check()?;
        Ok(g)
    }

    /// Checks the rules every genesis must meet.
    pub fn check(&self) -> Result<(), String> {
        if self.chain.is_empty() || self.chain.len() > 128 {
            return Err("chain: 1 to 128 characters".into());
        }
        let t = &self.topics;
        if t.transactions == t.blocks || t.blocks == t.rejected || t.transactions == t.rejected {
            return Err("topics: the three topic names must differ".into());
        }
        if !(1..=1024).contains(&self.transaction_partitions) {
            return Err("transaction_partitions: 1 to 1024".into());
        }
        if self.max_block_txs == 0 {
            return Err("max_block_txs: at least 1".into());
        }
        if self.difficulty > 64 {
            return Err("difficulty: at most 64 leading zero bits".into());
        }
        if self.sealers.is_empty() {
            return Err("sealers: at least one sealer must be allowed".into());
        }
        for (i, s) in self.sealers.iter().enumerate() {
            if self.sealers[..i].iter().any(|o| o.key.id() == s.key.id()) {
                return Err(format!("sealer '{}' is listed twice", s.name));
            }
        }
        self.balances
            .values()
            .try_fold(0u64, |sum, v| sum.checked_add(*v))
            .ok_or("balances: the total overflows 64 bits")?;
        Ok(())
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::with_tag(&mut out, GENESIS_TAG);
        e.bytes(self.chain.as_bytes())
            .bytes(self.topics.transactions.as_bytes())
            .bytes(self.topics.blocks.as_bytes())
            .bytes(self.topics.rejected.as_bytes())
            .u32(self.transaction_partitions)
            .u64(self.reward)
            .u8(self.difficulty)
            .u32(self.max_block_txs)
            .u32(self.max_payload_bytes)
            .u32(self.sealers.len() as u32);
        for s in &self.sealers {
            e.bytes(s.name.as_bytes()).fixed(s.key.as_bytes());
        }
        e.u32(self.balances.len() as u32);
        for (a, v) in &self.balances {
            e.fixed(&a.0).u64(*v);
        }
        out
    }

    /// The chain id: first 16 bytes of SHA-256 of the encoding.
    pub fn chain_id(&self) -> ChainId {
        ChainId(sha256(&self.encode())[..16].try_into().unwrap())
    }

    /// The sealer with key id `id`, if it is allowed.
    pub fn sealer(&self, id: &KeyId) -> Option<&SealerInfo> {
        self.sealers.iter().find(|s| &s.key.id() == id)
    }

    /// The JSON form (as in a genesis file, without timestamp).
    pub fn to_json_value(&self) -> Value {
        serde_json::to_value(self.to_file()).expect("genesis serializes")
    }

    /// The TOML form of a genesis file.
    pub fn to_toml(&self, timestamp_ms: i64) -> String {
        let mut f = self.to_file();
        f.timestamp = (timestamp_ms != 0).then_some(timestamp_ms);
        toml::to_string(&f).expect("genesis serializes")
    }

    fn to_file(&self) -> GenesisFile {
        GenesisFile {
            chain: self.chain.clone(),
            timestamp: None,
            topics: Some(TopicsFile {
                transactions: Some(self.topics.transactions.clone()),
                blocks: Some(self.topics.blocks.clone()),
                rejected: Some(self.topics.rejected.clone()),
            }),
            transaction_partitions: self.transaction_partitions,
            reward: self.reward,
            difficulty: self.difficulty,
            max_block_txs: self.max_block_txs,
            max_payload_bytes: self.max_payload_bytes,
            sealers: self
                .sealers
                .iter()
                .map(|s| SealerFile {
                    name: s.name.clone(),
                    public_key: s.key.to_hex(),
                })
                .collect(),
            balances: self
                .balances
                .iter()
                .map(|(a, v)| (a.to_hex(), *v))
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    chain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(default = "partitions")]
    transaction_partitions: u32,
    #[serde(default = "one")]
    reward: u64,
    #[serde(default)]
    difficulty: u8,
    #[serde(default = "max_block_txs")]
    max_block_txs: u32,
    #[serde(default = "max_payload")]
    max_payload_bytes: u32,
    #[serde(default)]
    topics: Option<TopicsFile>,
    sealers: Vec<SealerFile>,
    #[serde(default)]
    balances: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    transactions: Option<String>,
    blocks: Option<String>,
    rejected: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealerFile {
    name: String,
    public_key: String,
}

fn partitions() -> u32 {
    DEFAULT_PARTITIONS
}
fn one() -> u64 {
    1
}
fn max_block_txs() -> u32 {
    DEFAULT_MAX_BLOCK_TXS
}
fn max_payload() -> u32 {
    DEFAULT_MAX_PAYLOAD
}

/// The note verifiers of a genesis's sealers: each sealer's Ed25519 key under its name in the
/// genesis (type 0x01). A sealer whose name is not a valid note key name (white space, `+`)
/// cannot sign checkpoints and is left out.
pub fn sealer_verifiers(genesis: &Genesis) -> Vec<NoteVerifier> {
    genesis
        .sealers
        .iter()
        .filter_map(|s| s.key.note_verifier(&s.name).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kchain_core::WriterKey;

    #[test]
    fn a_toml_file_gives_the_same_genesis_as_its_json_and_toml_forms() {
        let sealer = WriterKey::from_seed("s", [1; 32]);
        let alice = Address::of(&WriterKey::from_seed("a", [2; 32]));
        let text = format!(
            "chain = \"demo\"\ndifficulty = 4\n[[sealers]]\nname = \"s1\"\npublic_key = \"{}\"\n\
             [balances]\n\"{alice}\" = 1000\n",
            sealer.public().to_hex()
        );
        let (g, ts) = Genesis::from_file_text(&text).unwrap();
        assert_eq!(ts, 0);
        assert_eq!(g.topics.blocks, "demo.blocks");
        assert_eq!(g.reward, 1);
        assert_eq!(g.balances[&alice], 1000);
        let json = serde_json::to_string(&g.to_json_value()).unwrap();
        assert_eq!(Genesis::from_file_text(&json).unwrap().0, g);
        assert_eq!(Genesis::from_file_text(&g.to_toml(0)).unwrap().0, g);
    }

    #[test]
    fn bad_genesis_files_say_why() {
        let bad = [
            ("chain = \"x\"\nsealers = []\n", "at least one sealer"),
            ("chain = \"x\"\nsealer = []\n", "unknown field"),
            (
                "chain = \"x\"\n[[sealers]]\nname = \"a\"\npublic_key = \"00\"\n",
                "sealer 'a'",
            ),
        ];
        for (text, why) in bad {
            let e = Genesis::from_file_text(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
