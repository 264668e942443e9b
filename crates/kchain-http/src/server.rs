//! The HTTP server: an axum router served over TCP or TLS on a tokio runtime of its own.
//!
//! ```text
//!  Server::start(options, router)
//!    bind (synchronously: a bad address fails here, port 0 gets its real port)
//!    runtime thread ── accept ──► [TLS handshake] ──► HTTP/1.1 keep-alive connection ──► router
//!  RunningServer: addr(), url(), wait(), shutdown() (also on drop)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::error::HttpError;
use crate::tls::{server_config, TlsFiles};

/// How long a client has to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// `host:port` to listen on; port 0 picks a free port (see [`RunningServer::addr`]).
    pub bind: String,
    /// Serve HTTPS with this certificate and key; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Worker threads of the server's runtime.
    pub threads: usize,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

impl ServerOptions {
    /// Plain HTTP on `bind`, two worker threads.
    pub fn new(bind: impl Into<String>) -> ServerOptions {
        ServerOptions {
            bind: bind.into(),
            tls: None,
            threads: 2,
            max_connections: 1024,
        }
    }

    /// The same, over TLS.
    pub fn with_tls(mut self, tls: Option<TlsFiles>) -> ServerOptions {
        self.tls = tls;
        self
    }
}

/// Starts servers.
pub struct Server;

impl Server {
    /// Binds `options.bind` and serves `router` on a runtime of its own until the returned
    /// server is shut down or dropped.
    pub fn start(options: &ServerOptions, router: Router) -> Result<RunningServer, HttpError> {
        let acceptor = match &options.tls {
            Some(files) => Some(TlsAcceptor::from(server_config(files)?)),
            None => None,
        };
        let bind_err = |source| HttpError::Bind {
            addr: options.bind.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(&options.bind).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads.max(1))
            .thread_name("kchain-http")
            .enable_all()
            .build()
            .map_err(HttpError::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener).map_err(bind_err)?
        };
        let (stop, stopped) = oneshot::channel();
        let max_connections = options.max_connections.max(1);
        let thread = std::thread::Builder::new()
            .name("kchain-http-accept".into())
            .spawn(move || {
                let limit = Arc::new(Semaphore::new(max_connections));
                runtime.block_on(accept_loop(listener, acceptor, router, limit, stopped));
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(HttpError::Runtime)?;
        Ok(RunningServer {
            addr,
            tls: options.tls.is_some(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    limit: Arc<Semaphore>,
    mut stopped: oneshot::Receiver<()>,
) {
    let acceptor = acceptor.map(Arc::new);
    loop {
        let permit = tokio::select! {
            _ = &mut stopped => return,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, _) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            serve_connection(stream, acceptor, router).await;
            drop(permit);
        });
    }
}

async fn serve_connection(stream: TcpStream, acceptor: Option<Arc<TlsAcceptor>>, router: Router) {
    let service = TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    // A client that opens a connection and sends its headers slowly (or never) is dropped,
    // so it cannot hold one of the limited connections for ever.
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    // A client that fails the handshake or drops the connection concerns only itself.
    match acceptor {
        Some(acceptor) => {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                let _ = http.serve_connection(TokioIo::new(tls), service).await;
            }
        }
        None => {
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        }
    }
}

/// A server that is running; shut down when dropped.
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// The address it listens on (with the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr` or `https://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Blocks until the server stops (it stops only when shut down from another thread or
    /// when the process ends).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops accepting, ends the connections, and waits for the runtime to stop.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}
