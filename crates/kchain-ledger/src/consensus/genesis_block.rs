//! Block 0: a genesis as the block that stores it, and back. The genesis block is a pure
//! function of the genesis (see [`crate::consensus::genesis`] for its layout), so a stored
//! genesis block is checked by rebuilding it.

use kchain_core::merkle;
use kchain_core::{KeyId, ZERO_HASH};

use crate::consensus::block::{Block, BlockHeader, SourceRange, StoredBlock, BLOCK_VERSION};
use crate::consensus::genesis::Genesis;

impl Genesis {
    /// Block 0.
    pub fn block(&self, timestamp_ms: i64) -> Block {
        Block {
            header: BlockHeader {
                version: BLOCK_VERSION,
                chain: self.chain_id(),
                height: 0,
                prev: ZERO_HASH,
                timestamp_ms,
                items_root: merkle::leaf_hash(&self.encode()),
                tx_count: 0,
                reward: 0,
                sealer: KeyId([0; 8]),
                sources: (0..self.transaction_partitions)
                    .map(|partition| SourceRange {
                        partition,
                        from: 0,
                        to: 0,
                    })
                    .collect(),
                difficulty: 0,
                nonce: 0,
            },
            signature: None,
            txs: vec![],
            genesis: Some(self.clone()),
        }
    }

    /// Checks that a stored record is a consistent genesis block and returns its genesis.
    pub fn from_stored(b: &StoredBlock) -> Result<Genesis, String> {
        let g = match &b.genesis {
            Some(Ok(g)) => g.clone(),
            Some(Err(e)) => return Err(format!("its genesis does not parse: {e}")),
            None => return Err("it has no genesis field".into()),
        };
        let expected = g.block(b.header.timestamp_ms);
        if b.header != expected.header {
            return Err("its header is not the one its genesis implies".into());
        }
        if !matches!(&b.body, Ok(txs) if txs.is_empty()) || b.signature.is_some() {
            return Err("a genesis block has no transactions and no signature".into());
        }
        if !b.stated_hash_matches() {
            return Err("its hash field is not its hash".into());
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use kchain_core::WriterKey;

    use super::*;
    use crate::consensus::tx::Address;

    #[test]
    fn a_genesis_block_parses_back_to_its_genesis() {
        let sealer = WriterKey::from_seed("s", [1; 32]);
        let alice = Address::of(&WriterKey::from_seed("a", [2; 32]));
        let text = format!(
            "chain = \"demo\"\ndifficulty = 4\n[[sealers]]\nname = \"s1\"\npublic_key = \"{}\"\n\
             [balances]\n\"{alice}\" = 1000\n",
            sealer.public().to_hex()
        );
        let (g, _) = Genesis::from_file_text(&text).unwrap();
        let block = g.block(0);
        let stored = StoredBlock::parse(&block.to_json()).unwrap();
        assert_eq!(Genesis::from_stored(&stored).unwrap(), g);
        assert_eq!(stored.hash, block.hash());
    }
}
