//! TLS with rustls (ring provider): loading the identity, and what a handshake negotiated.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rgi::{TlsInfo, TlsVersion};
use rustls::ServerConnection;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{HttpVersions, TlsFiles};
use crate::protocol::Protocol;

/// Why the TLS identity could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    /// The client CA file could not be used.
    #[error("invalid client CA certificates: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
    /// rustls refused the identity (for example a key that does not match the certificate).
    #[error("invalid TLS identity: {0}")]
    Rustls(#[from] rustls::Error),
}

fn pem_error(path: &Path) -> impl FnOnce(rustls_pki_types::pem::Error) -> TlsError + '_ {
    move |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    }
}

/// The rustls server configuration for `files`, with ALPN for the configured HTTP versions.
pub(crate) fn server_config(
    files: &TlsFiles,
    http: HttpVersions,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(pem_error(&files.cert))?
        .collect::<Result<_, _>>()
        .map_err(pem_error(&files.cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(pem_error(&files.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(pem_error(path))? {
                roots.add(cert.map_err(pem_error(path))?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    // In the server's order of preference. `http/1.0` is offered by clients that speak only
    // HTTP/1.0 (`curl --http1.0`); without it their handshake fails (`no_application_protocol`).
    config.alpn_protocols = match http {
        HttpVersions::Http1Only => vec![HTTP_11.to_vec(), HTTP_10.to_vec()],
        HttpVersions::Http2Only => vec![H2.to_vec()],
        HttpVersions::Auto => vec![H2.to_vec(), HTTP_11.to_vec(), HTTP_10.to_vec()],
    };
    Ok(Arc::new(config))
}

const H2: &[u8] = b"h2";
const HTTP_11: &[u8] = b"http/1.1";
const HTTP_10: &[u8] = b"http/1.0";

/// The protocol the handshake of `conn` chose by ALPN, if the client offered any.
pub(crate) fn negotiated_protocol(conn: &ServerConnection) -> Option<Protocol> {
    match conn.alpn_protocol()? {
        H2 => Some(Protocol::Http2),
        HTTP_11 | HTTP_10 => Some(Protocol::Http1),
        _ => None,
    }
}

/// What the handshake of `conn` negotiated (`HTTP-CONN-4`).
pub(crate) fn info(conn: &ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
        Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
        Some(other) => TlsVersion::Other(u16::from(other)),
        None => TlsVersion::Other(0),
    };
    let mut info = TlsInfo::new(version);
    if let Some(suite) = conn.negotiated_cipher_suite() {
        if let Some(name) = suite.suite().as_str() {
            info = info.with_cipher_suite(name);
        }
    }
    if let Some(alpn) = conn.alpn_protocol() {
        info = info.with_alpn(Bytes::copy_from_slice(alpn));
    }
    if let Some(name) = conn.server_name() {
        info = info.with_server_name(name);
    }
    if let Some(chain) = conn.peer_certificates() {
        info = info.with_peer_certificates(
            chain
                .iter()
                .map(|cert| Bytes::copy_from_slice(cert.as_ref()))
                .collect(),
        );
    }
    info
}
