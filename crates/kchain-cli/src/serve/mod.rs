//! `kchain serve`: the HTTP front end. Where the CLI parses arguments and prints, the server
//! parses requests and answers JSON: the same library calls, and the same JSON as the
//! commands' `--json` (report/), so a report reads the same from either.
//!
//! ```text
//!  kchain serve --listen ADDR [--tokens FILE] [--tls-cert C --tls-key K]
//!    open the log once (-b or --data-dir) ──► AppState {global, log, tokens, metrics}
//!    kchain-http Server (own tokio runtime, rustls) ──► app::router
//!       /healthz /metrics /openapi.json
//!       /api/v1/topics/...       topics.rs   (writes need a bearer token: auth.rs)
//!       /api/v1/ledgers/...      ledger.rs
//!       /explorer/, /api/v1/overview   explorer.rs
//!    handlers ──► state::blocking(library call) ──► JSON or error::ApiError
//! ```

mod app;
// The sections (topics, ledgers, explorer) use these; allowed until they land.
#[allow(dead_code)]
mod auth;
#[allow(dead_code)]
mod error;
mod explorer;
mod ledger;
#[allow(dead_code)]
mod metrics;
#[allow(dead_code)]
mod state;
mod sync;
mod topics;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::global::{open_log, Global};
use crate::outcome::Outcome;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub listen: String,
    /// Bearer tokens for the write endpoints (TOML, see docs/api.md); without it the server
    /// is read-only: every write is refused.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest request body accepted, in bytes; larger is refused with 413.
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES")]
    pub max_body: usize,
    /// Worker threads of the HTTP runtime (blocking work runs on a pool beside them).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Serves until SIGINT or SIGTERM.
pub fn serve(g: &Global, a: &ServeArgs) -> Result<Outcome> {
    let tokens = match &a.tokens {
        Some(path) => auth::Tokens::read(path)?,
        None => auth::Tokens::default(),
    };
    let log: Arc<dyn kchain_log::Log> = Arc::from(open_log(g, true)?);
    let state = Arc::new(state::AppState {
        global: g.clone(),
        log,
        tokens,
        metrics: Arc::default(),
        producers: Default::default(),
        pages: Default::default(),
    });
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(kchain_http::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let mut options = kchain_http::ServerOptions::new(&a.listen).with_tls(tls);
    options.threads = a.threads.max(1);
    crate::stop::watch();
    let server = kchain_http::Server::start(&options, app::router(state.clone(), a.max_body))
        .with_context(|| format!("serving on {}", a.listen))?;
    println!("kchain serve listening on {}", server.url());
    std::io::stdout().flush()?;
    if a.tokens.is_none() && !g.quiet {
        eprintln!("kchain: no --tokens file: read-only, every write is refused");
    }
    let mut ticks = 0u64;
    while crate::stop::requested().is_none() {
        std::thread::sleep(Duration::from_millis(100));
        ticks += 1;
        if ticks.is_multiple_of(10) {
            state.producers.tick();
        }
    }
    server.shutdown();
    state.producers.close();
    Ok(Outcome::Clean)
}
