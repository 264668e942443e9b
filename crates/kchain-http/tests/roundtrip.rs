//! The server and the client against each other on loopback: plain HTTP, TLS with a run-time
//! CA, a client that does not trust the CA, and statuses passed through as answers.

use std::time::Duration;

use kchain_http::axum::{routing::get, routing::post, Router};
use kchain_http::{Client, ClientOptions, Server, ServerOptions, TestPki};

fn router() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello\n" }))
        .route(
            "/echo",
            post(|body: String| async move {
                if body.is_empty() {
                    (
                        kchain_http::axum::http::StatusCode::CONFLICT,
                        "0\n".to_string(),
                    )
                } else {
                    (kchain_http::axum::http::StatusCode::OK, body)
                }
            }),
        )
}

#[test]
fn plain_http_answers_and_statuses_come_back_as_responses() {
    let server = Server::start(&ServerOptions::new("127.0.0.1:0"), router()).unwrap();
    assert!(server.url().starts_with("http://127.0.0.1:"));
    let client = Client::new(&ClientOptions::default()).unwrap();
    let r = client.get(&format!("{}/hello", server.url())).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "hello\n"));
    let r = client
        .post(&format!("{}/echo", server.url()), "text/plain", b"abc")
        .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
    let r = client
        .post(&format!("{}/echo", server.url()), "text/plain", b"")
        .unwrap();
    assert_eq!(r.status, 409);
    let r = client.get(&format!("{}/nothing", server.url())).unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn tls_with_a_run_time_ca_and_a_client_that_does_not_trust_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path()).unwrap();
    let options = ServerOptions::new("127.0.0.1:0").with_tls(Some(pki.server.clone()));
    let server = Server::start(&options, router()).unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));

    let trusting = Client::new(&ClientOptions {
        ca_file: Some(pki.ca.clone()),
        ..ClientOptions::default()
    })
    .unwrap();
    let r = trusting.get(&format!("{}/hello", server.url())).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "hello\n"));

    let stranger = Client::new(&ClientOptions {
        timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    })
    .unwrap();
    let err = stranger
        .get(&format!("{}/hello", server.url()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );
}

#[test]
fn a_stopped_server_refuses_connections_and_a_bad_address_is_named() {
    let server = Server::start(&ServerOptions::new("127.0.0.1:0"), router()).unwrap();
    let url = format!("{}/hello", server.url());
    server.shutdown();
    let client = Client::new(&ClientOptions::default()).unwrap();
    assert!(client.get(&url).is_err());
    let err = Server::start(&ServerOptions::new("256.0.0.1:80"), router())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("256.0.0.1:80"), "{err}");
}
