//! Rate limits shared by several gateway instances through a real Redis, and each instance's
//! fallback to its own limits when Redis is unreachable.

use serde_json::{Value, json};

use crate::helpers::{TestSystem, error_code, redis_url};

/// A client address no other test run uses, so runs sharing one Redis do not meet.
fn fresh_address() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    format!("2001:db8:{:x}{:02x}::{:x}", bytes[0], bytes[1], bytes[2])
}

async fn post(url: &str, address: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("x-real-ip", address)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn two_gateways_on_one_redis_enforce_one_budget() {
    let Some(redis) = redis_url().await else {
        return;
    };
    // Refusals answered at once: a paced one would let the bucket refill meanwhile.
    let args = [
        "--redis-url",
        redis.as_str(),
        "--rate-limit-per-address",
        "1/s,4",
        "--rate-limit-delay",
        "0s",
    ];
    let system = TestSystem::spawn_with(&args).await;
    let second = system.spawn_gateway(&args).await;
    let address = fresh_address();
    let typename = json!({ "query": "{ __typename }" });
    let urls = [system.url("/graphql"), second.url("/graphql")];
    for round in 0..4 {
        let (status, body) = post(&urls[round % 2], &address, typename.clone()).await;
        assert_eq!(status, 200, "round {round}: {body}");
    }
    // Four tokens spent across both: the fifth is refused by either.
    for url in &urls {
        let (status, body) = post(url, &address, typename.clone()).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(error_code(&body), "TOO_MANY_REQUESTS");
    }
    // Another client is unaffected.
    let (status, _) = post(&urls[1], &fresh_address(), typename).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn failed_sign_ins_for_an_email_count_across_gateways() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let args = ["--redis-url", redis.as_str(), "--sign-in-max-failures", "3"];
    let system = TestSystem::spawn_with(&args).await;
    let second = system.spawn_gateway(&args).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let sign_in = json!({
        "query": "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }",
        "variables": { "input": { "email": email, "password": "wrong" } },
    });
    let urls = [system.url("/graphql"), second.url("/graphql")];
    for round in 0..3 {
        let (_, body) = post(&urls[round % 2], &fresh_address(), sign_in.clone()).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    for url in &urls {
        let (_, body) = post(url, &fresh_address(), sign_in.clone()).await;
        assert_eq!(error_code(&body), "TOO_MANY_REQUESTS", "{body}");
    }
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_the_local_limits_and_is_counted() {
    // Nothing listens on port 1.
    let system = TestSystem::spawn_with(&[
        "--redis-url",
        "redis://127.0.0.1:1",
        "--rate-limit-per-address",
        "1/s,3",
    ])
    .await;
    let address = fresh_address();
    let typename = json!({ "query": "{ __typename }" });
    for _ in 0..3 {
        let (status, body) = post(&system.url("/graphql"), &address, typename.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = post(&system.url("/graphql"), &address, typename).await;
    assert_eq!(status, 429, "the local limiter decides");
    let fallbacks = fallbacks(&system).await;
    assert!(fallbacks >= 4.0, "{fallbacks}");
}

/// The gateway's count of decisions taken without Redis.
async fn fallbacks(system: &TestSystem) -> f64 {
    let metrics = reqwest::get(format!("http://{}/metrics", system.metrics.gateway))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|line| line.starts_with("gateway_shared_limit_fallbacks_total"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no fallback counter in {metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_all_decide_in_redis_once_connected() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let system = TestSystem::spawn_with(&["--redis-url", redis.as_str()]).await;
    let typename = json!({ "query": "{ __typename }" });
    // The first request connects.
    let (status, _) = post(&system.url("/graphql"), &fresh_address(), typename.clone()).await;
    assert_eq!(status, 200);
    let before = fallbacks(&system).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (url, body) = (system.url("/graphql"), typename.clone());
        requests.spawn(async move { post(&url, &fresh_address(), body).await.0 });
    }
    for status in requests.join_all().await {
        assert_eq!(status, 200);
    }
    assert!(
        (fallbacks(&system).await - before).abs() < f64::EPSILON,
        "a request decided without Redis while it answered"
    );
}
