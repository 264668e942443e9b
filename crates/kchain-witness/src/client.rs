//! The client side of the witness protocol: [`HttpWitness`], a [`RemoteWitness`] over HTTP.
//!
//! ```text
//!  add_checkpoint(note, proof_from):
//!    old = size remembered for the origin (0 at first)
//!    POST <url>/add-checkpoint  "old <old>\n" proof_from(old) "\n" note
//!      200 ──► cosignature lines; remember the note's size
//!      409 + text/x.tlog.size ──► old = the witness's size; resend once
//!      else ──► Refused { status, message }
//!  latest(origin): GET <url>/checkpoint/<origin>   200 ──► note, 404 ──► None
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use kchain_core::checkpoint::witness_wire::{
    parse_cosignature_lines, parse_size_body, AddCheckpoint, TLOG_SIZE_CONTENT_TYPE,
};
use kchain_core::{
    Checkpoint, NoteSignature, ProofFrom, RemoteWitness, RemoteWitnessError, SignedNote,
};
use kchain_http::{Client, Response};

/// The path of the newest cosigned checkpoint of `origin` under a witness's URL:
/// `/checkpoint/<origin>`, with every byte outside `A-Z a-z 0-9 - . _ ~ /` percent-encoded.
pub fn checkpoint_path(origin: &str) -> String {
    let mut path = String::from("/checkpoint/");
    for b in origin.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            path.push(b as char);
        } else {
            path += &format!("%{b:02X}");
        }
    }
    path
}

/// A witness at a URL (its submission and monitoring prefix, e.g. `https://w1.example`).
pub struct HttpWitness {
    url: String,
    client: Client,
    /// The size this witness last cosigned, per origin, as learned from its answers.
    sizes: Mutex<HashMap<String, u64>>,
}

impl HttpWitness {
    /// A witness at `url` (a trailing `/` is ignored), called with `client`.
    pub fn new(url: &str, client: Client) -> HttpWitness {
        HttpWitness {
            url: url.trim_end_matches('/').to_owned(),
            client,
            sizes: Mutex::new(HashMap::new()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn unreachable(&self, e: kchain_http::HttpError) -> RemoteWitnessError {
        RemoteWitnessError::Unreachable {
            witness: self.url.clone(),
            why: e.to_string(),
        }
    }

    fn refused(&self, r: &Response) -> RemoteWitnessError {
        let mut message = r.text().trim().to_owned();
        message.truncate(300);
        RemoteWitnessError::Refused {
            witness: self.url.clone(),
            status: r.status,
            message,
        }
    }

    fn malformed(&self, why: impl ToString) -> RemoteWitnessError {
        RemoteWitnessError::Malformed {
            witness: self.url.clone(),
            why: why.to_string(),
        }
    }

    fn submit(
        &self,
        note: &SignedNote,
        old_size: u64,
        proof_from: &ProofFrom<'_>,
    ) -> Result<Response, RemoteWitnessError> {
        let proof = if old_size == 0 {
            Vec::new()
        } else {
            proof_from(old_size).map_err(|why| RemoteWitnessError::NoProof {
                witness: self.url.clone(),
                old_size,
                why,
            })?
        };
        let body = AddCheckpoint {
            old_size,
            proof,
            checkpoint: note.clone(),
        }
        .to_body();
        let url = format!("{}/add-checkpoint", self.url);
        self.client
            .post(&url, "text/plain; charset=utf-8", &body)
            .map_err(|e| self.unreachable(e))
    }
}

impl RemoteWitness for HttpWitness {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn add_checkpoint(
        &self,
        note: &SignedNote,
        proof_from: &ProofFrom<'_>,
    ) -> Result<Vec<NoteSignature>, RemoteWitnessError> {
        let checkpoint = Checkpoint::parse(note.text()).map_err(|e| self.malformed(e))?;
        let known = self
            .sizes
            .lock()
            .expect("sizes")
            .get(checkpoint.origin())
            .copied();
        // A witness never goes backwards: what it held is at most this checkpoint's size.
        let mut old_size = known.filter(|s| *s <= checkpoint.size()).unwrap_or(0);
        let mut response = self.submit(note, old_size, proof_from)?;
        if response.status == 409 && is_size_body(&response) {
            old_size = parse_size_body(&response.body).map_err(|e| self.malformed(e))?;
            if old_size > checkpoint.size() {
                // The witness holds a newer checkpoint than this one: nothing to add.
                return Err(self.refused(&response));
            }
            response = self.submit(note, old_size, proof_from)?;
        }
        if response.status != 200 {
            if response.status == 409 && is_size_body(&response) {
                if let Ok(size) = parse_size_body(&response.body) {
                    self.sizes
                        .lock()
                        .expect("sizes")
                        .insert(checkpoint.origin().to_owned(), size);
                }
            }
            return Err(self.refused(&response));
        }
        let signatures =
            parse_cosignature_lines(note.text(), &response.body).map_err(|e| self.malformed(e))?;
        self.sizes
            .lock()
            .expect("sizes")
            .insert(checkpoint.origin().to_owned(), checkpoint.size());
        Ok(signatures)
    }

    fn latest(&self, origin: &str) -> Result<Option<SignedNote>, RemoteWitnessError> {
        let url = format!("{}{}", self.url, checkpoint_path(origin));
        let response = self.client.get(&url).map_err(|e| self.unreachable(e))?;
        match response.status {
            200 => SignedNote::parse(&response.body)
                .map(Some)
                .map_err(|e| self.malformed(e)),
            404 => Ok(None),
            _ => Err(self.refused(&response)),
        }
    }
}

fn is_size_body(r: &Response) -> bool {
    r.content_type
        .as_deref()
        .is_some_and(|t| t.split(';').next().unwrap_or("").trim() == TLOG_SIZE_CONTENT_TYPE)
}

#[cfg(test)]
mod tests {
    use super::checkpoint_path;

    #[test]
    fn origins_become_readable_paths() {
        assert_eq!(
            checkpoint_path("kchain/orders/0"),
            "/checkpoint/kchain/orders/0"
        );
        assert_eq!(
            checkpoint_path("example.com/a b+c"),
            "/checkpoint/example.com/a%20b%2Bc"
        );
    }
}
