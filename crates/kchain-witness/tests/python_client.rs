//! The witness against a client written independently in Python from the C2SP texts
//! (tests/tlog_witness_client.py): every status, and cosignatures that verify by the spec.
//! Needs the interop venv (`scripts/py-env.sh`, which scripts/test.sh runs).

use std::sync::Arc;

use kchain_http::ServerOptions;
use kchain_testkit::python;
use kchain_witness::{KnownLogs, StateStore, WitnessService};

fn script() -> String {
    format!(
        "{}/tests/tlog_witness_client.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run_python(args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} (run scripts/py-env.sh): {e}",
                python().display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn an_independent_python_client_sees_every_status_and_valid_cosignatures() {
    let dir = tempfile::tempdir().unwrap();
    let py = dir.path().to_str().unwrap();
    let log = run_python(&["keygen", py]);
    let (origin, key) = KnownLogs::parse_arg(log.trim()).unwrap();
    let mut logs = KnownLogs::new();
    logs.add(&origin, key);

    let cosigner = kchain_core::Cosigner::generate("witness.example/py").unwrap();
    let vkey = cosigner.verifier().to_vkey();
    let store = StateStore::open(&dir.path().join("state")).unwrap();
    let service = Arc::new(WitnessService::new(cosigner, logs, store));
    let server = kchain_witness::serve(&ServerOptions::new("127.0.0.1:0"), service).unwrap();

    let out = run_python(&["run", py, &server.url(), &vkey]);
    assert!(out.contains("all checks passed"), "{out}");
    for status in ["400", "404", "403", "409", "422", "200"] {
        assert!(
            out.contains(&format!("ok {status} ")),
            "{status} not checked:\n{out}"
        );
    }
}
