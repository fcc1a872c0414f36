//! Mutual TLS for the internal gRPC services, from PEM files.
//!
//! Servers require a client certificate issued by the internal CA *and* named in an allow-list
//! (by default only the gateway). The name check runs inside the TLS handshake, so a refused
//! client never reaches a gRPC handler. A server with more than one kind of client (hangout-core:
//! the gateway and file-core) admits all of them in the handshake and puts a [`RequireClient`]
//! in front of each service, so each kind reaches only its own services. TLS 1.2 and 1.3 only;
//! HTTP/2 is negotiated by ALPN.

use std::{
    fmt, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;

/// How long a client gets to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Paths of the PEM files one party needs for mutual TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The internal CA certificate that signs every peer.
    pub ca: PathBuf,
    /// This party's certificate chain.
    pub cert: PathBuf,
    /// This party's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A PEM file held nothing usable.
    #[error("{path} holds no {what}")]
    Missing { path: PathBuf, what: &'static str },
    /// rustls refused the material.
    #[error("invalid TLS material")]
    Rustls(#[from] rustls::Error),
    /// The CA could not be used to verify clients.
    #[error("invalid client CA")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// An allow-listed client name is not a valid DNS name.
    #[error("{0:?} is not a valid DNS name")]
    InvalidName(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::Missing {
            path: path.to_owned(),
            what: "private key",
        })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server side: our certificate, clients verified against the CA and `allowed_clients`.
///
/// # Errors
/// When a file is missing or unparsable, or a name in `allowed_clients` is not a DNS name.
pub fn server_config(
    files: &TlsFiles,
    allowed_clients: &[String],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(&files.ca)? {
        roots.add(ca)?;
    }
    let inner =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let allowed = ClientNames::new(allowed_clients)?;
    let verifier = Arc::new(AllowListedClients { inner, allowed });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(&files.cert)?, private_key(&files.key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Builds the client side for a server whose certificate must carry `server_name`.
///
/// # Errors
/// When a file is missing or unreadable.
pub fn client_config(
    files: &TlsFiles,
    server_name: &str,
) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
    // Parse eagerly so a broken file fails at start-up, not at the first call.
    certificates(&files.ca)?;
    certificates(&files.cert)?;
    private_key(&files.key)?;
    Ok(tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(&files.ca)?))
        .identity(tonic::transport::Identity::from_pem(
            read(&files.cert)?,
            read(&files.key)?,
        ))
        .domain_name(server_name))
}

/// Accepts TCP connections on `listener` and yields those that complete a TLS handshake.
///
/// Handshakes run concurrently, each with a deadline, so one slow client cannot hold up others.
/// Failed handshakes are logged at debug level and dropped. The accept loop ends when the
/// returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = sender.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    continue;
                }
            };
            // tonic sets TCP_NODELAY only on connections it accepts itself. Without it, Nagle's
            // algorithm holds a response's trailers back until the peer's delayed ACK (up to
            // 40 ms on Linux) whenever they leave in a write of their own.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, %error, "setting TCP_NODELAY failed");
            }
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => log_refused(peer, &error),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

fn log_refused(peer: SocketAddr, error: &io::Error) {
    tracing::debug!(%peer, %error, "TLS handshake refused");
}

/// Names a client certificate may carry (as a DNS SAN), checked as a server certificate is
/// checked for its host name.
#[derive(Clone, Debug)]
struct ClientNames(Arc<[ServerName<'static>]>);

impl ClientNames {
    fn new(names: &[String]) -> Result<Self, TlsError> {
        names
            .iter()
            .map(|name| {
                ServerName::try_from(name.clone()).map_err(|_| TlsError::InvalidName(name.clone()))
            })
            .collect::<Result<Arc<[_]>, _>>()
            .map(Self)
    }

    /// Whether the leaf certificate `end_entity` is valid for one of the names.
    fn admit(&self, end_entity: &CertificateDer<'_>) -> Result<bool, webpki::Error> {
        let certificate = webpki::EndEntityCert::try_from(end_entity)?;
        Ok(self
            .0
            .iter()
            .any(|name| certificate.verify_is_valid_for_subject_name(name).is_ok()))
    }
}

/// A tonic interceptor that serves a call only when the client's certificate, already verified
/// in the handshake, carries one of its names; others get PERMISSION_DENIED. For servers whose
/// kinds of clients may each call only some of its services.
#[derive(Clone, Debug)]
pub struct RequireClient(ClientNames);

impl RequireClient {
    /// # Errors
    /// When a name is not a valid DNS name.
    pub fn new(names: &[String]) -> Result<Self, TlsError> {
        ClientNames::new(names).map(Self)
    }
}

impl tonic::service::Interceptor for RequireClient {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        // The chain was verified in the handshake; its leaf comes first.
        let admitted = request.peer_certs().is_some_and(|chain| {
            chain
                .first()
                .is_some_and(|leaf| self.0.admit(leaf).unwrap_or(false))
        });
        if admitted {
            Ok(request)
        } else {
            Err(tonic::Status::permission_denied(
                "this client certificate may not call this service",
            ))
        }
    }
}

/// Verifies the client chain with webpki, then requires the leaf to be valid for one of the
/// allow-listed names (its SAN), as a server certificate would be for its host name.
struct AllowListedClients {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: ClientNames,
}

impl fmt::Debug for AllowListedClients {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AllowListedClients")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for AllowListedClients {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let allowed = self.allowed.admit(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if allowed {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    use super::*;
    use crate::dev_certs::{DevCa, write_pair};

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new("test CA").unwrap();
        let server = write_pair(
            &dir.path().join("server"),
            &ca,
            "hangout-core",
            &ca.issue_server("hangout-core").unwrap(),
        )
        .unwrap();
        let client = write_pair(
            &dir.path().join("client"),
            &ca,
            "gateway",
            &ca.issue_client("gateway").unwrap(),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut accepted = incoming(
            listener,
            server_config(&server, &["gateway".to_owned()]).unwrap(),
        );
        let tls = client_config(&client, "hangout-core").unwrap();
        let connecting = tokio::spawn(async move {
            tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
        });
        let stream = accepted.next().await.unwrap().unwrap();
        assert!(
            stream.get_ref().0.nodelay().unwrap(),
            "Nagle's algorithm is on"
        );
        connecting.abort();
    }
}
