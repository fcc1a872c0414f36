//! A backend going away shows as SERVICE_UNAVAILABLE and `/readyz` failing; the gateway
//! recovers by itself when the backend returns.

use std::time::Duration;

use serde_json::json;

use crate::{
    helpers::{TestSystem, error_code, eventually, graphiql_assets},
    memories::upload_memories,
    photos::fixtures,
};

on_both_backends!(a_page_without_file_core_keeps_its_memories_with_null_urls);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_outage_is_service_unavailable_and_the_gateway_recovers() {
    let mut system = TestSystem::spawn().await;
    let user = system.sign_up("Ada").await;
    let token = Some(user.access_token.as_str());
    let healthz = system
        .http
        .get(system.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(healthz.status().is_success());

    system.stop_hangout_core().await;
    assert!(system.wait_ready(false).await, "/readyz stayed ready");
    let down = system.graphql(token, "{ me { name } }", json!({})).await;
    assert_eq!(error_code(&down), "SERVICE_UNAVAILABLE", "{down}");
    let healthz = system
        .http
        .get(system.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(healthz.status().is_success(), "the process is still up");

    system.restart_hangout_core().await;
    assert!(system.wait_ready(true).await, "/readyz never recovered");
    let back = system.graphql(token, "{ me { name } }", json!({})).await;
    assert_eq!(back["data"]["me"]["name"], "Ada", "{back}");
}

/// hangout-core stops answering with a call in flight, then its connection goes away: that call
/// and the next ones answer SERVICE_UNAVAILABLE (not INTERNAL_SERVER_ERROR), and the gateway
/// recovers by itself once hangout-core is reachable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_cut_mid_call_is_service_unavailable() {
    let system = TestSystem::spawn_with_hangout_link().await;
    let link = system.hangout_link().expect("spawned with a link");
    let user = system.sign_up("Ada").await;
    let token = user.access_token.clone();
    let calls = || system.backend_calls_made();

    link.stall();
    let issued = calls();
    let in_flight = {
        let http = system.http.clone();
        let url = system.url("/graphql");
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "query": "{ me { name } }" }))
                .send()
                .await
                .expect("an answer")
                .json::<serde_json::Value>()
                .await
                .expect("JSON")
        })
    };
    assert!(
        eventually(Duration::from_secs(10), || async { calls() > issued }).await,
        "the call never left the gateway"
    );
    link.cut();
    let cut = in_flight.await.expect("the request task");
    assert_eq!(error_code(&cut), "SERVICE_UNAVAILABLE", "{cut}");
    let token = Some(user.access_token.as_str());
    let next = system.graphql(token, "{ me { name } }", json!({})).await;
    assert_eq!(error_code(&next), "SERVICE_UNAVAILABLE", "{next}");

    link.restore();
    let back = eventually(Duration::from_secs(20), || async {
        system.graphql(token, "{ me { name } }", json!({})).await["data"]["me"]["name"] == "Ada"
    })
    .await;
    assert!(back, "the gateway never reached hangout-core again");
}

/// MariaDB unreachable from hangout-core (the server itself keeps running for the other tests):
/// its health turns NOT_SERVING so `/readyz` says not ready, requests answer
/// SERVICE_UNAVAILABLE (failing fast while the probe finds the database down), and all of it
/// recovers by itself when the database is reachable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_service_unavailable_and_readyz_reports_it() {
    let Some(system) = TestSystem::spawn_with_database_link().await else {
        return;
    };
    let link = system.database_link().expect("spawned with a link");
    let user = system.sign_up("Ada").await;
    let token = Some(user.access_token.as_str());

    link.cut();
    let first = system.graphql(token, "{ me { name } }", json!({})).await;
    assert_eq!(error_code(&first), "SERVICE_UNAVAILABLE", "{first}");
    assert!(system.wait_ready(false).await, "/readyz stayed ready");
    let down = system.graphql(token, "{ me { name } }", json!({})).await;
    assert_eq!(error_code(&down), "SERVICE_UNAVAILABLE", "{down}");
    let signing_up = system
        .graphql(
            None,
            "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }",
            json!({ "input": { "email": "grace@example.com", "name": "Grace", "password": "correct horse" } }),
        )
        .await;
    assert_eq!(
        error_code(&signing_up),
        "SERVICE_UNAVAILABLE",
        "{signing_up}"
    );
    let text = down.to_string();
    assert!(
        !text.contains("MySQL") && !text.contains("3306") && !text.contains("pool"),
        "the cause leaked: {text}"
    );

    link.restore();
    assert!(system.wait_ready(true).await, "/readyz never recovered");
    let back = system.graphql(token, "{ me { name } }", json!({})).await;
    assert_eq!(back["data"]["me"]["name"], "Ada", "{back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_the_request_id() {
    let system = TestSystem::spawn().await;
    let response = system
        .http
        .get(system.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    let generated = system
        .http
        .get(system.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(generated.headers().contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_core_outage_undoes_the_half_made_upload_batch() {
    let mut system = TestSystem::spawn().await;
    let user = system.sign_up("Ada").await;
    let token = Some(user.access_token.as_str());
    let hangout_id = system
        .create_hangout(&user, "Beach", "2026-08-01T10:00:00Z")
        .await;
    system.stop_file_core().await;
    let created = system
        .graphql(
            token,
            "mutation($input: CreateMemoryUploadsInput!) { createMemoryUploads(input: $input) { uploads { url } } }",
            json!({ "input": { "hangoutId": hangout_id, "files": [{
                "fileName": "a.png", "contentType": "image/png", "size": 10,
                "md5": "1B2M2Y8AsgTpgAmY7PhCfg==",
            }] } }),
        )
        .await;
    assert_eq!(error_code(&created), "SERVICE_UNAVAILABLE", "{created}");
    let pending = system
        .graphql(
            token,
            "query($id: ID!) { hangout(id: $id) { memories(status: PENDING) { totalCount } } }",
            json!({ "id": hangout_id }),
        )
        .await;
    assert_eq!(
        pending["data"]["hangout"]["memories"]["totalCount"], 0,
        "{pending}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_is_served_without_a_cdn() {
    let system = TestSystem::spawn_with(&["--graphiql", "true"]).await;
    let page = system
        .http
        .get(system.url("/graphiql"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/graphiql/assets/graphiql.js"));
    assert!(
        !page.contains("https://"),
        "the page loads something remote"
    );
    let unknown = system
        .http
        .get(system.url("/graphiql/assets/..%2F..%2FCargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // The assets come from `npm ci` in gateway/graphiql (run by `cargo xtask` and CI); without
    // them only the page itself can be checked, and this says so.
    if !graphiql_assets().is_dir() {
        eprintln!("GraphiQL assets not installed: run `npm ci` in gateway/graphiql");
        return;
    }
    for asset in ["react.js", "react-dom.js", "graphiql.js", "graphiql.css"] {
        let response = system
            .http
            .get(system.url(&format!("/graphiql/assets/{asset}")))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{asset}: {}",
            response.status()
        );
    }
}

/// file-core down: a page of hangouts still lists its memories (they live in hangout-core),
/// with the fields that come from file-core null, and one SERVICE_UNAVAILABLE error for all
/// of them, not one per hangout and not a dropped list.
async fn a_page_without_file_core_keeps_its_memories_with_null_urls(mut system: TestSystem) {
    let owner = system.sign_up("Ada").await;
    let token = Some(owner.access_token.as_str());
    let beach = system
        .create_hangout(&owner, "Beach", "2026-08-01T10:00:00Z")
        .await;
    system
        .create_hangout(&owner, "Empty", "2026-08-02T10:00:00Z")
        .await;
    let photos: Vec<(String, Vec<u8>)> = ["a.jpg", "b.jpg"]
        .into_iter()
        .map(|name| {
            (
                name.to_owned(),
                fixtures::jpeg(&fixtures::marked(32, 24), 90),
            )
        })
        .collect();
    upload_memories(&system, &owner, &beach, &photos).await;
    let page = "{ hangouts(first: 10) { nodes { title memories(first: 10) { totalCount \
        nodes { fileName status downloadUrl width } } } } }";
    let one = "query($id: ID!) { hangout(id: $id) { title memories(first: 10) { \
        nodes { fileName downloadUrl imageUrl(size: THUMBNAIL) } } } }";
    let up = system.graphql(token, page, json!({})).await;
    assert!(up["errors"].is_null(), "{up}");

    system.stop_file_core().await;
    for (query, variables) in [(page, json!({})), (one, json!({ "id": beach }))] {
        let down = system.graphql(token, query, variables).await;
        let errors = down["errors"].as_array().expect("an error for the URLs");
        assert_eq!(errors.len(), 1, "{down}");
        assert_eq!(error_code(&down), "SERVICE_UNAVAILABLE", "{down}");
        let hangouts: Vec<&serde_json::Value> = match down["data"]["hangouts"]["nodes"].as_array() {
            Some(nodes) => nodes.iter().collect(),
            None => vec![&down["data"]["hangout"]],
        };
        let beach = hangouts
            .iter()
            .find(|hangout| hangout["title"] == "Beach")
            .expect("the hangout is there");
        let memories = beach["memories"]["nodes"].as_array().expect("its memories");
        assert_eq!(memories.len(), 2, "{down}");
        for memory in memories {
            assert!(memory["fileName"].is_string(), "{down}");
            assert!(memory["downloadUrl"].is_null(), "{down}");
        }
    }
}
