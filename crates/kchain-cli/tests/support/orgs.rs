//! Organisations as separate processes: a `kchain witness serve` of its own (own key, own
//! state, own trust file) over HTTPS, and the file operations an operator or an outsider
//! performs on the embedded log's directory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;

use kchain_http::TestPki;

use super::Env;

/// A `kchain witness serve` process, stopped when dropped.
pub struct Served {
    pub child: Child,
    /// `https://127.0.0.1:PORT`, as its listening line says.
    pub url: String,
    /// The witness's verifier key, for `trust add-witness`.
    pub vkey: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts witness `name` in its own directories, over HTTPS with `pki`'s certificate,
/// witnessing the writers of `trust` (a copy of the writer's trust file).
pub fn serve(name: &str, pki: &TestPki, trust: &Path) -> (Env, Served) {
    let env = Env::new();
    std::fs::create_dir_all(env.config()).unwrap();
    std::fs::copy(trust, env.config().join("trust.toml")).unwrap();
    let key = env.config().join("witness.key");
    let key_arg = key.to_str().unwrap();
    let keygen = [
        "-q",
        "--key-file",
        key_arg,
        "witness",
        "keygen",
        "--name",
        name,
    ];
    let vkey = env.ok(&keygen, "").trim().to_owned();
    let state = env.dir.path().join("state");
    let mut child = env
        .command(&[
            "--key-file",
            key_arg,
            "witness",
            "serve",
            "--state",
            state.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            pki.server.cert.to_str().unwrap(),
            "--tls-key",
            pki.server.key.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("witness serve printed {line:?}"))
        .trim()
        .to_owned();
    (env, Served { child, url, vkey })
}

/// Copies the files directly in `from` (a configuration directory: keys, trust file) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Copies the directory tree `from` (an embedded log's directory) to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Removes every checkpoints topic from the embedded log in `data`, so that a verifier of
/// it can only have its checkpoints from the witnesses.
pub fn delete_checkpoints_topic(data: &Path) {
    let mut dirs = vec![data.to_owned()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if !path.is_dir() {
                continue;
            }
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains("checkpoints")
            {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                dirs.push(path);
            }
        }
    }
}
