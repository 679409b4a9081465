//! TLS cases: `rgi-conformance server --url https://HOST:PORT --ca FILE` (or `--insecure`)
//! drives the server over TLS (rustls, ring provider), with ALPN choosing HTTP/1.1 or HTTP/2.
//!
//! The cases check what only a TLS connection shows: the scheme and TLS information the server
//! reports (`HTTP-CONN-3`, `HTTP-CONN-4`), ALPN selection of `h2`, and that bodies and
//! WebSocket sessions work over TLS as over TCP. They need the capability `tls`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rgi::Capability;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Manifest, check};
use crate::report::{CaseResult, Outcome, Report};
use crate::wire::IO_TIMEOUT;

/// Which server certificates the client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Certificates signed by the CA (or equal to the self-signed certificate) in this PEM file.
    Ca(PathBuf),
    /// Any certificate (`--insecure`; local testing only).
    Any,
}

/// Why the TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {why}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The host is not a valid server name.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A server under test that speaks TLS.
#[derive(Clone)]
pub struct TlsTarget {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The name the client sends (SNI) and verifies.
    pub server_name: ServerName<'static>,
    /// What the server claims.
    pub manifest: Arc<Manifest>,
    trust: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsTarget {
    /// A target at `addr`, verified as `host` under `trust`.
    pub fn new(
        addr: SocketAddr,
        host: &str,
        trust: &Trust,
        manifest: Arc<Manifest>,
    ) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match trust {
            Trust::Ca(path) => {
                let ca_error = |why: String| TlsSetupError::Ca {
                    path: path.clone(),
                    why,
                };
                let mut roots = rustls::RootCertStore::empty();
                let certificates: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_file_iter(path)
                        .map_err(|e| ca_error(e.to_string()))?
                        .collect::<Result<_, _>>()
                        .map_err(|e| ca_error(e.to_string()))?;
                if certificates.is_empty() {
                    return Err(ca_error("no certificate in the file".into()));
                }
                for certificate in certificates {
                    roots
                        .add(certificate)
                        .map_err(|e| ca_error(e.to_string()))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Any => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
        };
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsSetupError::ServerName(host.to_owned()))?;
        Ok(Self {
            addr,
            server_name,
            manifest,
            trust: Arc::new(config),
        })
    }

    /// Connects and completes a TLS handshake offering `alpn`.
    async fn connect(&self, alpn: &[&[u8]]) -> Result<TlsStream<TcpStream>, String> {
        let mut config = (*self.trust).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tokio::time::timeout(
            IO_TIMEOUT,
            TlsConnector::from(Arc::new(config)).connect(self.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| "the TLS handshake timed out".to_owned())?
        .map_err(|e| format!("TLS handshake: {e}"))
    }
}

/// Accepts every certificate, still checking handshake signatures (`--insecure`).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type CaseFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

struct TlsCase {
    name: &'static str,
    ids: &'static [&'static str],
    needs: &'static [Capability],
    run: fn(TlsTarget) -> CaseFuture,
}

macro_rules! tls_case {
    ($name:literal, [$($id:literal),+ $(,)?], [$($needs:expr),*], $run:path) => {
        TlsCase {
            name: $name,
            ids: &[$($id),+],
            needs: &[Capability::Tls, $($needs),*],
            run: |target| Box::pin($run(target)),
        }
    };
}

const TLS_CASES: [TlsCase; 5] = [
    tls_case!(
        "tls: HTTP/1.1 over TLS reports scheme https and the TLS session",
        ["HTTP-CONN-3", "HTTP-CONN-4"],
        [Capability::Http1],
        http1_meta
    ),
    tls_case!(
        "tls: ALPN h2 selects HTTP/2 and is reported",
        ["HTTP-CONN-3", "HTTP-CONN-4", "HTTP-REQ-2"],
        [Capability::Http2],
        h2_meta
    ),
    tls_case!(
        "tls: body echoed whole over TLS, HTTP/1.1 and HTTP/2",
        ["HTTP-BODY-3", "HTTP-BODY-5"],
        [Capability::Http1],
        echo
    ),
    tls_case!(
        "tls: connection id shared by the requests of one TLS connection",
        ["HTTP-CONN-6", "HTTP-CONN-7"],
        [Capability::Http1],
        one_connection_id
    ),
    tls_case!(
        "tls: WebSocket session over TLS",
        ["WS-HS-1", "WS-HS-5", "WS-MSG-1"],
        [Capability::WebSocket],
        websocket
    ),
];

/// The TLS cases: name and the requirements each checks.
pub fn cases() -> Vec<(&'static str, &'static [&'static str])> {
    TLS_CASES.iter().map(|c| (c.name, c.ids)).collect()
}

/// Runs every TLS case against `target`.
pub async fn run(target: &TlsTarget) -> Report {
    let mut report = Report::new();
    for case in &TLS_CASES {
        let missing = case
            .needs
            .iter()
            .find(|c| !target.manifest.capabilities.contains(**c));
        let outcome = match missing {
            Some(capability) => Outcome::Skipped(format!("capability `{capability}` not claimed")),
            None => match tokio::spawn((case.run)(target.clone())).await {
                Ok(Ok(())) => Outcome::Passed,
                Ok(Err(why)) => Outcome::Failed(why),
                Err(join) => Outcome::Failed(format!("the case itself failed: {join}")),
            },
        };
        report.push(CaseResult {
            name: case.name,
            ids: case.ids,
            outcome,
        });
    }
    report
}

type Outgoing = BoxBody<Bytes, std::convert::Infallible>;

/// One HTTP connection over TLS, HTTP/1.1 or HTTP/2 as ALPN chose.
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Outgoing>),
    Http2(hyper::client::conn::http2::SendRequest<Outgoing>),
}

/// What the handshake negotiated, from the client's side.
struct Negotiated {
    alpn: Option<Vec<u8>>,
    version: Option<rustls::ProtocolVersion>,
}

async fn http_connect(target: &TlsTarget, alpn: &[&[u8]]) -> Result<(Sender, Negotiated), String> {
    let stream = target.connect(alpn).await?;
    let session = stream.get_ref().1;
    let negotiated = Negotiated {
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        version: session.protocol_version(),
    };
    let io = TokioIo::new(stream);
    let sender = if negotiated.alpn.as_deref() == Some(b"h2") {
        let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("HTTP/2 handshake over TLS: {e}"))?;
        tokio::spawn(connection);
        Sender::Http2(sender)
    } else {
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("HTTP/1.1 handshake over TLS: {e}"))?;
        tokio::spawn(connection);
        Sender::Http1(sender)
    };
    Ok((sender, negotiated))
}

impl Sender {
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        host: &str,
    ) -> Result<(u16, Bytes), String> {
        let mut req = Request::new(Full::new(body).boxed());
        *req.method_mut() = method;
        let response = match self {
            Sender::Http1(sender) => {
                *req.uri_mut() = path.parse().map_err(|e| format!("{e}"))?;
                req.headers_mut().insert(
                    http::header::HOST,
                    http::HeaderValue::from_str(host).map_err(|e| e.to_string())?,
                );
                tokio::time::timeout(IO_TIMEOUT, sender.send_request(req)).await
            }
            Sender::Http2(sender) => {
                *req.uri_mut() = format!("https://{host}{path}")
                    .parse()
                    .map_err(|e| format!("{e}"))?;
                *req.version_mut() = Version::HTTP_2;
                tokio::time::timeout(IO_TIMEOUT, sender.send_request(req)).await
            }
        }
        .map_err(|_| format!("no answer to {path} within {IO_TIMEOUT:?}"))?
        .map_err(|e| format!("request to {path} failed: {e}"))?;
        let status = response.status().as_u16();
        let body = tokio::time::timeout(IO_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| format!("the body of {path} did not end within {IO_TIMEOUT:?}"))?
            .map_err(|e| format!("the body of {path} failed: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

fn host(target: &TlsTarget) -> String {
    match &target.server_name {
        ServerName::DnsName(name) => format!("{}:{}", name.as_ref(), target.addr.port()),
        _ => target.addr.to_string(),
    }
}

fn field(body: &[u8], name: &str) -> Option<String> {
    let prefix = format!("{name}: ");
    String::from_utf8_lossy(body)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

/// Checks the `/meta` report of a TLS exchange against what the client negotiated.
fn check_meta(
    target: &TlsTarget,
    body: &[u8],
    negotiated: &Negotiated,
    version: &str,
) -> Result<(), String> {
    check!(
        field(body, "version").as_deref() == Some(version),
        "version {:?} instead of {version}",
        field(body, "version")
    );
    check!(
        field(body, "scheme").as_deref() == Some("https"),
        "scheme {:?} on a TLS connection",
        field(body, "scheme")
    );
    let tls = field(body, "tls").unwrap_or_default();
    check!(
        tls != "none" && !tls.is_empty(),
        "no TLS information on a TLS connection: {tls:?}"
    );
    let expected_version = match negotiated.version {
        Some(rustls::ProtocolVersion::TLSv1_3) => "Tls13",
        Some(rustls::ProtocolVersion::TLSv1_2) => "Tls12",
        _ => "",
    };
    check!(
        !expected_version.is_empty() && tls.contains(expected_version),
        "TLS information {tls:?} does not report the negotiated {:?}",
        negotiated.version
    );
    let alpn = negotiated
        .alpn
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    check!(
        tls.contains(&format!("alpn={alpn} ")),
        "TLS information {tls:?} does not report the negotiated ALPN {alpn:?}"
    );
    if let ServerName::DnsName(name) = &target.server_name {
        check!(
            tls.ends_with(&format!("sni={}", name.as_ref())),
            "TLS information {tls:?} does not report the SNI name {}",
            name.as_ref()
        );
    }
    Ok(())
}

/// HTTP-CONN-3, HTTP-CONN-4: an HTTP/1.1 exchange over TLS sees `https` and the session.
async fn http1_meta(target: TlsTarget) -> Result<(), String> {
    let (mut sender, negotiated) = http_connect(&target, &[b"http/1.1"]).await?;
    check!(
        matches!(sender, Sender::Http1(_)),
        "the server chose h2 though the client offered only http/1.1"
    );
    let (status, body) = sender
        .send(Method::GET, "/meta", Bytes::new(), &host(&target))
        .await?;
    check!(status == 200, "status {status}");
    check_meta(&target, &body, &negotiated, "HTTP/1.1")
}

/// HTTP-CONN-4, HTTP-REQ-2: ALPN offering h2 first gets HTTP/2, reported as such.
async fn h2_meta(target: TlsTarget) -> Result<(), String> {
    let (mut sender, negotiated) = http_connect(&target, &[b"h2", b"http/1.1"]).await?;
    check!(
        negotiated.alpn.as_deref() == Some(b"h2"),
        "ALPN selected {:?} though the client preferred h2 and the server claims http2",
        negotiated.alpn.as_deref().map(String::from_utf8_lossy)
    );
    let (status, body) = sender
        .send(Method::GET, "/meta", Bytes::new(), &host(&target))
        .await?;
    check!(status == 200, "status {status}");
    check_meta(&target, &body, &negotiated, "HTTP/2.0")
}

/// HTTP-BODY-3, HTTP-BODY-5: a 300 kB body comes back whole over TLS, on each version.
async fn echo(target: TlsTarget) -> Result<(), String> {
    let data = Bytes::from(
        (0..300_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut offers: Vec<&[&[u8]]> = vec![&[b"http/1.1"]];
    if target.manifest.capabilities.contains(Capability::Http2) {
        offers.push(&[b"h2"]);
    }
    for alpn in offers {
        let (mut sender, _) = http_connect(&target, alpn).await?;
        let (status, body) = sender
            .send(Method::POST, "/echo", data.clone(), &host(&target))
            .await?;
        check!(status == 200, "status {status}");
        check!(
            body == data,
            "echoed {} bytes of {} (ALPN {:?})",
            body.len(),
            data.len(),
            String::from_utf8_lossy(alpn[0])
        );
    }
    Ok(())
}

/// HTTP-CONN-6, HTTP-CONN-7: two requests on one TLS connection share a connection id; a second
/// connection gets another.
async fn one_connection_id(target: TlsTarget) -> Result<(), String> {
    let (mut sender, _) = http_connect(&target, &[b"http/1.1"]).await?;
    let (_, first) = sender
        .send(Method::GET, "/meta", Bytes::new(), &host(&target))
        .await?;
    let (_, second) = sender
        .send(Method::GET, "/meta", Bytes::new(), &host(&target))
        .await?;
    let (mut other, _) = http_connect(&target, &[b"http/1.1"]).await?;
    let (_, third) = other
        .send(Method::GET, "/meta", Bytes::new(), &host(&target))
        .await?;
    let ids = [
        field(&first, "connection-id"),
        field(&second, "connection-id"),
        field(&third, "connection-id"),
    ];
    check!(
        ids[0].is_some() && ids[0] == ids[1],
        "one TLS connection reported ids {:?} and {:?}",
        ids[0],
        ids[1]
    );
    check!(
        ids[2] != ids[0],
        "two TLS connections share the id {:?}",
        ids[0]
    );
    Ok(())
}

/// WS-HS-1, WS-HS-5, WS-MSG-1: a WebSocket session over TLS echoes messages.
async fn websocket(target: TlsTarget) -> Result<(), String> {
    let stream = target.connect(&[b"http/1.1"]).await?;
    let request = format!("wss://{}/ws", host(&target))
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let (mut socket, _) =
        tokio::time::timeout(IO_TIMEOUT, tokio_tungstenite::client_async(request, stream))
            .await
            .map_err(|_| "the WebSocket handshake timed out".to_owned())?
            .map_err(|e| format!("the WebSocket handshake failed: {e}"))?;
    for message in [
        Message::text("over tls"),
        Message::binary(vec![7u8; 70_000]),
    ] {
        socket
            .send(message.clone())
            .await
            .map_err(|e| e.to_string())?;
        let got = tokio::time::timeout(IO_TIMEOUT, socket.next())
            .await
            .map_err(|_| "no echo within the timeout".to_owned())?
            .ok_or_else(|| "the session ended".to_owned())?
            .map_err(|e| e.to_string())?;
        check!(got == message, "echo differs from what was sent");
    }
    drop(socket.close(None).await);
    Ok(())
}
