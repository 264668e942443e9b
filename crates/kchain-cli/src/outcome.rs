//! What a successful command found, which `main.rs` maps to the exit code (0 or 3).

/// What a successful command found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked verified (or nothing was checked).
    Clean,
    /// A check found tampering, forgery or truncation.
    Findings,
}
