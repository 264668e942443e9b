//! Replays the fuzz corpus on stable Rust: every file under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same check its fuzz target runs under
//! libFuzzer (from `kchain-fuzz-checks`, which the fuzz targets call too), so that `cargo test`
//! catches a decoder that starts to panic, loop or lose its round trip on an input once found.
//! See `docs/fuzzing.md`.

use kchain_fuzz_checks as checks;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_corpus_file_passes_its_check() {
    for (target, check) in checks::TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(target));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{target} is empty or missing"
        );
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        for path in corpus.iter().chain(&regressions) {
            let data =
                std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let run = std::panic::catch_unwind(|| check(&data));
            assert!(run.is_ok(), "{target}: {} fails its check", path.display());
        }
    }
}

#[test]
fn every_corpus_directory_names_a_target() {
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir)) else {
            continue;
        };
        for e in entries {
            let e = e.expect("entry");
            if !e.path().is_dir() {
                continue;
            }
            let name = e.file_name();
            let name = name.to_string_lossy();
            assert!(
                checks::TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{dir}/{name} has no target in kchain_fuzz_checks::TARGETS"
            );
        }
    }
}
