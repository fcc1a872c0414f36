//! Subscriptions end to end: a real graphql-transport-ws client over a real WebSocket, events
//! from hangout-core's outbox through the gateway's hub.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};

use crate::{
    helpers::{Session, TestSystem, eventually},
    metrics::scrape,
    sharing::{accept, create_invitation, link},
};

on_both_backends!(members_see_each_others_changes_and_a_leaver_is_removed_then_completed);

/// What a socket received.
#[derive(Debug)]
enum Received {
    Message(Value),
    Closed(u16, String),
}

/// A graphql-transport-ws client.
pub(crate) struct Client {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        Self::connect_receiving(addr, None).await
    }

    /// Connected over a TCP socket whose receive buffer is `receive_buffer` bytes, if given
    /// (so that a client that stops reading fills it soon).
    async fn connect_receiving(addr: std::net::SocketAddr, receive_buffer: Option<u32>) -> Self {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(bytes) = receive_buffer {
            tcp.set_recv_buffer_size(bytes).unwrap();
        }
        let stream = tcp.connect(addr).await.unwrap();
        let (socket, response) = tokio_tungstenite::client_async(
            request,
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Self { socket }
    }

    /// Connected and acknowledged as `who`.
    pub(crate) async fn signed_in(addr: std::net::SocketAddr, who: &Session) -> Self {
        Self::connect(addr).await.init(who).await
    }

    /// Sends `connection_init` with `who`'s token and waits for the acknowledgement.
    async fn init(mut self, who: &Session) -> Self {
        self.send(json!({
            "type": "connection_init",
            "payload": { "authorization": format!("Bearer {}", who.access_token) },
        }))
        .await;
        assert_eq!(self.message().await["type"], "connection_ack");
        self
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    pub(crate) async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "type": "subscribe",
            "id": id,
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    /// A ping answered: the socket has handled everything sent before it, and started every
    /// subscription (the gateway polls new operations before it reads the next message, and
    /// a subscription is registered with the hub on its first poll).
    pub(crate) async fn sync(&mut self) {
        self.send(json!({ "type": "ping" })).await;
        assert_eq!(self.message().await, json!({ "type": "pong" }));
    }

    /// As [`Client::sync`], for a socket whose subscriptions may still hear events of the
    /// test's set-up (they travel through hangout-core's event stream, so they can reach the
    /// gateway after the subscription started): their messages before the pong are skipped.
    pub(crate) async fn sync_past_events(&mut self) {
        self.send(json!({ "type": "ping" })).await;
        loop {
            let message = self.message().await;
            if message == json!({ "type": "pong" }) {
                return;
            }
            assert_eq!(message["type"], "next", "{message}");
        }
    }

    async fn receive(&mut self) -> Received {
        // One deadline for the message, not one per frame: the server's pings would otherwise
        // keep a test waiting for a message that never comes until the token expires.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("a message within 20 s");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Received::Message(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |frame| {
                        (u16::from(frame.code), frame.reason.to_string())
                    });
                    return Received::Closed(code, reason);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("socket failed: {error}"),
                None => return Received::Closed(1006, String::new()),
            }
        }
    }

    pub(crate) async fn message(&mut self) -> Value {
        match self.receive().await {
            Received::Message(message) => message,
            closed @ Received::Closed(..) => panic!("expected a message, got {closed:?}"),
        }
    }

    async fn closed(&mut self) -> (u16, String) {
        match self.receive().await {
            Received::Closed(code, reason) => (code, reason),
            Received::Message(message) => panic!("expected a close, got {message}"),
        }
    }
}

const HANGOUT_EVENTS: &str = "subscription($id: ID!) {
    hangoutEvents(hangoutId: $id) {
        __typename
        ... on HangoutUpdated { hangout { id title } at }
        ... on MemberUpdated { hangoutId member { rsvp role user { name email } } }
        ... on MemberLeft { hangoutId userId }
        ... on HangoutRemoved { hangoutId reason }
    }
}";

const VIEWER_EVENTS: &str = "subscription {
    viewerEvents {
        __typename
        ... on InvitationReceived { invitation { id role invitedBy { name email } } }
        ... on HangoutAdded { hangout { id title viewerRole } }
        ... on HangoutRemoved { hangoutId reason }
    }
}";

pub(crate) fn event(message: &Value, id: &str) -> Value {
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], id, "{message}");
    message["payload"]["data"]
        .as_object()
        .and_then(|data| data.values().next())
        .cloned()
        .unwrap_or_else(|| panic!("no data in {message}"))
}

async fn mutate(system: &TestSystem, who: &Session, query: &str, input: Value) {
    let body = system
        .graphql(Some(&who.access_token), query, json!({ "input": input }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

async fn members_see_each_others_changes_and_a_leaver_is_removed_then_completed(
    system: TestSystem,
) {
    let owner_email = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    let owner = system.sign_up_with_email("Ada", &owner_email).await;
    let guest_email = format!("bea-{}@example.com", uuid::Uuid::new_v4().simple());
    let guest = system.sign_up_with_email("Bea", &guest_email).await;
    let outsider = system.sign_up("Eve").await;
    let picnic = system
        .create_hangout(&owner, "Picnic", "2026-08-01T10:00:00Z")
        .await;

    let mut viewer = Client::signed_in(system.gateway, &guest).await;
    viewer.subscribe("v", VIEWER_EVENTS, json!({})).await;
    viewer.sync().await;
    // Invited by email, then joined by link: both reach the guest's viewer events.
    create_invitation(
        &system,
        &owner,
        json!({ "hangoutId": picnic, "role": "GUEST", "email": guest_email }),
    )
    .await;
    let received = event(&viewer.message().await, "v");
    assert_eq!(received["__typename"], "InvitationReceived", "{received}");
    assert_eq!(received["invitation"]["invitedBy"]["name"], "Ada");
    assert!(
        received["invitation"]["invitedBy"]["email"]
            .as_str()
            .unwrap()
            .contains("***"),
        "another member's email is masked: {received}"
    );
    let code = link(&system, &owner, &picnic, "GUEST").await;
    accept(&system, &guest, json!({ "code": code })).await;
    let added = event(&viewer.message().await, "v");
    assert_eq!(added["__typename"], "HangoutAdded", "{added}");
    assert_eq!(added["hangout"]["id"], picnic);
    assert_eq!(added["hangout"]["viewerRole"], "GUEST");

    let mut member = Client::signed_in(system.gateway, &guest).await;
    member
        .subscribe("h", HANGOUT_EVENTS, json!({ "id": picnic }))
        .await;
    member.sync().await;
    mutate(
        &system,
        &owner,
        "mutation($input: UpdateHangoutInput!) { updateHangout(input: $input) { hangout { id } } }",
        json!({ "id": picnic, "title": "Picnic in the park" }),
    )
    .await;
    let updated = event(&member.message().await, "h");
    assert_eq!(updated["__typename"], "HangoutUpdated", "{updated}");
    assert_eq!(updated["hangout"]["title"], "Picnic in the park");

    mutate(
        &system,
        &owner,
        "mutation($input: SetRsvpInput!) { setRsvp(input: $input) { member { rsvp } } }",
        json!({ "hangoutId": picnic, "status": "MAYBE" }),
    )
    .await;
    let answered = event(&member.message().await, "h");
    assert_eq!(answered["__typename"], "MemberUpdated", "{answered}");
    assert_eq!(answered["member"]["rsvp"], "MAYBE");
    assert_eq!(answered["member"]["role"], "OWNER");
    assert!(
        answered["member"]["user"]["email"]
            .as_str()
            .unwrap()
            .contains("***"),
        "{answered}"
    );

    // An outsider cannot subscribe to it: NOT_FOUND, and nothing more for that id.
    let mut stranger = Client::signed_in(system.gateway, &outsider).await;
    stranger
        .subscribe("x", HANGOUT_EVENTS, json!({ "id": picnic }))
        .await;
    let refused = stranger.message().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "x");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "NOT_FOUND");

    // The guest leaves: HangoutRemoved, then the subscription completes; the viewer events
    // say so too.
    mutate(
        &system,
        &guest,
        "mutation($input: LeaveHangoutInput!) { leaveHangout(input: $input) { hangoutId } }",
        json!({ "hangoutId": picnic }),
    )
    .await;
    let removed = event(&member.message().await, "h");
    assert_eq!(removed["__typename"], "HangoutRemoved", "{removed}");
    assert_eq!(removed["reason"], "LEFT");
    let completed = member.message().await;
    assert_eq!(completed, json!({ "type": "complete", "id": "h" }));
    let gone = event(&viewer.message().await, "v");
    assert_eq!(gone["__typename"], "HangoutRemoved", "{gone}");
    assert_eq!(gone["reason"], "LEFT");

    // Nothing about the hangout reaches the guest after they left.
    mutate(
        &system,
        &owner,
        "mutation($input: UpdateHangoutInput!) { updateHangout(input: $input) { hangout { id } } }",
        json!({ "id": picnic, "title": "Secret picnic" }),
    )
    .await;
    member.send(json!({ "type": "ping" })).await;
    assert_eq!(member.message().await, json!({ "type": "pong" }));
}

/// A subscriber that stops reading is cut off once its queue of events is full, and the
/// socket closes with 4429 and a reason, after the events it was owed, rather than
/// buffering without limit.
#[tokio::test]
async fn a_subscriber_that_stops_reading_is_closed_with_4429() {
    // Pings once a minute: a send waits at most one interval, and the client must be able to
    // read again before its socket is dropped without a close frame.
    let system = TestSystem::spawn_with(&[
        "--ws-ping-interval",
        "60s",
        "--rate-limit-per-user",
        "0",
        "--rate-limit-per-address",
        "0",
    ])
    .await;
    let ada = system.sign_up("Ada").await;
    let picnic = system
        .create_hangout(&ada, "Picnic", "2027-06-01T10:00:00Z")
        .await;
    let update =
        "mutation($input: UpdateHangoutInput!) { updateHangout(input: $input) { hangout { id } } }";
    // Large events (the description and its HTML, about 20 kB) fill the socket's buffers soon.
    mutate(
        &system,
        &ada,
        update,
        json!({ "id": picnic, "description": "a long day out ".repeat(600) }),
    )
    .await;
    let mut reader = Client::connect_receiving(system.gateway, Some(4096))
        .await
        .init(&ada)
        .await;
    reader
        .subscribe(
            "1",
            "subscription($id: ID!) { hangoutEvents(hangoutId: $id) {
                ... on HangoutUpdated { hangout { title description descriptionHtml } } } }",
            json!({ "id": picnic }),
        )
        .await;
    reader.sync().await;

    // The reader reads nothing now, while the hangout keeps changing.
    let cut_off = || async {
        scrape(&system.http, system.metrics.gateway)
            .await
            .sum("gateway_subscribers_cut_off_total", &[])
    };
    let mut changes = 0;
    while cut_off().await < 1.0 {
        assert!(changes < 1000, "the subscriber was never cut off");
        changes += 1;
        mutate(
            &system,
            &ada,
            update,
            json!({ "id": picnic, "title": format!("Picnic {changes}") }),
        )
        .await;
    }

    // Reading again: the events already queued, then the close. Payloads load the hangout as
    // it is when they are resolved, so late ones show a later title, never an earlier one.
    let mut delivered = 0;
    let mut last_title = 0;
    let (code, reason) = loop {
        match reader.receive().await {
            Received::Message(message) => {
                delivered += 1;
                let title = event(&message, "1")["hangout"]["title"].clone();
                let number: u32 = title
                    .as_str()
                    .and_then(|title| title.strip_prefix("Picnic "))
                    .and_then(|number| number.parse().ok())
                    .unwrap_or_else(|| panic!("{message}"));
                assert!(number >= last_title, "{number} after {last_title}");
                last_title = number;
            }
            Received::Closed(code, reason) => break (code, reason),
        }
    };
    assert_eq!(code, 4429, "{reason}");
    assert!(reason.contains("too slow"), "{reason}");
    assert!(delivered < changes, "{delivered} of {changes} delivered");
    assert!(
        eventually(Duration::from_secs(5), || async {
            scrape(&system.http, system.metrics.gateway)
                .await
                .sum("gateway_socket_closes_total", &["code=\"4429\""])
                >= 1.0
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_must_authenticate_in_time_and_close_on_expiry_and_shutdown() {
    let mut system = TestSystem::spawn_with(&["--ws-init-timeout", "300ms"]).await;
    let user = system.sign_up("Ada").await;

    let mut silent = Client::connect(system.gateway).await;
    assert_eq!(silent.closed().await.0, 4408);

    let mut early = Client::connect(system.gateway).await;
    early.subscribe("1", VIEWER_EVENTS, json!({})).await;
    assert_eq!(early.closed().await.0, 4401);

    let mut forged = Client::connect(system.gateway).await;
    forged
        .send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer nope" } }))
        .await;
    assert_eq!(forged.closed().await.0, 4403);

    // Subscriptions are costed like queries, before anything runs.
    let mut costly = Client::signed_in(system.gateway, &user).await;
    costly
        .subscribe(
            "c",
            "subscription($id: ID!) { hangoutEvents(hangoutId: $id) { ... on HangoutUpdated {
                hangout { activities { hangouts(first: 100) { nodes { activities {
                    hangouts(first: 100) { nodes { id } } } } } } } } } }",
            json!({ "id": "SGFuZ291dDp4" }),
        )
        .await;
    let refused = costly.message().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "COST_ESTIMATED_TOO_EXPENSIVE",
        "{refused}"
    );

    let mut twice = Client::signed_in(system.gateway, &user).await;
    twice
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(twice.closed().await.0, 4429);

    // A token about to expire (its `exp` a minute back, within the verifier's leeway): the
    // socket it opened closes with 4401 when it stops being accepted.
    let kid = crate::auth::signing_kid(&system).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": user.user_id, "iss": "hangout-planner", "aud": "hangout-planner-api",
        "iat": now - 120, "exp": now - 59,
    });
    let expiring = crate::auth::token(&system.signing_key, &kid, &claims);
    let mut expires = Client::signed_in(
        system.gateway,
        &Session {
            access_token: expiring,
            ..user.clone()
        },
    )
    .await;
    let (code, reason) = expires.closed().await;
    assert_eq!(code, 4401, "{reason}");

    let mut open = Client::signed_in(system.gateway, &user).await;
    open.subscribe("v", VIEWER_EVENTS, json!({})).await;
    open.sync().await;
    system.stop_gateway().await;
    assert_eq!(open.closed().await.0, 1001);
}

on_both_backends!(signing_out_closes_that_sessions_sockets_and_no_other);

async fn signing_out_closes_that_sessions_sockets_and_no_other(system: TestSystem) {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let laptop = system.sign_up_with_email("Ada", &email).await;
    let signed_in = system
        .graphql(
            None,
            "mutation($input: SignInInput!) { signIn(input: $input) {
                accessToken refreshToken user { id } } }",
            json!({ "input": { "email": email, "password": "correct horse battery" } }),
        )
        .await;
    let phone = crate::helpers::session(&signed_in["data"]["signIn"]);
    let mut on_laptop = Client::signed_in(system.gateway, &laptop).await;
    on_laptop.subscribe("v", VIEWER_EVENTS, json!({})).await;
    on_laptop.sync().await;
    let mut on_phone = Client::signed_in(system.gateway, &phone).await;
    on_phone.subscribe("v", VIEWER_EVENTS, json!({})).await;
    on_phone.sync().await;

    let sign_out = "mutation($input: SignOutInput!) { signOut(input: $input) { success } }";
    mutate(
        &system,
        &laptop,
        sign_out,
        json!({ "refreshToken": laptop.refresh_token }),
    )
    .await;
    let (code, reason) = on_laptop.closed().await;
    assert_eq!(code, 4401, "{reason}");
    // The phone's session lives on: its socket still answers and gets its events.
    on_phone.sync().await;
    let hangout = system
        .create_hangout(&phone, "Picnic", "2026-08-01T10:00:00Z")
        .await;
    let added = event(&on_phone.message().await, "v");
    assert_eq!(added["hangout"]["id"], hangout, "{added}");
    // Signing out again changes nothing and closes nothing more.
    mutate(
        &system,
        &laptop,
        sign_out,
        json!({ "refreshToken": laptop.refresh_token }),
    )
    .await;
    on_phone.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_reaches_a_subscriber_on_another_gateway_and_survives_a_hangout_core_restart() {
    let mut system = TestSystem::spawn().await;
    let owner = system.sign_up("Ada").await;
    let other = system.spawn_gateway(&[]).await;
    let mut viewer = Client::signed_in(other.addr, &owner).await;
    viewer.subscribe("v", VIEWER_EVENTS, json!({})).await;
    viewer.sync().await;
    let first = system
        .create_hangout(&owner, "Picnic", "2026-08-01T10:00:00Z")
        .await;
    let added = event(&viewer.message().await, "v");
    assert_eq!(added["hangout"]["id"], first, "{added}");

    // hangout-core restarts; the gateways resume after the last event they received.
    system.stop_hangout_core().await;
    system.restart_hangout_core().await;
    assert!(system.wait_ready(true).await);
    let second = system
        .create_hangout(&owner, "Brunch", "2026-08-02T10:00:00Z")
        .await;
    let added = event(&viewer.message().await, "v");
    assert_eq!(added["hangout"]["id"], second, "{added}");
}

/// Polls a gateway's `/readyz` until it is ready (its hub consumes events).
async fn ready(system: &TestSystem, url: &str) {
    let ready = crate::helpers::eventually(Duration::from_secs(20), || async {
        system
            .http
            .get(url)
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    })
    .await;
    assert!(ready, "{url} never became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_broker_every_gateway_delivers_and_an_outage_loses_nothing() {
    let Some(mut system) = TestSystem::spawn_with_broker().await else {
        return;
    };
    let owner = system.sign_up("Ada").await;
    let other = system.spawn_gateway(&[]).await;
    ready(&system, &other.url("/readyz")).await;
    let mut here = Client::signed_in(system.gateway, &owner).await;
    here.subscribe("v", VIEWER_EVENTS, json!({})).await;
    here.sync().await;
    let mut there = Client::signed_in(other.addr, &owner).await;
    there.subscribe("v", VIEWER_EVENTS, json!({})).await;
    there.sync().await;

    let first = system
        .create_hangout(&owner, "Picnic", "2026-08-01T10:00:00Z")
        .await;
    for client in [&mut here, &mut there] {
        let added = event(&client.message().await, "v");
        assert_eq!(added["hangout"]["id"], first, "{added}");
    }

    // An event committed while no relay ran (hangout-core stopped between its commit and the
    // relay): recorded in the outbox, delivered once hangout-core is back.
    system.stop_hangout_core().await;
    let committed = system.record_event_directly(&owner.user_id, &first).await;
    system.restart_hangout_core().await;
    for client in [&mut here, &mut there] {
        let added = event(&client.message().await, "v");
        assert_eq!(added["__typename"], "HangoutAdded", "{added}");
        assert_eq!(added["hangout"]["id"], first, "{added} (seq {committed})");
    }

    // The broker restarts: what is committed meanwhile is relayed once it is back, and the
    // gateways' queues (durable) kept their place.
    let restart = |action: &'static str| async move {
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new("rabbitmqctl")
                .arg(action)
                .status()
        })
        .await
        .unwrap()
        .expect("rabbitmqctl runs");
        assert!(status.success(), "rabbitmqctl {action}");
    };
    restart("stop_app").await;
    let second = system
        .create_hangout(&owner, "Brunch", "2026-08-02T10:00:00Z")
        .await;
    restart("start_app").await;
    for client in [&mut here, &mut there] {
        let added = event(&client.message().await, "v");
        assert_eq!(added["hangout"]["id"], second, "{added}");
    }
}
