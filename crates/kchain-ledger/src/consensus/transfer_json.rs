//! A strict reader of a transfer's JSON in exactly the form kchain writes it
//! ([`crate::Transaction::write_json`]): the fields in that order, no whitespace, lower-case
//! hex of the exact lengths, numbers without leading zeros. Almost every transaction a
//! sealer reads was written by a kchain client in that form, and reading it this way skips
//! serde_json's general path (field names looked up, strings unescaped, each field an
//! `Option`).
//!
//! It only ever says "this is that form, with these values" or "not that form": anything
//! else (other field orders, spaces, upper-case hex, escapes, a data record, a malformed
//! document) is left to the general parser, which gives the same transaction for every
//! input read here and names the error for every input refused there.
//!
//! ```text
//! {"type":"transfer","chain":"<32 hex>","from":"<40 hex>","public_key":"<64 hex>",
//!  "to":"<40 hex>","amount":<u64>,"nonce":<u64>,"signature":"<128 hex>"}
//! ```

use kchain_core::hex::decode_lower_into;

/// The fields of a transfer read from its canonical JSON, as they stand (`from` is not yet
/// checked against the key).
pub(crate) struct CanonicalTransfer {
    pub chain: [u8; 16],
    pub from: [u8; 20],
    pub public_key: [u8; 32],
    pub to: [u8; 20],
    pub amount: u64,
    pub nonce: u64,
    pub signature: [u8; 64],
}

/// A cursor over the bytes, consuming expected pieces.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn literal(&mut self, piece: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(piece)?;
        Some(())
    }

    /// `N` bytes as `2 * N` lower-case hex digits, then the closing quote.
    fn hex<const N: usize>(&mut self) -> Option<[u8; N]> {
        let digits = self.0.get(..2 * N)?;
        let mut out = [0u8; N];
        if !decode_lower_into(digits, &mut out) {
            return None;
        }
        self.0 = &self.0[2 * N..];
        self.literal(b"\"")?;
        Some(out)
    }

    /// A JSON number that is a u64 spelled as kchain spells it: digits, no sign, no leading
    /// zero (but `0` itself), no fraction or exponent, not past `u64::MAX`.
    fn u64(&mut self) -> Option<u64> {
        let len = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 20 || (len > 1 && self.0[0] == b'0') {
            return None;
        }
        let mut n: u64 = 0;
        for &d in &self.0[..len] {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.0 = &self.0[len..];
        Some(n)
    }
}

/// Reads `json` when it is a transfer in exactly its canonical form; `None` otherwise.
pub(crate) fn parse(json: &[u8]) -> Option<CanonicalTransfer> {
    let mut c = Cursor(json);
    c.literal(br#"{"type":"transfer","chain":""#)?;
    let chain = c.hex()?;
    c.literal(br#","from":""#)?;
    let from = c.hex()?;
    c.literal(br#","public_key":""#)?;
    let public_key = c.hex()?;
    c.literal(br#","to":""#)?;
    let to = c.hex()?;
    c.literal(br#","amount":"#)?;
    let amount = c.u64()?;
    c.literal(br#","nonce":"#)?;
    let nonce = c.u64()?;
    c.literal(br#","signature":""#)?;
    let signature = c.hex()?;
    c.literal(b"}")?;
    c.0.is_empty().then_some(CanonicalTransfer {
        chain,
        from,
        public_key,
        to,
        amount,
        nonce,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_only_as_kchain_spells_them() {
        let n = |s: &str| Cursor(s.as_bytes()).u64();
        assert_eq!(n("0"), Some(0));
        assert_eq!(n("10,"), Some(10));
        assert_eq!(n("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "-1",
            "01",
            "00",
            "18446744073709551616",
            "99999999999999999999",
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }
}
