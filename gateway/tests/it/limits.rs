//! Bounded work whatever a client sends: slow or silent connections are closed, requests have
//! a deadline, responses a size cap, executions a cap with load shedding, and shutdown a drain
//! deadline.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::helpers::{TestSystem, error_code};

on_both_backends!(
    silent_and_trickling_connections_are_closed with ["--header-read-timeout", "300ms"],
    a_request_past_its_deadline_is_cancelled_with_a_clear_error with ["--request-timeout", "1ns"],
    an_over_large_response_is_refused_never_cut with ["--max-response-bytes", "2000"],
    requests_past_the_in_flight_cap_are_shed_at_once with ["--max-in-flight", "1", "--body-read-timeout", "2s"],
    shutdown_ends_within_its_drain_deadline_while_a_request_hangs with ["--shutdown-drain", "500ms"],
    refusals_of_a_client_over_its_limit_are_paced_and_others_are_not_held_up with ["--rate-limit-per-address", "1/s,1", "--rate-limit-delay", "400ms"],
);

/// Reads until the server closes the connection; how long that took. Fails after `limit`.
/// Waits for the interim `100 Continue` a request with `Expect: 100-continue` gets once its
/// handler starts reading the body.
async fn body_asked_for(stream: &mut TcpStream) {
    let mut interim = [0_u8; 25];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut interim))
        .await
        .expect("the gateway asks for the body")
        .unwrap();
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
}

async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0_u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was still open after {limit:?}"),
        }
    }
}

async fn silent_and_trickling_connections_are_closed(system: TestSystem) {
    // Sends nothing at all.
    let mut silent = TcpStream::connect(system.gateway).await.unwrap();
    closed_within(&mut silent, Duration::from_secs(5)).await;

    // One header byte at a time (slowloris): the deadline is for the whole head.
    let mut trickle = TcpStream::connect(system.gateway).await.unwrap();
    let head =
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let started = Instant::now();
    for byte in head {
        if trickle.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    closed_within(&mut trickle, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(4));

    // Honest requests keep working.
    let status = system
        .http
        .get(system.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
}

// Anything that calls a backend takes longer than a nanosecond.
async fn a_request_past_its_deadline_is_cancelled_with_a_clear_error(system: TestSystem) {
    let response = system
        .post_graphql(&json!({ "query": "mutation { signIn(input: {email: \"a@example.com\", password: \"p\"}) { accessToken } }" }))
        .await;
    assert_eq!(response.status().as_u16(), 504);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1ns"),
        "{body}"
    );
    // What runs without a backend call still answers.
    let typename = system.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(typename["data"]["__typename"], "Query");
}

async fn an_over_large_response_is_refused_never_cut(system: TestSystem) {
    let user = system.sign_up("Dana").await;
    for index in 0..30 {
        system
            .create_hangout(
                &user,
                &format!("Hangout number {index}"),
                "2026-12-24T12:00:00Z",
            )
            .await;
    }
    let body = system
        .graphql(
            Some(&user.access_token),
            "{ hangouts(first: 30) { nodes { id title date status createdAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["data"].is_null());
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("larger than 2000 bytes"),
        "{body}"
    );
    let small = system
        .graphql(
            Some(&user.access_token),
            "{ hangouts(first: 2) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert!(small["errors"].is_null(), "{small}");
}

async fn requests_past_the_in_flight_cap_are_shed_at_once(system: TestSystem) {
    // Holds the only permit: its body never finishes arriving.
    let mut holder = TcpStream::connect(system.gateway).await.unwrap();
    holder
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    // The permit is taken before the body is read: from the 100 Continue on, the holder has it
    // (until its body times out, 2 s).
    body_asked_for(&mut holder).await;
    holder.write_all(b"{\"query\":").await.unwrap();
    let shed = crate::helpers::eventually(Duration::from_secs(1), || async {
        let response = system
            .post_graphql(&json!({ "query": "{ __typename }" }))
            .await;
        response.status().as_u16() == 503
            && response
                .headers()
                .get("retry-after")
                .is_some_and(|value| value == "1")
    })
    .await;
    assert!(shed, "nothing was shed");
    let started = Instant::now();
    let response = system
        .post_graphql(&json!({ "query": "{ __typename }" }))
        .await;
    if response.status().as_u16() == 503 {
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE");
        assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 1);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "shed at once, not queued"
        );
    }
    // The holder's body times out (408) and frees the permit.
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), holder.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let after = system.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(after["data"]["__typename"], "Query");
}

async fn shutdown_ends_within_its_drain_deadline_while_a_request_hangs(mut system: TestSystem) {
    let mut half_sent = TcpStream::connect(system.gateway).await.unwrap();
    half_sent
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    // The request is running (a connection whose head was not read yet would just be closed,
    // with nothing to drain).
    body_asked_for(&mut half_sent).await;
    half_sent.write_all(b"{").await.unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), system.stop_gateway())
        .await
        .expect("the gateway stopped within its drain deadline");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "it drained first"
    );
    closed_within(&mut half_sent, Duration::from_secs(2)).await;
}

async fn refusals_of_a_client_over_its_limit_are_paced_and_others_are_not_held_up(
    system: TestSystem,
) {
    let as_client = |address: &'static str| {
        system
            .http
            .post(system.url("/graphql"))
            .header("x-real-ip", address)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
    };
    assert_eq!(
        as_client("203.0.113.1").await.unwrap().status().as_u16(),
        200
    );
    let started = Instant::now();
    let (refused, other) = tokio::join!(
        async {
            let response = as_client("203.0.113.1").await.unwrap();
            (response.status().as_u16(), started.elapsed())
        },
        async {
            let response = as_client("203.0.113.2").await.unwrap();
            (response.status().as_u16(), started.elapsed())
        }
    );
    assert_eq!(refused.0, 429);
    assert!(refused.1 >= Duration::from_millis(400), "{:?}", refused.1);
    assert_eq!(other.0, 200);
    // Sent together: the other client is answered while the refusal still waits.
    assert!(other.1 < refused.1, "another client waited {:?}", other.1);
}
