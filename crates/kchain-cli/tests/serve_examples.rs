//! The API's example clients in `examples/` (curl, Python with requests, Node.js with its
//! built-in fetch), each run against a `kchain serve` of its own topic: each creates the
//! topic, produces a batch, reads it back verified and verifies it, and exits 0.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::serve::Serving;
use support::Env;

const TOKEN: &str = "example-token-0123456789";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Runs `program args` with the server's URL, the token and `topic`; its standard output.
fn run_example(url: &str, topic: &str, program: &Path, args: &[PathBuf]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("KCHAIN_URL", url)
        .env("KCHAIN_TOKEN", TOKEN)
        .env("KCHAIN_TOPIC", topic)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?}: {}\n{stdout}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_example_clients_create_produce_consume_and_verify() {
    let k = Env::new();
    k.ok(&["keygen", "--name", "examples"], "");
    let tokens = k.dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!("[[token]]\nname = \"examples\"\ntoken = \"{TOKEN}\"\ntopics = [\"*\"]\n"),
    )
    .unwrap();
    let server = Serving::start(&k, &["--tokens", tokens.to_str().unwrap()]);
    let url = server.url.clone();
    let python = kchain_testkit::python();
    let runs = [
        ("curl", PathBuf::from("bash"), examples().join("curl.sh")),
        ("python", python, examples().join("client.py")),
        ("node", PathBuf::from("node"), examples().join("client.mjs")),
    ];
    for (topic, program, script) in runs {
        let out = run_example(&url, topic, &program, &[script]);
        assert!(out.contains("verify: ok=true entries=3"), "{topic}: {out}");
        assert!(out.contains("2 apples"), "{topic}: {out}");
        // And the topic holds what the client wrote, as the CLI reads it.
        let consumed = k.ok(&["consume", topic, "-e", "--json"], "");
        assert_eq!(consumed.lines().count(), 3, "{topic}: {consumed}");
        assert!(consumed.contains(r#"{"base64":"//4="}"#), "{consumed}");
    }
}
