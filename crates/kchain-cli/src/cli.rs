//! The command line: the top-level parser, its subcommands (each defined by its module in
//! `cmd/`), and what a successful run found.

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd::{
    archive, bench, bridge, checkpoint, consume, crypt, demo, keys, ledger, monitor, node, produce,
    prove, topic, trust, tx, verify, wallet, witness,
};
use crate::global::Global;
use crate::outcome::Outcome;

/// `kchain --version`: the release, the git commit it was built from and its features
/// (stamped by build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KCHAIN_GIT_COMMIT"),
    ", features: ",
    env!("KCHAIN_FEATURES"),
    ")"
);

/// kchain: tamper-evident, hash-chained and signed topics on Kafka or on an embedded log, and a
/// permissioned ledger on the same logs.
#[derive(Parser, Debug)]
#[command(name = "kchain", version = VERSION, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and list topics.
    #[command(subcommand)]
    Topic(topic::TopicCmd),
    /// Append records (one per input line) to a chained topic.
    Produce(produce::ProduceArgs),
    /// Print a topic's records, verifying the chain as it reads.
    Consume(consume::ConsumeArgs),
    /// Verify a topic's chains from genesis: exit 0 intact, 3 findings, 1 error.
    Verify(verify::VerifyArgs),
    /// Copy a topic's chains to object storage (C2SP tlog-tiles layout), up to their checkpoints.
    Archive(archive::ArchiveArgs),
    /// Show entries with their heights, hashes and links.
    Inspect(topic::InspectArgs),
    /// Generate a writer key (mode 0600) and trust it in the trust file.
    Keygen(keys::KeygenArgs),
    /// Print the public key of a key file (its C2SP verifier key), to hand to verifiers.
    Pubkey(keys::PubkeyArgs),
    /// Manage the trust file: trusted writer keys and pinned tips.
    #[command(subcommand)]
    Trust(trust::TrustCmd),
    /// Data keys of encrypted values: add one (rotation), list them, shred one.
    #[command(subcommand)]
    Key(crypt::KeyCmd),
    /// Run the guided demo on a fresh embedded log.
    Demo(demo::DemoArgs),
    /// Measure append and verify throughput next to raw SHA-256.
    Bench(bench::BenchArgs),
    /// Ledger wallets: Ed25519 key files and their addresses.
    #[command(subcommand)]
    Wallet(wallet::WalletCmd),
    /// A permissioned ledger on the log: create it, list and verify its blocks, balances.
    #[command(subcommand)]
    Ledger(ledger::LedgerCmd),
    /// Submit signed transactions to a ledger.
    #[command(subcommand)]
    Tx(tx::TxCmd),
    /// Run a ledger node (follow the chain; with --seal, seal blocks).
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// Signed checkpoints of chained topics: publish one now, export the newest.
    #[command(subcommand)]
    Checkpoint(checkpoint::CheckpointCmd),
    /// Write a proof file (a record's inclusion, or two checkpoints' consistency).
    Prove(prove::ProveArgs),
    /// Check a proof file offline against the trust file: exit 0 valid, 3 not, 1 error.
    VerifyProof(prove::VerifyProofArgs),
    /// A witness: cosign checkpoints that extend the last one cosigned; refuse forks.
    #[command(subcommand)]
    Witness(witness::WitnessCmd),
    /// Watch chained topics: verify incrementally, hold checkpoints to the chain, alert on
    /// tamper, fork, rollback and stalled writers (JSON lines, webhook, /metrics).
    Monitor(monitor::MonitorArgs),
    /// Serve the HTTP API (topics, ledgers, /metrics, /openapi.json) and the explorer.
    Serve(crate::serve::ServeArgs),
    /// Chain a plain topic: copy its records into a chained topic, exactly once.
    #[command(subcommand)]
    Bridge(bridge::BridgeCmd),
    /// Print a shell completion script, generated from these definitions (e.g. `kchain
    /// completions bash > /etc/bash_completion.d/kchain`).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these definitions (e.g. `kchain man >
    /// kchain.1 && man ./kchain.1`).
    Man,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    let g = &cli.global;
    crate::report::set_quiet(g.quiet);
    if let Some(t) = g.timeout {
        kchain_topic::set_stall_timeout(t);
    }
    match cli.command {
        Command::Topic(c) => topic::topic(g, c),
        Command::Produce(a) => produce::produce(g, &a),
        Command::Consume(a) => consume::consume(g, &a),
        Command::Verify(a) => verify::verify(g, &a),
        Command::Archive(a) => archive::archive(g, &a),
        Command::Inspect(a) => topic::inspect(g, &a),
        Command::Keygen(a) => keys::keygen(g, &a),
        Command::Pubkey(a) => keys::pubkey(g, &a),
        Command::Trust(c) => trust::trust(g, c),
        Command::Key(c) => crypt::key(g, c),
        Command::Demo(a) => demo::run(g, &a),
        Command::Bench(a) => bench::run(g, &a),
        Command::Wallet(c) => wallet::wallet(g, c),
        Command::Ledger(c) => ledger::ledger(g, c),
        Command::Tx(c) => tx::tx(g, c),
        Command::Node(c) => node::node(g, c),
        Command::Checkpoint(c) => checkpoint::checkpoint(g, c),
        Command::Prove(a) => prove::prove(g, &a),
        Command::VerifyProof(a) => prove::verify_proof(g, &a),
        Command::Witness(c) => witness::witness(g, c),
        Command::Monitor(a) => monitor::monitor(g, &a),
        Command::Serve(a) => crate::serve::serve(g, &a),
        Command::Bridge(c) => bridge::bridge(g, c),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "kchain", &mut std::io::stdout());
            Ok(Outcome::Clean)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(Outcome::Clean)
        }
    }
}
