//! The runnable examples do what their docs say: `produce` appends lines of standard input to
//! a chained topic and `verify` verifies it (exit 0), on the embedded log.
//!
//! `cargo test` builds the examples beside the test binaries (`target/<profile>/examples/`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join(name)
}

#[test]
fn produce_then_verify() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let mut child = Command::new(example("produce"))
        .args([data.to_str().unwrap(), "orders"])
        .current_dir(work.path())
        .env_remove("KCHAIN_BROKERS")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the produce example is built by cargo test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"order-1:{\"amount\":12}\norder-2:{\"amount\":7}\nno key at all\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "produce: {err}");
    assert!(err.contains("records at offsets"), "{err}");

    let out = Command::new(example("verify"))
        .args([data.to_str().unwrap(), "orders"])
        .current_dir(work.path())
        .env_remove("KCHAIN_BROKERS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "verify: {text}");
    let entries: u64 = text
        .lines()
        .filter_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(entries, 3, "{text}");
}

#[test]
fn verify_names_a_missing_writer_key() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(example("verify"))
        .args(["data", "orders"])
        .current_dir(work.path())
        .env_remove("KCHAIN_BROKERS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
