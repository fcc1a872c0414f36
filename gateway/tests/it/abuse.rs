//! What a hostile client can make the gateway do: every attack is refused before it costs
//! much, with the contract's error code, while other users' requests still succeed.

use serde_json::{Value, json};

use crate::helpers::{Session, TestSystem, error_code};

on_both_backends!(
    chains_of_three_or_more_lists_are_refused_before_they_run,
    the_estimate_follows_variables_and_the_limit_is_configurable with ["--max-cost", "50"],
    unbounded_lists_are_bounded,
    batched_and_aliased_sign_ins_are_charged_each with ["--max-batch", "10"],
    failed_sign_ins_for_one_email_are_limited_the_same_whether_it_exists_or_not,
    expensive_documents_are_charged_their_estimated_cost with ["--cost-limit-per-user", "100/s,2000"],
);

/// `depth` list fields chained through activities and hangouts, at the default page sizes.
fn chain(depth: usize) -> String {
    let mut inner = String::from("id");
    for level in (0..depth).rev() {
        inner = if level % 2 == 0 {
            format!("activities {{ nodes {{ {inner} }} }}")
        } else {
            format!("hangouts {{ nodes {{ {inner} }} }}")
        };
    }
    format!("{{ {inner} }}")
}

/// An honest user's page of hangouts, sent while the attack runs: it must succeed.
async fn honest_page(system: &TestSystem, session: &Session) {
    let body = system
        .graphql(
            Some(&session.access_token),
            "{ hangouts(first: 20) { totalCount nodes { id title owner { name } activities { name } \
             memories(first: 5) { nodes { id downloadUrl } } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["hangouts"]["totalCount"], 1);
}

async fn chains_of_three_or_more_lists_are_refused_before_they_run(system: TestSystem) {
    let attacker = system.sign_up("Mallory").await;
    let honest = system.sign_up("Alice").await;
    system
        .create_hangout(&honest, "Picnic", "2026-12-24T12:00:00Z")
        .await;
    for depth in [3, 4, 8] {
        let query = chain(depth);
        let (attack, ()) = tokio::join!(
            system.graphql(Some(&attacker.access_token), &query, json!({})),
            honest_page(&system, &honest),
        );
        assert_eq!(
            error_code(&attack),
            "COST_ESTIMATED_TOO_EXPENSIVE",
            "{attack}"
        );
        let cost = &attack["errors"][0]["extensions"]["cost"];
        assert!(
            cost["estimated"].as_u64() > cost["limit"].as_u64(),
            "{attack}"
        );
        assert_eq!(cost["limit"], 12_000);
        assert!(attack["data"].is_null(), "nothing ran: {attack}");
    }
    // Refused before anything ran: no backend call.
    let calls_before = system.backend_calls.get();
    let attack = system
        .graphql(Some(&attacker.access_token), &chain(3), json!({}))
        .await;
    assert_eq!(error_code(&attack), "COST_ESTIMATED_TOO_EXPENSIVE");
    assert_eq!(system.backend_calls.get(), calls_before);

    // Two lists deep at the largest page still runs.
    let allowed = system
        .graphql(
            Some(&attacker.access_token),
            "{ hangouts(first: 100) { nodes { activities { id } memories(first: 20) { nodes { \
             downloadUrl } } owner { name } } } }",
            json!({}),
        )
        .await;
    assert!(allowed["errors"].is_null(), "{allowed}");
}

async fn the_estimate_follows_variables_and_the_limit_is_configurable(system: TestSystem) {
    let user = system.sign_up("Bob").await;
    let query = "query($n: Int) { activities(first: $n) { nodes { id } } }";
    let small = system
        .graphql(Some(&user.access_token), query, json!({ "n": 10 }))
        .await;
    assert!(small["errors"].is_null(), "{small}");
    // The same document, cached by now, with a larger page.
    let large = system
        .graphql(Some(&user.access_token), query, json!({ "n": 100 }))
        .await;
    assert_eq!(
        error_code(&large),
        "COST_ESTIMATED_TOO_EXPENSIVE",
        "{large}"
    );
    assert_eq!(large["errors"][0]["extensions"]["cost"]["estimated"], 101);
    assert_eq!(large["errors"][0]["extensions"]["cost"]["limit"], 50);
    // A document without variables is refused again from its cached estimate.
    for _ in 0..2 {
        let refused = system
            .graphql(
                Some(&user.access_token),
                "{ activities(first: 60) { nodes { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&refused), "COST_ESTIMATED_TOO_EXPENSIVE");
    }
}

async fn unbounded_lists_are_bounded(system: TestSystem) {
    let user = system.sign_up("Carol").await;
    let ids: Vec<Value> = (0..101).map(|index| json!(format!("id{index}"))).collect();
    let body = system
        .graphql(
            Some(&user.access_token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": ids }),
        )
        .await;
    // 101 ids cost more than the page would let through only at a lower limit; the resolver
    // refuses them on its own.
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "ids");

    let activities: Vec<String> = {
        let mut ids = Vec::new();
        for index in 0..51 {
            let created = system
                .graphql(
                    Some(&user.access_token),
                    "mutation($input: CreateActivityInput!) { createActivity(input: $input) { activity { id } } }",
                    json!({ "input": { "name": format!("activity {index}") } }),
                )
                .await;
            ids.push(
                created["data"]["createActivity"]["activity"]["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{created}"))
                    .to_owned(),
            );
        }
        ids
    };
    let body = system
        .graphql(
            Some(&user.access_token),
            "mutation($input: CreateHangoutInput!) { createHangout(input: $input) { hangout { id } } }",
            json!({ "input": { "title": "Too busy", "date": "2026-12-24T12:00:00Z", "activityIds": activities } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "activityIds");
}

/// Posts `body` as a client at `address` (behind the trusted proxy the tests run as); returns
/// the status, the `Retry-After` header and the JSON body.
async fn post_from(
    system: &TestSystem,
    address: &str,
    body: Value,
) -> (u16, Option<String>, Value) {
    let response = system
        .http
        .post(system.url("/graphql"))
        .header("x-real-ip", address)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

const SIGN_IN: &str = "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }";

async fn batched_and_aliased_sign_ins_are_charged_each(system: TestSystem) {
    let honest = system.sign_up("Alice").await;
    let aliases: Vec<String> = (0..20)
        .map(|index| format!("a{index}: signIn(input: $input) {{ accessToken }}"))
        .collect();
    let operation = json!({
        "query": format!("mutation($input: SignInInput!) {{ {} }}", aliases.join(" ")),
        "variables": { "input": { "email": "victim@example.com", "password": "guess" } },
    });
    let batch = Value::Array(vec![operation; 10]);
    let sign_ins_before = system.calls_of("AuthService/SignIn");
    let (status, retry_after, body) = post_from(&system, "203.0.113.7", batch).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some());
    assert_eq!(error_code(&body), "TOO_MANY_REQUESTS");
    assert!(body["errors"][0]["extensions"]["retryAfter"].as_u64() >= Some(1));
    assert_eq!(
        system.calls_of("AuthService/SignIn"),
        sign_ins_before,
        "not one password was verified"
    );
    // One operation of 8 aliased sign-ins fits the address's budget once (10), not twice.
    let eight: Vec<String> = (0..8)
        .map(|index| format!("a{index}: signIn(input: $input) {{ accessToken }}"))
        .collect();
    let single = json!({
        "query": format!("mutation($input: SignInInput!) {{ {} }}", eight.join(" ")),
        "variables": { "input": { "email": "other@example.com", "password": "guess" } },
    });
    let (status, _, _) = post_from(&system, "203.0.113.8", single.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(system.calls_of("AuthService/SignIn"), sign_ins_before + 8);
    let (status, _, body) = post_from(&system, "203.0.113.8", single).await;
    assert_eq!(status, 429, "{body}");
    // Meanwhile another user, elsewhere, is served.
    let me = system
        .graphql(Some(&honest.access_token), "{ me { name } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["name"], "Alice", "{me}");
}

async fn failed_sign_ins_for_one_email_are_limited_the_same_whether_it_exists_or_not(
    system: TestSystem,
) {
    let body = system
        .graphql(
            None,
            "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }",
            json!({ "input": { "name": "Victim", "email": "victim@example.com", "password": "correct horse battery" } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    for email in ["victim@example.com", "nobody@example.com"] {
        // Ten wrong guesses, from ten addresses: each is told UNAUTHENTICATED.
        for guess in 0..10 {
            let (_, _, body) = post_from(
                &system,
                &format!("198.51.100.{guess}"),
                json!({ "query": SIGN_IN, "variables": { "input": { "email": email, "password": format!("guess {guess}") } } }),
            )
            .await;
            assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
        }
        // The eleventh, even with the right password, waits out the window.
        let (_, _, body) = post_from(
            &system,
            "198.51.100.200",
            json!({ "query": SIGN_IN, "variables": { "input": { "email": email, "password": "correct horse battery" } } }),
        )
        .await;
        assert_eq!(error_code(&body), "TOO_MANY_REQUESTS", "{email}: {body}");
        let retry_after = body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap();
        assert!((800..=900).contains(&retry_after), "{retry_after}");
        assert_eq!(
            body["errors"][0]["message"],
            "too many failed sign-ins for this email; try again later"
        );
    }
    // Another account is not affected.
    let other = system.sign_up("Bystander").await;
    assert!(!other.access_token.is_empty());
}

async fn expensive_documents_are_charged_their_estimated_cost(system: TestSystem) {
    let attacker = system.sign_up("Mallory").await;
    let honest = system.sign_up("Alice").await;
    // 801 each: two fit the burst, the third does not.
    let expensive = "{ hangouts(first: 100) { nodes { id owner { name } memories(first: 5) { nodes { id } } } } }";
    for _ in 0..2 {
        let body = system
            .graphql(Some(&attacker.access_token), expensive, json!({}))
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let response = system
        .http
        .post(system.url("/graphql"))
        .bearer_auth(&attacker.access_token)
        .json(&json!({ "query": expensive }))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(response.status().as_u16(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "TOO_MANY_REQUESTS");
    // Cheap requests of another user are not affected.
    let me = system
        .graphql(Some(&honest.access_token), "{ me { name } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["name"], "Alice");
}
