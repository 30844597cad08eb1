//! The TLS client of https callbacks: rustls (ring), trusting the system's roots plus those of an
//! optional PEM file. Built on the first https callback, so a platform that never calls one back
//! over https never reads the certificate store.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::{Error, ErrorKind, Result};

/// The client the worker sends https callbacks with.
pub(crate) type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Reads the certificates of the PEM file `path`.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when the file cannot be read, is not PEM, or holds no certificate.
pub(crate) fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let invalid = |message: String| Error::new(ErrorKind::InvalidInput, message);
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("cannot read the CA file {}: {e}", path.display())))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(format!(
                "the CA file {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "the CA file {} holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)",
            path.display()
        )));
    }
    Ok(certs)
}

/// Builds the https client: the system's roots (as `rustls-native-certs` finds them, honouring
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus the certificates of `extra_roots`. Blocking: it reads
/// the certificate store.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for an unreadable `extra_roots`, [`ErrorKind::Unavailable`] when no
/// root certificate at all could be loaded.
pub(crate) fn https_client(extra_roots: Option<&Path>) -> Result<HttpsClient> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::debug!(error = %err, "skipping part of the system's certificate store");
    }
    let (system, _) = roots.add_parsable_certificates(native.certs);
    let mut extra = 0;
    if let Some(path) = extra_roots {
        let (added, ignored) = roots.add_parsable_certificates(pem_certificates(path)?);
        if ignored > 0 {
            tracing::warn!(path = %path.display(), ignored, "some certificates of the CA file are not usable roots");
        }
        extra = added;
    }
    if roots.is_empty() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            "no root certificate to verify https callbacks with: install ca-certificates, set SSL_CERT_FILE, or give a CA file",
        ));
    }
    tracing::debug!(system, extra, "https callback client ready");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal("cannot configure TLS").with_source(e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = pem_certificates(&missing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("cannot read the CA file"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = pem_certificates(&empty).unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");

        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.cert.pem()).unwrap();
        assert_eq!(pem_certificates(&good).unwrap().len(), 1);
        assert!(https_client(Some(&good)).is_ok());
    }
}
