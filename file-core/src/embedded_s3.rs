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
        let service = WithCors {
            s3: builder.build(),
            root: dir.to_path_buf(),
        };
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

/// What s3s-fs leaves beside an object it deletes: its two sidecar files at the root of the
/// folder, and the folders the key made. Depends on s3s-fs's layout (`s3s-fs` is pinned
/// exactly for it, `FileSystem::get_metadata_path` and `get_internal_info_path`); the test
/// `processing::deleting_a_processed_photo_leaves_nothing_in_the_bucket` fails when that layout
/// drifts.
#[derive(Debug)]
struct Leftovers {
    sidecars: [PathBuf; 2],
    object: PathBuf,
    bucket: PathBuf,
}

impl Leftovers {
    /// The leftovers of deleting the object at a path-style URL path (`/{bucket}/{key}`);
    /// `None` for any other path.
    fn of(root: &Path, path: &str) -> Option<Self> {
        let (bucket, key) = path.strip_prefix('/')?.split_once('/')?;
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .ok()
                .map(std::borrow::Cow::into_owned)
        };
        let (bucket, key) = (decode(bucket)?, decode(key)?);
        let escapes = |text: &str| text.split('/').any(|part| part == ".." || part == ".");
        if bucket.is_empty()
            || key.is_empty()
            || key.ends_with('/')
            || escapes(&bucket)
            || escapes(&key)
        {
            return None;
        }
        use base64::Engine as _;
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        let stem = format!(".bucket-{}.object-{}", encode(&bucket), encode(&key));
        Some(Self {
            sidecars: [
                root.join(format!("{stem}.metadata.json")),
                root.join(format!("{stem}.internal.json")),
            ],
            object: root.join(&bucket).join(&key),
            bucket: root.join(&bucket),
        })
    }

    /// Removes the sidecars and every folder between the object and its bucket left empty.
    async fn remove(self) {
        for sidecar in &self.sidecars {
            if let Err(error) = tokio::fs::remove_file(sidecar).await
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(%error, path = %sidecar.display(), "embedded S3: cannot remove a sidecar file");
            }
        }
        let mut folder = self.object.parent();
        while let Some(current) = folder {
            if current == self.bucket || !current.starts_with(&self.bucket) {
                break;
            }
            // Fails (and stops here) once a folder still holds something.
            if tokio::fs::remove_dir(current).await.is_err() {
                break;
            }
            folder = current.parent();
        }
    }
}

/// Browsers upload and download straight to this server from the app's own origin, so it
/// answers CORS preflights and marks its responses readable cross-origin, as the CORS rule of
/// a real bucket would. Presigned URLs are the credential, so any origin may use them.
///
/// It also removes what s3s-fs leaves behind a deleted object ([`Leftovers`]).
#[derive(Clone)]
struct WithCors {
    s3: s3s::service::S3Service,
    /// The folder served, where s3s-fs keeps its sidecar files.
    root: PathBuf,
}

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
        // A DELETE of one object (not the abort of an upload in parts).
        let deletes_object = request.method() == http::Method::DELETE
            && !request
                .uri()
                .query()
                .is_some_and(|query| query.contains("uploadId"));
        let leftovers = deletes_object
            .then(|| Leftovers::of(&self.root, request.uri().path()))
            .flatten();
        let inner = hyper::service::Service::call(&self.s3, request);
        Box::pin(async move {
            let mut response = inner.await?;
            if let Some(leftovers) = leftovers
                && response.status().is_success()
            {
                leftovers.remove().await;
            }
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
