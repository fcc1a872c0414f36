//! The peer: Hive Gateway (`@graphql-hive/gateway`) serving a supergraph composed from our
//! protos by GraphQL Mesh's gRPC source (`@omnigraph/grpc`), over the same backends, with the
//! gateway's client certificate and a JWT check against our JWKS. The node project is in
//! `xtask/bench-peer`; its packages are installed from the lock file on first use.
//!
//! The gRPC source exposes each RPC as a root field and has no joins, so `page` takes two
//! sequential GraphQL requests, counted as one `page`: `ListHangouts` with the owners,
//! activities and memories it can carry (as our gateway asks for them), then the files.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use xshell::{Shell, cmd};

use super::scenarios::{self, Scenario, VirtualUser};
use crate::system::{self, Ports};

/// The running peer, stopped when dropped.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Peer {
    /// Installs the node project if needed, composes the supergraph for these ports and starts
    /// Hive Gateway on a free port; returns when it answers.
    ///
    /// # Errors
    /// The reason the peer cannot run (node missing, install, composition or start failed).
    pub async fn start(
        shell: &Shell,
        root: &Path,
        ports: Ports,
        data: &Path,
    ) -> anyhow::Result<Self> {
        if cmd!(shell, "node --version").quiet().read().is_err() {
            anyhow::bail!("node is not installed");
        }
        let folder = root.join("xtask/bench-peer");
        system::npm_ci(shell, &folder)?;
        let supergraph = data.join("peer-supergraph.graphql");
        let bin = folder.join("node_modules/.bin");
        let certs = root.join(crate::certs::CERTS_DIR);
        let composed = Command::new(bin.join("mesh-compose"))
            .arg("-o")
            .arg(&supergraph)
            .current_dir(&folder)
            .env("BENCH_CERTS_DIR", &certs)
            .env(
                "BENCH_HANGOUT_CORE",
                format!("127.0.0.1:{}", ports.hangout_core),
            )
            .env("BENCH_FILE_CORE", format!("127.0.0.1:{}", ports.file_core))
            .output()
            .await
            .context("cannot run mesh-compose")?;
        anyhow::ensure!(
            composed.status.success(),
            "composing the supergraph failed: {}",
            tail(&composed.stderr)
        );
        let port = system::free_port()?;
        let log = data.join("peer.log");
        let child = Command::new(bin.join("hive-gateway"))
            .arg("supergraph")
            .arg(&supergraph)
            .arg("--port")
            .arg(port.to_string())
            .current_dir(&folder)
            .env(
                "BENCH_JWKS_URL",
                format!("http://127.0.0.1:{}/.well-known/jwks.json", ports.gateway),
            )
            .env("NODE_ENV", "production")
            .stdout(Stdio::from(std::fs::File::create(&log)?))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log)?,
            ))
            .kill_on_drop(true)
            .spawn()
            .context("cannot start hive-gateway")?;
        let mut peer = Self { child, port };
        peer.wait_ready(&log).await?;
        Ok(peer)
    }

    /// Polls until Hive Gateway answers a GraphQL request (an auth error is an answer).
    async fn wait_ready(&mut self, log: &PathBuf) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answered = http
                .get(format!("http://127.0.0.1:{}/healthcheck", self.port))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if answered {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                let text = std::fs::read(log).unwrap_or_default();
                anyhow::bail!("hive-gateway exited ({status}): {}", tail(&text));
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "hive-gateway did not answer in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the peer.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The last lines of a process's output, for an error message.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}

const ME: &str = "query Me($ids: [String]) { \
    hangout_v1_UserService_GetUsers(input: { ids: $ids }) { users { id name } } }";
const PAGE_HANGOUTS: &str = "query Hangouts($first: UnsignedInt) { \
    hangout_v1_HangoutService_ListHangouts(input: { page: { first: $first }, \
    include: { owners: true, activities: true, activities_without_hangout_counts: true, \
    memories: { page: { first: 5 } } } }) { \
    edges { cursor hangout { id owner_id title date { seconds nanos } status } } \
    page_info { has_next_page end_cursor total_count } \
    owners { id name } \
    activities { hangout_id activities { id name } } \
    memory_pages { hangout_id edges { memory { id file_name file_id } } \
    page_info { has_next_page total_count } } } }";
const PAGE_FILES: &str = "query Files($ids: [String]) { \
    file_v1_FileService_GetFiles(input: { ids: $ids }) { files { id download_url } } }";

/// Issues `me` and `page` as GraphQL through the peer.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    url: String,
    users: Arc<Vec<VirtualUser>>,
}

impl PeerClient {
    pub fn new(port: u16, users: Vec<VirtualUser>) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .timeout(scenarios::REQUEST_TIMEOUT)
                .build()?,
            url: format!("http://127.0.0.1:{port}/graphql"),
            users: Arc::new(users),
        })
    }

    async fn post(
        &self,
        user: &VirtualUser,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let bytes = scenarios::post_graphql(
            &self.http,
            &self.url,
            &user.access_token,
            body,
            None,
            &"peer",
        )
        .await?;
        let mut value: Value = serde_json::from_slice(&bytes)?;
        Ok(value["data"].take())
    }

    /// One `me` or one `page` (the whole sequence of requests) as virtual user `index`.
    ///
    /// # Errors
    /// A transport failure, a non-200 status, GraphQL errors, or another scenario.
    pub async fn send(&self, scenario: Scenario, index: usize) -> anyhow::Result<()> {
        let user = &self.users[index % self.users.len()];
        match scenario {
            Scenario::Me => {
                let data = self
                    .post(user, ME, json!({ "ids": [user.user_id] }))
                    .await?;
                anyhow::ensure!(
                    data["hangout_v1_UserService_GetUsers"]["users"][0]["id"]
                        == user.user_id.as_str(),
                    "peer: me: not the caller"
                );
                Ok(())
            }
            Scenario::Page(size) => self.page(user, size).await,
            other => anyhow::bail!("the peer does not run {other}"),
        }
    }

    async fn page(&self, user: &VirtualUser, size: u32) -> anyhow::Result<()> {
        let data = self
            .post(user, PAGE_HANGOUTS, json!({ "first": size }))
            .await?;
        let page = &data["hangout_v1_HangoutService_ListHangouts"];
        // Every active user has hangouts: an empty page means the peer fetched nothing real.
        anyhow::ensure!(
            page["edges"]
                .as_array()
                .is_some_and(|edges| !edges.is_empty()),
            "peer: page: no hangouts"
        );
        let files: Vec<&str> = page["memory_pages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|page| page["edges"].as_array())
            .flatten()
            .filter_map(|edge| edge["memory"]["file_id"].as_str())
            .filter(|id| !id.is_empty())
            .collect();
        if !files.is_empty() {
            let data = self.post(user, PAGE_FILES, json!({ "ids": files })).await?;
            anyhow::ensure!(
                data["file_v1_FileService_GetFiles"]["files"][0]["download_url"]
                    .as_str()
                    .is_some_and(|url| !url.is_empty()),
                "peer: page: no download URL"
            );
        }
        Ok(())
    }
}
