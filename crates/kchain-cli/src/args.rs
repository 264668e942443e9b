//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// kchain: tamper-evident, hash-chained and signed topics on Kafka or on an embedded log.
#[derive(Parser, Debug)]
#[command(name = "kchain", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Data directory of the embedded log.
    #[arg(
        long,
        global = true,
        env = "KCHAIN_DATA_DIR",
        default_value = "./kchain-data"
    )]
    pub data_dir: PathBuf,
    /// Directory of your keys and trust file, kept apart from the data they protect
    /// [default: $XDG_CONFIG_HOME/kchain, else ~/.config/kchain].
    #[arg(long, global = true, env = "KCHAIN_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// Writer key file [default: <config-dir>/writer.key].
    #[arg(long = "key-file", global = true, env = "KCHAIN_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Trust file [default: <config-dir>/trust.toml].
    #[arg(long, global = true, env = "KCHAIN_TRUST")]
    pub trust: Option<PathBuf>,
    /// Keyring of data keys for encrypted values (mode 0600) [default:
    /// <config-dir>/keyring.toml]; `verify` decrypts only when it is given.
    #[arg(long, global = true, env = "KCHAIN_KEYRING")]
    pub keyring: Option<PathBuf>,
    /// When the embedded log forces appends to disk: `batch` (before each append returns),
    /// `interval:MS`, or `never`.
    #[arg(long, global = true, default_value = "batch")]
    pub fsync: String,
    /// Kafka bootstrap brokers (host:port,...): use Kafka instead of the embedded log.
    #[arg(short = 'b', long, global = true, env = "KCHAIN_BROKERS")]
    pub brokers: Option<String>,
    /// A librdkafka property, as kcat's -X (security.protocol=SASL_SSL, sasl.mechanism=...,
    /// ssl.ca.location=...); repeatable; wins over --kafka-config.
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    pub kafka_props: Vec<String>,
    /// A file of librdkafka properties, one `key=value` per line (# comments).
    #[arg(long, global = true, env = "KCHAIN_KAFKA_CONFIG")]
    pub kafka_config: Option<PathBuf>,
}

impl Global {
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.anchor_file("writer.key"))
    }

    pub fn trust_path(&self) -> PathBuf {
        self.trust
            .clone()
            .unwrap_or_else(|| self.anchor_file("trust.toml"))
    }

    /// The keyring file: `--keyring`, else beside the default key file.
    pub fn keyring_path(&self) -> PathBuf {
        self.keyring
            .clone()
            .unwrap_or_else(|| self.anchor_file("keyring.toml"))
    }

    /// Where keys and the trust file live by default: `--config-dir`, else the user's
    /// configuration directory. Never the data directory: whoever can change the log could
    /// then change what the verifier trusts as well.
    pub fn config_dir(&self) -> PathBuf {
        if let Some(dir) = &self.config_dir {
            return dir.clone();
        }
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(xdg) = var("XDG_CONFIG_HOME") {
            return PathBuf::from(xdg).join("kchain");
        }
        match var("HOME") {
            Some(home) => PathBuf::from(home).join(".config").join("kchain"),
            None => PathBuf::from(".kchain"),
        }
    }

    /// `name` in the configuration directory. A data directory made by an earlier kchain
    /// still holds its keys and trust file: those keep working, with a note saying where
    /// they belong, until they are moved.
    fn anchor_file(&self, name: &str) -> PathBuf {
        let new = self.config_dir().join(name);
        let old = self.data_dir.join(name);
        if !new.exists() && old.exists() {
            crate::report::note_once(&format!(
                "using {} inside the data directory it protects; move it to {} (anchors \
                 belong outside what they protect)",
                old.display(),
                new.display()
            ));
            return old;
        }
        new
    }

    /// True when `path` lies inside the embedded data directory (which an attacker with
    /// disk access to the log controls too).
    pub fn inside_data_dir(&self, path: &std::path::Path) -> bool {
        if self.brokers.is_some() {
            return false;
        }
        let (Ok(data), Ok(path)) = (self.data_dir.canonicalize(), path.canonicalize()) else {
            return false;
        };
        path.starts_with(data)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and list topics.
    #[command(subcommand)]
    Topic(TopicCmd),
    /// Append records (one per input line) to a chained topic.
    Produce(ProduceArgs),
    /// Print a topic's records, verifying the chain as it reads.
    Consume(ConsumeArgs),
    /// Verify a topic's chains from genesis: exit 0 intact, 3 findings, 1 error.
    Verify(VerifyArgs),
    /// Show entries with their heights, hashes and links.
    Inspect(InspectArgs),
    /// Generate a writer key (mode 0600) and trust it in the trust file.
    Keygen(KeygenArgs),
    /// Print the public key of a key file, to hand to verifiers.
    Pubkey,
    /// Manage the trust file: trusted writer keys and pinned tips.
    #[command(subcommand)]
    Trust(TrustCmd),
    /// Data keys of encrypted values: add one (rotation), list them, shred one.
    #[command(subcommand)]
    Key(crate::crypt_cmds::KeyCmd),
    /// Run the guided demo on a fresh embedded log.
    Demo(DemoArgs),
    /// Measure append and verify throughput next to raw SHA-256.
    Bench(BenchArgs),
    /// Ledger wallets: Ed25519 key files and their addresses.
    #[command(subcommand)]
    Wallet(crate::ledger_cmds::WalletCmd),
    /// A permissioned ledger on the log: create it, list and verify its blocks, balances.
    #[command(subcommand)]
    Ledger(crate::ledger_cmds::LedgerCmd),
    /// Submit signed transactions to a ledger.
    #[command(subcommand)]
    Tx(crate::node_cmds::TxCmd),
    /// Run a ledger node (follow the chain; with --seal, seal blocks).
    #[command(subcommand)]
    Node(crate::node_cmds::NodeCmd),
    /// Signed checkpoints of chained topics: publish one now, export the newest.
    #[command(subcommand)]
    Checkpoint(crate::checkpoint_cmds::CheckpointCmd),
    /// Write a proof file (a record's inclusion, or two checkpoints' consistency).
    Prove(crate::checkpoint_cmds::ProveArgs),
    /// Check a proof file offline against the trust file: exit 0 valid, 3 not, 1 error.
    VerifyProof(crate::checkpoint_cmds::VerifyProofArgs),
    /// A witness: cosign checkpoints that extend the last one cosigned; refuse forks.
    #[command(subcommand)]
    Witness(crate::checkpoint_cmds::WitnessCmd),
}

#[derive(Subcommand, Debug)]
pub enum TopicCmd {
    /// Create a chained topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: u32,
    },
    /// List topics.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct ProduceArgs {
    pub topic: String,
    /// Partition to append to [default: by key as Kafka does, else 0].
    #[arg(long, short)]
    pub partition: Option<u32>,
    /// Key for every record.
    #[arg(long, short)]
    pub key: Option<String>,
    /// Split each line into key and value at the first DELIM (like kcat -K).
    #[arg(long = "key-delimiter", short = 'K', conflicts_with = "key")]
    pub key_delimiter: Option<String>,
    /// Read lines from this file instead of standard input.
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// Records per signed batch.
    #[arg(long, default_value_t = 8192)]
    pub batch: usize,
    /// An application header on every record (repeatable), like kcat's -H.
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Encrypt each value (AES-256-GCM) under the keyring's newest key.
    #[arg(long)]
    pub encrypt: bool,
    /// Sign and publish a checkpoint to <TOPIC>.checkpoints once this many entries of a
    /// partition are not covered by one (0: never on count); one is always published on exit.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub checkpoint_every: u64,
    /// ... or once this many seconds have passed since the last (0: never on time).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub checkpoint_secs: u64,
    /// Publish no checkpoints.
    #[arg(long)]
    pub no_checkpoints: bool,
    /// The checkpoints' origin namespace (`<namespace>/<topic>/<partition>`).
    #[arg(long, default_value = kchain_core::DEFAULT_ORIGIN_NAMESPACE)]
    pub namespace: String,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    pub topic: String,
    #[arg(long, short)]
    pub partition: Option<u32>,
    /// First offset to print (the chain is still verified from genesis).
    #[arg(long, short = 'o', default_value_t = 0)]
    pub from: u64,
    /// Print at most this many records.
    #[arg(long, short = 'c')]
    pub count: Option<u64>,
    /// One JSON object per record.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    pub topic: String,
    #[arg(long, short)]
    pub partition: Option<u32>,
    /// Worker threads [default: one per core].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[arg(long)]
    pub json: bool,
    /// Where this verifier remembers, per chain, the newest checkpoint that met its policy
    /// (rollback protection) [default: kchain-state/ beside the trust file].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// A checkpoint file handed over outside the log (`kchain witness export`, `kchain
    /// checkpoint export`): counts as if read from the log; repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    pub topic: String,
    #[arg(long, short, default_value_t = 0)]
    pub partition: u32,
    #[arg(long, short = 'o', default_value_t = 0)]
    pub from: u64,
    #[arg(long, short = 'c', default_value_t = 20)]
    pub count: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// A name for the key (shown in the trust file).
    #[arg(long, default_value = "writer")]
    pub name: String,
    /// Only this topic may be written with the key (repeatable) [default: any topic].
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Do not add the key to the trust file.
    #[arg(long)]
    pub no_trust: bool,
}

#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// Trust a writer's public key.
    Add {
        name: String,
        /// 64 hex digits, as `kchain pubkey` prints.
        public_key: String,
        /// Restrict the key to this topic (repeatable).
        #[arg(long = "topic")]
        topics: Vec<String>,
    },
    /// Verify a topic and pin each partition's genesis and current tip, so that later
    /// truncation or rewriting is caught.
    Pin {
        topic: String,
        #[arg(long, short)]
        partition: Option<u32>,
    },
    /// Print the trust file.
    Show,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Events to write.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Directory for the demo's data [default: a fresh temporary directory, removed after].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Records per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Directory for the benchmark's data [default: a temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Signed transfers for the ledger measurement (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub ledger_txs: usize,
    #[arg(long)]
    pub json: bool,
}
