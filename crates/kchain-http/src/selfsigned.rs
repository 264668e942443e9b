//! A private PKI made at run time (feature `selfsigned`): a CA, and a server certificate it
//! signs for `127.0.0.1`, `::1` and `localhost`, for tests and the demo's TLS between parties.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

use crate::error::HttpError;
use crate::tls::TlsFiles;

/// The files of a run-time PKI: `ca.pem` for clients, `cert.pem`/`key.pem` for servers.
#[derive(Clone, Debug)]
pub struct TestPki {
    pub ca: PathBuf,
    pub server: TlsFiles,
}

impl TestPki {
    /// Makes a CA and a loopback server certificate in `dir` (created if missing).
    pub fn generate(dir: &Path) -> Result<TestPki, HttpError> {
        let tls = |e: rcgen::Error| HttpError::Tls(e.to_string());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HttpError::File {
                what: "test PKI",
                path,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;

        let ca_key = KeyPair::generate().map_err(tls)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kchain test CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;

        let key = KeyPair::generate().map_err(tls)?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(tls)?;
        for ip in ["127.0.0.1", "::1"] {
            params
                .subject_alt_names
                .push(SanType::IpAddress(ip.parse().expect("an IP address")));
        }
        params
            .distinguished_name
            .push(DnType::CommonName, "kchain test server");
        let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(tls)?;

        let pki = TestPki {
            ca: dir.join("ca.pem"),
            server: TlsFiles {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
            },
        };
        std::fs::write(&pki.ca, ca_cert.pem()).map_err(io(&pki.ca))?;
        std::fs::write(&pki.server.cert, cert.pem()).map_err(io(&pki.server.cert))?;
        std::fs::write(&pki.server.key, key.serialize_pem()).map_err(io(&pki.server.key))?;
        Ok(pki)
    }
}
