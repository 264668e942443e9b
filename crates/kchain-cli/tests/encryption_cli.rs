//! Encrypted values end to end through the `kchain` binary: data keys, `produce --encrypt`,
//! rotation, shredding, `consume` and `verify --keyring` with their exit codes, the keyring's
//! file mode, and that no secret ever reaches standard output or standard error.

use std::path::{Path, PathBuf};
use std::process::Output;

mod support;

use base64::Engine as _;
use support::Env;

/// Every byte the commands of a test printed, to search for secrets at the end.
#[derive(Default)]
struct Printed(Vec<u8>);

impl Printed {
    fn run(&mut self, env: &Env, args: &[&str], stdin: &str) -> Output {
        let out = env.run(args, stdin);
        self.0.extend_from_slice(&out.stdout);
        self.0.extend_from_slice(&out.stderr);
        out
    }

    /// Runs a command that must exit with `code`; returns its standard output.
    fn code(&mut self, env: &Env, args: &[&str], stdin: &str, code: i32) -> String {
        let out = self.run(env, args, stdin);
        assert_eq!(
            out.status.code(),
            Some(code),
            "kchain {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn ok(&mut self, env: &Env, args: &[&str], stdin: &str) -> String {
        self.code(env, args, stdin, 0)
    }

    /// Runs a command that must fail (exit 1) with `needle` in its one line of error.
    fn error(&mut self, env: &Env, args: &[&str], needle: &str) {
        let out = self.run(env, args, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "kchain {args:?}: {err}");
        // Besides the line naming the backend.
        let lines = err
            .lines()
            .filter(|l| !l.starts_with("kchain: embedded log "))
            .count();
        assert_eq!(lines, 1, "one line: {err}");
        assert!(
            err.contains(needle),
            "kchain {args:?}: '{needle}' not in: {err}"
        );
    }
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn keyring(env: &Env) -> PathBuf {
    env.config().join("keyring.toml")
}

/// The base64 secrets in a keyring file's text.
fn secrets_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("secret = \""))
        .map(|l| l.trim_end_matches('"').to_owned())
        .collect()
}

/// Every form in which a secret could leak, each with a name that does not show it: raw
/// bytes, base64 (standard and URL-safe, with and without padding), lower- and upper-case
/// hex, Rust's `{:?}` of the bytes, and 12-byte pieces of it.
fn leak_forms(raw: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let b64 = STANDARD.encode(raw);
    vec![
        ("raw bytes", raw.to_vec()),
        ("base64", b64.clone().into_bytes()),
        (
            "base64 without padding",
            STANDARD_NO_PAD.encode(raw).into_bytes(),
        ),
        ("URL-safe base64", URL_SAFE.encode(raw).into_bytes()),
        (
            "URL-safe base64 without padding",
            URL_SAFE_NO_PAD.encode(raw).into_bytes(),
        ),
        ("hex", hex::encode(raw).into_bytes()),
        ("upper-case hex", hex::encode_upper(raw).into_bytes()),
        ("Debug of the bytes", format!("{raw:?}").into_bytes()),
        ("the first 16 base64 digits", b64.as_bytes()[..16].to_vec()),
        (
            "16 base64 digits from the middle",
            b64.as_bytes()[20..36].to_vec(),
        ),
        (
            "the first 12 bytes in hex",
            hex::encode(&raw[..12]).into_bytes(),
        ),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn rotate_shred_consume_and_verify_without_ever_printing_a_secret() {
    let env = Env::new();
    let mut p = Printed::default();
    p.ok(&env, &["keygen", "--name", "acme"], "");
    p.ok(&env, &["topic", "create", "orders"], "");

    // A first data key; the keyring is private.
    let out = p.ok(&env, &["key", "new"], "");
    assert!(out.contains("(mode 0600)"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keyring(&env))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let first =
        serde_json::from_str::<serde_json::Value>(&p.ok(&env, &["key", "list", "--json"], ""))
            .unwrap()[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();

    let batch1: String = (0..5)
        .map(|i| format!("k{i}:{{\"secret-order\":{i}}}\n"))
        .collect();
    let out = p.ok(
        &env,
        &["produce", "orders", "-K", ":", "--encrypt"],
        &batch1,
    );
    assert!(
        out.contains(&format!("encrypted under data key {first}")),
        "{out}"
    );
    // Stored encrypted: the plaintext is nowhere in the log's files.
    for f in files_under(&env.data().join("topics")) {
        assert!(
            !contains(&std::fs::read(&f).unwrap(), b"secret-order"),
            "{}",
            f.display()
        );
    }
    // consume decrypts; the text form is the plaintext, the JSON form says so.
    let text = p.ok(&env, &["consume", "orders", "-e"], "");
    assert_eq!(
        text,
        batch1
            .lines()
            .map(|l| format!("{}\n", &l[3..]))
            .collect::<String>()
    );
    for r in json_lines(&p.ok(&env, &["consume", "orders", "-e", "--json"], "")) {
        assert_eq!(r["encryption"], "decrypted");
        assert_eq!(r["key_id"], first.as_str());
        assert!(r["value"].as_str().unwrap().contains("secret-order"));
        assert!(r["headers"].as_object().unwrap().is_empty(), "{r}");
    }

    // Rotation: a second key is newest and encrypts what follows; plain records mix in.
    p.ok(&env, &["key", "new"], "");
    let keys: serde_json::Value =
        serde_json::from_str(&p.ok(&env, &["key", "list", "--json"], "")).unwrap();
    let second = keys[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (keys[0]["newest"].clone(), keys[1]["newest"].clone()),
        (false.into(), true.into())
    );
    let batch2 = "k5:{\"secret-order\":5}\nk6:{\"secret-order\":6}\n";
    let out = p.ok(&env, &["produce", "orders", "-K", ":", "--encrypt"], batch2);
    assert!(out.contains(&second), "{out}");
    p.ok(&env, &["produce", "orders", "-K", ":"], "k7:not secret\n");
    let recs = json_lines(&p.ok(&env, &["consume", "orders", "-e", "--json"], ""));
    assert_eq!(recs.len(), 8);
    assert_eq!(recs[5]["key_id"], second.as_str());
    assert_eq!(recs[0]["key_id"], first.as_str());
    assert!(recs[7].get("encryption").is_none(), "{}", recs[7]);
    assert_eq!(recs[7]["value"], "not secret");

    // Verify needs no key; with the keyring it decrypts every record too.
    p.ok(&env, &["verify", "orders"], "");
    let kr = keyring(&env);
    let kr = kr.to_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&p.ok(&env, &["verify", "orders", "--keyring", kr, "--json"], ""))
            .unwrap();
    let e = &v["partitions"][0]["encryption"];
    assert_eq!(
        (e["decrypted"].as_u64(), e["plain"].as_u64()),
        (Some(7), Some(1))
    );
    let secrets = secrets_in(&keyring(&env));
    assert_eq!(secrets.len(), 2);

    // A copy of the keyring without the second key: verify finds key_missing (exit 3).
    let partial = env.dir.path().join("partial.toml");
    let text = std::fs::read_to_string(keyring(&env)).unwrap();
    let cut = text.rfind("[[key]]").unwrap();
    write_private(&partial, &text[..cut]);
    let partial = partial.to_str().unwrap();
    let out = p.code(
        &env,
        &["verify", "orders", "--keyring", partial, "--json"],
        "",
        3,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    let part = &v["partitions"][0];
    assert!(
        part["finding"].is_null(),
        "the chain itself is intact: {part}"
    );
    assert_eq!(part["encryption"]["finding"]["kind"], "key_missing");
    assert_eq!(part["encryption"]["finding"]["offset"], 5);
    let out = p.code(&env, &["verify", "orders", "--keyring", partial], "", 3);
    assert!(out.contains("key_missing at offset 5"), "{out}");
    // consume with it prints every record, a placeholder for the unreadable ones, and says
    // so on standard error (exit 3).
    let out = p.run(&env, &["consume", "orders", "-e", "--keyring", partial], "");
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 8);
    assert!(text
        .lines()
        .nth(5)
        .unwrap()
        .contains(&format!("data key {second} is not in the keyring")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key_missing: 2 record(s)") && err.contains(&second),
        "{err}"
    );
    // A different secret under the second key's id: decrypt_failed.
    let wrong = env.dir.path().join("wrong.toml");
    let other = base64::engine::general_purpose::STANDARD.encode([0x5a; 32]);
    write_private(
        &wrong,
        &text_with(
            &std::fs::read_to_string(keyring(&env)).unwrap(),
            &secrets[1],
            &other,
        ),
    );
    let wrong = wrong.to_str().unwrap();
    let out = p.code(
        &env,
        &["verify", "orders", "--keyring", wrong, "--json"],
        "",
        3,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["partitions"][0]["encryption"]["finding"]["kind"],
        "decrypt_failed"
    );
    let recs = json_lines(&String::from_utf8_lossy(
        &p.run(
            &env,
            &["consume", "orders", "-e", "--json", "--keyring", wrong],
            "",
        )
        .stdout,
    ));
    assert_eq!(recs[5]["encryption"], "decrypt_failed");
    assert!(
        recs[5].get("value").is_none(),
        "never ciphertext as the value: {}",
        recs[5]
    );

    // Shred the first key: its records read as shredded, the chain still verifies.
    let out = p.ok(&env, &["key", "shred", "--yes", &first], "");
    assert!(out.contains("destroy every copy and backup"), "{out}");
    assert_eq!(secrets_in(&keyring(&env)), vec![secrets[1].clone()]);
    let text = p.ok(&env, &["consume", "orders", "-e"], "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);
    for l in &lines[..5] {
        assert!(
            l.starts_with("<shredded: encrypted under data key") && l.contains(&first),
            "{l}"
        );
    }
    assert_eq!(lines[5], "{\"secret-order\":5}");
    for r in &json_lines(&p.ok(&env, &["consume", "orders", "-e", "--json"], ""))[..5] {
        assert_eq!(r["encryption"], "shredded");
        assert!(r.get("value").is_none(), "{r}");
    }
    p.ok(&env, &["verify", "orders"], "");
    let v: serde_json::Value =
        serde_json::from_str(&p.ok(&env, &["verify", "orders", "--keyring", kr, "--json"], ""))
            .unwrap();
    let e = &v["partitions"][0]["encryption"];
    assert_eq!(
        (e["shredded"].as_u64(), e["decrypted"].as_u64()),
        (Some(5), Some(2))
    );
    let out = p.ok(&env, &["verify", "orders", "--keyring", kr], "");
    assert!(out.contains("2 decrypted, 5 shredded"), "{out}");
    let list = p.ok(&env, &["key", "list"], "");
    assert!(
        list.contains(&format!("{first}  ")) && list.contains("shredded 20"),
        "{list}"
    );
    p.ok(&env, &["key", "shred", "--yes", &first], "");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keyring(&env))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "still private after a rewrite");
    }

    // Error cases: each names what is wrong and where, and none shows a secret.
    p.error(
        &env,
        &["key", "shred", "0000000000000000"],
        "data key 0000000000000000 is not in the keyring",
    );
    p.error(&env, &["key", "shred", "xyz"], "invalid data key id 'xyz'");
    let damaged = env.dir.path().join("damaged.toml");
    let keyring_text = std::fs::read_to_string(keyring(&env)).unwrap();
    write_private(
        &damaged,
        &text_with(&keyring_text, &secrets[1], &secrets[1][..30]),
    );
    let damaged = damaged.to_str().unwrap();
    p.error(
        &env,
        &["consume", "orders", "-e", "--keyring", damaged],
        "secret is not 32 bytes of base64",
    );
    p.error(
        &env,
        &["verify", "orders", "--keyring", damaged],
        "damaged.toml",
    );
    let broken = env.dir.path().join("broken.toml");
    write_private(
        &broken,
        &text_with(
            &keyring_text,
            &secrets[1],
            &format!("{}\" junk \"", secrets[1]),
        ),
    );
    p.error(
        &env,
        &["verify", "orders", "--keyring", broken.to_str().unwrap()],
        "not TOML at line",
    );
    let open = env.dir.path().join("open.toml");
    std::fs::write(&open, &keyring_text).unwrap();
    set_mode(&open, 0o644);
    p.error(
        &env,
        &[
            "consume",
            "orders",
            "-e",
            "--keyring",
            open.to_str().unwrap(),
        ],
        "readable by others",
    );
    let none = env.dir.path().join("none.toml");
    p.error(
        &env,
        &[
            "produce",
            "orders",
            "--encrypt",
            "--keyring",
            none.to_str().unwrap(),
        ],
        "no keyring at",
    );
    p.ok(&env, &["key", "shred", "--yes", &second], "");
    p.error(
        &env,
        &["produce", "orders", "--encrypt"],
        "has no active data key",
    );

    // The grep: no data key secret and no writer key secret in anything printed.
    let mut forbidden: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        let raw = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        assert_eq!(raw.len(), 32);
        for (form, bytes) in leak_forms(&raw) {
            forbidden.push((format!("data key {} as {form}", i + 1), bytes));
        }
    }
    let writer = std::fs::read_to_string(env.config().join("writer.key")).unwrap();
    let seed_hex = writer
        .lines()
        .find_map(|l| l.strip_prefix("secret = \""))
        .unwrap()
        .trim_end_matches('"');
    let seed = hex::decode(seed_hex).unwrap();
    for (form, bytes) in leak_forms(&seed) {
        forbidden.push((format!("the writer key's secret as {form}"), bytes));
    }
    assert!(p.0.len() > 2000, "the commands printed something to search");
    for (what, bytes) in &forbidden {
        // The message names the form, never the secret itself.
        assert!(!contains(&p.0, bytes), "{what} appears in the output");
    }
}

fn text_with(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from));
    text.replace(from, to)
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    set_mode(path, 0o600);
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    assert!(!out.is_empty());
    out
}
