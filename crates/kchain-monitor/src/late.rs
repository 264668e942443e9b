//! A late checkpoint's root: a checkpoint that arrives after the chain tree passed its size,
//! at a size where no root was kept, is checked against the root at that size computed from
//! the tree's frontier and the leaves read back from the log, from the start of the one peak
//! that spans the size (never from genesis unless that peak starts there).
//!
//! ```text
//!  tree of size n: peaks P1 (2^a) | P2 (2^b) | P3 ...      checkpoint size m, P1 <= m < P1+P2
//!  root(m) = TreeBuilder::from_peaks(P1) + leaves [|P1|, m) read back
//!  the leaves read on to |P1|+|P2| must rebuild P2, or the log changed: no root (unchecked)
//! ```

use std::time::{Duration, Instant};

use kchain_core::merkle::TreeBuilder;
use kchain_core::{chain_leaf, observe, ChainContext, ChainId, Hash, Link, Observation, Trust};
use kchain_log::Log;

/// The most leaves read back for one late checkpoint; beyond it the checkpoint stays
/// unchecked (counted), so that one checkpoint cannot hold the monitor up for long.
pub(crate) const REREAD_MAX: u64 = 1 << 20;

/// Where a partition's chain lives and how it stands.
pub(crate) struct Chain<'a> {
    pub(crate) log: &'a dyn Log,
    pub(crate) topic: &'a str,
    pub(crate) partition: u32,
    pub(crate) trust: &'a Trust,
    pub(crate) tree: &'a TreeBuilder,
    /// The last verified record (its offset less its height is where height 0 lives).
    pub(crate) tip: Link,
}

impl Chain<'_> {
    /// The root of the chain tree at `size` (below the tree's size), or `None` when it
    /// cannot be told: too many leaves to read back, the log unreachable, or the leaves read
    /// back no longer rebuild the tree's peak (the log changed under the monitor).
    pub(crate) fn root_at(&self, size: u64) -> Option<Hash> {
        let n = self.tree.size();
        if size == 0 || size >= n {
            return None;
        }
        // The peaks of `n` that lie wholly below `size` are shared with the tree of `size`.
        let (mut start, mut prefix) = (0u64, Vec::new());
        let mut spanning = None;
        for (i, bit) in (0..64).rev().filter(|b| n >> b & 1 == 1).enumerate() {
            let width = 1u64 << bit;
            if start + width <= size {
                prefix.push(self.tree.peaks()[i]);
                start += width;
            } else {
                spanning = Some((width, self.tree.peaks()[i]));
                break;
            }
        }
        let (width, peak) = spanning?;
        if width > REREAD_MAX {
            return None;
        }
        let mut upto = TreeBuilder::from_peaks(start, prefix)?;
        if start == size {
            return Some(upto.root());
        }
        let mut whole = TreeBuilder::new();
        let mut root = None;
        self.leaves(start, width, &mut |leaf| {
            whole.push(leaf);
            if upto.size() < size {
                upto.push(leaf);
                if upto.size() == size {
                    root = Some(upto.root());
                }
            }
        })?;
        (whole.size() == width && whole.root() == peak).then_some(root?)
    }

    /// Reads the leaves of heights `from..from + count` back from the log, in order.
    fn leaves(&self, from: u64, count: u64, sink: &mut dyn FnMut(&Hash)) -> Option<()> {
        let base = self.tip.offset.checked_sub(self.tip.height)?;
        let (start, end) = (base + from, base + from + count);
        let mut reader = self.log.reader(self.topic, self.partition, start).ok()?;
        let ctx = ChainContext {
            topic: self.topic,
            chain: ChainId::for_partition(self.topic, self.partition),
            trust: self.trust,
        };
        let (mut scratch, mut next, since) = (Vec::new(), from, Instant::now());
        while reader.position() < end {
            let mut bad = false;
            let want = (end - reader.position()).min(8192) as usize;
            let wait = Duration::from_millis(200);
            reader
                .poll_visit(want, wait, &mut |v| {
                    if v.offset >= end || bad {
                        return;
                    }
                    let (key, value, h) = (v.key, v.value, v.headers.iter());
                    match observe(&ctx, v.offset, key, value, h, v.timestamp_ms, &mut scratch) {
                        Observation::Entry(o) if o.height == next => {
                            sink(&chain_leaf(&o.hash));
                            next += 1;
                        }
                        _ => bad = true,
                    }
                })
                .ok()?;
            if bad || since.elapsed() > kchain_topic::stall_timeout() {
                return None;
            }
        }
        (next == from + count).then_some(())
    }
}
