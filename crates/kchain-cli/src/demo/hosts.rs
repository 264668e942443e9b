//! The "three hosts" part of `kchain demo`: the same three organisations as [`super::orgs`],
//! now as separate processes of this binary talking HTTPS on loopback, with a CA and a server
//! certificate made at run time. Two `kchain witness serve` are the witnesses; acme's writer
//! (this process) pushes every checkpoint to them; an auditor's `kchain monitor` watches the
//! operator's log, and an outsider's `kchain verify --checkpoints-from witnesses` checks it
//! with the checkpoints topic deleted. The operator then truncates, rewrites (with acme's
//! key) and suppresses checkpoints, each on a copy of the log under a monitor of its own.
//!
//! ```text
//!  acme (this process) ──records──▶ log/ (the operator's directory)
//!        └── every checkpoint ──HTTPS──▶ beta:  kchain witness serve ──┐
//!                             ──HTTPS──▶ gamma: kchain witness serve ──┤ cosigned
//!  auditor:  kchain monitor  (reads the log) ◀──HTTPS──────────────────┤ checkpoints
//!  outsider: kchain verify --checkpoints-from witnesses ◀──HTTPS───────┘
//! ```
//!
//! Every child is killed when [`Procs`] is dropped, on success, error or panic alike. The log
//! is an embedded log in the demo's directory whatever the demo's backend: the children open
//! it by its directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kchain_core::{Item, NoteVerifier, RemoteWitness, Trust, TrustedWriter, WriterKey};
use kchain_http::{Client, ClientOptions, TestPki};
use kchain_log::{EmbeddedLog, EmbeddedOptions, Log, TopicConfig};
use kchain_topic::checkpoints::{checkpoints_topic, PushOptions, PushWitness};
use kchain_topic::files::write_trust_file;
use kchain_topic::tamper::{copy_topic_with, read_all};
use kchain_topic::{ChainWriter, CheckpointOptions, WriterOptions};
use kchain_witness::HttpWitness;

const TOPIC: &str = "orders";
/// Events acme writes honestly, a checkpoint every `EVERY`; the operator keeps `CUT`.
const EVENTS: u64 = 400;
const EVERY: u64 = 100;
const CUT: usize = 300;
/// The auditor's `--stall-after` and its policy's `max_age`, seconds.
const STALL: u64 = 2;

/// The children of this part, killed when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A witness organisation: its server's URL and verifier key.
struct Served {
    name: &'static str,
    url: String,
    vkey: String,
}

/// The binary, its CA file and the part's directory: what every child is started with.
struct Hosts {
    exe: PathBuf,
    dir: PathBuf,
    pki: TestPki,
}

impl Hosts {
    /// `kchain` with the test CA and nothing of the caller's kchain environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        for var in [
            "KCHAIN_BROKERS",
            "KCHAIN_TRUST",
            "KCHAIN_KEY_FILE",
            "KCHAIN_KEYRING",
            "KCHAIN_DATA_DIR",
            "KCHAIN_CONFIG_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd.arg("--ca-file")
            .arg(&self.pki.ca)
            .arg("--config-dir")
            .arg(self.dir.join("config"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Runs the part with this binary (`exe`) in `dir`; prints the story, returns true when every
/// act was caught by both the monitor and the outsider.
pub fn tour(exe: &Path, dir: &Path) -> Result<bool> {
    println!("\nThree organisations on three \"hosts\": separate processes, HTTPS on loopback\n");
    std::fs::create_dir_all(dir)?;
    let pki = TestPki::generate(&dir.join("pki")).context("making the demo's test CA")?;
    let h = Hosts {
        exe: exe.to_owned(),
        dir: dir.to_owned(),
        pki,
    };
    let acme = WriterKey::generate("acme");
    let mut procs = Procs(Vec::new());
    let beta = serve(&h, &mut procs, &acme, "beta")?;
    let gamma = serve(&h, &mut procs, &acme, "gamma")?;
    println!(
        "1. beta and gamma serve C2SP tlog-witness over HTTPS: {} and {}",
        beta.url, gamma.url
    );
    write(&h, &acme, &[&beta, &gamma])?;
    let trust = auditor_trust(&h, &acme, &[&beta, &gamma])?;
    println!(
        "3. The auditor's and outsider's trust file {}: acme's key, beta and gamma at their \
         URLs, 2 cosignatures, max_age {STALL} s",
        trust.display()
    );
    let mut ok = honest(&h, &trust)?;
    ok &= acts(&h, &acme, &trust)?;
    drop(procs);
    println!(
        "   {}",
        if ok {
            "all caught by the monitor and by the outsider, with nothing but HTTPS to the witnesses"
        } else {
            "NOT ALL CAUGHT"
        }
    );
    Ok(ok)
}

/// Makes witness `name`'s key and trust file (acme's key) and starts its server.
fn serve(h: &Hosts, procs: &mut Procs, acme: &WriterKey, name: &'static str) -> Result<Served> {
    let key = h.path(&format!("{name}.key"));
    let full = format!("witness.{name}.example");
    let vkey = keygen(h, &key, &full)?;
    let trust = h.path(&format!("{name}-trust.toml"));
    write_trust_file(Path::new(&trust), &trust_in(acme))?;
    let (cert, tls_key) = (h.pki.server.cert.display(), h.pki.server.key.display());
    let (cert, tls_key) = (cert.to_string(), tls_key.to_string());
    let state = h.path(&format!("{name}-state"));
    let mut child = h
        .command(&[
            "--key-file",
            &key,
            "--trust",
            &trust,
            "witness",
            "serve",
            "--state",
            &state,
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &tls_key,
        ])
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("witness serve's stdout")?;
    procs.0.push(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = match line.split("listening on ").nth(1) {
        Some(u) => u.trim().to_owned(),
        None => bail!("witness serve printed {line:?}"),
    };
    Ok(Served { name, url, vkey })
}

/// `kchain witness keygen`: a witness key in `key`; its verifier key.
fn keygen(h: &Hosts, key: &str, name: &str) -> Result<String> {
    let out = h
        .command(&["-q", "--key-file", key, "witness", "keygen", "--name", name])
        .output()?;
    if !out.status.success() {
        bail!("witness keygen: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A trust file that trusts acme's key for the topic.
fn trust_in(acme: &WriterKey) -> Trust {
    Trust {
        writers: vec![TrustedWriter {
            name: acme.name().to_owned(),
            key: acme.public(),
            topics: vec![TOPIC.to_owned()],
        }],
        pins: Vec::new(),
        topics: Vec::new(),
    }
}

fn event(i: u64, what: &str) -> Item {
    Item {
        key: Some(format!("MSCU{:07}", 1_000_000 + i).into_bytes()),
        value: Some(format!("{{\"seq\":{i},\"event\":\"{what}\"}}").into_bytes()),
        headers: Vec::new(),
        timestamp_ms: 1_767_225_600_000 + i as i64 * 1000,
    }
}

/// Step 2: acme writes in this process, pushing every checkpoint to both witnesses.
fn write(h: &Hosts, acme: &WriterKey, witnesses: &[&Served]) -> Result<()> {
    let log = EmbeddedLog::create(h.dir.join("log"), EmbeddedOptions::default())?;
    log.create_topic(TOPIC, &TopicConfig::default())?;
    let client = Client::new(&ClientOptions {
        ca_file: Some(h.pki.ca.clone()),
        ..Default::default()
    })?;
    let mut push = Vec::new();
    for w in witnesses {
        let remote: Arc<dyn RemoteWitness> = Arc::new(HttpWitness::new(&w.url, client.clone()));
        let key = NoteVerifier::parse(&w.vkey).map_err(|e| anyhow::anyhow!("{}: {e}", w.name))?;
        push.push(PushWitness {
            witness: remote,
            key,
        });
    }
    let options = CheckpointOptions {
        every_entries: EVERY,
        push: Some(PushOptions::new(push, Duration::from_secs(10))),
        ..CheckpointOptions::default()
    };
    let mut w = ChainWriter::open(&log, TOPIC, 0, acme, WriterOptions::default())?
        .with_checkpoints(&log, options)?;
    for start in (0..EVENTS).step_by(EVERY as usize) {
        w.append((start..start + EVERY).map(|i| event(i, "loaded")).collect())?;
    }
    w.flush()?;
    drop(w);
    println!(
        "2. acme wrote {EVENTS} events to {}, pushing a checkpoint every {EVERY} to both \
         witnesses",
        h.dir.join("log").display()
    );
    Ok(())
}

/// The auditor's trust file: acme's key, both witnesses with URLs, the policy.
fn auditor_trust(h: &Hosts, acme: &WriterKey, witnesses: &[&Served]) -> Result<PathBuf> {
    let path = h.dir.join("auditor-trust.toml");
    write_trust_file(&path, &trust_in(acme))?;
    let mut text = std::fs::read_to_string(&path)?;
    for w in witnesses {
        text += &format!("\n[[witness]]\nkey = \"{}\"\nurl = \"{}\"\n", w.vkey, w.url);
    }
    text += &format!("\n[policy]\nwitnesses = 2\nmax_age = {STALL}\n");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Step 4: the honest log: the monitor's first pass and the outsider's verify are clean.
fn honest(h: &Hosts, trust: &Path) -> Result<bool> {
    let log = h.dir.join("log");
    let once = monitor(h, &log, trust, "honest").arg("--once").output()?;
    let quiet = once.status.success() && once.stdout.is_empty();
    let (code, v) = outsider(h, &log, trust, "honest")?;
    let size = &v["checkpoints"]["partitions"][0]["newest"]["size"];
    println!(
        "4. Honest: the monitor {}; the outsider's verify (checkpoints topic deleted, from the \
         witnesses only): exit {code}, newest cosigned size {size}",
        if quiet { "is silent" } else { "ALERTED" }
    );
    Ok(quiet && code == 0 && size == EVENTS)
}

/// The auditor's `kchain monitor` on the log in `data`, its state in `state-<name>`.
fn monitor(h: &Hosts, data: &Path, trust: &Path, name: &str) -> Command {
    let state = h.path(&format!("monitor-{name}"));
    let stall = STALL.to_string();
    let mut cmd = h.command(&["--data-dir"]);
    cmd.arg(data).arg("--trust").arg(trust).args([
        "monitor",
        TOPIC,
        "--state",
        &state,
        "--interval-ms",
        "100",
        "--stall-after",
        &stall,
    ]);
    cmd
}

/// The outsider's `verify --checkpoints-from witnesses --json` on a copy of `data` without
/// its checkpoints topic: the exit code and the JSON.
fn outsider(h: &Hosts, data: &Path, trust: &Path, name: &str) -> Result<(i32, serde_json::Value)> {
    let view = h.dir.join(format!("outsider-{name}"));
    copy_tree(data, &view)?;
    std::fs::remove_dir_all(view.join("topics").join(checkpoints_topic(TOPIC)))?;
    let state = h.path(&format!("outsider-state-{name}"));
    let mut cmd = h.command(&["--data-dir"]);
    cmd.arg(&view).arg("--trust").arg(trust).args([
        "verify",
        TOPIC,
        "--checkpoints-from",
        "witnesses",
        "--state",
        &state,
        "--json",
    ]);
    let out = cmd.output()?;
    let v = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "the outsider's verify: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.status.code().unwrap_or(-1), v))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// What the operator does to its copy of the log.
enum Act {
    /// Replaces the topic by the one in this embedded log.
    Replace(PathBuf),
    /// Replaces the topic by the one in this embedded log and publishes that log's
    /// checkpoints (signed with acme's key) after the honest ones.
    Rewrite(PathBuf),
    /// Appends `EVERY / 2` events with acme's key and no checkpoint.
    Append,
}

/// Step 5: the operator's three acts, each on a copy of the log under a monitor of its own.
fn acts(h: &Hosts, acme: &WriterKey, trust: &Path) -> Result<bool> {
    println!("5. The operator acts on its log; the auditor's monitor runs throughout");
    let log = open(&h.dir.join("log"))?;
    let short = EmbeddedLog::create(h.dir.join("forged-cut"), EmbeddedOptions::default())?;
    copy_topic_with(&log, &short, TOPIC, |_, r| r.truncate(CUT))?;
    drop((log, short));
    forge_rewrite(h, acme)?;
    let mut ok = true;
    for (name, act, alerts, finding) in [
        (
            "truncation",
            Act::Replace(h.dir.join("forged-cut")),
            &["rollback"][..],
            "checkpoint_truncated",
        ),
        (
            "rewrite with acme's key",
            Act::Rewrite(h.dir.join("forged-rewrite")),
            &["rollback", "tamper", "fork"][..],
            "checkpoint_rewritten",
        ),
        (
            "suppression",
            Act::Append,
            // No new checkpoint for --stall-after, or entries past one no witness cosigned
            // within max_age: whichever rule speaks first.
            &["stall", "stale"][..],
            "checkpoint_stale",
        ),
    ] {
        ok &= caught(h, acme, trust, name, act, alerts, finding)?;
    }
    Ok(ok)
}

/// The operator's other history in `forged-rewrite`: more events than acme wrote, every hash
/// and signature made with acme's key, a checkpoint every `EVERY` signed with it too.
fn forge_rewrite(h: &Hosts, acme: &WriterKey) -> Result<()> {
    let other = EmbeddedLog::create(h.dir.join("forged-rewrite"), EmbeddedOptions::default())?;
    other.create_topic(TOPIC, &TopicConfig::default())?;
    let options = CheckpointOptions {
        every_entries: EVERY,
        ..CheckpointOptions::default()
    };
    let mut w = ChainWriter::open(&other, TOPIC, 0, acme, WriterOptions::default())?
        .with_checkpoints(&other, options)?;
    for start in (0..EVENTS + EVERY).step_by(EVERY as usize) {
        w.append(
            (start..start + EVERY)
                .map(|i| event(i, "rewritten"))
                .collect(),
        )?;
    }
    w.flush()?;
    Ok(())
}

/// One act: the monitor's alert (one of `alerts`) and the outsider's `finding`.
fn caught(
    h: &Hosts,
    acme: &WriterKey,
    trust: &Path,
    name: &str,
    act: Act,
    alerts: &[&str],
    finding: &str,
) -> Result<bool> {
    let slug = name.split(' ').next().unwrap_or(name);
    let data = h.dir.join(format!("operator-{slug}"));
    copy_tree(&h.dir.join("log"), &data)?;
    let clean = monitor(h, &data, trust, slug).arg("--once").output()?;
    if !clean.status.success() || !clean.stdout.is_empty() {
        bail!("the monitor alerted on the honest log: {clean:?}");
    }
    let mut watching = Procs(vec![monitor(h, &data, trust, slug)
        .stderr(Stdio::null())
        .spawn()?]);
    let lines = alert_lines(&mut watching.0[0])?;
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    match &act {
        Act::Replace(forged) => replace_topic(&data, forged)?,
        Act::Rewrite(forged) => {
            replace_topic(&data, forged)?;
            publish_checkpoints(&data, forged)?;
        }
        Act::Append => append(&data, acme)?,
    }
    let deadline = started + Duration::from_secs(STALL + 5);
    let alert = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(v) if alerts.contains(&v["kind"].as_str().unwrap_or("")) => break Some(v),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    let took = started.elapsed().as_secs_f64();
    drop(watching);
    let (code, v) = outsider(h, &data, trust, slug)?;
    let found = v["checkpoints"]["partitions"][0]["finding"]["kind"]
        .as_str()
        .unwrap_or("none")
        .to_owned();
    let said = match &alert {
        Some(a) => format!(
            "alert `{}` after {took:.1} s",
            a["kind"].as_str().unwrap_or("")
        ),
        None => "NO ALERT".to_owned(),
    };
    println!("   {name}: monitor {said}; outsider's verify: exit {code}, {found}");
    if let Some(a) = &alert {
        println!("     {a}");
    }
    Ok(alert.is_some() && code == 3 && found == finding)
}

/// The monitor's alert lines, parsed, as they come.
fn alert_lines(child: &mut Child) -> Result<Receiver<serde_json::Value>> {
    let stdout = child.stdout.take().context("the monitor's stdout")?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str(&line) else {
                continue;
            };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Replaces the topic of the embedded log in `data` by the one in `forged`.
fn replace_topic(data: &Path, forged: &Path) -> Result<()> {
    let mine = data.join("topics").join(TOPIC);
    let tmp = data.join("topics").join(format!("{TOPIC}.replacing"));
    copy_tree(&forged.join("topics").join(TOPIC), &tmp)?;
    std::fs::remove_dir_all(&mine)?;
    std::fs::rename(&tmp, &mine)?;
    Ok(())
}

/// Appends the checkpoints of the embedded log in `forged` to those of the log in `data`.
fn publish_checkpoints(data: &Path, forged: &Path) -> Result<()> {
    let (log, from) = (open(data)?, open(forged)?);
    let topic = checkpoints_topic(TOPIC);
    let notes = read_all(&from, &topic, 0)?;
    let mut app = log.appender(&topic, 0)?;
    app.append(&notes)?;
    app.flush()?;
    Ok(())
}

fn open(dir: &Path) -> Result<EmbeddedLog> {
    Ok(EmbeddedLog::open(dir, EmbeddedOptions::default())?)
}

/// The operator keeps writing with acme's key, but no checkpoint is made or pushed.
fn append(data: &Path, acme: &WriterKey) -> Result<()> {
    let log = open(data)?;
    let mut w = ChainWriter::open(&log, TOPIC, 0, acme, WriterOptions::default())?;
    w.append(
        (EVENTS..EVENTS + EVERY / 2)
            .map(|i| event(i, "unseen"))
            .collect(),
    )?;
    w.flush()?;
    Ok(())
}
