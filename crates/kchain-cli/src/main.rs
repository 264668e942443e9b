use std::process::ExitCode;

use clap::Parser;
use kchain_cli::{run, Cli, Outcome};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(3),
        Err(e) => {
            eprintln!("kchain: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
