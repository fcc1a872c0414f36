//! A mixed load of what users do, through the gateway over HTTP: plan hangouts, upload photos
//! (a presigned PUT straight to S3, then confirm), read a page of hangouts with their photos'
//! URLs, delete photos and hangouts. `cargo xtask chaos` runs it while it breaks things and
//! `cargo xtask bench --soak` runs it for minutes; both read the outcomes from its [`Tally`],
//! counted per phase (a fault, or the steady state) and per outcome (`ok` or the error code).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde_json::{Value, json};

/// How often a user signs in again: well inside the access token's 15 minutes.
const SESSION: Duration = Duration::from_secs(5 * 60);
const PASSWORD: &str = "mixed load password 1";

/// What the load generator itself could not do, rather than an answer of the system: an
/// open-loop start skipped because every user was still busy with their last flow.
pub const SKIPPED: &str = "skipped: all users busy";

/// Outcomes by phase, then by what happened.
#[derive(Default)]
pub struct Tally {
    phase: Mutex<String>,
    counts: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Flows that ran, those with every step `ok`, and when the last of those ended.
    flows: AtomicU64,
    clean_flows: AtomicU64,
    last_clean: Mutex<Option<Instant>>,
}

impl Tally {
    /// Counts what follows under `phase`.
    pub fn set_phase(&self, phase: &str) {
        phase.clone_into(&mut lock(&self.phase));
    }

    fn record(&self, outcome: &str) {
        let phase = lock(&self.phase).clone();
        *lock(&self.counts)
            .entry(phase)
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Outcomes counted so far, by phase.
    pub fn counts(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        lock(&self.counts).clone()
    }

    /// Flows that ran.
    pub fn flows(&self) -> u64 {
        self.flows.load(Ordering::Relaxed)
    }

    /// Flows that ended with every step `ok`.
    pub fn clean_flows(&self) -> u64 {
        self.clean_flows.load(Ordering::Relaxed)
    }

    /// When the last flow with every step `ok` ended.
    pub fn last_clean(&self) -> Option<Instant> {
        *lock(&self.last_clean)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct User {
    email: String,
    token: Mutex<(String, Instant)>,
    hangouts: Mutex<VecDeque<String>>,
    flows: AtomicU64,
    busy: AtomicBool,
}

/// Signed-up users and what they send.
pub struct MixedLoad {
    http: reqwest::Client,
    url: String,
    users: Vec<Arc<User>>,
    photo: Arc<Vec<u8>>,
    md5: String,
    pub tally: Arc<Tally>,
}

impl MixedLoad {
    /// Signs up `users` new users through the gateway on `port`; `photo` is what they upload.
    ///
    /// # Errors
    /// When a sign-up fails.
    pub async fn sign_up(port: u16, users: usize, photo: Vec<u8>) -> anyhow::Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let url = format!("http://127.0.0.1:{port}/graphql");
        let run = std::process::id();
        let mut signed_up = Vec::new();
        for index in 0..users {
            let email = format!("mixed-{run}-{index}@example.com");
            let answer = post(
                &http,
                &url,
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }",
                json!({ "input": { "name": format!("Mixed {index}"), "email": email, "password": PASSWORD } }),
            )
            .await?;
            let token = answer["data"]["signUp"]["accessToken"]
                .as_str()
                .with_context(|| format!("signUp answered {answer}"))?
                .to_owned();
            signed_up.push(Arc::new(User {
                email,
                token: Mutex::new((token, Instant::now())),
                hangouts: Mutex::new(VecDeque::new()),
                flows: AtomicU64::new(0),
                busy: AtomicBool::new(false),
            }));
        }
        let md5 = crate::bench::content_md5(&photo);
        Ok(Arc::new(Self {
            http,
            url,
            users: signed_up,
            photo: Arc::new(photo),
            md5,
            tally: Arc::new(Tally::default()),
        }))
    }

    /// Every user runs flows back to back until `stop` is set.
    pub async fn run_closed(self: &Arc<Self>, stop: Arc<AtomicBool>) {
        let users = self.users.iter().map(|user| {
            let load = Arc::clone(self);
            let user = Arc::clone(user);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    load.flow(&user).await;
                }
            })
        });
        for user in users.collect::<Vec<_>>() {
            let _ = user.await;
        }
    }

    /// Starts `per_second` flows a second, each by the next idle user (a busy one is skipped
    /// and counted as `skipped: all users busy`), until `stop` is set.
    pub async fn run_open(self: &Arc<Self>, per_second: f64, stop: Arc<AtomicBool>) {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second.max(0.1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next = 0;
        while !stop.load(Ordering::Relaxed) {
            ticks.tick().await;
            let idle = (0..self.users.len())
                .map(|offset| (next + offset) % self.users.len())
                .find(|index| !self.users[*index].busy.load(Ordering::Relaxed));
            let Some(index) = idle else {
                self.tally.record(SKIPPED);
                continue;
            };
            next = index + 1;
            let user = Arc::clone(&self.users[index]);
            user.busy.store(true, Ordering::Relaxed);
            let load = Arc::clone(self);
            tokio::spawn(async move {
                load.flow(&user).await;
                user.busy.store(false, Ordering::Relaxed);
            });
        }
        while self
            .users
            .iter()
            .any(|user| user.busy.load(Ordering::Relaxed))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One user's turn: maybe a new hangout, a photo uploaded and confirmed, a page read,
    /// every third photo deleted again, the oldest hangout deleted once there are four.
    async fn flow(&self, user: &User) {
        let turn = user.flows.fetch_add(1, Ordering::Relaxed);
        let mut clean = true;
        let token = self.token(user, &mut clean).await;
        let need_hangout = lock(&user.hangouts).is_empty() || turn.is_multiple_of(8);
        if need_hangout {
            let created = self
                .op(
                    "mutation($input: CreateHangoutInput!) { createHangout(input: $input) { hangout { id } } }",
                    json!({ "input": { "title": format!("Mixed {turn}"), "date": "2026-12-24T18:00:00Z" } }),
                    &token,
                    &mut clean,
                )
                .await;
            if let Some(id) = created
                .as_ref()
                .and_then(|data| data["createHangout"]["hangout"]["id"].as_str())
            {
                lock(&user.hangouts).push_back(id.to_owned());
            }
        }
        let hangout = lock(&user.hangouts).back().cloned();
        if let Some(hangout) = hangout {
            let memory = self.upload(&hangout, turn, &token, &mut clean).await;
            self.op(
                "{ hangouts(first: 10) { nodes { id title memories(first: 5) { nodes { id downloadUrl } } } } }",
                json!({}),
                &token,
                &mut clean,
            )
            .await;
            if let Some(memory) = memory.filter(|_| turn.is_multiple_of(3)) {
                self.op(
                    "mutation($input: DeleteMemoryInput!) { deleteMemory(input: $input) { deletedId } }",
                    json!({ "input": { "id": memory } }),
                    &token,
                    &mut clean,
                )
                .await;
            }
        }
        let oldest = {
            let mut hangouts = lock(&user.hangouts);
            if hangouts.len() > 3 {
                hangouts.pop_front()
            } else {
                None
            }
        };
        if let Some(oldest) = oldest {
            self.op(
                "mutation($input: DeleteHangoutInput!) { deleteHangout(input: $input) { deletedId } }",
                json!({ "input": { "id": oldest } }),
                &token,
                &mut clean,
            )
            .await;
        }
        self.tally.flows.fetch_add(1, Ordering::Relaxed);
        if clean {
            self.tally.clean_flows.fetch_add(1, Ordering::Relaxed);
            *lock(&self.tally.last_clean) = Some(Instant::now());
        }
    }

    /// The user's access token, signing in again when it is old.
    async fn token(&self, user: &User, clean: &mut bool) -> String {
        let (token, at) = lock(&user.token).clone();
        if at.elapsed() < SESSION {
            return token;
        }
        let signed_in = self
            .op(
                "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }",
                json!({ "input": { "email": user.email, "password": PASSWORD } }),
                "",
                clean,
            )
            .await;
        match signed_in
            .as_ref()
            .and_then(|data| data["signIn"]["accessToken"].as_str())
        {
            Some(fresh) => {
                *lock(&user.token) = (fresh.to_owned(), Instant::now());
                fresh.to_owned()
            }
            None => token,
        }
    }

    /// A photo through createMemoryUploads, the presigned PUT and confirm; the memory's id
    /// when it was confirmed.
    async fn upload(
        &self,
        hangout: &str,
        turn: u64,
        token: &str,
        clean: &mut bool,
    ) -> Option<String> {
        let name = format!("p{turn}-{}.jpg", std::process::id());
        let created = self
            .op(
                "mutation($input: CreateMemoryUploadsInput!) { createMemoryUploads(input: $input) { uploads { url headers { name value } memory { id } } } }",
                json!({ "input": { "hangoutId": hangout, "files": [{ "fileName": name, "contentType": "image/jpeg", "size": self.photo.len(), "md5": self.md5 }] } }),
                token,
                clean,
            )
            .await?;
        let upload = &created["createMemoryUploads"]["uploads"][0];
        let memory = upload["memory"]["id"].as_str()?.to_owned();
        let mut put = self.http.put(upload["url"].as_str()?);
        for header in upload["headers"].as_array()? {
            let (Some(name), Some(value)) = (header["name"].as_str(), header["value"].as_str())
            else {
                continue;
            };
            if !name.eq_ignore_ascii_case("content-length") {
                put = put.header(name, value);
            }
        }
        match put.body(self.photo.to_vec()).send().await {
            Ok(response) if response.status().is_success() => self.tally.record("ok"),
            Ok(response) => {
                *clean = false;
                self.tally
                    .record(&format!("S3 PUT: HTTP {}", response.status().as_u16()));
            }
            Err(_) => {
                *clean = false;
                self.tally.record("S3 PUT: unreachable");
            }
        }
        let confirmed = self
            .op(
                "mutation($input: ConfirmMemoryUploadsInput!) { confirmMemoryUploads(input: $input) { memories { id } failures { reason } } }",
                json!({ "input": { "memoryIds": [memory] } }),
                token,
                clean,
            )
            .await?;
        let payload = &confirmed["confirmMemoryUploads"];
        if let Some(reason) = payload["failures"][0]["reason"].as_str() {
            *clean = false;
            self.tally.record(&format!("confirm: {reason}"));
            return None;
        }
        Some(memory)
    }

    /// One GraphQL operation; records `ok` or what went wrong, returns `data` when ok.
    async fn op(
        &self,
        query: &str,
        variables: Value,
        token: &str,
        clean: &mut bool,
    ) -> Option<Value> {
        let token = Some(token).filter(|token| !token.is_empty());
        let outcome = match post(&self.http, &self.url, token, query, variables).await {
            Ok(answer) => match answer["errors"][0]["extensions"]["code"].as_str() {
                None if answer["errors"].is_null() => {
                    self.tally.record("ok");
                    return Some(answer["data"].clone());
                }
                None => "error without a code".to_owned(),
                Some(code) => code.to_owned(),
            },
            Err(error) => {
                // A client that cannot connect waits a little before it tries again, rather
                // than spinning on refused connections.
                tokio::time::sleep(Duration::from_millis(20)).await;
                error.to_string()
            }
        };
        *clean = false;
        self.tally.record(&outcome);
        None
    }
}

/// POSTs an operation; the answer's JSON, or what kept it from being GraphQL (`gateway
/// unreachable`, `HTTP 502`).
async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut request = http
        .post(url)
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|_| anyhow::anyhow!("gateway unreachable"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|_| anyhow::anyhow!("response cut"))?;
    serde_json::from_slice(&body).map_err(|_| anyhow::anyhow!("HTTP {}", status.as_u16()))
}

/// A small real photo (the worker decodes it): 320 x 240 pixels of a gradient.
///
/// # Errors
/// When the encoder fails.
pub fn photo_jpeg() -> anyhow::Result<Vec<u8>> {
    const WIDTH: u16 = 320;
    const HEIGHT: u16 = 240;
    let mut pixels = Vec::with_capacity(usize::from(WIDTH) * usize::from(HEIGHT) * 3);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let red = u8::try_from(x % 256).unwrap_or(0);
            let green = u8::try_from(y % 256).unwrap_or(0);
            pixels.extend_from_slice(&[red, green, 128]);
        }
    }
    let mut encoded = Vec::new();
    jpeg_encoder::Encoder::new(&mut encoded, 85)
        .encode(&pixels, WIDTH, HEIGHT, jpeg_encoder::ColorType::Rgb)
        .context("encode the photo")?;
    Ok(encoded)
}
