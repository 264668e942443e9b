//! An archive made by kchain, read by an independent tlog-tiles client: the Go reference
//! implementation of transparency logs (golang.org/x/mod/sumdb/tlog and sumdb/note, from
//! Debian's golang-golang-x-mod-dev, installed by `scripts/go-env.sh` when missing). The Go
//! program (`crates/kchain-archive/tests/interop/main.go`) verifies the checkpoint's
//! signature with the writer's verifier key, recomputes the tree hash from the tiles, and
//! proves every entry of the entry bundles against the checkpoint's root. It is built here
//! in GOPATH mode against /usr/share/gocode: no network, no Go module download.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kchain_core::TrustFile;
use support::Env;

/// The repository's root (two levels above this crate).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the Go program into `dir` and returns its path.
fn build_tlogcheck(dir: &Path) -> PathBuf {
    let out = Command::new(root().join("scripts/go-env.sh"))
        .output()
        .expect("run scripts/go-env.sh");
    assert!(
        out.status.success(),
        "scripts/go-env.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let go = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let bin = dir.join("tlogcheck");
    let source = root().join("crates/kchain-archive/tests/interop/main.go");
    let out = Command::new(go)
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(&source)
        .current_dir(dir)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPROXY", "off")
        .output()
        .expect("go build");
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Runs the Go program on one chain of the archive: (success, its output).
fn tlogcheck(bin: &Path, chain_dir: &Path, vkey: &str) -> (bool, String) {
    let out = Command::new(bin)
        .arg(chain_dir)
        .arg(vkey)
        .output()
        .expect("run tlogcheck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn produce(env: &Env, from: usize, to: usize) {
    let input: String = (from..to).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    env.ok(
        &["produce", "orders", "--batch", "100", "--no-checkpoints"],
        &input,
    );
    env.ok(&["checkpoint", "publish", "orders"], "");
}

#[test]
fn the_go_reference_tlog_client_reads_the_archive_and_agrees() {
    let env = Env::new();
    env.ok(&["keygen", "--name", "acme"], "");
    let trust_path = env.config().join("trust.toml");
    let mut text = fs::read_to_string(&trust_path).unwrap();
    text.push_str("\n[policy]\nwitnesses = 0\n");
    fs::write(&trust_path, &text).unwrap();
    let trust = TrustFile::from_toml(&text).unwrap();
    let vkey = trust.trust.writer_verifiers("orders")[0].to_vkey();
    let bin = build_tlogcheck(env.dir.path());
    let archive = env.dir.path().join("a");
    let url = format!("file://{}", archive.display());
    let chain = archive.join("orders/0");

    // Three full level-0 tiles and a partial one, a partial level-1 tile; then an
    // incremental run that completes the partial tile and adds another.
    env.ok(&["topic", "create", "orders"], "");
    produce(&env, 0, 800);
    env.ok(&["archive", "orders", "--to", &url], "");
    let (ok, out) = tlogcheck(&bin, &chain, &vkey);
    assert!(ok, "{out}");
    assert!(out.starts_with("ok kchain/orders/0 800 "), "{out}");
    produce(&env, 800, 1100);
    env.ok(&["archive", "orders", "--to", &url], "");
    let (ok, out) = tlogcheck(&bin, &chain, &vkey);
    assert!(ok, "{out}");
    assert!(out.contains(" 1100 "), "{out}");

    // Go disagrees with a changed tile hash, a changed entry and another key.
    let tile = chain.join("tile/0/001");
    let good = fs::read(&tile).unwrap();
    let mut bad = good.clone();
    bad[40] ^= 1;
    fs::write(&tile, &bad).unwrap();
    let (ok, out) = tlogcheck(&bin, &chain, &vkey);
    assert!(!ok, "{out}");
    fs::write(&tile, &good).unwrap();
    let bundle = chain.join("tile/entries/002");
    let good = fs::read(&bundle).unwrap();
    let mut bad = good.clone();
    bad[2 + 34 * 7] ^= 1;
    fs::write(&bundle, &bad).unwrap();
    let (ok, out) = tlogcheck(&bin, &chain, &vkey);
    assert!(!ok && out.contains("entry 519"), "{out}");
    fs::write(&bundle, &good).unwrap();
    let other = kchain_core::NoteSigner::generate("acme").unwrap();
    let (ok, out) = tlogcheck(&bin, &chain, &other.verifier().to_vkey());
    assert!(!ok && out.contains("signature"), "{out}");
    assert!(tlogcheck(&bin, &chain, &vkey).0);
}
