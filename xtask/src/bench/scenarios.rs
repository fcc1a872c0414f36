//! The scenarios, each twice: as GraphQL through the gateway, and as the floor, the same data
//! fetched by a bare gRPC client straight from the backends, with every independent call in
//! parallel.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::Context as _;
use base64::Engine as _;
use proto::{file::v1 as file_pb, hangout::v1 as pb};

use crate::bench::{
    grpc::{Backends, as_user},
    seed::{PNG, content_md5},
};

/// What a request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// `{ me { id name } }`.
    Me,
    /// A page of hangouts with owner, activities and the first 5 memories with URLs.
    Page(u32),
    /// The page of 20 with each memory's THUMBNAIL rendition instead of its download URL.
    Thumbnails,
    /// One hangout with 24 memories and their URLs.
    Detail,
    /// `createMemoryUploads` with 10 files.
    Upload,
}

impl fmt::Display for Scenario {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Me => formatter.write_str("me"),
            Self::Page(20) => formatter.write_str("page"),
            Self::Page(size) => write!(formatter, "page({size})"),
            Self::Thumbnails => formatter.write_str("thumbnails"),
            Self::Detail => formatter.write_str("detail"),
            Self::Upload => formatter.write_str("upload"),
        }
    }
}

/// Memories per hangout on a page.
const PAGE_MEMORIES: u32 = 5;
/// Memories of the detail hangout.
const DETAIL_MEMORIES: u32 = 24;
/// Files per upload batch.
const UPLOAD_FILES: usize = 10;
/// How long the load generator keeps an idle connection: below the gateway's
/// `GATEWAY_HEADER_READ_TIMEOUT` (10 s), which closes idle connections, as nginx's upstream
/// `keepalive_timeout` (5 s) is; a client that keeps them longer may send a request on a
/// connection the gateway is closing.
pub const IDLE_CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A request that takes longer counts as an error (a hung gateway must not hang the run).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// file-core's limit of ids per `GetFiles` call.
const MAX_IDS_PER_READ: usize = 500;

const ME: &str = "query Me { me { id name } }";
const PAGE: &str = "query Page($first: Int!) { hangouts(first: $first) { totalCount \
    pageInfo { hasNextPage endCursor } nodes { id title date status owner { id name } \
    activities { id name } memories(first: 5) { totalCount nodes { id fileName contentType \
    size downloadUrl } } } } }";
const THUMBNAILS: &str = "query Thumbnails($first: Int!) { hangouts(first: $first) { \
    totalCount pageInfo { hasNextPage endCursor } nodes { id title date status \
    owner { id name } activities { id name } memories(first: 5) { totalCount nodes { id \
    fileName contentType size imageUrl(size: THUMBNAIL) } } } } }";
const DETAIL: &str = "query Detail($id: ID!) { hangout(id: $id) { id title description date \
    status memories(first: 24) { totalCount nodes { id fileName contentType size downloadUrl \
    downloadUrlExpiresAt } } } }";
const UPLOAD: &str = "mutation Upload($input: CreateMemoryUploadsInput!) { \
    createMemoryUploads(input: $input) { uploads { memory { id status } url method \
    headers { name value } expiresAt } } }";

/// A virtual user: an active seeded user with a fresh access token.
#[derive(Clone, Debug)]
pub struct VirtualUser {
    pub user_id: String,
    pub access_token: String,
    pub detail_hangout: String,
    pub upload_hangout: String,
}

/// The Relay global id of a hangout (base64 of `Hangout:<uuid>`).
pub fn hangout_global_id(uuid: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("Hangout:{uuid}"))
}

/// Whether a GraphQL response body reports errors.
pub fn has_errors(body: &[u8]) -> bool {
    let needle = b"\"errors\"";
    body.windows(needle.len()).any(|window| window == needle)
}

/// Names unique among a hangout's memories, across every upload of the run.
static UPLOAD_SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn upload_file_names(user: usize) -> Vec<String> {
    let batch = UPLOAD_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    (0..UPLOAD_FILES)
        .map(|index| format!("upload-{user}-{batch}-{index}.png"))
        .collect()
}

/// Issues scenarios as GraphQL over HTTP.
#[derive(Clone)]
pub struct GraphqlClient {
    http: reqwest::Client,
    url: String,
    users: Arc<Vec<VirtualUser>>,
    /// Whether each virtual user sends from an address of its own (`X-Real-IP`).
    own_addresses: bool,
}

impl GraphqlClient {
    pub fn new(port: u16, users: Vec<VirtualUser>) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            url: format!("http://127.0.0.1:{port}/graphql"),
            users: Arc::new(users),
            own_addresses: false,
        })
    }

    /// Each virtual user `index` then sends as client address `2001:db8::index+1`, through
    /// the trusted loopback proxy (`X-Real-IP`): a label from the documentation prefix, never
    /// a destination.
    #[must_use]
    pub fn with_own_addresses(mut self) -> Self {
        self.own_addresses = true;
        self
    }

    /// How many virtual users it sends as.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// The request body of `scenario` for virtual user `user`.
    fn body(&self, scenario: Scenario, user: &VirtualUser, index: usize) -> String {
        let (query, variables) = match scenario {
            Scenario::Me => (ME, serde_json::json!({})),
            Scenario::Page(size) => (PAGE, serde_json::json!({ "first": size })),
            Scenario::Thumbnails => (THUMBNAILS, serde_json::json!({ "first": 20 })),
            Scenario::Detail => (
                DETAIL,
                serde_json::json!({ "id": hangout_global_id(&user.detail_hangout) }),
            ),
            Scenario::Upload => {
                let md5 = content_md5(PNG);
                let files: Vec<serde_json::Value> = upload_file_names(index)
                    .into_iter()
                    .map(|name| {
                        serde_json::json!({
                            "fileName": name,
                            "contentType": "image/png",
                            "size": PNG.len(),
                            "md5": md5,
                        })
                    })
                    .collect();
                (
                    UPLOAD,
                    serde_json::json!({ "input": {
                        "hangoutId": hangout_global_id(&user.upload_hangout),
                        "files": files,
                    }}),
                )
            }
        };
        serde_json::json!({ "query": query, "variables": variables }).to_string()
    }

    /// Sends one request of `scenario` as virtual user `index`; returns the response body.
    ///
    /// # Errors
    /// A transport failure, a non-200 status or a response with GraphQL errors.
    pub async fn send(&self, scenario: Scenario, index: usize) -> anyhow::Result<Vec<u8>> {
        let slot = index % self.users.len();
        let user = &self.users[slot];
        let body = self.body(scenario, user, index);
        let address = self.own_addresses.then(|| own_address(slot));
        post_graphql(
            &self.http,
            &self.url,
            &user.access_token,
            body,
            address.as_deref(),
            &scenario,
        )
        .await
    }
}

/// The client address of virtual user `slot` when users send from their own addresses.
pub fn own_address(slot: usize) -> String {
    format!("2001:db8::{:x}", slot + 1)
}

/// POSTs a GraphQL `body` with `token`; returns the response body.
///
/// # Errors
/// A transport failure, a non-200 status or a response with GraphQL errors, named by `what`.
pub async fn post_graphql(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: String,
    client_address: Option<&str>,
    what: &(dyn std::fmt::Display + Sync),
) -> anyhow::Result<Vec<u8>> {
    let mut request = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body);
    if let Some(address) = client_address {
        request = request.header("x-real-ip", address);
    }
    let response = request.send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() || has_errors(&bytes) {
        let text = String::from_utf8_lossy(&bytes);
        anyhow::bail!(
            "{what}: HTTP {status}: {}",
            text.chars().take(400).collect::<String>()
        );
    }
    Ok(bytes.to_vec())
}

/// Signs in through the gateway's `signIn` mutation; returns the access token.
///
/// # Errors
/// When the request fails or the answer holds no token.
pub async fn sign_in(
    http: &reqwest::Client,
    port: u16,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    sign_in_from(http, port, email, password, None).await
}

/// [`sign_in`] as the client at `client_address` (`X-Real-IP`), when given.
///
/// # Errors
/// When the request fails or the answer holds no token.
pub async fn sign_in_from(
    http: &reqwest::Client,
    port: u16,
    email: &str,
    password: &str,
    client_address: Option<&str>,
) -> anyhow::Result<String> {
    let body = serde_json::json!({
        "query": "mutation SignIn($input: SignInInput!) { signIn(input: $input) { accessToken } }",
        "variables": { "input": { "email": email, "password": password } },
    });
    let mut request = http
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .json(&body);
    if let Some(address) = client_address {
        request = request.header("x-real-ip", address);
    }
    let answer: serde_json::Value = request.send().await?.json().await?;
    answer["data"]["signIn"]["accessToken"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("signIn of {email} answered {answer}"))
}

/// Issues scenarios as bare gRPC calls: the floor.
#[derive(Clone)]
pub struct FloorClient {
    backends: Backends,
    users: Arc<Vec<VirtualUser>>,
}

impl FloorClient {
    pub fn new(backends: Backends, users: Vec<VirtualUser>) -> Self {
        Self {
            backends,
            users: Arc::new(users),
        }
    }

    /// Fetches what `scenario` fetches, as virtual user `index`.
    ///
    /// # Errors
    /// The first failed call.
    pub async fn send(&self, scenario: Scenario, index: usize) -> anyhow::Result<()> {
        let user = &self.users[index % self.users.len()];
        let id = user.user_id.as_str();
        match scenario {
            Scenario::Me => {
                self.backends
                    .users()
                    .get_users(as_user(
                        id,
                        pb::GetUsersRequest {
                            ids: vec![id.to_owned()],
                            visible_only: false,
                        },
                    ))
                    .await?;
            }
            Scenario::Page(size) => self.page(id, size, &[]).await?,
            Scenario::Thumbnails => {
                self.page(id, 20, &[file_pb::ImageSize::Thumbnail as i32])
                    .await?;
            }
            Scenario::Detail => self.detail(id, &user.detail_hangout).await?,
            Scenario::Upload => self.upload(id, &user.upload_hangout, index).await?,
        }
        Ok(())
    }

    /// One `ListHangouts` carrying owners, activities and memory pages, as the gateway asks
    /// for them, then the files.
    async fn page(&self, user_id: &str, size: u32, image_sizes: &[i32]) -> anyhow::Result<()> {
        let page = self
            .backends
            .hangouts()
            .list_hangouts(as_user(
                user_id,
                pb::ListHangoutsRequest {
                    page: Some(pb::PageRequest {
                        first: size,
                        after: String::new(),
                    }),
                    include: Some(pb::HangoutPageIncludes {
                        owners: true,
                        activities: true,
                        // The page shows no hangout counts.
                        activities_without_hangout_counts: true,
                        memories: Some(pb::MemoriesPageOptions {
                            page: Some(pb::PageRequest {
                                first: PAGE_MEMORIES,
                                after: String::new(),
                            }),
                            status: pb::MemoryStatus::Uploaded as i32,
                            direction: pb::OrderDirection::Desc as i32,
                        }),
                    }),
                    ..pb::ListHangoutsRequest::default()
                },
            ))
            .await?
            .into_inner();
        self.files(user_id, &page.memory_pages, image_sizes).await
    }

    async fn detail(&self, user_id: &str, hangout_id: &str) -> anyhow::Result<()> {
        let ids = vec![hangout_id.to_owned()];
        let (mut hangouts, mut memories) = (self.backends.hangouts(), self.backends.memories());
        let (_, memories) = tokio::try_join!(
            hangouts.get_hangouts(as_user(
                user_id,
                pb::GetHangoutsRequest { ids: ids.clone() }
            )),
            memories
                .list_memories_of_hangouts(as_user(user_id, memory_pages(&ids, DETAIL_MEMORIES))),
        )?;
        self.files(user_id, &memories.into_inner().pages, &[]).await
    }

    /// The download URLs of every uploaded memory on the pages, at most 500 ids per call
    /// (file-core's limit), the calls in parallel.
    async fn files(
        &self,
        user_id: &str,
        pages: &[pb::HangoutMemoriesPage],
        image_sizes: &[i32],
    ) -> anyhow::Result<()> {
        let file_ids: Vec<String> = pages
            .iter()
            .flat_map(|page| &page.edges)
            .filter_map(|edge| edge.memory.as_ref())
            .filter(|memory| !memory.file_id.is_empty())
            .map(|memory| memory.file_id.clone())
            .collect();
        let mut calls = tokio::task::JoinSet::new();
        for chunk in file_ids.chunks(MAX_IDS_PER_READ) {
            let mut files = self.backends.files();
            let request = as_user(
                user_id,
                file_pb::GetFilesRequest {
                    ids: chunk.to_vec(),
                    image_sizes: image_sizes.to_vec(),
                    // As the gateway asks: a page showing renditions shows no download URLs.
                    without_download_urls: !image_sizes.is_empty(),
                },
            );
            calls.spawn(async move { files.get_files(request).await });
        }
        while let Some(result) = calls.join_next().await {
            result??;
        }
        Ok(())
    }

    async fn upload(&self, user_id: &str, hangout_id: &str, index: usize) -> anyhow::Result<()> {
        let size = u64::try_from(PNG.len())?;
        let md5 = content_md5(PNG);
        let memories = self
            .backends
            .memories()
            .create_memories(as_user(
                user_id,
                pb::CreateMemoriesRequest {
                    hangout_id: hangout_id.to_owned(),
                    files: upload_file_names(index)
                        .into_iter()
                        .map(|file_name| pb::MemoryFile {
                            file_name,
                            content_type: "image/png".to_owned(),
                            size,
                        })
                        .collect(),
                },
            ))
            .await?
            .into_inner()
            .memories;
        let uploads = self
            .backends
            .files()
            .create_uploads(as_user(
                user_id,
                file_pb::CreateUploadsRequest {
                    hangout_id: hangout_id.to_owned(),
                    files: memories
                        .iter()
                        .map(|memory| file_pb::UploadFile {
                            memory_id: memory.id.clone(),
                            file_name: memory.file_name.clone(),
                            content_type: memory.content_type.clone(),
                            size,
                            md5: md5.clone(),
                        })
                        .collect(),
                },
            ))
            .await?
            .into_inner()
            .uploads;
        self.backends
            .memories()
            .attach_memory_files(as_user(
                user_id,
                pb::AttachMemoryFilesRequest {
                    links: uploads
                        .into_iter()
                        .map(|upload| pb::MemoryFileLink {
                            memory_id: upload.memory_id,
                            file_id: upload.file_id,
                        })
                        .collect(),
                },
            ))
            .await?;
        Ok(())
    }
}

fn memory_pages(hangout_ids: &[String], first: u32) -> pb::ListMemoriesOfHangoutsRequest {
    pb::ListMemoriesOfHangoutsRequest {
        pages: hangout_ids
            .iter()
            .map(|id| pb::HangoutMemoriesPageRequest {
                hangout_id: id.clone(),
                page: Some(pb::PageRequest {
                    first,
                    after: String::new(),
                }),
                status: pb::MemoryStatus::Uploaded as i32,
                direction: pb::OrderDirection::Desc as i32,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_are_base64_of_type_and_uuid() {
        assert_eq!(
            hangout_global_id("0190a3e2-0000-7000-8000-000000000000"),
            "SGFuZ291dDowMTkwYTNlMi0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDA="
        );
    }

    #[test]
    fn error_responses_are_recognised() {
        assert!(has_errors(br#"{"data":null,"errors":[{"message":"x"}]}"#));
        assert!(!has_errors(br#"{"data":{"me":{"id":"1","name":"a"}}}"#));
    }

    #[test]
    fn scenario_names() {
        assert_eq!(Scenario::Page(20).to_string(), "page");
        assert_eq!(Scenario::Page(100).to_string(), "page(100)");
        assert_eq!(Scenario::Upload.to_string(), "upload");
    }
}
