//! `consume`'s text output in kcat's terms: the value alone, `KEY DELIM VALUE` with `-K`, or
//! a `-f` format string with kcat's tokens:
//!
//! ```text
//! %t topic  %p partition  %o offset  %T timestamp (ms)  %k key  %s value  %h headers
//! %K key length  %S value length (-1 when null)  %%  and the escapes \n \r \t \\
//! ```
//!
//! A record that did not verify (shown only with `--allow-unverified`) is prefixed with
//! [`UNVERIFIED`], whatever the format, so that no script mistakes it for a verified one.

use std::fmt::Write as _;

/// The prefix of a record shown although it did not verify.
pub const UNVERIFIED: &str = "[UNVERIFIED] ";

/// One record as the text output shows it; the value is already the text to print (the
/// plaintext, or a placeholder for a value that cannot be read).
pub struct Shown<'a> {
    pub topic: &'a str,
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(String, Vec<u8>)],
    pub verified: bool,
}

/// How `consume` prints a record as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextFormat {
    /// The value and a newline.
    Value,
    /// The key, DELIM, the value and a newline (kcat's `-K`).
    KeyValue(String),
    /// A kcat `-f` format string, its escapes already decoded; no newline is added.
    Format(Vec<Token>),
}

/// One piece of a `-f` format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Text(String),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
    KeyLen,
    ValueLen,
}

impl TextFormat {
    /// The format of `-f FORMAT`, else `-K DELIM`, else the value alone.
    pub fn new(format: Option<&str>, key_delimiter: Option<&str>) -> Result<Self, String> {
        Ok(match (format, key_delimiter) {
            (Some(f), _) => TextFormat::Format(parse(f)?),
            (None, Some(d)) => TextFormat::KeyValue(unescape(d)),
            (None, None) => TextFormat::Value,
        })
    }

    /// `rec` as this format prints it (with its newline, except for `-f`).
    pub fn render(&self, rec: &Shown) -> Vec<u8> {
        let mut out = Vec::new();
        if !rec.verified {
            out.extend_from_slice(UNVERIFIED.as_bytes());
        }
        match self {
            TextFormat::Value => {
                out.extend_from_slice(rec.value.unwrap_or_default());
                out.push(b'\n');
            }
            TextFormat::KeyValue(d) => {
                out.extend_from_slice(rec.key.unwrap_or_default());
                out.extend_from_slice(d.as_bytes());
                out.extend_from_slice(rec.value.unwrap_or_default());
                out.push(b'\n');
            }
            TextFormat::Format(tokens) => {
                for t in tokens {
                    render_token(t, rec, &mut out);
                }
            }
        }
        out
    }
}

fn render_token(t: &Token, rec: &Shown, out: &mut Vec<u8>) {
    let len = |b: Option<&[u8]>| b.map_or("-1".to_owned(), |b| b.len().to_string());
    match t {
        Token::Text(s) => out.extend_from_slice(s.as_bytes()),
        Token::Topic => out.extend_from_slice(rec.topic.as_bytes()),
        Token::Partition => out.extend_from_slice(rec.partition.to_string().as_bytes()),
        Token::Offset => out.extend_from_slice(rec.offset.to_string().as_bytes()),
        Token::Timestamp => out.extend_from_slice(rec.timestamp_ms.to_string().as_bytes()),
        Token::Key => out.extend_from_slice(rec.key.unwrap_or_default()),
        Token::Value => out.extend_from_slice(rec.value.unwrap_or_default()),
        Token::KeyLen => out.extend_from_slice(len(rec.key).as_bytes()),
        Token::ValueLen => out.extend_from_slice(len(rec.value).as_bytes()),
        Token::Headers => {
            // kcat: name=value pairs separated by commas.
            let mut s = String::new();
            for (i, (n, v)) in rec.headers.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(s, "{sep}{n}={}", String::from_utf8_lossy(v));
            }
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Parses a `-f` format string into tokens; an unknown `%x` is an error (kcat's too).
fn parse(format: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut chars = unescape(format).chars().collect::<Vec<_>>().into_iter();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let token = match chars.next() {
            Some('%') => {
                text.push('%');
                continue;
            }
            Some('t') => Token::Topic,
            Some('p') => Token::Partition,
            Some('o') => Token::Offset,
            Some('T') => Token::Timestamp,
            Some('k') => Token::Key,
            Some('s') => Token::Value,
            Some('h') => Token::Headers,
            Some('K') => Token::KeyLen,
            Some('S') => Token::ValueLen,
            Some(x) => {
                return Err(format!(
                    "-f: unknown token %{x} (known: %t %p %o %T %k %s %h %K %S %%)"
                ))
            }
            None => return Err("-f: a format string cannot end with a lone %".into()),
        };
        if !text.is_empty() {
            tokens.push(Token::Text(std::mem::take(&mut text)));
        }
        tokens.push(token);
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
    Ok(tokens)
}

/// Decodes the escapes `\n`, `\r`, `\t` and `\\` (a shell passes them literally).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(x) => {
                out.push('\\');
                out.push(x);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown<'a>(headers: &'a [(String, Vec<u8>)], verified: bool) -> Shown<'a> {
        Shown {
            topic: "t",
            partition: 2,
            offset: 7,
            timestamp_ms: 1000,
            key: Some(b"k1"),
            value: Some(b"hello"),
            headers,
            verified,
        }
    }

    #[test]
    fn kcat_tokens_and_escapes() {
        let h = [
            ("a".to_owned(), b"1".to_vec()),
            ("b".to_owned(), b"2".to_vec()),
        ];
        let f = TextFormat::new(Some(r"%t/%p@%o %T %k=%s [%h] %K %S 100%%\n"), None).unwrap();
        let out = f.render(&shown(&h, true));
        assert_eq!(out, b"t/2@7 1000 k1=hello [a=1,b=2] 2 5 100%\n");
        let kv = TextFormat::new(None, Some(r"\t")).unwrap();
        assert_eq!(kv.render(&shown(&[], true)), b"k1\thello\n");
        assert_eq!(
            TextFormat::Value.render(&shown(&[], false)),
            b"[UNVERIFIED] hello\n"
        );
        assert!(TextFormat::new(Some("%x"), None).is_err());
        assert!(TextFormat::new(Some("50%"), None).is_err());
    }
}
