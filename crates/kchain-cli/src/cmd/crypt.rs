//! `key new`, `key list` and `key shred`: the data keys of encrypted values in the keyring
//! file, and how `produce`, `consume` and `verify` find the keyring. Nothing here ever prints
//! a secret.

use std::path::Path;

use anyhow::{bail, Result};
use clap::Subcommand;
use kchain_core::{DataKey, DataKeyId, KeyEntry, Keyring};
use kchain_topic::{
    files::{read_keyring_file, update_keyring_file},
    TopicError,
};
use serde_json::json;

use crate::global::{now_ms, Global};
use crate::outcome::Outcome;
use crate::report::utc;

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Add a new data key to the keyring (created with mode 0600 if missing). It becomes the
    /// newest: `produce --encrypt` uses it from now on, and older keys still decrypt older
    /// records (rotation).
    New,
    /// List the keyring's data keys: ids, when made, which is newest, which are shredded.
    List {
        /// Print the keys as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Shred a data key: its secret leaves the keyring, and every record encrypted under it
    /// reads as shredded while the chain still verifies. Copies and backups of the keyring
    /// still hold the key: destroy them too.
    Shred {
        /// The key id, 16 hex digits as `kchain key list` shows it.
        id: String,
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

pub fn key(g: &Global, cmd: KeyCmd) -> Result<Outcome> {
    let path = g.keyring_path();
    match cmd {
        KeyCmd::New => {
            let key = DataKey::generate(now_ms())?;
            let id = key.id();
            update_keyring_file(&path, true, |ring| {
                ring.add(key).map_err(|source| TopicError::Keyring {
                    path: path.clone(),
                    source,
                })
            })?;
            println!("added data key {id} to {} (mode 0600)", path.display());
            println!(
                "produce --encrypt uses it from now on; older keys still decrypt older records"
            );
        }
        KeyCmd::List { json } => return list(&existing(&path)?, json),
        KeyCmd::Shred { id, yes } => {
            let id = DataKeyId::from_hex(&id)?;
            let active = existing(&path)?
                .entries()
                .iter()
                .any(|e| matches!(e, KeyEntry::Active(k) if k.id() == id));
            // Only a key that would be destroyed needs a yes; the rest says what is wrong.
            if active && !yes && !confirm_shred(id, &path)? {
                println!("data key {id} not shredded");
                return Ok(Outcome::Clean);
            }
            let now = now_ms();
            let shredded = update_keyring_file(&path, false, |ring| {
                ring.shred(id, now).map_err(|source| TopicError::Keyring {
                    path: path.clone(),
                    source,
                })
            })?;
            if shredded {
                println!(
                    "shredded data key {id} in {}: records encrypted under it can no longer be \
                     decrypted; their chain still verifies",
                    path.display()
                );
                println!(
                    "destroy every copy and backup of this keyring too: they still hold the key"
                );
            } else {
                println!("data key {id} was already shredded in {}", path.display());
            }
        }
    }
    Ok(Outcome::Clean)
}

fn list(ring: &Keyring, json: bool) -> Result<Outcome> {
    let newest = ring.newest().map(DataKey::id);
    let rows = ring.entries().iter().map(|e| match e {
        KeyEntry::Active(k) => (k.id(), Some(k.created_ms()), None),
        KeyEntry::Shredded {
            id,
            created_ms,
            shredded_ms,
        } => (*id, *created_ms, Some(*shredded_ms)),
    });
    if json {
        let v: Vec<_> = rows
            .map(|(id, created, shredded)| {
                json!({
                    "id": id.to_string(),
                    "created_ms": created,
                    "state": if shredded.is_some() { "shredded" } else { "active" },
                    "shredded_ms": shredded,
                    "newest": Some(id) == newest,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(Outcome::Clean);
    }
    println!("{:<16}  {:<20}  state", "id", "created");
    for (id, created, shredded) in rows {
        let state = match shredded {
            Some(at) => format!("shredded {}", utc(at)),
            None if Some(id) == newest => "active, newest (encrypts new records)".into(),
            None => "active".into(),
        };
        let created = created.map(utc).unwrap_or_else(|| "-".into());
        println!("{id}  {created:<20}  {state}");
    }
    Ok(Outcome::Clean)
}

/// Asks on the terminal whether to shred `id`; refuses to guess when standard input is not
/// a terminal (a script must say `--yes`: shredding cannot be undone).
fn confirm_shred(id: DataKeyId, path: &Path) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to shred data key {id} without confirmation: standard input is not a \
             terminal; pass --yes to shred it (this cannot be undone)"
        );
    }
    eprint!(
        "shred data key {id} in {}? Records encrypted under it can never be read again [y/N] ",
        path.display()
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Reads the keyring at `path`, with a hint when there is none.
fn existing(path: &Path) -> Result<Keyring> {
    if !path.exists() {
        bail!(
            "no keyring at {}: run `kchain key new` to create one, or pass --keyring FILE",
            path.display()
        );
    }
    Ok(read_keyring_file(path)?)
}

/// The key `produce --encrypt` writes under: the keyring's newest active key.
pub(crate) fn writing_key(g: &Global) -> Result<DataKey> {
    let path = g.keyring_path();
    match existing(&path)?.newest() {
        Some(k) => Ok(k.clone()),
        None => bail!(
            "keyring {} has no active data key (none, or all shredded): run `kchain key new`",
            path.display()
        ),
    }
}

/// The keyring `consume` decrypts with: the one `--keyring` names (which must exist), else
/// the default one if there is one.
pub(crate) fn reading_keyring(g: &Global) -> Result<Option<Keyring>> {
    let path = g.keyring_path();
    if g.keyring.is_none() && !path.exists() {
        return Ok(None);
    }
    existing(&path).map(Some)
}

/// The keyring `verify` decrypts with: only one named by `--keyring` (or `KCHAIN_KEYRING`);
/// without it, verify checks the chain alone, which needs no key.
pub(crate) fn verify_keyring(g: &Global) -> Result<Option<Keyring>> {
    match &g.keyring {
        Some(path) => existing(path).map(Some),
        None => Ok(None),
    }
}
