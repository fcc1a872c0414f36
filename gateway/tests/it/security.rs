//! The checks of the graphql-cop security auditor, and the GraphQL-over-HTTP rules the
//! auditor relies on, each asserting that the gateway resists.

use serde_json::{Value, json};

use crate::helpers::TestSystem;

const INTROSPECTION: &str = "query { __schema { queryType { name } types { name } } }";

async fn post(system: &TestSystem, body: Value) -> (u16, Value) {
    let response = system
        .http
        .post(system.url("/graphql"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn introspection_is_off_outside_dev_mode() {
    let system = TestSystem::spawn().await;
    let (_, body) = post(&system, json!({ "query": INTROSPECTION })).await;
    // Nothing of the schema is revealed: the field resolves to nothing.
    assert!(body["data"]["__schema"].is_null(), "{body}");
    assert!(!body.to_string().contains("HangoutConnection"), "{body}");
}

#[tokio::test]
async fn field_suggestions_are_off_outside_dev_mode() {
    let system = TestSystem::spawn().await;
    let (_, body) = post(&system, json!({ "query": "{ mee { id } }" })).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    assert!(!message.contains("Did you mean"), "{message}");
    assert_eq!(first_code(&body), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn get_requests_without_preflight_are_refused_as_csrf() {
    let system = TestSystem::spawn().await;
    let response = system
        .http
        .get(system.url("/graphql?query=%7B__typename%7D"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["data"].is_null());
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cross-site request forgery")
    );
    // With the preflight header a query runs, and a mutation is refused with 405.
    let query = system
        .http
        .get(system.url("/graphql?query=%7B__typename%7D"))
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(query.status().as_u16(), 200);
    let body: Value = query.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query");
    let mutation = system
        .http
        .get(system.url(
            "/graphql?query=mutation%7BsignOut(input%3A%7BrefreshToken%3A%22x%22%7D)%7Bsuccess%7D%7D",
        ))
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(mutation.status().as_u16(), 405);
    assert!(mutation.headers().get("allow").is_some());
}

#[tokio::test]
async fn url_encoded_and_plain_text_posts_are_refused_as_csrf() {
    let system = TestSystem::spawn().await;
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let response = system
            .http
            .post(system.url("/graphql"))
            .header("content-type", content_type)
            .body(r#"{"query":"mutation { signOut(input: {refreshToken: \"x\"}) { success } }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{content_type}");
    }
    let missing = system
        .http
        .post(system.url("/graphql"))
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 415);
}

#[tokio::test]
async fn alias_overloading_is_refused() {
    let system = TestSystem::spawn().await;
    let aliases: Vec<String> = (0..101).map(|i| format!("a{i}: __typename")).collect();
    let (_, body) = post(
        &system,
        json!({ "query": format!("{{ {} }}", aliases.join(" ")) }),
    )
    .await;
    assert_eq!(first_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn array_batching_is_off_unless_configured() {
    let system = TestSystem::spawn().await;
    let batch: Vec<Value> = (0..2)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, body) = post(&system, Value::Array(batch)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("batching is off"),
        "{body}"
    );
}

#[tokio::test]
async fn graphiql_is_not_served_in_production_unless_enabled() {
    let system = TestSystem::spawn().await;
    for path in ["/graphiql", "/graphiql/assets/graphiql.js"] {
        let response = system.http.get(system.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    // A browser opening the endpoint gets no IDE either.
    let response = system
        .http
        .get(system.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let page = response.text().await.unwrap();
    assert!(!page.contains("graphiql"), "{page}");
}

#[tokio::test]
async fn batch_query_overloading_is_refused() {
    let system = TestSystem::spawn_with(&["--max-batch", "10"]).await;
    let batch: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, body) = post(&system, Value::Array(batch)).await;
    assert_eq!(status, 400, "{body}");
    let small: Vec<Value> = (0..2)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, body) = post(&system, Value::Array(small)).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn field_duplication_is_refused() {
    let system = TestSystem::spawn().await;
    let (_, body) = post(
        &system,
        json!({ "query": format!("query cop {{ {} }}", "__typename\n".repeat(500)) }),
    )
    .await;
    assert_eq!(first_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn directive_overloading_is_refused() {
    let system = TestSystem::spawn().await;
    let directives = "@skip(if: false) ".repeat(50);
    let (_, body) = post(
        &system,
        json!({ "query": format!("{{ __typename {directives} }}") }),
    )
    .await;
    assert!(
        !body["errors"].as_array().is_none_or(Vec::is_empty),
        "{body}"
    );
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn circular_introspection_is_refused() {
    let system = TestSystem::spawn().await;
    let mut query = String::from("name");
    for _ in 0..15 {
        query = format!("fields {{ type {{ {query} }} }}");
    }
    let (_, body) = post(
        &system,
        json!({ "query": format!("{{ __schema {{ types {{ {query} }} }} }}") }),
    )
    .await;
    assert!(
        !body["errors"].as_array().is_none_or(Vec::is_empty),
        "{body}"
    );
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn responses_carry_no_tracing_or_debug_data() {
    let system = TestSystem::spawn().await;
    let (_, body) = post(&system, json!({ "query": "{ __typename }" })).await;
    assert!(body.get("extensions").is_none(), "{body}");
}

#[tokio::test]
async fn malformed_requests_leak_no_internals() {
    let system = TestSystem::spawn().await;
    let cases = [
        r#"{"query": "{ __typename "#.to_owned(),
        r#"{"query": 42}"#.to_owned(),
        "not json at all".to_owned(),
        r#"{"query": "query($x: Int!) { hangouts(first: $x) { totalCount } }", "variables": {"x": "nope"}}"#
            .to_owned(),
    ];
    for body in cases {
        let response = system
            .http
            .post(system.url("/graphql"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let text = response.text().await.unwrap();
        for leak in [
            "panicked",
            "src/",
            ".rs:",
            "backtrace",
            "stack",
            "tonic::",
            "sqlx",
        ] {
            assert!(!text.contains(leak), "{body} leaked {leak:?}: {text}");
        }
    }
}

#[tokio::test]
async fn request_errors_follow_the_graphql_response_media_type() {
    let system = TestSystem::spawn().await;
    let response = system
        .http
        .post(system.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(r#"{"query": "{ __typename "}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/graphql-response+json")
    );
    let body: Value = response.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(first_code(&body), "GRAPHQL_PARSE_FAILED");

    let legacy = system
        .http
        .post(system.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(r#"{"query": "{ __typename "}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status().as_u16(), 200);
    assert!(
        legacy.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn clients_over_their_rate_limit_get_too_many_requests_with_retry_after() {
    let system = TestSystem::spawn_with(&["--rate-limit-per-address", "1/s,3"]).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let response = system
            .http
            .post(system.url("/graphql"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            let retry_after = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .to_owned();
            let body: Value = response.json().await.unwrap();
            limited = Some((retry_after, body));
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    let (retry_after, body) = limited.expect("the fourth request is limited");
    assert!(retry_after.parse::<u64>().unwrap() >= 1);
    assert_eq!(first_code(&body), "TOO_MANY_REQUESTS");

    // Per user: each signed-in user has a budget of their own.
    let system = TestSystem::spawn_with(&["--rate-limit-per-user", "1/s,2"]).await;
    let ada = system.sign_up("Ada").await;
    let bob = system.sign_up("Bob").await;
    let me = |session: &crate::helpers::Session| {
        let token = session.access_token.clone();
        let system = &system;
        async move {
            system
                .http
                .post(system.url("/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": "{ me { id } }" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(&ada).await, 200);
    assert_eq!(me(&ada).await, 200);
    assert_eq!(me(&ada).await, 429);
    assert_eq!(me(&bob).await, 200);
}

#[tokio::test]
async fn automatic_persisted_queries_save_the_document() {
    let system = TestSystem::spawn().await;
    let query = "{ __typename }";
    let hash = {
        use sha2::Digest as _;
        sha2::Sha256::digest(query.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let (_, unknown) = post(&system, json!({ "extensions": extensions })).await;
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");
    let (_, registered) = post(&system, json!({ "query": query, "extensions": extensions })).await;
    assert_eq!(registered["data"]["__typename"], "Query");
    let (_, by_hash) = post(&system, json!({ "extensions": extensions })).await;
    assert_eq!(by_hash["data"]["__typename"], "Query", "{by_hash}");
}

#[tokio::test]
async fn trusted_documents_mode_runs_only_the_manifest() {
    let trusted = "query Typename { __typename }";
    let hash = {
        use sha2::Digest as _;
        sha2::Sha256::digest(trusted.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("trusted-documents.json");
    std::fs::write(&manifest, json!({ hash.clone(): trusted }).to_string()).unwrap();
    let manifest = manifest.display().to_string();
    let system = TestSystem::spawn_with(&["--trusted-documents", &manifest]).await;
    let (_, allowed) = post(&system, json!({ "query": trusted })).await;
    assert_eq!(allowed["data"]["__typename"], "Query", "{allowed}");
    let (_, by_hash) = post(
        &system,
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } }),
    )
    .await;
    assert_eq!(by_hash["data"]["__typename"], "Query", "{by_hash}");
    let (_, refused) = post(&system, json!({ "query": "{ me { id } }" })).await;
    assert_eq!(first_code(&refused), "BAD_USER_INPUT");
    assert!(refused["data"].is_null());
}

#[tokio::test]
async fn oversized_bodies_get_a_clear_graphql_error() {
    let system = TestSystem::spawn_with(&["--max-body-bytes", "1024"]).await;
    let padding = "x".repeat(2048);
    let response = system
        .http
        .post(system.url("/graphql"))
        .json(&json!({ "query": "{ __typename }", "variables": { "padding": padding } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(first_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1024 bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn cors_allows_exactly_the_configured_origins_without_credentials() {
    let system = TestSystem::spawn_with(&[
        "--cors-origins",
        "https://app.example.com,http://localhost:5173",
    ])
    .await;
    let preflight = |origin: &'static str| {
        system
            .http
            .request(reqwest::Method::OPTIONS, system.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert_eq!(headers["access-control-max-age"], "7200");
    assert!(headers.get("access-control-allow-credentials").is_none());

    for refused in ["https://evil.example.com", "http://localhost:3000", "null"] {
        let response = preflight(refused).await.unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{refused} was allowed"
        );
    }

    // The request itself carries the header too, and the CSRF rule still holds.
    let response = system
        .http
        .post(system.url("/graphql"))
        .header("origin", "http://localhost:5173")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let simple = system
        .http
        .post(system.url("/graphql"))
        .header("origin", "https://app.example.com")
        .header("content-type", "text/plain")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status().as_u16(), 400);
}

#[tokio::test]
async fn cors_in_dev_mode_allows_local_development_origins() {
    let system = TestSystem::spawn_with(&["--dev-mode"]).await;
    let response = system
        .http
        .request(reqwest::Method::OPTIONS, system.url("/graphql"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
}

#[tokio::test]
async fn parse_errors_never_echo_the_document_and_huge_documents_are_refused_unparsed() {
    let system = TestSystem::spawn().await;
    // A broken document just under the size limit: the answer names where, not what.
    let broken = format!("{{ me {{ id }} }} ] {}", "x".repeat(90 * 1024));
    let response = system.post_graphql(&json!({ "query": broken })).await;
    let text = response.text().await.unwrap();
    assert!(text.len() < 1_000, "{} bytes", text.len());
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(first_code(&body), "GRAPHQL_PARSE_FAILED", "{body}");
    assert!(!text.contains("xxxx"), "{text}");
    // Over it: refused before parsing.
    let huge = format!("{{ me {{ id }} }} ] {}", "x".repeat(900 * 1024));
    let started = std::time::Instant::now();
    let response = system.post_graphql(&json!({ "query": huge })).await;
    let text = response.text().await.unwrap();
    assert!(text.len() < 1_000, "{} bytes", text.len());
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(first_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // Thousands of unknown fields give a bounded list of errors.
    let unknown: Vec<String> = (0..2_000).map(|index| format!("f{index}")).collect();
    let (_, body) = post(
        &system,
        json!({ "query": format!("{{ {} }}", unknown.join(" ")) }),
    )
    .await;
    assert!(body["errors"].as_array().unwrap().len() <= 20, "{body}");
}
