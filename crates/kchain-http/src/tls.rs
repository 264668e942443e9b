//! rustls configurations from PEM files: a server's certificate chain and key, and a client's
//! roots (the public web roots plus, for private deployments and tests, a CA file).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::HttpError;

/// A server's certificate chain and private key, as PEM files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn open(what: &'static str, path: &Path) -> Result<BufReader<std::fs::File>, HttpError> {
    let f = std::fs::File::open(path).map_err(|source| HttpError::File {
        what,
        path: path.into(),
        source,
    })?;
    Ok(BufReader::new(f))
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, HttpError> {
    let certs = rustls_pemfile::certs(&mut open(what, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HttpError::BadPem {
            what,
            path: path.into(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(HttpError::BadPem {
            what,
            path: path.into(),
            why: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, HttpError> {
    let what = "TLS private key";
    rustls_pemfile::private_key(&mut open(what, path)?)
        .map_err(|e| HttpError::BadPem {
            what,
            path: path.into(),
            why: e.to_string(),
        })?
        .ok_or_else(|| HttpError::BadPem {
            what,
            path: path.into(),
            why: "no PRIVATE KEY block".into(),
        })
}

/// A server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, HttpError> {
    let chain = certs("TLS certificate", &files.cert)?;
    let key = private_key(&files.key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| HttpError::Tls(format!("{}: {e}", files.cert.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration trusting the public web roots and, when given, the certificates of
/// `ca_file` (a private CA, or a self-signed server certificate).
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, HttpError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in certs("CA file", path)? {
            roots.add(cert).map_err(|e| HttpError::BadPem {
                what: "CA file",
                path: path.into(),
                why: e.to_string(),
            })?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
