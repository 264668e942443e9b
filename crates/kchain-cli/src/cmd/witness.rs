//! `witness`: cosign checkpoints that extend the last one cosigned; refuse forks.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use kchain_core::{
    ConsistencyProofFile, Cosigner, Witness, WitnessRefusal, DEFAULT_ORIGIN_NAMESPACE,
};
use kchain_topic::{
    checkpoints::{witness_export, witness_pass, writer_verifiers, WitnessEvent},
    files::{read_secret_file, write_secret_file},
    TopicError,
};

use kchain_witness::{KnownLogs, StateStore, WitnessService};

use crate::global::{load_trust, open_log, Global};
use crate::outcome::Outcome;
use crate::report::write_output;

#[derive(Subcommand, Debug)]
pub enum WitnessCmd {
    /// Generate a witness key (C2SP signer key, mode 0600) and print its verifier key, the
    /// line verifiers put in a trust file's `[[witness]]`.
    Keygen {
        /// The key name, e.g. witness.example.com/w1 (no spaces, no '+').
        #[arg(long)]
        name: String,
        /// Old name of --key-file here (still accepted).
        #[arg(long, hide = true, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Write the checkpoints this witness cosigned (one per chain, with its cosignature) to
    /// a file that verifiers pass with `verify --checkpoint FILE`: an anchor outside the log.
    Export {
        /// The witness's state directory (as given to `witness run`).
        #[arg(long)]
        state: PathBuf,
        /// The file to write, or `-` for standard output.
        #[arg(long, short_alias = 'o', value_name = "FILE")]
        output: PathBuf,
    },
    /// Follow TOPIC's checkpoints and cosign each one that extends the last this witness
    /// cosigned (writers trusted by the trust file); refuse forks, with an evidence file.
    Run {
        /// The chained topic whose checkpoints to witness (or a blocks topic, with --ledger).
        topic: String,
        /// Old name of --key-file here (still accepted).
        #[arg(long, hide = true, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Directory of the witness's state: the last cosigned checkpoint per origin, and
        /// evidence files.
        #[arg(long)]
        state: PathBuf,
        /// Stop once a pass over the checkpoints cosigns nothing new.
        #[arg(long)]
        until_idle: bool,
        /// TOPIC is a ledger's blocks topic (e.g. `demo.blocks`): witness the checkpoints
        /// its sealers sign, whose keys come from its genesis block.
        #[arg(long)]
        ledger: bool,
        /// Milliseconds between passes.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Origin namespace of the checkpoints: origins are <NAMESPACE>/<TOPIC>/<PARTITION>.
        #[arg(long, default_value = DEFAULT_ORIGIN_NAMESPACE)]
        namespace: String,
    },
    /// Serve c2sp.org/tlog-witness over HTTP(S): cosign the checkpoints logs push (POST
    /// /add-checkpoint), serve the newest cosigned per origin (GET /checkpoint/<origin>).
    /// Witnesses the chained topics and ledgers of the trust file, and the logs of --log and
    /// --logs. Prints `witness <name> listening on <url>`, then serves until stopped.
    Serve(ServeArgs),
}

/// `witness serve`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Old name of --key-file here (still accepted).
    #[arg(long, hide = true, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Directory of the witness's state: the last cosigned checkpoint per origin, evidence.
    #[arg(long)]
    state: PathBuf,
    /// Address to listen on (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:8420")]
    bind: String,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Also witness the C2SP log ORIGIN, whose checkpoints VKEY (a note verifier key) signs.
    /// Repeatable.
    #[arg(long = "log", value_name = "ORIGIN=VKEY")]
    logs: Vec<String>,
    /// A file of logs to witness: one `ORIGIN VKEY` per line, `#` comments.
    #[arg(long = "logs", value_name = "FILE")]
    logs_file: Option<PathBuf>,
    /// Server threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

pub fn witness(g: &Global, cmd: WitnessCmd) -> Result<Outcome> {
    match cmd {
        WitnessCmd::Keygen { name, key } => {
            let key = g.key_file_for(key.as_deref(), "witness keygen writes the key to a file")?;
            let cosigner = Cosigner::generate(&name)?;
            write_secret_file(&key, "key file", &format!("{}\n", cosigner.to_signer_key()))?;
            let vkey = cosigner.verifier().to_vkey();
            if g.quiet {
                // The bare verifier key, for `trust add-witness "$(...)"` in scripts.
                println!("{vkey}");
            } else {
                println!(
                    "wrote witness key '{name}' to {} (mode 0600)",
                    key.display()
                );
                println!("verifier key {vkey}");
            }
            Ok(Outcome::Clean)
        }
        WitnessCmd::Export { state, output } => {
            let notes = witness_export(&state)?;
            if notes.is_empty() {
                bail!("{} holds no cosigned checkpoint", state.display());
            }
            write_output(&output, &kchain_core::bundle_to_json(&notes))?;
            if output != Path::new("-") {
                eprintln!(
                    "wrote {} cosigned checkpoint(s) to {}",
                    notes.len(),
                    output.display()
                );
            }
            Ok(Outcome::Clean)
        }
        WitnessCmd::Run {
            topic,
            key,
            state,
            until_idle,
            ledger,
            interval_ms,
            namespace,
        } => {
            let key = g.key_file_for(key.as_deref(), "witness run needs the witness's key")?;
            let run = Run {
                topic,
                state,
                ledger,
                namespace,
            };
            run_witness(g, &run, &key, until_idle, interval_ms)
        }
        WitnessCmd::Serve(args) => serve(g, args),
    }
}

/// `witness serve`: the HTTP witness, until the process is stopped (every answer is on disk
/// before it is sent, so stopping it any time loses nothing).
fn serve(g: &Global, args: ServeArgs) -> Result<Outcome> {
    let key = g.key_file_for(args.key.as_deref(), "witness serve needs the witness's key")?;
    let cosigner = read_witness_key(&key)?;
    let logs = known_logs(g, &args)?;
    if logs.is_empty() {
        bail!(
            "no log to witness: trust writers (`kchain trust add`), or pass --log ORIGIN=VKEY \
             or --logs FILE"
        );
    }
    let store = StateStore::open(&args.state)?;
    let name = cosigner.name().to_owned();
    let service = std::sync::Arc::new(WitnessService::new(cosigner, logs, store));
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(kchain_http::TlsFiles { cert, key }),
        _ => None,
    };
    let mut options = kchain_http::ServerOptions::new(&args.bind).with_tls(tls);
    options.threads = args.threads.max(1);
    let server = kchain_witness::serve(&options, service)?;
    println!("witness {name} listening on {}", server.url());
    use std::io::Write;
    std::io::stdout().flush()?;
    server.wait();
    Ok(Outcome::Clean)
}

/// The logs `witness serve` witnesses: the trust file's chained topics (writers by topic)
/// and ledgers (sealers by blocks topic), then `--log` and `--logs`.
fn known_logs(g: &Global, args: &ServeArgs) -> Result<KnownLogs> {
    let mut logs = KnownLogs::new();
    let path = g.trust_path();
    if g.trust.is_some() || path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading trust file {}", path.display()))?;
        let file = kchain_core::TrustFile::from_toml(&text)
            .with_context(|| format!("trust file {}", path.display()))?;
        let namespace = file.checkpoints_or_default().namespace;
        let ledgers = kchain_ledger::TrustedLedger::from_trust_toml(&text)
            .map_err(|e| anyhow::anyhow!("trust file {}: {e}", path.display()))?;
        for l in ledgers {
            let origin = kchain_ledger::ledger_origin(&namespace, &l.blocks_topic);
            for s in &l.sealers {
                logs.add(&origin, s.key.note_verifier(&s.name)?);
            }
        }
        logs = logs.with_chains(&namespace, file.trust);
    }
    for arg in &args.logs {
        let (origin, key) = KnownLogs::parse_arg(arg)?;
        logs.add(&origin, key);
    }
    if let Some(file) = &args.logs_file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for (origin, key) in
            KnownLogs::parse_file(&text).with_context(|| format!("logs file {}", file.display()))?
        {
            logs.add(&origin, key);
        }
    }
    Ok(logs)
}

/// What a running witness follows and where it keeps its state.
struct Run {
    topic: String,
    state: PathBuf,
    ledger: bool,
    namespace: String,
}

/// `witness run`: passes over the checkpoints every `interval_ms`, until a pass cosigns
/// nothing (with `until_idle`) or forever.
fn run_witness(
    g: &Global,
    run: &Run,
    key: &Path,
    until_idle: bool,
    interval_ms: u64,
) -> Result<Outcome> {
    let cosigner = read_witness_key(key)?;
    let writers = if run.ledger {
        Vec::new()
    } else {
        writer_verifiers(&load_trust(g)?, &run.topic)
    };
    let witness = Witness::new(cosigner.clone(), writers.clone());
    let log = open_log(g, false)?;
    let mut outcome = Outcome::Clean;
    let mut alarmed = HashSet::new();
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (topic, state, namespace) = (&run.topic, &run.state, &run.namespace);
        let events = if run.ledger {
            kchain_ledger::witness_ledger_pass(
                log.as_ref(),
                topic,
                &cosigner,
                state,
                namespace,
                now,
            )?
        } else {
            witness_pass(
                log.as_ref(),
                topic,
                &witness,
                &writers,
                state,
                namespace,
                now,
            )?
        };
        let (cosigned, findings) = print_events(&events, state, &mut alarmed)?;
        if findings {
            outcome = Outcome::Findings;
        }
        if until_idle && cosigned == 0 {
            return Ok(outcome);
        }
        std::thread::sleep(std::time::Duration::from_millis(interval_ms));
    }
}

/// Prints one pass's events (an alarm once per origin: a witness runs for long); returns
/// how many checkpoints it cosigned and whether anything was refused or alarming.
fn print_events(
    events: &[WitnessEvent],
    state: &Path,
    alarmed: &mut HashSet<String>,
) -> Result<(usize, bool)> {
    let (mut cosigned, mut findings) = (0, false);
    for e in events {
        match e {
            WitnessEvent::Cosigned { origin, size } => {
                cosigned += 1;
                println!("cosigned {origin} size {size}");
            }
            WitnessEvent::Refused {
                origin,
                size,
                refusal,
            } => {
                findings = true;
                println!("REFUSED {origin} size {size}: {refusal}");
                if let Some(path) = write_evidence(state, origin, *size, refusal)? {
                    println!("  evidence: {}", path.display());
                }
            }
            WitnessEvent::Skipped {
                origin,
                size,
                reason,
            } => println!("skipped {origin} size {size}: {reason}"),
            WitnessEvent::Alarm {
                origin,
                size,
                detail,
                evidence,
            } => {
                findings = true;
                if alarmed.insert(origin.clone()) {
                    println!("ALERT {origin} cosigned size {size}: {detail}");
                    if let Some(path) = evidence {
                        println!("  evidence: {}", path.display());
                    }
                }
            }
            _ => {}
        }
    }
    Ok((cosigned, findings))
}

/// Writes a refusal's evidence as a consistency proof file (which fails verification the way
/// the witness saw it fail), for refusals that have evidence.
fn write_evidence(
    state: &Path,
    origin: &str,
    size: u64,
    refusal: &WitnessRefusal,
) -> Result<Option<PathBuf>> {
    let evidence = match refusal {
        WitnessRefusal::Fork { evidence, .. } | WitnessRefusal::Inconsistent { evidence, .. } => {
            evidence
        }
        _ => return Ok(None),
    };
    let file = ConsistencyProofFile::from(&**evidence);
    let path = state.join(format!(
        "evidence-{}-{size}.json",
        origin.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
            "_"
        )
    ));
    std::fs::write(&path, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(path))
}

/// Reads a witness key file, refusing one that others can read. Errors never show the key.
fn read_witness_key(path: &Path) -> Result<Cosigner> {
    let text = read_secret_file(path, "key file", |mode| TopicError::KeyPermissions {
        path: path.to_owned(),
        mode,
    })?;
    Cosigner::from_signer_key(text.trim())
        .map_err(|e| anyhow::anyhow!("key file {}: {e}", path.display()))
}
