//! The `live` scenario: [`SOCKETS`] subscriptions over WebSocket (graphql-transport-ws, as the
//! `graphql-ws` client speaks it), one per socket, spread over [`HANGOUTS`] hangouts of the
//! active users (each socket its hangout's owner's), held open while the `page` load runs and
//! a stream of `updateHangout` mutations changes those hangouts. It reports each event's
//! delivery latency (from the event's `at`, taken in hangout-core's recording transaction, to
//! its arrival at the client), the gateway's resident memory per idle socket (sockets open and
//! subscribed, no events), and what the sockets and their events cost `page`.
//!
//! The sockets live on a thread and runtime of their own, so their arrival times are not held
//! up behind the page load's requests on the bench's runtime.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};

use crate::bench::{load::Stats, procs, scenarios::VirtualUser};

/// Sockets opened, each with one subscription.
pub const SOCKETS: usize = 1000;
/// Hangouts the subscriptions are spread over (so [`SOCKETS`] / [`HANGOUTS`] per hangout).
pub const HANGOUTS: usize = 100;
/// Mutations per second while the page load runs; each reaches every socket of its hangout.
const MUTATIONS_PER_SECOND: u32 = 20;
/// Sockets being opened at once.
const OPENING_AT_ONCE: usize = 25;

const SUBSCRIPTION: &str = "subscription($id: ID!) { hangoutEvents(hangoutId: $id) {
    __typename ... on HangoutUpdated { hangout { id title } at } } }";
const UPDATE: &str = "mutation($input: UpdateHangoutInput!) {
    updateHangout(input: $input) { hangout { id } } }";
const HANGOUTS_OF_USER: &str = "query($first: Int!) { viewer: hangouts(first: $first) {
    nodes { id } } }";

/// The figures of one `live` run.
#[derive(Clone, Debug)]
pub struct LiveRun {
    pub sockets: usize,
    pub hangouts: usize,
    /// Mutations that succeeded, and the events they should have delivered.
    pub mutations: u64,
    pub expected: u64,
    pub delivered: u64,
    /// Delivery latencies in milliseconds, sorted.
    pub latencies_ms: Vec<f64>,
    /// The gateway's resident bytes before the sockets opened and with them open and idle.
    pub gateway_rss_before: u64,
    pub gateway_rss_open: u64,
    /// `page` at half of its peak (open loop) with the sockets and mutations, and alone (the
    /// bench's own half-peak run of `page`).
    pub page_with_live: PageFigures,
    pub page_alone: Option<PageFigures>,
    pub seconds: f64,
}

/// A `page` run's rate and latency.
#[derive(Clone, Copy, Debug)]
pub struct PageFigures {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl PageFigures {
    #[must_use]
    pub fn of(stats: &Stats) -> Self {
        Self {
            per_second: stats.per_second(),
            p50_ms: stats.percentile_ms(0.5),
            p99_ms: stats.percentile_ms(0.99),
        }
    }

    fn to_json(self) -> Value {
        json!({ "per_second": self.per_second, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms })
    }
}

impl LiveRun {
    /// The `fraction` percentile of the delivery latencies, in milliseconds.
    #[must_use]
    pub fn percentile_ms(&self, fraction: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return f64::NAN;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a short list"
        )]
        let index = ((self.latencies_ms.len() - 1) as f64 * fraction).round() as usize;
        self.latencies_ms[index]
    }

    /// Gateway resident bytes per idle socket.
    #[must_use]
    #[allow(clippy::cast_precision_loss, reason = "memory sizes")]
    pub fn bytes_per_socket(&self) -> f64 {
        self.gateway_rss_open
            .saturating_sub(self.gateway_rss_before) as f64
            / self.sockets as f64
    }

    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "sockets": self.sockets,
            "hangouts": self.hangouts,
            "mutations": self.mutations,
            "events_expected": self.expected,
            "events_delivered": self.delivered,
            "delivery_p50_ms": self.percentile_ms(0.5),
            "delivery_p99_ms": self.percentile_ms(0.99),
            "delivery_max_ms": self.percentile_ms(1.0),
            "gateway_bytes_per_idle_socket": self.bytes_per_socket(),
            "page_at_half_peak_with_live": self.page_with_live.to_json(),
            "page_at_half_peak_alone": self.page_alone.map(PageFigures::to_json),
            "seconds": self.seconds,
        })
    }
}

/// One socket to open: as whom, on which hangout (global id).
#[derive(Clone)]
struct Planned {
    token: String,
    hangout: String,
}

/// What the sockets' thread shares with the bench.
#[derive(Default)]
struct Shared {
    delivered: AtomicU64,
    /// Whether arrival times are kept (the measured window).
    measuring: AtomicBool,
}

/// The hangouts of the run: the first ones of each active user in turn, each with its owner.
async fn plan(
    http: &reqwest::Client,
    gateway: u16,
    users: &[VirtualUser],
) -> anyhow::Result<Vec<(usize, String)>> {
    anyhow::ensure!(!users.is_empty(), "no active users");
    let per_user = HANGOUTS.div_ceil(users.len());
    let mut owned = Vec::new();
    for user in users {
        let body: Value = http
            .post(format!("http://127.0.0.1:{gateway}/graphql"))
            .bearer_auth(&user.access_token)
            .json(&json!({ "query": HANGOUTS_OF_USER, "variables": { "first": per_user } }))
            .send()
            .await?
            .json()
            .await?;
        let ids: Vec<String> = body["data"]["viewer"]["nodes"]
            .as_array()
            .with_context(|| format!("listing hangouts failed: {body}"))?
            .iter()
            .filter_map(|node| node["id"].as_str().map(str::to_owned))
            .collect();
        owned.push(ids);
    }
    let mut hangouts = Vec::with_capacity(HANGOUTS);
    for index in 0..per_user {
        for (user, ids) in owned.iter().enumerate() {
            if hangouts.len() < HANGOUTS
                && let Some(id) = ids.get(index)
            {
                hangouts.push((user, id.clone()));
            }
        }
    }
    anyhow::ensure!(
        hangouts.len() == HANGOUTS,
        "the active users own {} hangouts, not {HANGOUTS}",
        hangouts.len()
    );
    Ok(hangouts)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(socket: &mut Socket, message: &Value) -> anyhow::Result<()> {
    socket.send(Message::text(message.to_string())).await?;
    Ok(())
}

/// The next protocol message (pings answered by the library are skipped).
async fn receive(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        match socket.next().await.context("the socket closed")?? {
            Message::Text(text) => return Ok(serde_json::from_str(text.as_str())?),
            Message::Close(frame) => anyhow::bail!("the socket was closed: {frame:?}"),
            _ => {}
        }
    }
}

/// Opens one socket, authenticates, subscribes and waits until the subscription is running
/// (a ping answered after the subscribe).
async fn open(gateway: u16, planned: &Planned) -> anyhow::Result<Socket> {
    let mut request = format!("ws://127.0.0.1:{gateway}/graphql").into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    send(
        &mut socket,
        &json!({ "type": "connection_init",
                 "payload": { "authorization": format!("Bearer {}", planned.token) } }),
    )
    .await?;
    let ack = receive(&mut socket).await?;
    anyhow::ensure!(ack["type"] == "connection_ack", "not acknowledged: {ack}");
    send(
        &mut socket,
        &json!({ "type": "subscribe", "id": "1",
                 "payload": { "query": SUBSCRIPTION, "variables": { "id": planned.hangout } } }),
    )
    .await?;
    send(&mut socket, &json!({ "type": "ping" })).await?;
    let pong = receive(&mut socket).await?;
    anyhow::ensure!(pong["type"] == "pong", "subscribing failed: {pong}");
    Ok(socket)
}

/// Unix milliseconds of an RFC 3339 UTC instant as the gateway writes it
/// (`2026-12-02T10:41:34.123Z`, fraction optional).
fn unix_millis(text: &str) -> Option<i64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut parts = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut parts = clock.split(':').map(str::parse::<i64>);
    let (hour, minute, second) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    let millis: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let of_era = year - era * 400;
    let of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let of_cycle = of_era * 365 + of_era / 4 - of_era / 100 + of_year;
    let days = era * 146_097 + of_cycle - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

fn now_millis() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0)
}

/// Reads one socket until `stop` turns true; the latencies of the events it saw while
/// measuring.
async fn read(
    mut socket: Socket,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<f64> {
    let mut latencies = Vec::new();
    loop {
        let message = tokio::select! {
            received = receive(&mut socket) => match received {
                Ok(message) => message,
                Err(_) => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let arrived = now_millis();
        if message["type"] != "next" {
            continue;
        }
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        let at = message["payload"]["data"]["hangoutEvents"]["at"]
            .as_str()
            .and_then(unix_millis);
        if let Some(at) = at
            && shared.measuring.load(Ordering::Relaxed)
        {
            #[allow(clippy::cast_precision_loss, reason = "milliseconds since 1970")]
            latencies.push(arrived - at as f64);
        }
    }
    latencies
}

/// The sockets' thread: opens every socket, reports, reads until `stop`, returns the
/// latencies.
fn sockets_thread(
    gateway: u16,
    planned: Vec<Planned>,
    shared: Arc<Shared>,
    opened: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<Vec<f64>> {
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let sockets: Vec<anyhow::Result<Socket>> = futures_util::stream::iter(planned.iter())
            .map(|planned| open(gateway, planned))
            .buffer_unordered(OPENING_AT_ONCE)
            .collect()
            .await;
        let sockets = match sockets.into_iter().collect::<anyhow::Result<Vec<_>>>() {
            Ok(sockets) => sockets,
            Err(error) => {
                let message = format!("{error:#}");
                let _ = opened.send(Err(error));
                anyhow::bail!("opening the sockets failed: {message}");
            }
        };
        let readers: Vec<_> = sockets
            .into_iter()
            .map(|socket| tokio::spawn(read(socket, Arc::clone(&shared), stopped.clone())))
            .collect();
        let _ = opened.send(Ok(()));
        let _ = stop.await;
        let _ = stopping.send(true);
        let mut latencies = Vec::new();
        for reader in readers {
            if let Ok(mut seen) = reader.await {
                latencies.append(&mut seen);
            }
        }
        Ok(latencies)
    })
}

/// What the run needs from the bench.
pub struct Settings<'a> {
    pub gateway: u16,
    pub gateway_pid: u32,
    pub users: &'a [VirtualUser],
    pub page_alone: Option<PageFigures>,
}

/// Runs `live`: opens the sockets, measures their memory, then runs `page_load` (the page's
/// open loop at half of its peak: delivery latency is measured under load the gateway can
/// sustain, as every latency target of the bench is) while mutations stream, and collects
/// the deliveries.
///
/// # Errors
/// When the hangouts cannot be listed, a socket cannot be opened, or the load fails.
pub async fn run<F>(settings: Settings<'_>, page_load: F) -> anyhow::Result<LiveRun>
where
    F: Future<Output = anyhow::Result<PageFigures>>,
{
    let http = reqwest::Client::new();
    let hangouts = plan(&http, settings.gateway, settings.users).await?;
    let planned: Vec<Planned> = (0..SOCKETS)
        .map(|index| {
            let (owner, hangout) = &hangouts[index % HANGOUTS];
            Planned {
                token: settings.users[*owner].access_token.clone(),
                hangout: hangout.clone(),
            }
        })
        .collect();
    let gateway_rss_before = procs::memory(settings.gateway_pid)?.0;
    let shared = Arc::new(Shared::default());
    let (opened_sender, opened) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let thread = {
        let shared = Arc::clone(&shared);
        let gateway = settings.gateway;
        std::thread::spawn(move || sockets_thread(gateway, planned, shared, opened_sender, stopped))
    };
    let started = Instant::now();
    opened.await.context("the sockets' thread ended early")??;
    let gateway_rss_open = procs::memory(settings.gateway_pid)?.0;
    println!(
        "   {SOCKETS} sockets open and subscribed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    shared.measuring.store(true, Ordering::Relaxed);
    let mutating = Arc::new(AtomicBool::new(true));
    let mutations = tokio::spawn(mutate(
        http.clone(),
        settings.gateway,
        settings.users.to_vec(),
        hangouts,
        Arc::clone(&mutating),
    ));
    let began = Instant::now();
    let page_with_live = page_load.await;
    mutating.store(false, Ordering::Relaxed);
    let mutations = mutations.await.context("the mutations task failed")??;
    let seconds = began.elapsed().as_secs_f64();
    let expected = mutations * (SOCKETS / HANGOUTS) as u64;
    // Deliveries still on their way: wait for them, a bounded while.
    let waiting = Instant::now();
    while shared.delivered.load(Ordering::Relaxed) < expected
        && waiting.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let _ = stop.send(());
    let mut latencies_ms = thread
        .join()
        .map_err(|_| anyhow::anyhow!("the sockets' thread panicked"))??;
    latencies_ms.sort_by(f64::total_cmp);
    Ok(LiveRun {
        sockets: SOCKETS,
        hangouts: HANGOUTS,
        mutations,
        expected,
        delivered,
        latencies_ms,
        gateway_rss_before,
        gateway_rss_open,
        page_with_live: page_with_live?,
        page_alone: settings.page_alone,
        seconds,
    })
}

/// Renames the hangouts in turn, [`MUTATIONS_PER_SECOND`] a second, each as its owner, until
/// `mutating` turns false; returns how many succeeded.
async fn mutate(
    http: reqwest::Client,
    gateway: u16,
    users: Vec<VirtualUser>,
    hangouts: Vec<(usize, String)>,
    mutating: Arc<AtomicBool>,
) -> anyhow::Result<u64> {
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / MUTATIONS_PER_SECOND);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut done = 0_u64;
    let mut failed = 0_u64;
    let url = format!("http://127.0.0.1:{gateway}/graphql");
    for round in 0_u64.. {
        ticker.tick().await;
        if !mutating.load(Ordering::Relaxed) {
            break;
        }
        #[allow(
            clippy::cast_possible_truncation,
            reason = "an index modulo a small count"
        )]
        let (owner, hangout) = &hangouts[(round % hangouts.len() as u64) as usize];
        let input = json!({ "id": hangout, "title": format!("Live {round}") });
        let answer = http
            .post(&url)
            .bearer_auth(&users[*owner].access_token)
            .json(&json!({ "query": UPDATE, "variables": { "input": input } }))
            .send()
            .await;
        let body = match answer {
            Ok(response) => response.bytes().await.ok(),
            Err(_) => None,
        };
        match body {
            Some(body) if !crate::bench::scenarios::has_errors(&body) => done += 1,
            _ => failed += 1,
        }
    }
    anyhow::ensure!(failed == 0, "{failed} mutations failed");
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_as_the_gateway_writes_them() {
        assert_eq!(unix_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_millis("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            unix_millis("2026-12-02T10:41:34.123Z"),
            Some(1_796_208_094_123)
        );
        assert_eq!(
            unix_millis("2024-02-29T23:59:59.999Z"),
            Some(1_709_251_199_999)
        );
        assert_eq!(unix_millis("yesterday"), None);
    }
}
