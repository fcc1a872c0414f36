//! An S3-protocol server on a local folder (the `s3s` and `s3s-fs` crates), for running
//! file-core with nothing installed and for tests. It speaks plain HTTP on the given address
//! and requires SigV4 (header or presigned URL) with one access key, so the very same
//! aws-sdk-s3 code path runs against it as against AWS.
//!
//! Objects live at `{dir}/{bucket}/{key}`. Unlike S3, this server does not enforce
//! `x-amz-server-side-encryption`, and it keeps the bytes of a PUT whose `Content-MD5` does not
//! match (while answering `BadDigest`); confirm's own checks catch such uploads.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto::Builder as ConnectionBuilder, graceful::GracefulShutdown},
};
use s3s::{auth::SimpleAuth, service::S3ServiceBuilder};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the embedded server could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedS3Error {
    #[error("cannot create the data folder {0}")]
    Folder(PathBuf, #[source] std::io::Error),
    /// `s3s_fs::Error` is not a `std::error::Error`, so its description is kept as text.
    #[error("cannot open the data folder {0}: {1}")]
    Store(PathBuf, String),
    #[error("cannot bind {0}")]
    Bind(SocketAddr, #[source] std::io::Error),
}

/// The single access key the embedded server accepts.
#[derive(Clone)]
pub struct EmbeddedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A running embedded server. Dropping it stops accepting connections; [`EmbeddedS3::shutdown`]
/// also waits for in-flight requests.
pub struct EmbeddedS3 {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EmbeddedS3 {
    /// Creates `dir` when missing and serves it on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// When the folder cannot be created or opened, or the address not bound.
    pub async fn start(
        dir: &Path,
        addr: SocketAddr,
        credentials: &EmbeddedCredentials,
    ) -> Result<Self, EmbeddedS3Error> {
        std::fs::create_dir_all(dir).map_err(|error| EmbeddedS3Error::Folder(dir.into(), error))?;
        let file_system = s3s_fs::FileSystem::new(dir)
            .map_err(|error| EmbeddedS3Error::Store(dir.into(), format!("{error:?}")))?;
        let mut builder = S3ServiceBuilder::new(file_system);
        builder.set_auth(SimpleAuth::from_single(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
        ));
        let service = WithCors(builder.build());
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| EmbeddedS3Error::Bind(addr, error))?;
        let local_addr = listener
            .local_addr()
            .map_err(|error| EmbeddedS3Error::Bind(addr, error))?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let connections = ConnectionBuilder::new(TokioExecutor::new());
            let graceful = GracefulShutdown::new();
            let mut stopped = std::pin::pin!(stopped);
            loop {
                let socket = tokio::select! {
                    _ = stopped.as_mut() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(error) => {
                            tracing::warn!(%error, "embedded S3: accepting a connection failed");
                            continue;
                        }
                    },
                };
                let connection = connections
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "embedded S3: connection ended with an error");
                    }
                });
            }
            drop(listener);
            if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
                .await
                .is_err()
            {
                tracing::warn!("embedded S3: in-flight requests cut off at shutdown");
            }
        });
        Ok(Self {
            local_addr,
            stop: Some(stop),
            task,
        })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The endpoint URL to configure S3 clients with (`http://127.0.0.1:port`).
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting connections, closes idle ones and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(error) = (&mut self.task).await {
            tracing::warn!(%error, "embedded S3 server task failed");
        }
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Browsers upload and download straight to this server from the app's own origin, so it
/// answers CORS preflights and marks its responses readable cross-origin, as the CORS rule of
/// a real bucket would. Presigned URLs are the credential, so any origin may use them.
#[derive(Clone)]
struct WithCors(s3s::service::S3Service);

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for WithCors {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        use http::header;
        let is_preflight = request.method() == http::Method::OPTIONS
            && request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight {
            let mut response = http::Response::new(s3s::Body::empty());
            *response.status_mut() = http::StatusCode::NO_CONTENT;
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                header::HeaderValue::from_static("*"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                header::HeaderValue::from_static("GET, PUT, HEAD"),
            );
            let asked = request
                .headers()
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned()
                .unwrap_or_else(|| header::HeaderValue::from_static("*"));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                header::HeaderValue::from_static("3600"),
            );
            return Box::pin(async move { Ok(response) });
        }
        let inner = hyper::service::Service::call(&self.0, request);
        Box::pin(async move {
            let mut response = inner.await?;
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                header::HeaderValue::from_static("*"),
            );
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                header::HeaderValue::from_static("ETag"),
            );
            Ok(response)
        })
    }
}
