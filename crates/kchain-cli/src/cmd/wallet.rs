//! `wallet`: ledger wallets, Ed25519 key files and their addresses.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Subcommand;
use kchain_core::WriterKey;
use kchain_ledger::Address;
use kchain_topic::{read_key_file, write_key_file};

use crate::global::Global;
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Generate a wallet key (an Ed25519 key file, mode 0600) and print its address.
    New {
        /// Where to write the key [default: <data-dir>/wallets/<name>.key].
        #[arg(long)]
        out: Option<PathBuf>,
        /// A name for the key.
        #[arg(long, default_value = "wallet")]
        name: String,
    },
    /// Print the address and public key of a wallet key file.
    Address {
        #[arg(long)]
        key: PathBuf,
    },
}

pub fn wallet(g: &Global, cmd: WalletCmd) -> Result<Outcome> {
    match cmd {
        WalletCmd::New { out, name } => {
            let path =
                out.unwrap_or_else(|| g.data_dir.join("wallets").join(format!("{name}.key")));
            if path.exists() {
                bail!(
                    "{} already exists; pass --out for a new file",
                    path.display()
                );
            }
            let key = WriterKey::generate(&name);
            write_key_file(&path, &key)?;
            println!(
                "wrote wallet key '{name}' to {} (mode 0600)",
                path.display()
            );
            println!("address    {}", Address::of(&key));
            println!("public key {}", key.public().to_hex());
        }
        WalletCmd::Address { key } => {
            let key = read_key_file(&key)?;
            println!("address    {}", Address::of(&key));
            println!("public key {}", key.public().to_hex());
        }
    }
    Ok(Outcome::Clean)
}
