//! `TestSystem`: hangout-core, file-core (embedded S3) and the gateway in-process on port 0,
//! with real mutual TLS from a throw-away CA, fresh SQLite databases in a temp folder, and a
//! signing key the test knows so it can forge bad tokens. GraphQL goes over real HTTP.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use clap::Parser as _;
use proto::{
    dev_certs::{DevCa, write_pair},
    tls::TlsFiles,
};
use ring::signature::Ed25519KeyPair;
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

use test_support::MariaDbDatabase;
pub use test_support::{Db, amqp_url, eventually, redis_url};

/// A service task with its shutdown trigger.
struct Running {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    fn spawn<F>(serve: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (shutdown, receiver) = oneshot::channel();
        Self {
            shutdown: Some(shutdown),
            task: Some(tokio::spawn(serve(receiver))),
        }
    }

    async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("service task panicked");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A signed-in user as the tests see it.
#[derive(Clone, Debug)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
}

/// The whole system, running.
pub struct TestSystem {
    pub gateway: SocketAddr,
    pub http: reqwest::Client,
    pub backend_calls: gateway::backend::CallCounter,
    /// PKCS#8 DER of the gateway's signing key.
    pub signing_key: Vec<u8>,
    /// Each process's metrics endpoint.
    pub metrics: Metrics,
    hangout_addr: SocketAddr,
    /// The path the gateway reaches hangout-core by, when a test stalls or cuts it.
    hangout_link: Option<test_support::CuttableLink>,
    hangout_database_url: String,
    /// The broker flags both services get, when the system runs with a broker.
    broker_args: Vec<String>,
    mysql: Option<MariaDbDatabase>,
    file_addr: SocketAddr,
    hangout: Running,
    file: Running,
    // Held so the gateway runs until the system is dropped (dropping sends its shutdown).
    gateway_task: Running,
    dir: tempfile::TempDir,
}

/// The metrics endpoints of a [`TestSystem`].
#[derive(Clone, Copy, Debug)]
pub struct Metrics {
    pub gateway: SocketAddr,
    pub hangout_core: SocketAddr,
    pub file_core: SocketAddr,
}

pub fn certs(dir: &Path) -> (TlsFiles, TlsFiles, TlsFiles) {
    let ca = DevCa::new("Hangout Planner test CA").expect("CA");
    let pair = |name: &str, server: bool| {
        let pem = if server {
            ca.issue_server(name)
        } else {
            ca.issue_client(name)
        }
        .expect("certificate");
        write_pair(&dir.join("certs"), &ca, name, &pem).expect("write certificate")
    };
    (
        pair("hangout-core", true),
        pair("file-core", true),
        pair("gateway", false),
    )
}

pub fn tls_args(files: &TlsFiles) -> Vec<String> {
    vec![
        "--tls-ca".to_owned(),
        files.ca.display().to_string(),
        "--tls-cert".to_owned(),
        files.cert.display().to_string(),
        "--tls-key".to_owned(),
        files.key.display().to_string(),
    ]
}

/// Where `npm ci` in `gateway/graphiql` installs the GraphiQL packages.
pub fn graphiql_assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("graphiql/node_modules")
}

pub fn pem(label: &str, der: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        STANDARD.encode(der)
    )
}

/// Generates an Ed25519 key and writes it as a PKCS#8 PEM file.
pub fn write_signing_key(path: &Path) -> Vec<u8> {
    let document = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
    std::fs::write(path, pem("PRIVATE KEY", document.as_ref())).expect("write key");
    document.as_ref().to_vec()
}

/// A service started in-process: its gRPC and metrics addresses, and its task.
struct Started {
    addr: SocketAddr,
    metrics: SocketAddr,
    running: Running,
}

async fn start_hangout_core(
    database_url: &str,
    tls: &TlsFiles,
    addr: &str,
    extra_args: &[String],
) -> Started {
    let mut args = vec![
        "hangout-core".to_owned(),
        "--listen-addr".to_owned(),
        addr.to_owned(),
        "--metrics-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--database-url".to_owned(),
        database_url.to_owned(),
    ];
    args.extend(tls_args(tls));
    args.extend(extra_args.iter().cloned());
    let config = hangout_core::Config::parse_from(args);
    let app = hangout_core::App::build(config)
        .await
        .expect("hangout-core starts");
    let addr = app.local_addr();
    let metrics = app.metrics_addr();
    let running = Running::spawn(|shutdown| async move {
        app.run_until(async {
            let _ = shutdown.await;
        })
        .await
        .expect("hangout-core serves");
    });
    Started {
        addr,
        metrics,
        running,
    }
}

async fn start_file_core(
    dir: &Path,
    tls: &TlsFiles,
    hangout_core: SocketAddr,
    addr: &str,
    extra_args: &[&str],
) -> Started {
    let mut args = vec![
        "file-core".to_owned(),
        "--listen-addr".to_owned(),
        addr.to_owned(),
        "--metrics-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--database-url".to_owned(),
        format!("sqlite:{}", dir.join("file-core.db").display()),
        "--s3-embedded-dir".to_owned(),
        dir.join("s3").display().to_string(),
        "--s3-embedded-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--hangout-core-url".to_owned(),
        format!("https://127.0.0.1:{}", hangout_core.port()),
    ];
    args.extend(tls_args(tls));
    args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
    let config = file_core::Config::parse_from(args);
    let app = file_core::App::build(config)
        .await
        .expect("file-core starts");
    let addr = app.local_addr().expect("file-core serves gRPC");
    let metrics = app.metrics_addr();
    let running = Running::spawn(|shutdown| async move {
        app.run_until(async {
            let _ = shutdown.await;
        })
        .await
        .expect("file-core serves");
    });
    Started {
        addr,
        metrics,
        running,
    }
}

/// Builds a gateway in front of the given backends (not yet serving).
async fn start_gateway(
    hangout: SocketAddr,
    file: SocketAddr,
    key_path: &Path,
    tls: &TlsFiles,
    extra_args: &[&str],
) -> gateway::App {
    let mut args = vec![
        "gateway".to_owned(),
        "--listen-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--metrics-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--hangout-core-url".to_owned(),
        format!("https://127.0.0.1:{}", hangout.port()),
        "--file-core-url".to_owned(),
        format!("https://127.0.0.1:{}", file.port()),
        "--jwt-signing-key".to_owned(),
        key_path.display().to_string(),
        "--backend-timeout".to_owned(),
        "5s".to_owned(),
        "--backend-connect-timeout".to_owned(),
        "1s".to_owned(),
        "--graphiql-assets".to_owned(),
        graphiql_assets().display().to_string(),
    ];
    args.extend(tls_args(tls));
    args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
    gateway::App::build(gateway::Config::parse_from(args))
        .await
        .expect("gateway starts")
}

/// A second gateway of a [`TestSystem`]: same backends and signing key, its own process
/// state. Stops when dropped.
pub struct ExtraGateway {
    pub addr: SocketAddr,
    _running: Running,
}

impl ExtraGateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl TestSystem {
    /// Starts another gateway in front of the same backends, with extra arguments.
    pub async fn spawn_gateway(&self, extra_args: &[&str]) -> ExtraGateway {
        let mut extra_args = extra_args.to_vec();
        extra_args.extend(self.broker_args.iter().map(String::as_str));
        let tls = TlsFiles {
            ca: self.cert_dir().join("ca.pem"),
            cert: self.cert_dir().join("gateway.pem"),
            key: self.cert_dir().join("gateway.key"),
        };
        let app = start_gateway(
            self.hangout_addr,
            self.file_addr,
            &self.dir.path().join("jwt.key"),
            &tls,
            &extra_args,
        )
        .await;
        let addr = app.local_addr();
        let running = Running::spawn(|shutdown| async move {
            app.run_until(async {
                let _ = shutdown.await;
            })
            .await
            .expect("gateway serves");
        });
        ExtraGateway {
            addr,
            _running: running,
        }
    }

    /// Starts everything and waits until the gateway reports ready.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// As [`TestSystem::spawn_with`], with hangout-core on `db`; `None` for MySQL when
    /// `TEST_MYSQL_URL` is unset (CI always sets it, so CI never skips).
    pub async fn spawn_on_with(db: Db, extra_args: &[&str]) -> Option<Self> {
        match db {
            Db::Sqlite => Some(Self::spawn_with(extra_args).await),
            Db::Mysql => {
                let database = MariaDbDatabase::create("gw_test").await?;
                Some(Self::start(extra_args, Some(database), Vec::new()).await)
            }
        }
    }

    /// As [`TestSystem::spawn_on_with`] MySQL, with hangout-core reaching MariaDB through a link
    /// that [`database_link`](Self::database_link) cuts; `None` when `TEST_MYSQL_URL` is unset.
    pub async fn spawn_with_database_link() -> Option<Self> {
        let database = MariaDbDatabase::create("gw_test").await?.linked().await;
        Some(Self::start(&[], Some(database), Vec::new()).await)
    }

    /// The link between hangout-core and its database, when the system was spawned with one.
    pub fn database_link(&self) -> Option<&test_support::CuttableLink> {
        self.mysql.as_ref().and_then(MariaDbDatabase::link)
    }

    /// As [`TestSystem::spawn`], with extra gateway command-line arguments.
    pub async fn spawn_with(extra_args: &[&str]) -> Self {
        Self::start(extra_args, None, Vec::new()).await
    }

    /// As [`TestSystem::spawn`], with hangout-core relaying events to RabbitMQ and the gateway
    /// consuming them there, on an exchange of its own; `None` without a broker (CI always
    /// has one, so CI never skips).
    pub async fn spawn_with_broker() -> Option<Self> {
        let url = amqp_url().await?;
        let exchange = format!("test.events.{}", uuid::Uuid::new_v4().simple());
        let broker_args = vec![
            "--broker-url".to_owned(),
            url,
            "--broker-exchange".to_owned(),
            exchange,
        ];
        Some(Self::start(&[], None, broker_args).await)
    }

    /// As [`TestSystem::spawn`], with the gateway reaching hangout-core through a link that
    /// [`hangout_link`](Self::hangout_link) stalls and cuts.
    pub async fn spawn_with_hangout_link() -> Self {
        Self::start_linked(&[], None, Vec::new(), true).await
    }

    /// The link between the gateway and hangout-core, when the system was spawned with one.
    pub fn hangout_link(&self) -> Option<&test_support::CuttableLink> {
        self.hangout_link.as_ref()
    }

    async fn start(
        extra_args: &[&str],
        mysql: Option<MariaDbDatabase>,
        broker_args: Vec<String>,
    ) -> Self {
        Self::start_linked(extra_args, mysql, broker_args, false).await
    }

    async fn start_linked(
        extra_args: &[&str],
        mysql: Option<MariaDbDatabase>,
        broker_args: Vec<String>,
        link_hangout_core: bool,
    ) -> Self {
        test_support::init_logs("info");
        let dir = tempfile::tempdir().expect("temp dir");
        let (hangout_tls, file_tls, gateway_tls) = certs(dir.path());
        let hangout_database_url = mysql.as_ref().map_or_else(
            || format!("sqlite:{}", dir.path().join("hangout-core.db").display()),
            MariaDbDatabase::url,
        );
        let hangout = start_hangout_core(
            &hangout_database_url,
            &hangout_tls,
            "127.0.0.1:0",
            &broker_args,
        )
        .await;
        let file = start_file_core(dir.path(), &file_tls, hangout.addr, "127.0.0.1:0", &[]).await;
        let key_path = dir.path().join("jwt.key");
        let signing_key = write_signing_key(&key_path);

        let mut gateway_args = extra_args.to_vec();
        gateway_args.extend(broker_args.iter().map(String::as_str));
        let hangout_link = if link_hangout_core {
            Some(test_support::CuttableLink::to(hangout.addr).await)
        } else {
            None
        };
        let app = start_gateway(
            hangout_link
                .as_ref()
                .map_or(hangout.addr, test_support::CuttableLink::addr),
            file.addr,
            &key_path,
            &gateway_tls,
            &gateway_args,
        )
        .await;
        let gateway = app.local_addr();
        let backend_calls = app.backend_calls();
        let metrics = Metrics {
            gateway: app.metrics_addr(),
            hangout_core: hangout.metrics,
            file_core: file.metrics,
        };
        let gateway_task = Running::spawn(|shutdown| async move {
            app.run_until(async {
                let _ = shutdown.await;
            })
            .await
            .expect("gateway serves");
        });
        let system = Self {
            gateway,
            // Idle connections dropped before the gateway's header-read timeout closes them.
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client"),
            backend_calls,
            signing_key,
            metrics,
            hangout_addr: hangout.addr,
            hangout_link,
            hangout_database_url,
            broker_args,
            mysql,
            file_addr: file.addr,
            hangout: hangout.running,
            file: file.running,
            gateway_task,
            dir,
        };
        assert!(
            system.wait_ready(true).await,
            "the gateway never became ready"
        );
        system
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway)
    }

    /// Polls `/readyz` until it answers as `ready` says, for at most 20 seconds.
    pub async fn wait_ready(&self, ready: bool) -> bool {
        eventually(Duration::from_secs(20), || async {
            let status = self
                .http
                .get(self.url("/readyz"))
                .send()
                .await
                .map(|response| response.status().is_success());
            status.is_ok_and(|is_ready| is_ready == ready)
        })
        .await
    }

    /// Sends the gateway its shutdown signal and waits until it has stopped serving.
    pub async fn stop_gateway(&mut self) {
        self.gateway_task.stop().await;
    }

    /// Stops hangout-core (the gateway keeps running).
    pub async fn stop_hangout_core(&mut self) {
        self.hangout.stop().await;
    }

    /// Stops file-core (the gateway keeps running).
    pub async fn stop_file_core(&mut self) {
        self.file.stop().await;
    }

    /// Starts hangout-core again on its old port and database.
    pub async fn restart_hangout_core(&mut self) {
        let tls = TlsFiles {
            ca: self.cert_dir().join("ca.pem"),
            cert: self.cert_dir().join("hangout-core.pem"),
            key: self.cert_dir().join("hangout-core.key"),
        };
        let started = start_hangout_core(
            &self.hangout_database_url,
            &tls,
            &self.hangout_addr.to_string(),
            &self.broker_args,
        )
        .await;
        self.metrics.hangout_core = started.metrics;
        self.hangout = started.running;
    }

    /// Stops file-core if it runs and starts it again on its old port, database and bucket
    /// folder, with extra arguments (the embedded S3 server gets a new port).
    pub async fn restart_file_core(&mut self, extra_args: &[&str]) {
        self.file.stop().await;
        let tls = TlsFiles {
            ca: self.cert_dir().join("ca.pem"),
            cert: self.cert_dir().join("file-core.pem"),
            key: self.cert_dir().join("file-core.key"),
        };
        let started = start_file_core(
            self.dir.path(),
            &tls,
            self.hangout_addr,
            &self.file_addr.to_string(),
            extra_args,
        )
        .await;
        self.metrics.file_core = started.metrics;
        self.file = started.running;
    }

    /// Records a `HangoutAdded` event for `user` straight into hangout-core's outbox, as a
    /// change that committed just before its process died would have left it; returns its
    /// `seq`.
    pub async fn record_event_directly(&self, user: &str, hangout: &str) -> u64 {
        use sqlx::{Executor as _, Row as _};
        let (user, hangout) = (uuid_of(user), uuid_of(hangout));
        let mut db = self.hangout_database().await;
        db.execute("update event_sequence set last_seq = last_seq + 1 where id = 1")
            .await
            .unwrap();
        let seq: i64 = db
            .fetch_one("select last_seq from event_sequence where id = 1")
            .await
            .unwrap()
            .get(0);
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        db.execute(
            format!(
                "insert into events (seq, hangout_id, viewer_id, kind, occurred_at) \
                 values ({seq}, '{hangout}', '{user}', 'HANGOUT_ADDED', {at})"
            )
            .as_str(),
        )
        .await
        .unwrap();
        u64::try_from(seq).unwrap()
    }

    /// A connection to hangout-core's database, for tests that change it behind its back.
    pub async fn hangout_database(&self) -> sqlx::AnyConnection {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.hangout_database_url)
            .await
            .unwrap()
    }

    /// The folder of the embedded S3 server (`{dir}/{bucket}/{key}`).
    pub fn s3_dir(&self) -> PathBuf {
        self.dir.path().join("s3")
    }

    /// The objects the embedded S3 server holds (`{dir}/{bucket}/{key}`), without the
    /// server's own hidden sidecar files.
    pub fn stored_objects(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if path.is_dir() {
                    walk(&path, found);
                } else if !hidden {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.s3_dir(), &mut found);
        found
    }

    fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// POSTs `body` as JSON to `/graphql`; returns the raw response (any status).
    pub async fn post_graphql(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/graphql"))
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }

    /// How many calls of `rpc` (e.g. `AuthService/SignIn`) the gateway has made.
    /// Backend calls the gateway has issued, all RPCs together.
    pub fn backend_calls_made(&self) -> u64 {
        self.backend_calls.by_rpc().values().sum()
    }

    pub fn calls_of(&self, rpc: &str) -> u64 {
        self.backend_calls
            .by_rpc()
            .get(rpc)
            .copied()
            .unwrap_or_default()
    }

    /// Sends a GraphQL request with an optional bearer token; returns the JSON body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql_with_header(
            token.map(|token| format!("Bearer {token}")).as_deref(),
            query,
            variables,
        )
        .await
    }

    /// Like [`Self::graphql`] with a raw `Authorization` header.
    pub async fn graphql_with_header(
        &self,
        authorization: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.expect("gateway answers");
        assert!(response.status().is_success(), "HTTP {}", response.status());
        response.json().await.expect("JSON body")
    }

    /// Signs up a fresh user.
    pub async fn sign_up(&self, name: &str) -> Session {
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        self.sign_up_with_email(name, &email).await
    }

    /// Signs up a user with this email address.
    pub async fn sign_up_with_email(&self, name: &str, email: &str) -> Session {
        let body = self
            .graphql(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) {
                    accessToken refreshToken user { id } } }",
                json!({ "input": { "name": name, "email": email, "password": "correct horse battery" } }),
            )
            .await;
        session(&body["data"]["signUp"])
    }

    /// Creates a hangout for `session`; returns its global id.
    pub async fn create_hangout(&self, session: &Session, title: &str, date: &str) -> String {
        let body = self
            .graphql(
                Some(&session.access_token),
                "mutation($input: CreateHangoutInput!) { createHangout(input: $input) { hangout { id } } }",
                json!({ "input": { "title": title, "date": date } }),
            )
            .await;
        body["data"]["createHangout"]["hangout"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("createHangout failed: {body}"))
            .to_owned()
    }
}

/// Reads an `AuthPayload` into a [`Session`].
/// The UUID behind a global id (`base64("Type:uuid")`).
pub fn uuid_of(id: &str) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD
        .decode(id)
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    text.split_once(':').unwrap().1.to_owned()
}

pub fn session(payload: &Value) -> Session {
    Session {
        access_token: payload["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token in {payload}"))
            .to_owned(),
        refresh_token: payload["refreshToken"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
        user_id: payload["user"]["id"].as_str().expect("user id").to_owned(),
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// The `extensions.field` of the first error.
pub fn error_field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {body}"))
}
