//! The README's code blocks run as written: every ```sh block is extracted and run with bash
//! (`-euo pipefail`), in order, in one scratch directory, with the `kchain` under test first
//! on the PATH. Nothing in a block is substituted except the broker address of the Kafka
//! blocks (`localhost:9092` becomes the private test broker's).
//!
//! A block is marked by the HTML comment on the line before its fence:
//! - `<!-- readme-test: skip REASON -->`: not run (it needs a machine we do not have, such
//!   as a remote cluster, or is the test command itself);
//! - `<!-- readme-test: kafka -->`: run against the test broker, in a directory of its own.
//!
//! The quick tour and the sections after it also run a second time with `KCHAIN_BROKERS` set
//! to the test broker, so the same commands are checked on both backends.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One ```sh block of the README.
struct Block {
    line: usize,
    mark: Option<String>,
    text: String,
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(path).unwrap()
}

fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start() == "```sh" {
            let mark = i
                .checked_sub(1)
                .map(|p| lines[p].trim())
                .and_then(|l| l.strip_prefix("<!-- readme-test:"))
                .and_then(|l| l.strip_suffix("-->"))
                .map(|m| m.trim().to_owned());
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim_start() != "```" {
                end += 1;
            }
            out.push(Block {
                line: start,
                mark,
                text: lines[start..end].join("\n"),
            });
            i = end;
        }
        i += 1;
    }
    out
}

/// The directory of the `kchain` binary under test, for the PATH.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_kchain"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Runs one block in `dir`; panics with the block's line and its output when it fails.
fn run_block(block: &Block, dir: &Path, env: &[(&str, &str)], text: &str) {
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", text])
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("NO_COLOR", "1");
    for var in [
        "KCHAIN_DATA_DIR",
        "KCHAIN_CONFIG_DIR",
        "KCHAIN_KEY_FILE",
        "KCHAIN_TRUST",
        "KCHAIN_KEYRING",
        "KCHAIN_BROKERS",
        "KCHAIN_LEDGER",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "README block at line {} failed ({}):\n{}\n--- stdout\n{}\n--- stderr\n{}",
        block.line,
        out.status,
        text,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The blocks a backend-neutral run covers: every block that is neither skipped nor Kafka's.
fn tour(blocks: &[Block]) -> impl Iterator<Item = &Block> {
    blocks.iter().filter(|b| b.mark.is_none())
}

#[test]
fn every_block_is_run_or_says_why_not() {
    let text = readme();
    let all = blocks(&text);
    assert!(all.len() >= 5, "README blocks found: {}", all.len());
    for b in &all {
        if let Some(mark) = &b.mark {
            let known = mark == "kafka"
                || mark
                    .strip_prefix("skip ")
                    .is_some_and(|why| !why.trim().is_empty());
            assert!(
                known,
                "README line {}: unknown mark '{mark}' (kafka, or skip REASON)",
                b.line
            );
        }
    }
}

#[test]
fn the_readme_runs_on_the_embedded_log() {
    let text = readme();
    let all = blocks(&text);
    let dir = tempfile::tempdir().unwrap();
    for block in tour(&all) {
        run_block(block, dir.path(), &[], &block.text);
    }
}

#[cfg(feature = "kafka")]
mod kafka {
    use super::*;
    use kchain_testkit::Broker;

    /// The tour again with `KCHAIN_BROKERS` set: the same commands on Kafka.
    #[test]
    fn the_readme_tour_runs_on_kafka() {
        let text = readme();
        let all = blocks(&text);
        let broker = Broker::shared();
        let env = [("KCHAIN_BROKERS", broker.brokers.as_str())];
        let dir = tempfile::tempdir().unwrap();
        for block in tour(&all) {
            run_block(block, dir.path(), &env, &block.text);
        }
    }

    /// The Kafka section as a reader meets it: after the tour on the embedded log (its key,
    /// its pins of `orders`), on a broker of its own where `orders` is brand new.
    #[test]
    fn the_readme_kafka_section_runs_after_the_embedded_tour() {
        let text = readme();
        let all = blocks(&text);
        let broker = Broker::start("sqlite");
        let dir = tempfile::tempdir().unwrap();
        for block in tour(&all) {
            run_block(block, dir.path(), &[], &block.text);
        }
        for block in all.iter().filter(|b| b.mark.as_deref() == Some("kafka")) {
            let text = block.text.replace("localhost:9092", &broker.brokers);
            run_block(block, dir.path(), &[], &text);
        }
    }
}
