//! Checkpoints (c2sp.org/tlog-checkpoint), and the chain tree they sign.
//!
//! ```text
//! checkpoint text = origin "\n"                  kchain: "<namespace>/<chain name>", e.g.
//!                                                  kchain/orders/0 (see chain_origin)
//!                   tree size "\n"                decimal, no leading zeros ("0" if empty)
//!                   base64(root hash) "\n"        RFC 6962 root of the chain tree: 32 bytes
//!                   (extension line "\n")*        non-empty, opaque; kchain writes none
//! chain tree      = RFC 6962 tree whose leaf i is leaf_hash(entry hash at height i)
//! ```
//!
//! References: [c2sp.org/tlog-checkpoint](https://c2sp.org/tlog-checkpoint), RFC 6962
//! section 2.1.
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::note::SignedNote;
use super::note_key::NoteSigner;
use crate::merkle::{self, Hash};

/// The namespace of kchain's origins when a deployment sets none.
pub const DEFAULT_ORIGIN_NAMESPACE: &str = "kchain";

/// What is wrong with a checkpoint text or a cosignature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("checkpoint text does not end in a newline")]
    MissingFinalNewline,
    #[error("checkpoint text holds a control character")]
    ControlCharacter,
    #[error("checkpoint has {lines} lines; it needs an origin, a tree size and a root hash")]
    TooFewLines { lines: usize },
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    #[error("checkpoint tree size {value:?} is not a decimal number without leading zeros that fits 64 bits")]
    BadTreeSize { value: String },
    #[error("checkpoint root hash {value:?} is not the base64 of 32 bytes")]
    BadRootHash { value: String },
    #[error("a checkpoint of size 0 must have the empty tree's root, SHA-256 of the empty string")]
    EmptyTreeRoot,
    #[error("checkpoint line {line} is an empty extension line")]
    EmptyExtensionLine { line: usize },
    #[error("checkpoint extension line {line} holds a newline")]
    InvalidExtensionLine { line: usize },
    #[error("a cosignature is 72 bytes (timestamp and Ed25519 signature), got {len}")]
    BadCosignatureLength { len: usize },
    #[error("cosignature timestamp {timestamp} exceeds 2^63 - 1")]
    TimestampOutOfRange { timestamp: u64 },
}

/// A checkpoint: a chain (origin) has `size` entries and this chain-tree root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub(super) origin: String,
    pub(super) size: u64,
    pub(super) root: Hash,
    pub(super) extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines. Requires a non-empty origin without control
    /// characters ([`CheckpointError::EmptyOrigin`], [`CheckpointError::ControlCharacter`]),
    /// and the empty tree's root when `size` is 0 ([`CheckpointError::EmptyTreeRoot`]).
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Checkpoint, CheckpointError> {
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        if origin.contains(|c: char| c < ' ') {
            return Err(CheckpointError::ControlCharacter);
        }
        if size == 0 && root != merkle::empty_root() {
            return Err(CheckpointError::EmptyTreeRoot);
        }
        Ok(Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// This checkpoint with extension lines. Requires each to be non-empty and free of
    /// control characters (line numbers in errors count from 1 at the origin).
    pub fn with_extensions(
        mut self,
        extensions: Vec<String>,
    ) -> Result<Checkpoint, CheckpointError> {
        for (i, e) in extensions.iter().enumerate() {
            if e.is_empty() {
                return Err(CheckpointError::EmptyExtensionLine { line: i + 4 });
            }
            if e.contains(|c: char| c < ' ') {
                return Err(CheckpointError::InvalidExtensionLine { line: i + 4 });
            }
        }
        self.extensions = extensions;
        Ok(self)
    }

    /// Parses a checkpoint text (a note's text, with its final newline), strictly: at least
    /// three lines, a non-empty origin, a canonical decimal size, the base64 of a 32-byte
    /// root (the empty tree's root for size 0), and only non-empty extension lines. Never
    /// panics.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        if body.contains(|c: char| c < ' ' && c != '\n') {
            return Err(CheckpointError::ControlCharacter);
        }
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::TooFewLines { lines: lines.len() });
        }
        if lines[0].is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_tree_size(lines[1]).ok_or_else(|| CheckpointError::BadTreeSize {
            value: lines[1].into(),
        })?;
        let root = BASE64
            .decode(lines[2])
            .ok()
            .and_then(|b| Hash::try_from(b).ok())
            .ok_or_else(|| CheckpointError::BadRootHash {
                value: lines[2].into(),
            })?;
        if size == 0 && root != merkle::empty_root() {
            return Err(CheckpointError::EmptyTreeRoot);
        }
        if let Some(i) = lines[3..].iter().position(|l| l.is_empty()) {
            return Err(CheckpointError::EmptyExtensionLine { line: i + 4 });
        }
        Ok(Checkpoint {
            origin: lines[0].into(),
            size,
            root,
            extensions: lines[3..].iter().map(|l| (*l).into()).collect(),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of entries (leaves) in the chain tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root of the chain tree at this size.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The checkpoint text: what the writer signs and witnesses cosign.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// A note with this checkpoint's text, signed by `writer`.
    pub fn sign(&self, writer: &NoteSigner) -> SignedNote {
        let mut note =
            SignedNote::new(self.to_text()).expect("a checkpoint text is a valid note text");
        note.sign(writer);
        note
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Decimal digits only, no sign, no leading zero unless the value is 0.
fn parse_tree_size(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// The leaf hash of the chain tree for the entry with hash `entry_hash`: the RFC 6962 leaf
/// hash SHA-256(0x00 || entry hash), the entry hash being the leaf's data.
pub fn chain_leaf(entry_hash: &Hash) -> Hash {
    merkle::leaf_hash(entry_hash)
}

/// The origin line of a chain's checkpoints: `<namespace>/<chain name>`, e.g.
/// `kchain/orders/0` for partition 0 of topic `orders` (chain name `orders/0`). A deployment
/// whose checkpoints reach witnesses shared with others should use a namespace it owns
/// (`kchain.example.com/prod`), since a witness tells logs apart by origin alone.
pub fn chain_origin(namespace: &str, chain_name: &str) -> String {
    format!("{namespace}/{chain_name}")
}
