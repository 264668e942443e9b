//! The blocking HTTP client: one keep-alive agent, time limits, rustls with an optional extra
//! CA, every status returned as a [`Response`] (a 409 is an answer, not a failure).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::HttpError;
use crate::tls::client_config;

/// How the client connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Limit on connecting, and on each read and write.
    pub timeout: Duration,
    /// Trust this CA (PEM) besides the public web roots.
    pub ca_file: Option<PathBuf>,
    /// Largest response body read; a larger one is an error.
    pub max_body: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            ca_file: None,
            max_body: 16 << 20,
        }
    }
}

/// An HTTP response: status, `Content-Type` and the whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking HTTP(S) client that keeps connections alive between calls; cheap to clone.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    max_body: u64,
}

impl Client {
    pub fn new(options: &ClientOptions) -> Result<Client, HttpError> {
        let tls = client_config(options.ca_file.as_deref())?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(options.timeout)
            .timeout_read(options.timeout)
            .timeout_write(options.timeout)
            .tls_config(tls)
            .build();
        Ok(Client {
            agent,
            max_body: options.max_body,
        })
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> Result<Response, HttpError> {
        self.finish(url, self.agent.get(url).call())
    }

    /// `POST url` with `body` of `content_type`.
    pub fn post(&self, url: &str, content_type: &str, body: &[u8]) -> Result<Response, HttpError> {
        let request = self.agent.post(url).set("Content-Type", content_type);
        self.finish(url, request.send_bytes(body))
    }

    fn finish(
        &self,
        url: &str,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<Response, HttpError> {
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(HttpError::Request {
                    url: url.into(),
                    why: transport_message(&t),
                })
            }
        };
        let status = response.status();
        let content_type = response.header("Content-Type").map(str::to_owned);
        let mut body = Vec::new();
        response
            .into_reader()
            .take(self.max_body + 1)
            .read_to_end(&mut body)
            .map_err(|e| HttpError::Request {
                url: url.into(),
                why: format!("reading the response: {e}"),
            })?;
        if body.len() as u64 > self.max_body {
            return Err(HttpError::TooLarge {
                url: url.into(),
                limit: self.max_body,
            });
        }
        Ok(Response {
            status,
            content_type,
            body,
        })
    }
}

/// A transport error in one line, without the URL (the caller names it).
fn transport_message(t: &ureq::Transport) -> String {
    let mut msg = t.kind().to_string();
    if let Some(m) = t.message() {
        msg = format!("{msg}: {m}");
    }
    let mut source = std::error::Error::source(t);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !msg.contains(&s_text) {
            msg = format!("{msg}: {s_text}");
        }
        source = s.source();
    }
    msg
}
