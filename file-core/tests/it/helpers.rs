//! `TestApp`: the real file-core in-process on port 0, with real mutual TLS (a throw-away CA),
//! a fresh database (a SQLite file, or a `fc_test_<uuid>` database on MariaDB when
//! `TEST_MYSQL_URL` is set) and a real embedded S3 server on a temporary folder. One method per
//! RPC, plus plain HTTP to presigned URLs.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Parser as _;
use file_core::{
    App, Config,
    config::S3Mode,
    embedded_s3::{EmbeddedCredentials, EmbeddedS3},
};
use proto::{
    dev_certs::{DevCa, write_pair},
    file::v1::{self as pb, file_service_client::FileServiceClient},
    tls::TlsFiles,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{
    Request, Status,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub const BUCKET: &str = "test-files";
pub const MIB: usize = 1024 * 1024;

pub use test_support::{Db, amqp_url, eventually, rabbitmq};

/// Tunables a test may change; the rest are the production defaults.
#[derive(Clone, Debug)]
pub struct Options {
    pub upload_url_ttl: Duration,
    pub download_url_ttl: Duration,
    pub pending_grace: Duration,
    pub sweep_interval: Duration,
    pub public_endpoint: Option<String>,
    /// Start the embedded server through the app's own embedded mode instead of the test's.
    pub embedded_mode: bool,
    /// Photo workers of the service process (0 leaves jobs to worker processes).
    pub processing_workers: u32,
    pub processing_lease: Duration,
    pub processing_retry_delay: Duration,
    pub processing_max_pixels: u64,
    /// Deliver jobs through this RabbitMQ (a queue of the test's own).
    pub broker_url: Option<String>,
    pub encryption: file_core::s3::Encryption,
    /// Use the S3 server at this endpoint (moto's, say) instead of the test's own embedded one.
    pub external_s3: Option<String>,
    /// `FILE_CORE_S3_CORS_ORIGINS`.
    pub s3_cors_origins: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            upload_url_ttl: Duration::from_secs(15 * 60),
            download_url_ttl: Duration::from_secs(15 * 60),
            pending_grace: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(3600),
            public_endpoint: None,
            embedded_mode: false,
            processing_workers: 1,
            processing_lease: Duration::from_secs(120),
            processing_retry_delay: Duration::from_millis(50),
            processing_max_pixels: 40_000_000,
            broker_url: None,
            encryption: file_core::s3::Encryption::default(),
            external_s3: None,
            s3_cors_origins: Vec::new(),
        }
    }
}

/// A running file-core and everything around it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: FileServiceClient<Channel>,
    /// The caller of every RPC unless a method says otherwise.
    pub user: String,
    pub http: reqwest::Client,
    pub s3_dir: PathBuf,
    s3: Option<EmbeddedS3>,
    s3_addr: SocketAddr,
    credentials: EmbeddedCredentials,
    ca: DevCa,
    cert_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    db: crate::test_db::TestDb,
    worker_config: Config,
    workers: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, Options::default()).await
    }

    pub async fn spawn_with(db: Db, options: Options) -> Self {
        test_support::init_logs("info");
        let dir = tempfile::tempdir().expect("temp dir");
        let cert_dir = dir.path().join("certs");
        let ca = DevCa::new("file-core test CA").expect("CA");
        let server_pair = ca.issue_server("file-core").expect("server cert");
        let server_files =
            write_pair(&cert_dir, &ca, "file-core", &server_pair).expect("write server cert");
        let s3_dir = dir.path().join("s3");
        let credentials = EmbeddedCredentials {
            access_key_id: "test-access-key".to_owned(),
            secret_access_key: "test-secret-key".to_owned(),
        };
        let db_handle = crate::test_db::TestDb::create(db, dir.path()).await;

        let mut config = Config::parse_from(["file-core"]);
        config.listen_addr = "127.0.0.1:0".parse().expect("address");
        config.metrics_addr = "127.0.0.1:0".parse().expect("address");
        config.database_url = db_handle.url().into();
        config.database_max_connections = 5;
        config.tls_ca = server_files.ca;
        config.tls_cert = server_files.cert;
        config.tls_key = server_files.key;
        config.allowed_clients = vec!["gateway".to_owned()];
        // No hangout-core here: reports of ended processing stay recorded (port 1 refuses).
        config.hangout_core_url = "https://127.0.0.1:1".to_owned();
        config.s3_bucket = BUCKET.to_owned();
        config.s3_region = "us-east-1".to_owned();
        config.s3_force_path_style = true;
        config.s3_access_key_id = credentials.access_key_id.clone();
        config.s3_secret_access_key = credentials.secret_access_key.clone().into();
        config.s3_public_endpoint = options.public_endpoint.clone();
        config.s3_server_side_encryption = options.encryption;
        config.upload_url_ttl = options.upload_url_ttl;
        config.download_url_ttl = options.download_url_ttl;
        config.pending_grace = options.pending_grace;
        config.sweep_interval = options.sweep_interval;
        config.processing_workers = options.processing_workers;
        config.processing_lease = options.processing_lease;
        config.processing_retry_delay = options.processing_retry_delay;
        config.processing_max_pixels = options.processing_max_pixels;
        // Workers look for jobs of other processes often, so tests need not wait.
        config.processing_poll = Duration::from_millis(50);
        config.broker_url = options.broker_url.clone().map(Into::into);
        config.broker_queue = format!("test.processing.{}", uuid::Uuid::new_v4().simple());

        config.s3_cors_origins = options.s3_cors_origins.clone();
        let (s3, s3_addr) = if let Some(endpoint) = &options.external_s3 {
            config.s3_mode = S3Mode::External;
            config.s3_endpoint = Some(endpoint.clone());
            config.s3_create_bucket = true;
            let addr = endpoint
                .trim_start_matches("http://")
                .parse()
                .expect("an http://address endpoint");
            (None, addr)
        } else if options.embedded_mode {
            config.s3_mode = S3Mode::Embedded;
            config.s3_embedded_dir = s3_dir.clone();
            config.s3_embedded_addr = "127.0.0.1:0".parse().expect("address");
            config.s3_endpoint = None;
            (None, config.s3_embedded_addr)
        } else {
            let server = EmbeddedS3::start(
                &s3_dir,
                "127.0.0.1:0".parse().expect("address"),
                &credentials,
            )
            .await
            .expect("start the embedded S3 server");
            config.s3_mode = S3Mode::External;
            config.s3_endpoint = Some(server.endpoint());
            config.s3_create_bucket = true;
            let addr = server.local_addr();
            (Some(server), addr)
        };

        let worker_config = config.clone();
        let app = App::build(config).await.expect("file-core starts");
        let addr = app.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("file-core serves");
        });

        let client_files = client_files(&ca, &cert_dir, "gateway");
        let channel = connect(addr, &client_files)
            .await
            .expect("connect over mTLS");
        wait_until_serving(channel.clone()).await;
        Self {
            addr,
            client: FileServiceClient::new(channel),
            user: uuid::Uuid::new_v4().to_string(),
            http: reqwest::Client::new(),
            s3_dir,
            s3,
            s3_addr,
            credentials,
            ca,
            cert_dir,
            shutdown: Some(shutdown),
            task: Some(task),
            db: db_handle,
            worker_config,
            workers: Vec::new(),
            _dir: dir,
        }
    }

    /// Starts a file-core process in the worker role on the same database and bucket, with
    /// `lease` as its job lease; stopped (cut mid-job, like a killed process) by
    /// [`TestApp::kill_workers`] or at the end.
    pub async fn start_worker(&mut self, lease: Duration) {
        let mut config = self.worker_config.clone();
        config.role = file_core::config::Role::Worker;
        config.processing_workers = 1;
        config.processing_lease = lease;
        config.s3_mode = S3Mode::External;
        config.s3_endpoint = Some(format!("http://{}", self.s3_addr));
        config.s3_embedded_dir = PathBuf::new();
        config.s3_create_bucket = false;
        config.metrics_addr = "127.0.0.1:0".parse().expect("address");
        let worker = App::build(config).await.expect("the worker starts");
        assert!(worker.local_addr().is_none(), "a worker serves nothing");
        self.workers.push(tokio::spawn(async move {
            worker
                .run_until(std::future::pending())
                .await
                .expect("the worker runs");
        }));
    }

    /// Aborts every worker process started by [`TestApp::start_worker`], wherever it is.
    pub fn kill_workers(&mut self) {
        for worker in self.workers.drain(..) {
            worker.abort();
        }
    }

    /// Stops the app; its MariaDB database is dropped with it.
    pub async fn finish(mut self) {
        self.kill_workers();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("file-core stops cleanly");
        }
        if let Some(server) = self.s3.take() {
            server.shutdown().await;
        }
    }

    /// A channel presenting a client certificate named `name`, from the test CA.
    pub async fn connect_as(&self, name: &str) -> Result<Channel, tonic::transport::Error> {
        let files = client_files(&self.ca, &self.cert_dir, name);
        connect(self.addr, &files).await
    }

    /// Stops the test's S3 server: object storage becomes unreachable.
    pub async fn stop_s3(&mut self) {
        if let Some(server) = self.s3.take() {
            server.shutdown().await;
        }
    }

    /// Starts the test's S3 server again, on the same address and folder (not for an
    /// [`Options::external_s3`], which its test starts).
    pub async fn start_s3(&mut self) {
        let server = EmbeddedS3::start(&self.s3_dir, self.s3_addr, &self.credentials)
            .await
            .expect("restart the embedded S3 server");
        self.s3 = Some(server);
    }

    /// Where the embedded server keeps an object.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.s3_dir.join(BUCKET).join(key)
    }

    /// How many records exist for `file_id`, whatever their status, read straight from the
    /// database.
    pub async fn record_count(&self, file_id: &str) -> i64 {
        self.db.count(Some(file_id)).await
    }

    /// The test database, for statements of its own.
    pub fn db(&self) -> &crate::test_db::TestDb {
        &self.db
    }

    /// How many records exist at all.
    pub async fn total_records(&self) -> i64 {
        self.db.count(None).await
    }

    fn request<T>(&self, user: Option<&str>, message: T) -> Request<T> {
        let mut request = Request::new(message);
        proto::metadata::set_caller(request.metadata_mut(), user, Some("test-request"));
        request
    }

    pub async fn create_uploads_as(
        &self,
        user: Option<&str>,
        hangout_id: &str,
        files: Vec<pb::UploadFile>,
    ) -> Result<pb::CreateUploadsResponse, Status> {
        let request = self.request(
            user,
            pb::CreateUploadsRequest {
                hangout_id: hangout_id.to_owned(),
                files,
            },
        );
        Ok(self
            .client
            .clone()
            .create_uploads(request)
            .await?
            .into_inner())
    }

    pub async fn create_uploads(
        &self,
        hangout_id: &str,
        files: Vec<pb::UploadFile>,
    ) -> Result<pb::CreateUploadsResponse, Status> {
        self.create_uploads_as(Some(&self.user), hangout_id, files)
            .await
    }

    pub async fn confirm_as(
        &self,
        user: &str,
        file_ids: &[&str],
    ) -> Result<pb::ConfirmUploadsResponse, Status> {
        let request = self.request(
            Some(user),
            pb::ConfirmUploadsRequest {
                file_ids: file_ids.iter().map(|id| (*id).to_owned()).collect(),
            },
        );
        Ok(self
            .client
            .clone()
            .confirm_uploads(request)
            .await?
            .into_inner())
    }

    pub async fn confirm(&self, file_ids: &[&str]) -> Result<pb::ConfirmUploadsResponse, Status> {
        self.confirm_as(&self.user, file_ids).await
    }

    pub async fn get_files_as(&self, user: &str, ids: &[&str]) -> Result<Vec<pb::File>, Status> {
        self.get_images_as(user, ids, &[]).await
    }

    /// Files with the renditions of `sizes` signed.
    pub async fn get_images_as(
        &self,
        user: &str,
        ids: &[&str],
        sizes: &[pb::ImageSize],
    ) -> Result<Vec<pb::File>, Status> {
        let request = self.request(
            Some(user),
            pb::GetFilesRequest {
                ids: ids.iter().map(|id| (*id).to_owned()).collect(),
                image_sizes: sizes.iter().map(|size| *size as i32).collect(),
                without_download_urls: false,
            },
        );
        Ok(self
            .client
            .clone()
            .get_files(request)
            .await?
            .into_inner()
            .files)
    }

    pub async fn get_files(&self, ids: &[&str]) -> Result<Vec<pb::File>, Status> {
        self.get_files_as(&self.user, ids).await
    }

    pub async fn delete_files_as(&self, user: &str, ids: &[&str]) -> Result<(), Status> {
        let request = self.request(
            Some(user),
            pb::DeleteFilesRequest {
                ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            },
        );
        self.client.clone().delete_files(request).await?;
        Ok(())
    }

    pub async fn delete_files(&self, ids: &[&str]) -> Result<(), Status> {
        self.delete_files_as(&self.user, ids).await
    }

    /// Sends `body` to a presigned upload with exactly the headers it lists, except that the
    /// HTTP client computes `Content-Length` from the body (as every client does), and with
    /// `overrides` replacing or adding headers.
    pub async fn put(
        &self,
        upload: &pb::Upload,
        body: Vec<u8>,
        overrides: &[(&str, &str)],
    ) -> reqwest::Response {
        assert_eq!(upload.method, "PUT");
        let mut request = self.http.put(&upload.url);
        for header in &upload.headers {
            let name = header.name.to_ascii_lowercase();
            if name == "content-length"
                || overrides.iter().any(|(o, _)| o.eq_ignore_ascii_case(&name))
            {
                continue;
            }
            request = request.header(&header.name, &header.value);
        }
        for (name, value) in overrides {
            request = request.header(*name, *value);
        }
        request
            .body(body)
            .send()
            .await
            .expect("the S3 server answers")
    }

    /// Downloads a presigned GET URL; returns the status and the body.
    pub async fn download(&self, url: &str) -> (u16, Vec<u8>) {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .expect("the S3 server answers");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("a body").to_vec();
        (status, body)
    }
}

fn client_files(ca: &DevCa, dir: &Path, name: &str) -> TlsFiles {
    let pair = ca.issue_client(name).expect("client cert");
    write_pair(&dir.join(name), ca, name, &pair).expect("write client cert")
}

async fn connect(addr: SocketAddr, files: &TlsFiles) -> Result<Channel, tonic::transport::Error> {
    let tls = proto::tls::client_config(files, "file-core").expect("client TLS config");
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)?
        .connect()
        .await
}

/// Polls the gRPC health service until file-core reports SERVING.
async fn wait_until_serving(channel: Channel) {
    let health = HealthClient::new(channel);
    let serving = eventually(Duration::from_secs(10), || {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: "file.v1.FileService".to_owned(),
                })
                .await
                .is_ok_and(|response| response.into_inner().status == ServingStatus::Serving as i32)
        }
    })
    .await;
    assert!(serving, "file-core did not report SERVING in time");
}

/// The field named by an `InvalidArgument` status's bad-request details.
pub fn violated_field(status: &Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .bad_request()
        .and_then(|bad_request| bad_request.field_violations.first())
        .map(|violation| violation.field.clone())
}
