//! What `kchain` prints for an error: one line, each cause once, with the path it concerns
//! and a fix that fits (for an unknown topic, the closest existing name).
//!
//! ```text
//! anyhow chain ──► error_line: causes joined by ": ", a cause already said dropped,
//!                  a multi-line cause (a TOML snippet) folded into one line
//!              ──► error_text: + "did you mean 'orders'?" for an unknown topic
//! ```

use crate::global::{open_log, Global};

/// An error and its causes on one line, each cause once: library errors often include their
/// source in their own message, and anyhow's chain would print it a second time.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = one_line(&cause.to_string());
        if line.ends_with(&text) || line.contains(&format!("{text}: ")) {
            continue;
        }
        let last = line.rsplit(": ").next().unwrap_or_default().to_owned();
        // "data directory D" then "opening data directory D: ...": the cause says it all.
        if !last.is_empty() && text.contains(&last) {
            line.truncate(line.len() - last.len());
            line.push_str(&text);
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    said_once(&line)
}

/// `line` without a segment that only repeats the start of the one before it: "trust file
/// F: trust file: writer 'a'" says "trust file" once.
fn said_once(line: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for seg in line.split(": ") {
        let repeats = kept
            .last()
            .is_some_and(|prev| prev.len() > seg.len() && prev.starts_with(&format!("{seg} ")));
        if !repeats {
            kept.push(seg);
        }
    }
    kept.join(": ")
}

/// A message of several lines on one: a TOML parser's snippet (`  |`, `1 | bad = [`, `^`)
/// is left out, and the remaining lines are joined ("invalid array, expected `]`").
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_snippet(l))
        .collect();
    match lines.split_first() {
        None => String::new(),
        Some((first, [])) => (*first).to_owned(),
        Some((first, rest)) if first.ends_with(')') || first.ends_with(':') => {
            format!("{} {}", first, rest.join(", "))
        }
        Some((first, rest)) => format!("{first}: {}", rest.join(", ")),
    }
}

/// A line of a source snippet: `|`, `1 | text`, or a caret line `^^^`.
fn is_snippet(line: &str) -> bool {
    let gutter = line
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start();
    gutter.starts_with('|') || line.chars().all(|c| c == '^' || c == ' ')
}

/// [`error_line`], with the closest existing topic when the error is an unknown topic, and
/// what to do when a read stalled.
pub fn error_text(g: &Global, e: &anyhow::Error) -> String {
    let line = error_line(e);
    if line.contains("opening data directory") && line.contains("(os error 2)") {
        return format!(
            "{line}: create it with `kchain topic create TOPIC`, or pass --data-dir DIR (or -b \
             BROKERS for Kafka)"
        );
    }
    if line.contains("reading stalled at offset") {
        let busy = if g.brokers.is_some() {
            "the broker may be slow or busy (tansu's sqlite engine is slow to fetch from large \
             partitions): wait longer with --timeout SECS, "
        } else {
            "wait longer with --timeout SECS, "
        };
        return format!("{line}; {busy}or check that the log is healthy (`kchain topic list`)");
    }
    match unknown_topic(&line).and_then(|t| closest_topic(g, t)) {
        Some(best) => {
            let cut = line.find(" (create it with").unwrap_or(line.len());
            format!("{}: did you mean '{best}'?", &line[..cut])
        }
        None => line,
    }
}

/// The name in "topic 'NAME' does not exist".
fn unknown_topic(line: &str) -> Option<&str> {
    let start = line.find("topic '")? + "topic '".len();
    let len = line[start..].find("' does not exist")?;
    Some(&line[start..start + len])
}

/// The existing topic nearest to `name` by edit distance, if one is near enough to be a
/// typo (at most a third of the name's length, at least 1, at most 3 edits).
fn closest_topic(g: &Global, name: &str) -> Option<String> {
    let log = open_log(g, false).ok()?;
    let limit = (name.chars().count() / 3).clamp(1, 3);
    log.list_topics()
        .ok()?
        .into_iter()
        .map(|t| (edit_distance(name, &t.name), t.name))
        .filter(|(d, n)| *d <= limit && n != name)
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("ordrs", "orders"), 1);
        assert_eq!(edit_distance("order", "orders"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn lines_say_each_cause_once() {
        let e = anyhow::anyhow!("TOML parse error at line 1, column 9\n  |\n1 | bad = [\n  |         ^\ninvalid array\nexpected `]`\n")
            .context("trust file bad.toml");
        assert_eq!(
            error_line(&e),
            "trust file bad.toml: TOML parse error at line 1, column 9: invalid array, expected `]`"
        );
        let e = anyhow::anyhow!("trust file: writer 'a': invalid public key")
            .context("trust file t.toml");
        assert_eq!(
            error_line(&e),
            "trust file t.toml: writer 'a': invalid public key"
        );
        let e = anyhow::anyhow!("opening data directory d: No such file or directory (os error 2)")
            .context("data directory d");
        assert_eq!(
            error_line(&e),
            "opening data directory d: No such file or directory (os error 2)"
        );
        assert_eq!(
            unknown_topic("topic 'ordrs' does not exist (x)"),
            Some("ordrs")
        );
    }
}
