//! Bearer tokens for the write endpoints, read from a TOML file:
//!
//! ```toml
//! [[token]]
//! name = "orders-service"      # names the token in logs and metrics, never the secret
//! token = "..."                # at least 16 characters
//! topics = ["orders"]          # chained topics it may write ("*" for all)
//! ledgers = ["bank"]           # ledgers it may submit to ("*" for all)
//! ```
//!
//! A request's token is compared with every configured token in constant time (SHA-256 of
//! both, then a comparison that does not stop at the first difference), so the answer time
//! says nothing about how much of a guess was right.

use std::path::Path;

use anyhow::{bail, Context, Result};
use kchain_http::axum::http::{header, HeaderMap, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::serve::error::ApiError;

/// What a write touches, for the token check.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    Topic(&'a str),
    Ledger(&'a str),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    token: String,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    ledgers: Vec<String>,
}

struct Token {
    name: String,
    digest: [u8; 32],
    topics: Vec<String>,
    ledgers: Vec<String>,
}

/// The configured tokens; none configured means every write is refused.
#[derive(Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

/// The shortest token accepted in the file.
const MIN_TOKEN_CHARS: usize = 16;

impl Tokens {
    /// Reads the tokens file; a token shorter than 16 characters, a duplicate name or an
    /// unknown field is an error naming the entry.
    pub fn read(path: &Path) -> Result<Tokens> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading tokens file {}", path.display()))?;
        let file: TokensFile =
            toml::from_str(&text).with_context(|| format!("tokens file {}", path.display()))?;
        let mut tokens = Vec::new();
        for (i, e) in file.token.into_iter().enumerate() {
            let at = format!(
                "tokens file {} entry {} ({})",
                path.display(),
                i + 1,
                e.name
            );
            if e.token.chars().count() < MIN_TOKEN_CHARS {
                bail!("{at}: token shorter than {MIN_TOKEN_CHARS} characters");
            }
            if tokens.iter().any(|t: &Token| t.name == e.name) {
                bail!("{at}: a second token named {}", e.name);
            }
            if e.topics.is_empty() && e.ledgers.is_empty() {
                bail!("{at}: allows nothing (give topics = [...] or ledgers = [...])");
            }
            tokens.push(Token {
                name: e.name,
                digest: Sha256::digest(e.token.as_bytes()).into(),
                topics: e.topics,
                ledgers: e.ledgers,
            });
        }
        Ok(Tokens { tokens })
    }

    /// Checks the request's `Authorization: Bearer ...` for a write to `scope`: 401 when
    /// there is none or it matches no token, 403 when the token may not write there.
    /// Returns the token's name.
    pub fn authorize(&self, headers: &HeaderMap, scope: Scope<'_>) -> Result<&str, ApiError> {
        let unauthorized =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m.to_owned());
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("this endpoint needs Authorization: Bearer <token>"))?;
        let digest: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        // Compare with every token, whatever matched, so that the time does not tell which.
        let mut found = None;
        for t in &self.tokens {
            if equal_32(&t.digest, &digest) {
                found = Some(t);
            }
        }
        let token = found.ok_or_else(|| unauthorized("the bearer token is not valid"))?;
        let (allowed, what, name) = match scope {
            Scope::Topic(n) => (&token.topics, "topic", n),
            Scope::Ledger(n) => (&token.ledgers, "ledger", n),
        };
        if allowed.iter().any(|a| a == "*" || a == name) {
            Ok(&token.name)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("token {} may not write to {what} {name}", token.name),
            ))
        }
    }
}

/// Equality of two digests without an early exit.
fn equal_32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Result<Tokens> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, text)?;
        Tokens::read(&path)
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn scopes_and_refusals() -> Result<()> {
        let t = tokens(
            "[[token]]\nname = \"w\"\ntoken = \"0123456789abcdef\"\ntopics = [\"orders\"]\n",
        )?;
        let ok = bearer("0123456789abcdef");
        assert_eq!(t.authorize(&ok, Scope::Topic("orders")).unwrap(), "w");
        let status = |r: Result<&str, ApiError>| r.unwrap_err().status.as_u16();
        assert_eq!(status(t.authorize(&ok, Scope::Topic("other"))), 403);
        assert_eq!(status(t.authorize(&ok, Scope::Ledger("orders"))), 403);
        assert_eq!(
            status(t.authorize(&bearer("0123456789abcdeX"), Scope::Topic("orders"))),
            401
        );
        assert_eq!(
            status(t.authorize(&HeaderMap::new(), Scope::Topic("orders"))),
            401
        );
        Ok(())
    }

    #[test]
    fn weak_or_empty_tokens_are_refused() {
        let short = tokens("[[token]]\nname = \"w\"\ntoken = \"short\"\ntopics = [\"*\"]\n");
        assert!(format!("{:#}", short.err().unwrap()).contains("shorter than 16"));
        let none = tokens("[[token]]\nname = \"w\"\ntoken = \"0123456789abcdef\"\n");
        assert!(format!("{:#}", none.err().unwrap()).contains("allows nothing"));
    }
}
