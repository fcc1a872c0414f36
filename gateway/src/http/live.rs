//! GraphQL over WebSocket at the GraphQL endpoint: the graphql-transport-ws protocol
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>), as the `graphql-ws`
//! client, Apollo Client and urql speak it.
//!
//! One task per socket runs [`serve_socket`]'s loop over the client's messages, the running
//! operations' responses and the socket's deadlines. Operations go through the same
//! preparation as over HTTP (document limits, cost limit, rate limits), run with their own
//! [`RequestContext`](crate::graphql::RequestContext), and resolve through the request's loader, driven by
//! [`graphql::execute_stream`].
//!
//! Bounds: a socket must authenticate (`connection_init`, with the token in its payload's
//! `authorization` or the upgrade request's `Authorization` header) within
//! `GATEWAY_WS_INIT_TIMEOUT` (else 4408); it is closed with 4401 when its token expires or
//! the token's session is revoked (signed out, or its refresh token reused: hangout-core's
//! `SessionRevoked` event, on the hub's topic of that session), 1001 when the gateway shuts
//! down, 4429 when a subscriber cannot keep up. Messages are at most
//! `GATEWAY_WS_MAX_MESSAGE_BYTES`; subscriptions per socket and per user, and sockets per user
//! and per address, are capped; a socket is pinged every `GATEWAY_WS_PING_INTERVAL` and
//! dropped after two intervals without a word from the client; a send that the client does
//! not take within the interval drops the socket too, so a client that stops reading cannot
//! hold a response queue.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime},
};

use async_graphql::futures_util::{StreamExt as _, stream::BoxStream};
use axum::{
    extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{
    SinkExt as _,
    stream::{SplitSink, SplitStream},
};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;
use tokio_stream::StreamMap;

use crate::{
    events::{Ended, EventHub, Subscription, Topic},
    graphql::{self, Caller, Invocation, error::Code, live::SocketCloser},
    http::{AppState, Charge, RequestId, charge, operation},
};

/// The subprotocol.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The size at which each socket's writes go out (tungstenite's read chunk is a fixed 4 KiB
/// beside it).
const SOCKET_BUFFER_BYTES: usize = 4 * 1024;

/// What each socket's read buffer holds before it grows: client messages are small (a
/// subscribe is a few hundred bytes), and a larger one grows it up to the message cap.
const SOCKET_READ_BUFFER_BYTES: usize = 1024;

/// What the sockets of one gateway share: the hub and the counts behind the caps.
pub struct Live {
    pub hub: EventHub,
    stopping: tokio::sync::watch::Receiver<bool>,
    sockets_by_user: Counts<String>,
    sockets_by_address: Counts<IpAddr>,
    subscriptions_by_user: Counts<String>,
}

impl Live {
    #[must_use]
    pub fn new(hub: EventHub, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Self {
            hub,
            stopping,
            sockets_by_user: Counts::default(),
            sockets_by_address: Counts::default(),
            subscriptions_by_user: Counts::default(),
        }
    }
}

/// Counts by key, each taken with a [`Taken`] that gives it back when dropped.
struct Counts<K>(Arc<Mutex<HashMap<K, usize>>>);

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K: std::hash::Hash + Eq + Clone + Send + 'static> Counts<K> {
    /// One more for `key`, unless it has `max` already.
    fn take(&self, key: K, max: usize) -> Option<Taken<K>> {
        let mut counts = lock(&self.0);
        let count = counts.entry(key.clone()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Taken {
            counts: Arc::clone(&self.0),
            key,
        })
    }
}

/// One unit of a [`Counts`], given back on drop.
struct Taken<K: std::hash::Hash + Eq> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: std::hash::Hash + Eq> Drop for Taken<K> {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Upgrades a request to a socket, when the client speaks the protocol and its address has
/// sockets left.
pub(super) fn upgrade(
    state: Arc<AppState>,
    upgrade: WebSocketUpgrade,
    request_id: RequestId,
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
) -> Response {
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == PROTOCOL);
    if !offered {
        return (
            StatusCode::BAD_REQUEST,
            format!("WebSocket clients must speak the {PROTOCOL} subprotocol"),
        )
            .into_response();
    }
    let address = state.rate_limits.client_address(peer, headers);
    let address_slot = match address {
        Some(address) => {
            match state
                .live
                .sockets_by_address
                .take(address, state.ws.max_sockets_per_address)
            {
                Some(slot) => Some(slot),
                None => {
                    state.backends.metrics().rate_limited("sockets");
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "10")],
                        "too many open sockets from this address",
                    )
                        .into_response();
                }
            }
        }
        None => None,
    };
    // A token on the upgrade request counts as the connection_init's.
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let max_message = state.ws.max_message_bytes;
    upgrade
        .protocols([PROTOCOL])
        .max_message_size(max_message)
        .max_frame_size(max_message)
        // tungstenite allocates its read buffer whole (128 KiB by default) and keeps it for the
        // socket's life; most sockets sit idle, and messages here are small. A large message
        // grows the buffer as it is read, nothing else.
        .read_buffer_size(SOCKET_READ_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES)
        .max_write_buffer_size(SOCKET_BUFFER_BYTES + 2 * max_message)
        .on_upgrade(move |socket| {
            // Split before the future is made, and handed in as halves: a `WebSocket` moved
            // into an async block keeps its room in the future's state after it is moved on
            // (a few hundred bytes each time, in every idle socket's task).
            let (sink, incoming) = socket.split();
            let connection = Connection {
                state,
                request_id: request_id.0,
                address,
                header_token,
            };
            // A task of its own rather than the rest of axum's upgrade task, whose state (room
            // for the handshake, about 2 kB) would stay with every socket for its life.
            tokio::spawn(async move {
                let _address_slot = address_slot;
                connection.serve(sink, incoming).await;
            });
            std::future::ready(())
        })
}

/// How a socket ends: the close code and reason sent, if any.
type Close = Option<(u16, &'static str)>;

/// What the upgrade request established.
struct Connection {
    state: Arc<AppState>,
    request_id: String,
    address: Option<IpAddr>,
    header_token: Option<String>,
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
}

/// An authenticated socket's identity.
struct Session {
    user: String,
    /// When its token stops being accepted.
    until: SystemTime,
    /// The events of the token's session: its revocation closes the socket. `None` for a
    /// token that names no session.
    revocation: Option<Subscription>,
    _user_slot: Taken<String>,
}

/// The close the session's events call for: 4401 when its revocation arrives (or the hub lost
/// events, so it may have been missed); 1001 when the hub ends because the gateway is shutting
/// down, which is no revocation (told 4401, a client would send its user to sign in again
/// after a mere restart). Never without a session to watch.
async fn session_ended(session: Option<&mut Session>) -> (u16, &'static str) {
    match session.and_then(|session| session.revocation.as_mut()) {
        Some(revocation) => match revocation.next().await {
            Err(Ended::ShuttingDown) => SHUTTING_DOWN,
            Ok(_) | Err(Ended::TooSlow | Ended::Lost) => {
                (4401, "the session was revoked; sign in again")
            }
        },
        None => std::future::pending().await,
    }
}

const SHUTTING_DOWN: (u16, &str) = (1001, "the server is shutting down");

/// A close that the socket's operations asked for (a subscriber cut off for being too slow):
/// the first one asked wins. A mutex and a `Notify` rather than a channel: every socket has
/// one, and a channel's queue and blocks cost each idle socket far more.
#[derive(Default)]
struct CloseRequest {
    asked: Mutex<Option<(u16, &'static str)>>,
    wake: tokio::sync::Notify,
}

impl CloseRequest {
    fn ask(&self, code: u16, reason: &'static str) {
        lock(&self.asked).get_or_insert((code, reason));
        // Stores a permit when the socket is not waiting yet, so no request is missed.
        self.wake.notify_one();
    }

    fn take(&self) -> Option<(u16, &'static str)> {
        lock(&self.asked).take()
    }

    /// The close asked for, once there is one.
    async fn asked(&self) -> (u16, &'static str) {
        loop {
            if let Some(close) = self.take() {
                return close;
            }
            self.wake.notified().await;
        }
    }
}

/// One running operation's responses; `None` last, when it completes.
type Operation = BoxStream<'static, Option<async_graphql::Response>>;

impl Connection {
    async fn serve(
        self,
        mut sink: SplitSink<WebSocket, Message>,
        mut incoming: SplitStream<WebSocket>,
    ) {
        let ws = &self.state.ws;
        let close_request = Arc::new(CloseRequest::default());
        let closer = SocketCloser(Arc::new({
            let close_request = Arc::clone(&close_request);
            move |code, reason| close_request.ask(code, reason)
        }));
        let mut stop = std::pin::pin!(stopped(self.state.live.stopping.clone()));
        let mut session: Option<Session> = None;
        let mut operations: StreamMap<String, Operation> = StreamMap::new();
        let mut slots: HashMap<String, Taken<String>> = HashMap::new();
        let init_deadline = Instant::now() + ws.init_timeout;
        let mut ping =
            tokio::time::interval_at(Instant::now() + ws.ping_interval, ws.ping_interval);
        let mut heard = Instant::now();
        let close: Close = loop {
            let expiry = session.as_ref().map_or(init_deadline, |session| {
                let left = session
                    .until
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                Instant::now() + left
            });
            let outgoing: Option<String> = tokio::select! {
                biased;
                () = &mut stop => break Some(SHUTTING_DOWN),
                () = tokio::time::sleep_until(expiry) => break Some(match session {
                    None => (4408, "Connection initialisation timeout"),
                    Some(_) => (4401, "the access token expired; reconnect with a fresh one"),
                }),
                close = session_ended(session.as_mut()) => break Some(close),
                close = close_request.asked() => break Some(close),
                _ = ping.tick() => {
                    if heard.elapsed() > ws.ping_interval * 2 {
                        break None;
                    }
                    if send(&mut sink, Message::Ping(Default::default()), ws.ping_interval).await.is_err() {
                        break None;
                    }
                    None
                }
                Some((id, response)) = operations.next(), if !operations.is_empty() => {
                    match response {
                        // Nothing resolved: the operation failed as a whole (refused at
                        // its start, or its events lost), which ends it without `complete`.
                        Some(response) if response.data == async_graphql::Value::Null && !response.errors.is_empty() => {
                            operations.remove(&id);
                            slots.remove(&id);
                            Some(error_message(&id, &response))
                        }
                        Some(response) => Some(next_message(&id, &response)),
                        None => {
                            // A subscription that ended by asking for the socket's close (its
                            // subscriber too slow) is not completed: `complete` would tell the
                            // client it is over, the close tells it to reconnect and resubscribe.
                            if let Some(close) = close_request.take() {
                                break Some(close);
                            }
                            operations.remove(&id);
                            slots.remove(&id);
                            Some(json!({ "type": "complete", "id": id }).to_string())
                        }
                    }
                }
                message = incoming.next() => {
                    heard = Instant::now();
                    let text = match message {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Binary(_))) => break Some((4400, "binary messages are not part of the protocol")),
                        Some(Ok(Message::Text(text))) => text,
                    };
                    let Ok(message) = serde_json::from_str::<ClientMessage>(text.as_str()) else {
                        break Some((4400, "invalid message"));
                    };
                    match message {
                        ClientMessage::ConnectionInit { payload } => {
                            if session.is_some() {
                                break Some((4429, "Too many initialisation requests"));
                            }
                            match self.authenticate(payload.as_ref()) {
                                Ok(established) => {
                                    session = Some(established);
                                    Some(json!({ "type": "connection_ack" }).to_string())
                                }
                                Err(close) => break Some(close),
                            }
                        }
                        ClientMessage::Ping {} => Some(json!({ "type": "pong" }).to_string()),
                        ClientMessage::Pong {} => None,
                        ClientMessage::Complete { id } => {
                            operations.remove(&id);
                            slots.remove(&id);
                            None
                        }
                        ClientMessage::Subscribe { id, payload } => {
                            let Some(active) = &session else {
                                break Some((4401, "Unauthorized"));
                            };
                            if operations.contains_key(&id) {
                                break Some((4409, "Subscriber for this id already exists"));
                            }
                            // Boxed: starting runs the whole GraphQL preparation, whose
                            // state would otherwise sit in every idle socket's task.
                            match Box::pin(self.start(active, &closer, *payload, operations.len())).await {
                                Ok((operation, slot)) => {
                                    operations.insert(id.clone(), operation);
                                    slots.insert(id, slot);
                                    None
                                }
                                Err(refusal) => Some(error_message(&id, &refusal)),
                            }
                        }
                    }
                }
            };
            if let Some(text) = outgoing
                && send(
                    &mut sink,
                    Message::Text(Utf8Bytes::from(text)),
                    ws.ping_interval,
                )
                .await
                .is_err()
            {
                break None;
            }
        };
        if let Some((code, reason)) = close {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = send(
                &mut sink,
                Message::Close(Some(frame)),
                Duration::from_secs(1),
            )
            .await;
        }
        self.state
            .backends
            .metrics()
            .socket_closed(close.map(|(code, _)| code));
        tracing::debug!(close = ?close, "socket closed");
    }

    /// The session `connection_init` opens, or the close it deserves.
    fn authenticate(
        &self,
        payload: Option<&serde_json::Value>,
    ) -> Result<Session, (u16, &'static str)> {
        let from_payload = payload
            .and_then(|payload| {
                payload
                    .get("authorization")
                    .or_else(|| payload.get("Authorization"))
            })
            .and_then(serde_json::Value::as_str);
        let Some(authorization) = from_payload.or(self.header_token.as_deref()) else {
            return Err((
                4403,
                "Forbidden: connection_init needs { \"authorization\": \"Bearer <token>\" }",
            ));
        };
        let token = authorization
            .strip_prefix("Bearer ")
            .unwrap_or(authorization)
            .trim();
        let holder = match self.state.tokens.verify_holder(token) {
            Ok(holder) => holder,
            Err(error) => {
                tracing::info!(reason = %error, "socket token refused");
                return Err((4403, "Forbidden: the access token is not valid"));
            }
        };
        let Some(slot) = self
            .state
            .live
            .sockets_by_user
            .take(holder.user.clone(), self.state.ws.max_sockets_per_user)
        else {
            self.state.backends.metrics().rate_limited("sockets");
            return Err((4429, "too many open sockets for this user"));
        };
        // Watched from before the socket is acknowledged, so a revocation after that closes it.
        let revocation = holder
            .session
            .map(|session| self.state.live.hub.subscribe(Topic::Session(session)));
        Ok(Session {
            user: holder.user,
            until: holder.until,
            revocation,
            _user_slot: slot,
        })
    }

    /// Starts an operation: checked and charged as over HTTP, then run (a query or mutation
    /// answers once and completes; a subscription answers per event).
    async fn start(
        &self,
        session: &Session,
        closer: &SocketCloser,
        request: async_graphql::Request,
        running: usize,
    ) -> Result<(Operation, Taken<String>), async_graphql::Response> {
        let state = &*self.state;
        if running >= state.ws.max_subscriptions_per_socket {
            return Err(too_many("too many operations on this socket"));
        }
        let Some(slot) = state
            .live
            .subscriptions_by_user
            .take(session.user.clone(), state.ws.max_subscriptions_per_user)
        else {
            state.backends.metrics().rate_limited("subscriptions");
            return Err(too_many("too many subscriptions for this user"));
        };
        let prepared = operation::prepare(state, request);
        let root = prepared.root_fields();
        let cost = Charge {
            fields: root.total.max(1),
            auth: root.auth,
            cost: u32::try_from(prepared.cost()).unwrap_or(u32::MAX),
        };
        if let Err(limited) = charge(state, self.address, Some(&session.user), cost).await {
            return Err(super::rate_limited_response(limited));
        }
        let caller = Caller::User(session.user.clone());
        if !prepared.is_subscription() {
            // A query or mutation: run as over HTTP, one answer, within the same deadline.
            let executed = tokio::time::timeout(
                state.request_timeout,
                operation::execute(state, &self.request_id, &caller, prepared),
            )
            .await
            .unwrap_or_else(|_| {
                super::error_response(
                    "the operation did not finish in time and was cancelled",
                    Code::ServiceUnavailable,
                )
            });
            let answers = [Some(executed), None];
            return Ok((
                async_graphql::futures_util::stream::iter(answers).boxed(),
                slot,
            ));
        }
        let (request, file_urls) = prepared.into_request().map_err(|refusal| *refusal)?;
        let invocation = Invocation {
            caller,
            request_id: self.request_id.clone(),
            file_urls,
        };
        let request = request.data(closer.clone());
        let responses =
            graphql::execute_stream(&state.schema, &state.backends, request, invocation)
                .map(Some)
                .chain(async_graphql::futures_util::stream::once(async { None }));
        Ok((responses.boxed(), slot))
    }
}

/// `next` with one response.
fn next_message(id: &str, response: &async_graphql::Response) -> String {
    json!({ "type": "next", "id": id, "payload": response }).to_string()
}

/// `error` with a response's errors.
fn error_message(id: &str, response: &async_graphql::Response) -> String {
    json!({ "type": "error", "id": id, "payload": response.errors }).to_string()
}

fn too_many(message: &str) -> async_graphql::Response {
    super::error_response(message, Code::TooManyRequests)
}

/// Sends `message`, unless the client does not take it within `timeout`.
async fn send(
    sink: &mut SplitSink<WebSocket, Message>,
    message: Message,
    timeout: Duration,
) -> Result<(), ()> {
    match tokio::time::timeout(timeout, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(()),
    }
}

/// Completes once `stopping` turns true (or its sender is gone).
async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        let stop = *stopping.borrow_and_update();
        if stop || stopping.changed().await.is_err() {
            return;
        }
    }
}
