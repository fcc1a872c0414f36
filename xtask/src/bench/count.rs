//! Counting backend calls from outside the gateway: an mTLS-terminating proxy per backend
//! that counts the gRPC calls going through it. It presents the backend's own certificate to
//! the gateway and the gateway's certificate to the backend, and counts the HTTP/2 HEADERS
//! frames that open a new client stream: one per gRPC call (gRPC clients send no trailers).
//!
//! The proxy sits only in front of a second, counting gateway, never in the timed runs.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::Context as _;
use proto::tls::TlsFiles;
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The HTTP/2 client connection preface.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const FRAME_TYPE_HEADERS: u8 = 0x1;

/// Parses the client-to-server half of an HTTP/2 connection, fed in arbitrary chunks, and
/// counts the streams the client opens.
#[derive(Debug)]
pub struct StreamCounter {
    preface_left: usize,
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    payload_left: usize,
    highest_stream: u32,
    pub streams: u64,
}

impl Default for StreamCounter {
    fn default() -> Self {
        Self {
            preface_left: PREFACE_LEN,
            header: [0; FRAME_HEADER_LEN],
            header_len: 0,
            payload_left: 0,
            highest_stream: 0,
            streams: 0,
        }
    }
}

impl StreamCounter {
    /// Feeds the next bytes the client sent; returns how many new streams they opened.
    pub fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let before = self.streams;
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let take = self.preface_left.min(bytes.len());
                self.preface_left -= take;
                bytes = &bytes[take..];
            } else if self.payload_left > 0 {
                let take = self.payload_left.min(bytes.len());
                self.payload_left -= take;
                bytes = &bytes[take..];
            } else {
                let take = (FRAME_HEADER_LEN - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == FRAME_HEADER_LEN {
                    self.frame_header_complete();
                }
            }
        }
        self.streams - before
    }

    fn frame_header_complete(&mut self) {
        let header = self.header;
        self.header_len = 0;
        self.payload_left =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7FFF_FFFF;
        if header[3] == FRAME_TYPE_HEADERS && stream > self.highest_stream {
            self.highest_stream = stream;
            self.streams += 1;
        }
    }
}

/// A running counting proxy; stops when dropped.
pub struct CountingProxy {
    pub port: u16,
    calls: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingProxy {
    /// gRPC calls forwarded so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Listens on a free loopback port in front of `service` (`hangout-core` or `file-core`)
    /// listening on `upstream_port`.
    ///
    /// # Errors
    /// When the certificates are unusable or no port is free.
    pub async fn start(root: &Path, service: &str, upstream_port: u16) -> anyhow::Result<Self> {
        let certs = root.join(crate::certs::CERTS_DIR);
        let server = proto::tls::server_config(
            &TlsFiles {
                ca: certs.join("ca.pem"),
                cert: certs.join(format!("{service}.pem")),
                key: certs.join(format!("{service}.key")),
            },
            &["gateway".to_owned()],
        )?;
        let client = client_config(&crate::bench::grpc::gateway_tls(root))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let calls = Arc::new(AtomicU64::new(0));
        let acceptor = TlsAcceptor::from(server);
        let connector = TlsConnector::from(client);
        let server_name = ServerName::try_from(service.to_owned())?;
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        let counted = Arc::clone(&calls);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let connector = connector.clone();
                let server_name = server_name.clone();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let _ = relay(tcp, acceptor, connector, server_name, upstream, counted).await;
                });
            }
        });
        Ok(Self { port, calls, task })
    }
}

fn client_config(files: &TlsFiles) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let certificates = |path: &Path| -> anyhow::Result<Vec<_>> {
        Ok(rustls_pemfile::certs(&mut read(path)?.as_slice()).collect::<Result<_, _>>()?)
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(&files.ca)? {
        roots.add(ca)?;
    }
    let key = rustls_pemfile::private_key(&mut read(&files.key)?.as_slice())?
        .context("no private key")?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(certificates(&files.cert)?, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

async fn relay(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    server_name: ServerName<'static>,
    upstream: SocketAddr,
    counted: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let downstream = acceptor.accept(tcp).await?;
    let upstream = connector
        .connect(server_name, TcpStream::connect(upstream).await?)
        .await?;
    let (mut down_read, mut down_write) = tokio::io::split(downstream);
    let (mut up_read, mut up_write) = tokio::io::split(upstream);
    let requests = async {
        let mut counter = StreamCounter::default();
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            let read = down_read.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            counted.fetch_add(counter.feed(&buffer[..read]), Ordering::Relaxed);
            up_write.write_all(&buffer[..read]).await?;
        }
        up_write.shutdown().await
    };
    let responses = async {
        tokio::io::copy(&mut up_read, &mut down_write).await?;
        down_write.shutdown().await
    };
    tokio::try_join!(requests, responses)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: usize) -> Vec<u8> {
        let length = u32::try_from(payload).unwrap_or_default().to_be_bytes();
        let mut bytes = vec![length[1], length[2], length[3], kind, 0x4];
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.extend(std::iter::repeat_n(0xAB, payload));
        bytes
    }

    fn connection() -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(0x4, 0, 18)); // SETTINGS
        bytes.extend(frame(FRAME_TYPE_HEADERS, 1, 40));
        bytes.extend(frame(0x0, 1, 300)); // DATA
        bytes.extend(frame(FRAME_TYPE_HEADERS, 3, 0x1_0001)); // a payload over 64 KiB
        bytes.extend(frame(0x8, 0, 4)); // WINDOW_UPDATE
        bytes.extend(frame(FRAME_TYPE_HEADERS, 3, 10)); // trailers of stream 3: not a new call
        bytes.extend(frame(FRAME_TYPE_HEADERS, 5, 25));
        bytes
    }

    #[test]
    fn counts_each_new_stream_once() {
        let mut counter = StreamCounter::default();
        assert_eq!(counter.feed(&connection()), 3);
    }

    #[test]
    fn counts_the_same_whatever_the_chunking() {
        let bytes = connection();
        for chunk in [1, 2, 7, 9, 10, 1000] {
            let mut counter = StreamCounter::default();
            for piece in bytes.chunks(chunk) {
                counter.feed(piece);
            }
            assert_eq!(counter.streams, 3, "chunks of {chunk}");
        }
    }
}
