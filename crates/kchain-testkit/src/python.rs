//! The Python that the interop tests run third-party Kafka clients with (kafka-python and
//! confluent-kafka): a virtual environment made by `scripts/py-env.sh`, which prints its
//! interpreter; `scripts/test.sh` passes that on as `KCHAIN_PYTHON`.

use std::path::PathBuf;
use std::process::Command;

/// The interop Python: `KCHAIN_PYTHON`, else the interpreter of the virtual environment
/// `scripts/py-env.sh` makes (`KCHAIN_VENV`, default `~/.cache/kchain/venv`).
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("KCHAIN_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = std::env::var_os("KCHAIN_VENV").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/kchain/venv")
        },
        PathBuf::from,
    );
    venv.join("bin/python")
}

/// Runs the interop Python with `args` and returns its standard output. Panics, with its
/// standard error, when it cannot start or exits non-zero.
pub fn run_python<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = Command::new(python())
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} (run scripts/py-env.sh): {e}",
                python().display()
            )
        });
    let printed = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(
        out.status.success(),
        "python {:?} ({}): {}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        out.status,
        printed(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python printed UTF-8")
}
