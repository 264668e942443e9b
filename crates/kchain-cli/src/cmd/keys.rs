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
    // A trust file that cannot be read fails the command before a key is written.
    let trust = match a.no_trust {
        true => None,
        false => Some(load_or_new_trust(g)?),
    };
    let key = WriterKey::generate(&a.name);
    write_key_file(&path, &key)?;
    let text = !a.json && !g.quiet;
    if g.quiet && !a.json {
        // The bare key to hand to verifiers, as `pubkey` prints it.
        match key.note_signer() {
            Ok(signer) => println!("{}", signer.verifier().to_vkey()),
            Err(_) => println!("{}", key.public().to_hex()),
        }
    }
    if text {
        println!(
            "wrote writer key '{}' to {} (mode 0600)",
            a.name,
            path.display()
        );
        println!("key id       {}", key.id());
        println!("public key   {}", key.public().to_hex());
        if let Ok(signer) = key.note_signer() {
            println!("verifier key {}", signer.verifier().to_vkey());
        }
    }
    let trusted_in = (!a.no_trust).then(|| g.trust_path());
    if let (Some(trust_path), Some(mut trust)) = (&trusted_in, trust) {
        trust.add_writer(TrustedWriter {
            name: a.name.clone(),
            key: key.public(),
            topics: a.topics.clone(),
        });
        write_trust_file(trust_path, &trust)?;
        if text {
            println!("trusted it in {}", trust_path.display());
        }
    }
    if a.json {
        println!(
            "{}",
            json!({"key_file": path.display().to_string(), "name": a.name,
                   "key_id": key.id().to_string(), "public_key": key.public().to_hex(),
                   "verifier_key": key.note_signer().ok().map(|s| s.verifier().to_vkey()),
                   "trusted_in": trusted_in.map(|p| p.display().to_string())})
        );
    }
    Ok(Outcome::Clean)
}

#[derive(Args, Debug)]
pub struct PubkeyArgs {
    /// Print the raw Ed25519 public key (64 hex digits) instead of the C2SP verifier key.
    #[arg(long, conflicts_with = "json")]
    pub hex: bool,
    /// Print the name, key id, verifier key and hex public key as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// `pubkey`: the C2SP verifier key `name+id+base64` of the writer key, which `trust add`
/// accepts under any name (checkpoint signatures are matched by key material).
pub fn pubkey(g: &Global, a: &PubkeyArgs) -> Result<Outcome> {
    let key = read_key_file(&g.key_path())?;
    let hex = key.public().to_hex();
    // A name that cannot name a C2SP key (an old key file's) leaves the hex form.
    let vkey = key.note_signer().ok().map(|s| s.verifier().to_vkey());
    if a.json {
        println!(
            "{}",
            json!({"name": key.name(), "key_id": key.id().to_string(), "verifier_key": vkey,
                   "public_key": hex})
        );
    } else if a.hex {
        println!("{hex}");
    } else {
        println!("{}", vkey.unwrap_or(hex));
    }
    Ok(Outcome::Clean)
}
