//! Where output goes: notes on standard error, files or `-`, proof verdicts, and times.

use std::path::Path;

use anyhow::{Context, Result};

use crate::outcome::Outcome;

/// Prints `note` on stderr, once per process however often it is asked for.
/// Whether `-q` asked for silence on standard error (notes, progress).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets `-q` for the whole process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// True under `-q`.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn note_once(note: &str) {
    if quiet() {
        return;
    }
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if seen
        .lock()
        .map(|mut s| s.insert(note.to_owned()))
        .unwrap_or(true)
    {
        eprintln!("kchain: note: {note}");
    }
}

pub fn write_output(path: &Path, text: &str) -> Result<()> {
    if path == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Prints the verdict on a proof file (`--json`: `{"file", "ok", "result"}`): exit 0 when it
/// holds, 3 when it does not.
pub fn proof_outcome(file: &Path, json: bool, verdict: Result<String, String>) -> Outcome {
    let (ok, message) = match verdict {
        Ok(m) => (true, m),
        Err(m) => (false, format!("PROOF INVALID: {m}")),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "file": file.display().to_string(), "ok": ok, "result": message })
        );
    } else {
        println!("{message}");
    }
    if ok {
        Outcome::Clean
    } else {
        Outcome::Findings
    }
}

/// `ms` since the Unix epoch as an ISO 8601 UTC time to the second.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms").
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(-1_000), "1969-12-31T23:59:59Z");
    }
}
