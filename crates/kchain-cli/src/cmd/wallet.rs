//! `wallet`: ledger wallets, Ed25519 key files and their addresses.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Subcommand;
use kchain_core::WriterKey;
use kchain_ledger::Address;
use kchain_topic::files::{read_key_file, write_key_file};
use serde_json::json;

use crate::global::Global;
use crate::outcome::Outcome;

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Generate a wallet key (an Ed25519 key file, mode 0600) at --key-file FILE [default:
    /// <data-dir>/wallets/<name>.key] and print its address.
    New {
        /// Old name of --key-file here (still accepted).
        #[arg(long, hide = true, value_name = "FILE")]
        out: Option<PathBuf>,
        /// A name for the key.
        #[arg(long, default_value = "wallet")]
        name: String,
        /// Print the key file, address and public key as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Print the address and public key of the wallet key file --key-file FILE; with -q only
    /// the address, for scripts: `addr=$(kchain -q wallet address --key-file alice.key)`.
    Address {
        /// Old name of --key-file here (still accepted).
        #[arg(long, hide = true, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Print the key file, address and public key as one JSON line.
        #[arg(long)]
        json: bool,
    },
}

pub fn wallet(g: &Global, cmd: WalletCmd) -> Result<Outcome> {
    match cmd {
        WalletCmd::New { out, name, json } => {
            let path = out
                .or_else(|| g.key_file.clone())
                .unwrap_or_else(|| g.dirs().wallet_key(&name));
            if path.exists() {
                bail!(
                    "{} already exists; pass --key-file FILE for a new file",
                    path.display()
                );
            }
            let key = WriterKey::generate(&name);
            write_key_file(&path, &key)?;
            if !json && !g.quiet {
                println!(
                    "wrote wallet key '{name}' to {} (mode 0600)",
                    path.display()
                );
            }
            print_wallet(g, &path, &key, json);
        }
        WalletCmd::Address { key, json } => {
            let path = g.key_file_for(key.as_deref(), "wallet address needs a wallet key")?;
            let key = read_key_file(&path)?;
            print_wallet(g, &path, &key, json);
        }
    }
    Ok(Outcome::Clean)
}

/// A wallet's address and public key: two labelled lines, the bare address under `-q`, or
/// one JSON line.
fn print_wallet(g: &Global, path: &Path, key: &WriterKey, json: bool) {
    let address = Address::of(key);
    if json {
        println!(
            "{}",
            json!({"key_file": path.display().to_string(), "name": key.name(),
                   "address": address.to_hex(), "public_key": key.public().to_hex()})
        );
    } else if g.quiet {
        println!("{address}");
    } else {
        println!("address    {address}");
        println!("public key {}", key.public().to_hex());
    }
}
