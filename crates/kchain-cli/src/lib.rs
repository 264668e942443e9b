//! The `kchain` command-line tool: argument parsing and presentation over the kchain
//! libraries. `main.rs` only maps the outcome to an exit code:
//!
//! ```text
//! 0  everything verified        3  findings (tampering, forgery, truncation)
//! 1  any other error            2  usage error (clap)
//! ```
//!
//! ```text
//! cli.rs     the parser and the dispatch to one module per command group
//! outcome.rs what a successful command found (exit 0 or 3)
//! global.rs  options every command shares; opening the log and the trust file
//! errors.rs  an error as one line: each cause once, the fix that fits
//! cmd/       one file per command group, each owning its clap arguments
//! report/    presentation: text and JSON
//! stop.rs    SIGINT/SIGTERM as a request to stop cleanly (streaming commands)
//! demo/      the guided tour, step by step (also run by tests)
//! bench/     the throughput measurements
//! ```

mod bench;
mod cli;
mod cmd;
pub mod demo;
mod errors;
mod global;
mod outcome;
mod progress;
mod report;
mod serve;
mod stop;

pub use cli::{run, Cli};
pub use errors::{error_line, error_text};
pub use outcome::Outcome;
