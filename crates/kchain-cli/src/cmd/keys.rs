//! `keygen` and `pubkey`: the writer key.

use anyhow::{bail, Result};
use clap::Args;
use kchain_core::{TrustedWriter, WriterKey};
use kchain_topic::files::{read_key_file, write_key_file, write_trust_file};
use serde_json::json;

use crate::cmd::trust::load_or_new_trust;
use crate::global::Global;
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// A name for the key (shown in the trust file).
    #[arg(long, default_value = "writer")]
    pub name: String,
    /// Only this topic may be written with the key (repeatable) [default: any topic].
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Do not add the key to the trust file.
    #[arg(long)]
    pub no_trust: bool,
    /// Print the key file, key id and public key as one JSON line.
    #[arg(long)]
    pub json: bool,
}

pub fn keygen(g: &Global, a: &KeygenArgs) -> Result<Outcome> {
    let path = g.key_path();
    if path.exists() {
        bail!(
            "key file {} already exists; remove it first or pass --key-file for a new one",
            path.display()
        );
    }
    let key = WriterKey::generate(&a.name);
    write_key_file(&path, &key)?;
    if !a.json {
        println!(
            "wrote writer key '{}' to {} (mode 0600)",
            a.name,
            path.display()
        );
        println!("key id     {}", key.id());
        println!("public key {}", key.public().to_hex());
    }
    let trusted_in = (!a.no_trust).then(|| g.trust_path());
    if let Some(trust_path) = &trusted_in {
        let mut trust = load_or_new_trust(g)?;
        trust.add_writer(TrustedWriter {
            name: a.name.clone(),
            key: key.public(),
            topics: a.topics.clone(),
        });
        write_trust_file(trust_path, &trust)?;
        if !a.json {
            println!("trusted it in {}", trust_path.display());
        }
    }
    if a.json {
        println!(
            "{}",
            json!({"key_file": path.display().to_string(), "name": a.name,
                   "key_id": key.id().to_string(), "public_key": key.public().to_hex(),
                   "trusted_in": trusted_in.map(|p| p.display().to_string())})
        );
    }
    Ok(Outcome::Clean)
}

pub fn pubkey(g: &Global) -> Result<Outcome> {
    let key = read_key_file(&g.key_path())?;
    println!("{}", key.public().to_hex());
    Ok(Outcome::Clean)
}
