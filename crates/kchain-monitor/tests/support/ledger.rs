//! A ledger under test: a genesis with one sealer, empty blocks sealed by hand on the tip
//! (valid by the consensus rules), its checkpoints, and the attacker's blocks.

use std::collections::BTreeMap;

use kchain_core::{chain_leaf, merkle, Checkpoint, WriterKey};
use kchain_ledger::{
    init, ledger_origin, replay, Block, BlockHeader, Genesis, SealerInfo, SourceRange,
    BLOCK_VERSION,
};
use kchain_log::{Log, Record};

/// A ledger with one sealer, `s1`.
pub struct Ledger {
    pub name: String,
    pub blocks: String,
    pub genesis: Genesis,
    pub sealer: WriterKey,
}

/// A fresh ledger (its genesis block written) with a unique name.
pub fn ledger(log: &dyn Log, prefix: &str) -> Ledger {
    let name = kchain_testkit::unique_name(prefix);
    let sealer = WriterKey::from_seed("s1", [5; 32]);
    let mut genesis = Genesis::new(
        &name,
        vec![SealerInfo {
            name: "s1".into(),
            key: sealer.public(),
        }],
        BTreeMap::new(),
    );
    genesis.transaction_partitions = 1;
    init(log, &genesis, kchain_core::time::now_ms() - 60_000).unwrap();
    Ledger {
        blocks: genesis.topics.blocks.clone(),
        name,
        genesis,
        sealer,
    }
}

impl Ledger {
    /// The canonical chain as a node replays it: (tip height, tip hash, tip sources, every
    /// canonical hash).
    fn tip(&self, log: &dyn Log) -> (u64, [u8; 32], Vec<SourceRange>, Vec<[u8; 32]>) {
        let r = replay(log, &self.blocks, None).unwrap();
        assert!(r.finding.is_none(), "{:?}", r.finding);
        let tip = r.chain.tip().clone();
        let hashes = (0..=tip.height)
            .map(|h| r.chain.block_at(h).unwrap().0)
            .collect();
        (tip.height, tip.hash, tip.sources, hashes)
    }

    /// An empty block at `height` on `prev`, signed by the sealer (`edit` may change its
    /// header before it is signed).
    pub fn block(
        &self,
        height: u64,
        prev: [u8; 32],
        sources: &[SourceRange],
        edit: impl FnOnce(&mut BlockHeader),
    ) -> Block {
        let mut header = BlockHeader {
            version: BLOCK_VERSION,
            chain: self.genesis.chain_id(),
            height,
            prev,
            timestamp_ms: kchain_core::time::now_ms(),
            items_root: [0; 32],
            tx_count: 0,
            reward: self.genesis.reward,
            sealer: self.sealer.id(),
            sources: sources
                .iter()
                .map(|s| SourceRange {
                    partition: s.partition,
                    from: s.to,
                    to: s.to,
                })
                .collect(),
            difficulty: self.genesis.difficulty,
            nonce: 0,
        };
        edit(&mut header);
        Block::seal(header, Vec::new(), &self.sealer)
    }

    /// Seals `n` valid empty blocks on the tip; returns the chain's size (genesis counted).
    pub fn seal(&self, log: &dyn Log, n: u64) -> u64 {
        let (mut height, mut prev, sources, _) = self.tip(log);
        for _ in 0..n {
            let b = self.block(height + 1, prev, &sources, |_| {});
            self.append(log, b.to_json());
            height += 1;
            prev = b.hash();
        }
        height + 1
    }

    /// Publishes the sealer's checkpoint of the canonical chain; returns its size.
    pub fn checkpoint(&self, log: &dyn Log) -> u64 {
        let (_, _, _, hashes) = self.tip(log);
        let leaves: Vec<_> = hashes.iter().map(chain_leaf).collect();
        let size = leaves.len() as u64;
        self.publish(log, size, merkle::root(&leaves));
        size
    }

    /// Publishes a checkpoint signed by the sealer, of any size and root.
    pub fn publish(&self, log: &dyn Log, size: u64, root: [u8; 32]) {
        let origin = ledger_origin("kchain", &self.blocks);
        let signer = self.sealer.note_signer_named("s1").unwrap();
        let note = Checkpoint::new(&origin, size, root).unwrap().sign(&signer);
        kchain_topic::checkpoints::publish_note(log, &self.blocks, 0, &note).unwrap();
    }

    /// The attacker: a block on the tip whose header was changed after it was signed (it
    /// does not hold together, so it is ignored), then a valid child that builds on it,
    /// which shows that the changed block was canonical when the child was sealed.
    pub fn tamper(&self, log: &dyn Log) -> u64 {
        let (height, prev, sources, _) = self.tip(log);
        let mut broken = self.block(height + 1, prev, &sources, |_| {});
        broken.header.timestamp_ms += 1;
        let at = self.append(log, broken.to_json());
        let child = self.block(height + 2, broken.hash(), &sources, |_| {});
        self.append(log, child.to_json());
        at
    }

    /// Appends a raw record to the blocks topic.
    pub fn append(&self, log: &dyn Log, value: Vec<u8>) -> u64 {
        let mut a = log.appender(&self.blocks, 0).unwrap();
        let offsets = a
            .append(&[Record {
                key: None,
                value: Some(value),
                headers: vec![],
                timestamp_ms: kchain_core::time::now_ms(),
            }])
            .unwrap();
        a.flush().unwrap();
        offsets[0]
    }
}
