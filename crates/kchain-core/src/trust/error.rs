//! What can be wrong with a trust file.

use crate::checkpoint::note_key::NoteError;
use crate::checkpoint::policy::PolicyError;
use crate::keys::KeyError;

/// What is wrong with a trust file, with the line where it is wrong when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error("malformed trust file at line {line}: {detail}")]
    Malformed { line: usize, detail: String },
    #[error("trust file: writer '{name}': {source}")]
    BadKey {
        name: String,
        #[source]
        source: KeyError,
    },
    #[error("trust file: pin {topic}/{partition}: '{value}' is not 64 hex digits")]
    BadHash {
        topic: String,
        partition: u32,
        value: String,
    },
    #[error("trust file: pin {topic}/{partition}: `height` and `hash` go together")]
    HalfTip { topic: String, partition: u32 },
    #[error("trust file: witness key {key:?}: {source}")]
    BadWitnessKey {
        key: String,
        #[source]
        source: NoteError,
    },
    #[error("trust file: writer '{name}' cannot sign checkpoints: {source}")]
    BadWriterName {
        name: String,
        #[source]
        source: NoteError,
    },
    #[error("trust file: witness url {url:?} is not an http:// or https:// URL")]
    BadWitnessUrl { url: String },
    #[error("trust file: {0}")]
    Policy(#[source] PolicyError),
}
