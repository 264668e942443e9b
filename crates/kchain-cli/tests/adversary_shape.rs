//! Attacks on what surrounds the records: the log's metadata (how many partitions a topic
//! has) and the integrity of stored batches. Each test builds the tampered data directory as
//! an attacker with disk access would (CRCs recomputed where the point is that they match),
//! and asserts the exit code, the finding's kind and where it is.

use std::fs;
use std::path::{Path, PathBuf};

mod support;

use support::Env;

fn setup(env: &Env) {
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders", "--partitions", "2"], "");
    let input: String = (0..100)
        .map(|i| format!("order-{}\t{{\"n\":{i}}}\n", i % 5))
        .collect();
    env.ok(&["produce", "orders", "-K", "\t", "--batch", "16"], &input);
}

fn partition_dir(env: &Env, p: u32) -> PathBuf {
    env.data().join(format!("topics/orders/{p}"))
}

fn first_segment(env: &Env, p: u32) -> PathBuf {
    partition_dir(env, p).join(format!("{:020}.log", 0))
}

/// `verify --json` as (exit code, report).
fn verify_json(env: &Env) -> (i32, serde_json::Value) {
    let out = env.run(&["verify", "orders", "--json"], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json printed no report ({e}): stdout {stdout:?}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

fn finding(report: &serde_json::Value, p: usize) -> (String, u64) {
    let f = &report["partitions"][p]["finding"];
    assert!(!f.is_null(), "partition {p} has no finding: {report}");
    (
        f["kind"].as_str().unwrap().to_owned(),
        f["offset"].as_u64().unwrap(),
    )
}

#[test]
fn a_partition_hidden_by_editing_topic_json_is_missing() {
    let env = Env::new();
    setup(&env);
    let pinned = env.ok(&["trust", "pin", "orders"], "");
    assert!(pinned.contains("pinned 2 partition(s)"), "{pinned}");
    assert_eq!(verify_json(&env).0, 0);

    // The attacker edits the topic's metadata so that the log reports one partition.
    let meta = env.data().join("topics/orders/topic.json");
    let text = fs::read_to_string(&meta).unwrap();
    let edited = text.replace("\"partitions\": 2", "\"partitions\": 1");
    assert_ne!(text, edited, "topic.json layout changed: {text}");
    fs::write(&meta, edited).unwrap();

    let (code, report) = verify_json(&env);
    assert_eq!(code, 3, "{report}");
    assert_eq!(
        report["partitions"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert!(report["partitions"][0]["finding"].is_null(), "{report}");
    assert_eq!(finding(&report, 1), ("partition_missing".into(), 0));
    let text = env.run(&["verify", "orders"], "");
    assert_eq!(text.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("partition_missing"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
}

#[test]
fn a_pinned_topic_deleted_from_the_log_is_all_missing_partitions() {
    let env = Env::new();
    setup(&env);
    env.ok(&["trust", "pin", "orders"], "");
    fs::remove_dir_all(env.data().join("topics/orders")).unwrap();
    let (code, report) = verify_json(&env);
    assert_eq!(code, 3, "{report}");
    for p in 0..2 {
        assert_eq!(finding(&report, p), ("partition_missing".into(), 0));
    }
    // Without a pin nothing says the topic existed: a plain error, as before.
    let bare = Env::new();
    bare.ok(&["keygen", "--name", "acme"], "");
    bare.ok(&["topic", "create", "other"], "");
    bare.error(&["verify", "orders"], "does not exist");
}

// --- raw segment surgery, as an attacker with disk access does it ------------------------

const HEADER: usize = 40;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// CRC32C (Castagnoli), bit by bit: the attacker's own, not the project's.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The batches of a segment as (file position, base offset, record count, payload length).
fn batches(seg: &[u8]) -> Vec<(usize, u64, u32, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + HEADER <= seg.len() {
        let len = be32(seg, pos + 20) as usize;
        out.push((pos, be64(seg, pos + 8), be32(seg, pos + 16), len));
        pos += HEADER + len;
    }
    out
}

/// Recomputes the payload and header CRCs of the batch at `pos`.
fn fix_crcs(seg: &mut [u8], pos: usize) {
    let len = be32(seg, pos + 20) as usize;
    let payload = crc32c(&seg[pos + HEADER..pos + HEADER + len]);
    seg[pos + 32..pos + 36].copy_from_slice(&payload.to_be_bytes());
    let header = crc32c(&seg[pos..pos + 36]);
    seg[pos + 36..pos + 40].copy_from_slice(&header.to_be_bytes());
}

/// The file position of the first value byte of the record at `offset`.
fn value_position(seg: &[u8], offset: u64) -> usize {
    for (pos, base, count, _) in batches(seg) {
        if offset < base || offset >= base + u64::from(count) {
            continue;
        }
        let mut at = pos + HEADER;
        for o in base.. {
            let body = be32(seg, at) as usize;
            if o == offset {
                let key_len = be32(seg, at + 12) as i32;
                return at + 16 + key_len.max(0) as usize + 4;
            }
            at += 4 + body;
        }
    }
    panic!("offset {offset} not in the segment");
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).unwrap();
    f(&mut bytes);
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupt_batch_is_a_finding_and_hides_no_other_partition() {
    let env = Env::new();
    setup(&env);
    // Partition 0: the value of offset 5 is edited and its batch's CRCs recomputed.
    edit(&first_segment(&env, 0), |seg| {
        let at = value_position(seg, 5);
        seg[at + 2] ^= 0x01;
        let pos = batches(seg)
            .into_iter()
            .find(|b| b.1 <= 5 && 5 < b.1 + u64::from(b.2))
            .unwrap()
            .0;
        fix_crcs(seg, pos);
    });
    // Partition 1: one byte of its first batch's payload flipped, CRCs left as they were;
    // good batches follow it.
    let corrupt_at = edit_first_batch_payload(&first_segment(&env, 1));

    let (code, report) = verify_json(&env);
    assert_eq!(code, 3, "{report}");
    assert_eq!(finding(&report, 0), ("payload_changed".into(), 5));
    assert_eq!(finding(&report, 1), ("corrupt".into(), corrupt_at));
    let (_, offset) = finding(&report, 1);
    assert_eq!(offset, 0);
    // The same with one thread and with many: every reader sees the same log.
    for threads in ["1", "4"] {
        let out = env.run(&["verify", "orders", "--json", "--threads", threads], "");
        assert_eq!(out.status.code(), Some(3));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(finding(&v, 1), ("corrupt".into(), 0), "{threads} threads");
    }
}

/// Flips one payload byte of the first batch; returns that batch's base offset.
fn edit_first_batch_payload(path: &Path) -> u64 {
    let mut base = None;
    edit(path, |seg| {
        let all = batches(seg);
        assert!(all.len() >= 2, "a good batch must follow the corrupt one");
        let (pos, b, _, _) = all[0];
        seg[pos + HEADER + 20] ^= 0x40;
        base = Some(b);
    });
    base.unwrap()
}

#[test]
fn a_bit_flip_in_the_last_batch_is_corrupt_and_nothing_is_cut() {
    let env = Env::new();
    setup(&env);
    let seg = first_segment(&env, 1);
    let (last_pos, last_base) = {
        let bytes = fs::read(&seg).unwrap();
        let last = *batches(&bytes).last().unwrap();
        (last.0, last.1)
    };
    edit(&seg, |bytes| bytes[last_pos + HEADER + 30] ^= 0x01);
    let before = fs::read(&seg).unwrap();

    let (code, report) = verify_json(&env);
    assert_eq!(code, 3, "{report}");
    assert_eq!(finding(&report, 1), ("corrupt".into(), last_base));
    assert!(report["partitions"][0]["finding"].is_null(), "{report}");

    // A writer refuses to append behind acknowledged records that no longer check, and
    // cuts nothing: the segment is byte for byte what it was.
    let out = env.run(&["produce", "orders", "-p", "1"], "more\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corruption"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&seg).unwrap(), before);
    let quarantined = fs::read_dir(partition_dir(&env, 1))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("quarantine")
        })
        .count();
    assert_eq!(quarantined, 0);
    assert_eq!(verify_json(&env).0, 3);
}

// --- the command line under a closed pipe and a missing directory -------------------------

#[test]
fn a_closed_pipe_ends_kchain_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let env = Env::new();
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders"], "");
    // Far more output than a pipe buffers (64 KiB), so that writing to the closed pipe fails.
    let input: String = (0..20_000).map(|i| format!("event number {i}\n")).collect();
    env.ok(&["produce", "orders"], &input);
    for args in [
        &["inspect", "orders", "-p", "0", "-c", "100000"][..],
        &["consume", "orders", "-e", "-e"][..],
    ] {
        let mut child = env.command(args).stdin(Stdio::null()).spawn().unwrap();
        // Read one byte, then close the pipe as `head -c 1` does.
        let mut out = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        let _ = out.read(&mut one);
        drop(out);
        let status = child.wait().unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(status.code(), Some(101), "{args:?}: {err}");
    }
}

#[test]
fn an_error_names_its_cause_once() {
    let env = Env::new();
    let out = env.run(
        &["verify", "orders", "--data-dir", "/nonexistent/kchain"],
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn an_emptied_partition_with_no_anchor_is_reported_plainly() {
    let env = Env::new();
    setup(&env);
    // Partition 1 emptied on disk: its segment removed and a fresh empty one left.
    let seg = first_segment(&env, 1);
    fs::write(&seg, b"").unwrap();
    let _ = fs::remove_file(seg.with_extension("index"));
    let out = env.run(&["verify", "orders"], "");
    // The warning is on standard error, where a user reading only the summary sees it.
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("no pin and no trusted checkpoint") && text.contains("trust pin orders"),
        "{text}"
    );
    // Pinned, the same deletion is a finding, and the warning is gone for what is anchored.
    let env = Env::new();
    setup(&env);
    env.ok(&["trust", "pin", "orders"], "");
    let (code, report) = verify_json(&env);
    assert_eq!(code, 0);
    assert!(
        !report["warnings"].to_string().contains("no pin"),
        "{report}"
    );
    let seg = first_segment(&env, 1);
    fs::write(&seg, b"").unwrap();
    let _ = fs::remove_file(seg.with_extension("index"));
    let (code, report) = verify_json(&env);
    assert_eq!(code, 3, "{report}");
    assert_eq!(finding(&report, 1).0, "truncated");
}

#[test]
fn a_writer_batch_longer_than_readers_accept_is_refused() {
    let env = Env::new();
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders"], "");
    env.error(
        &["produce", "orders", "--batch", "9000"],
        "--batch must be between 1 and 8192",
    );
}
