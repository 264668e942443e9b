//! One consumed record, as a JSON line or as the text `consume` prints in place of a value
//! that cannot be read.

use anyhow::Result;
use base64::Engine as _;
use kchain_core::{to_hex, Decryption, Item, H_ENC};
use kchain_topic::VerifiedRecord;
use serde_json::json;

use super::output::utc;

fn bytes_json(b: Option<&[u8]>) -> serde_json::Value {
    match b {
        None => serde_json::Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => json!(s),
            Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
        },
    }
}

/// One consumed record as JSON. An encrypted record says what became of it in `encryption`
/// (`decrypted`, `shredded`, `key_missing`, `decrypt_failed`) and has a `value` only when it
/// decrypted; its `kchain.enc` header is shown as `key_id`. `verified` is true (see
/// [`unverified_json`] for the records `--allow-unverified` adds).
pub fn record_json(p: u32, rec: &VerifiedRecord) -> Result<String> {
    let it = &rec.item;
    let headers = headers_json(&it.headers);
    let mut v = json!({
        "partition": p,
        "offset": rec.offset,
        "height": rec.height,
        "hash": to_hex(&rec.hash),
        "timestamp": it.timestamp_ms,
        "key": bytes_json(it.key.as_deref()),
        "verified": true,
    });
    if let Ok(value) = rec.value() {
        v["value"] = bytes_json(value);
    }
    v["headers"] = headers.into();
    let d = &rec.decryption;
    if *d != Decryption::Plain {
        v["encryption"] = json!(d.as_str());
        v["key_id"] = json!(d.key().map(|k| k.to_string()));
        match d {
            Decryption::Shredded { at_ms, .. } => v["shredded_ms"] = json!(at_ms),
            Decryption::Failed { why, .. } => v["detail"] = json!(why),
            _ => {}
        }
    }
    Ok(serde_json::to_string(&v)?)
}

/// A record shown although it did not verify (`consume --allow-unverified`): `verified`
/// false and the `finding` of its partition. An encrypted value is not decrypted (it is
/// ciphertext nobody vouches for): `encryption` says `not_decrypted` and there is no `value`.
pub fn unverified_json(p: u32, offset: u64, item: &Item, finding: &str) -> Result<String> {
    let encrypted = item.headers.iter().any(|(k, _)| k == H_ENC);
    let headers = headers_json(&item.headers);
    let mut v = json!({
        "partition": p,
        "offset": offset,
        "timestamp": item.timestamp_ms,
        "key": bytes_json(item.key.as_deref()),
        "verified": false,
        "finding": finding,
    });
    if encrypted {
        v["encryption"] = json!("not_decrypted");
    } else {
        v["value"] = bytes_json(item.value.as_deref());
    }
    v["headers"] = headers.into();
    Ok(serde_json::to_string(&v)?)
}

/// What the text form of `consume` prints in place of a value that cannot be read.
pub fn placeholder(d: &Decryption) -> String {
    match d {
        Decryption::Shredded { key, at_ms } => format!(
            "<shredded: encrypted under data key {key}, shredded {}>",
            utc(*at_ms)
        ),
        Decryption::MissingKey { key } => {
            format!("<encrypted: data key {key} is not in the keyring>")
        }
        Decryption::Failed {
            key: Some(key),
            why,
        } => {
            format!("<encrypted under data key {key}: does not decrypt: {why}>")
        }
        Decryption::Failed { key: None, why } => format!("<encrypted: does not decrypt: {why}>"),
        Decryption::Plain | Decryption::Decrypted { .. } => String::new(),
    }
}

/// A record's application headers as a JSON object (its `kchain.enc` header is shown apart,
/// as `key_id`).
fn headers_json(headers: &[(String, Vec<u8>)]) -> serde_json::Map<String, serde_json::Value> {
    headers
        .iter()
        .filter(|(k, _)| k != H_ENC)
        .map(|(k, v)| (k.clone(), bytes_json(Some(v))))
        .collect()
}
