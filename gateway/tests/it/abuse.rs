//! What a hostile client can make the gateway do: every attack is refused before it costs
//! much, with the contract's error code, while other users' requests still succeed.

use serde_json::{Value, json};

use crate::helpers::{Session, TestSystem, error_code};

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

#[tokio::test]
async fn chains_of_three_or_more_lists_are_refused_before_they_run() {
    let system = TestSystem::spawn().await;
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

#[tokio::test]
async fn the_estimate_follows_variables_and_the_limit_is_configurable() {
    let system = TestSystem::spawn_with(&["--max-cost", "50"]).await;
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

#[tokio::test]
async fn unbounded_lists_are_bounded() {
    let system = TestSystem::spawn().await;
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
