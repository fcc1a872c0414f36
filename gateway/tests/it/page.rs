//! The hangouts page: a fixed number of backend calls whatever its size, and the same answer
//! as the per-hangout loaders for every selection shape (aliases, differing arguments,
//! variables, `edges` beside `nodes`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestSystem},
    memories::{png, upload_memories},
};

const HANGOUTS_PAGE: &str = "{
    hangouts(first: 100) {
        totalCount
        nodes {
            id title
            owner { id name }
            activities { id name }
            memories(first: 5) { totalCount nodes { id fileName downloadUrl } }
        }
    }
}";

/// A user with `count` hangouts, each with the activity "Picnic" and two uploaded memories.
async fn user_with_hangouts(count: usize) -> (TestSystem, Session) {
    let system = TestSystem::spawn().await;
    let user = system.sign_up("Ada").await;
    let token = Some(user.access_token.as_str());
    let activity = system
        .graphql(
            token,
            "mutation { createActivity(input: { name: \"Picnic\" }) { activity { id } } }",
            json!({}),
        )
        .await["data"]["createActivity"]["activity"]["id"]
        .clone();
    for index in 0..count {
        let body = system
            .graphql(
                token,
                "mutation($input: CreateHangoutInput!) { createHangout(input: $input) { hangout { id } } }",
                json!({ "input": { "title": format!("Hangout {index}"), "date": "2026-06-01T12:00:00Z", "activityIds": [activity] } }),
            )
            .await;
        let hangout_id = body["data"]["createHangout"]["hangout"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let seed = u8::try_from(index).unwrap();
        let files = [
            ("one.png".to_owned(), png(seed, 64)),
            ("two.png".to_owned(), png(seed.wrapping_add(100), 64)),
        ];
        upload_memories(&system, &user, &hangout_id, &files).await;
    }
    (system, user)
}

/// The answer to `query` and the backend calls it made, by RPC.
async fn with_calls(
    system: &TestSystem,
    session: &Session,
    query: &str,
    variables: Value,
) -> (BTreeMap<&'static str, u64>, Value) {
    let before = system.backend_calls.by_rpc();
    let body = system
        .graphql(Some(&session.access_token), query, variables)
        .await;
    let after = system.backend_calls.by_rpc();
    let calls = after
        .into_iter()
        .map(|(rpc, count)| (rpc, count - before.get(rpc).copied().unwrap_or(0)))
        .filter(|(_, count)| *count > 0)
        .collect();
    (calls, body)
}

async fn calls_for_page_of(count: usize) -> (BTreeMap<&'static str, u64>, Value) {
    let (system, user) = user_with_hangouts(count).await;
    with_calls(&system, &user, HANGOUTS_PAGE, json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hangouts_page_costs_a_fixed_number_of_backend_calls() {
    let (calls_for_one, one) = calls_for_page_of(1).await;
    let (calls_for_twenty, twenty) = calls_for_page_of(20).await;
    // Past 30 items async-graphql resolves a list on `FuturesUnordered`, which yields midway:
    // the batches must still hold every key of a level.
    let (calls_for_forty, forty) = calls_for_page_of(40).await;
    for (page, count) in [(&one, 1), (&twenty, 20), (&forty, 40)] {
        assert!(page["errors"].is_null(), "{page}");
        let nodes = page["data"]["hangouts"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), count);
        for node in nodes {
            assert_eq!(node["owner"]["name"], "Ada");
            assert_eq!(node["activities"][0]["name"], "Picnic");
            assert_eq!(node["memories"]["totalCount"], 2);
            let memories = node["memories"]["nodes"].as_array().unwrap();
            assert_eq!(memories.len(), 2);
            for memory in memories {
                assert!(memory["downloadUrl"].as_str().is_some(), "{memory}");
            }
        }
    }
    // Owners, activities and memories come with the page; then the files: two calls.
    let expected = BTreeMap::from([
        ("FileService/GetFiles", 1),
        ("HangoutService/ListHangouts", 1),
    ]);
    assert_eq!(calls_for_one, expected);
    assert_eq!(calls_for_twenty, expected);
    assert_eq!(calls_for_forty, expected);
}

/// Everything under each hangout, in several shapes at once: aliases, two page sizes, URLs
/// in one alias only, the same page with and without URLs, pending memories, an inline
/// fragment, a skipped field; activities with their hangout counts (which hangout-core counts
/// only when asked), without them, and behind nested fragments.
const HANGOUT_FIELDS: &str = "
    id
    who: owner { id name }
    activities { id name hangoutCount }
    a: memories(first: 1) { totalCount pageInfo { hasNextPage endCursor } nodes { id fileName } }
    b: memories(first: 2) { nodes { id downloadUrl } }
    c: memories(first: $first) { edges { cursor node { id downloadUrl } } }
    d: memories { nodes { id } }
    e: memories { nodes { fileName downloadUrlExpiresAt } }
    pending: memories(status: PENDING) { totalCount nodes { downloadUrl } }
    oldest: memories(first: 1, orderBy: { direction: ASC }) { nodes { fileName } }
    ... on Hangout { again: activities { name } }
    nested: activities { ... on Node { ... on Activity { hangoutCount } } }
    skipped: memories(first: 3) @skip(if: true) { totalCount }";

/// `value` with every download URL replaced by a marker: URLs are signed per time window, so
/// two reads may differ in them across a window's end.
fn without_urls(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, field)| {
                    let field = match (name.as_str(), field) {
                        ("downloadUrl", Value::String(_)) => json!("<url>"),
                        _ => without_urls(field),
                    };
                    (name.clone(), field)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_urls).collect()),
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_selection_of_the_page_answers_as_the_loaders_do() {
    let (system, user) = user_with_hangouts(3).await;
    let page_query = format!(
        "query($first: Int) {{ hangouts {{ nodes {{ ...Fields }} edges {{ node {{ owner {{ name }} activities {{ name }} }} }} }} }} fragment Fields on Hangout {{ {HANGOUT_FIELDS} }}"
    );
    let (calls, page) = with_calls(&system, &user, &page_query, json!({ "first": 1 })).await;
    assert!(page["errors"].is_null(), "{page}");
    // Owners and activities came with the page, whatever the alias or list they sit under.
    assert!(!calls.contains_key("UserService/GetUsers"), "{calls:?}");
    assert!(
        !calls.contains_key("ActivityService/ListActivitiesOfHangouts"),
        "{calls:?}"
    );
    let nodes = page["data"]["hangouts"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let edges = page["data"]["hangouts"]["edges"].as_array().unwrap();
    // The same fields read hangout by hangout, through the loaders alone, answer the same.
    let single_query =
        format!("query($id: ID!, $first: Int) {{ hangout(id: $id) {{ {HANGOUT_FIELDS} }} }}");
    for (node, edge) in nodes.iter().zip(edges) {
        let single = system
            .graphql(
                Some(&user.access_token),
                &single_query,
                json!({ "id": node["id"], "first": 1 }),
            )
            .await;
        assert!(single["errors"].is_null(), "{single}");
        assert_eq!(without_urls(&single["data"]["hangout"]), without_urls(node));
        assert_eq!(node["a"]["totalCount"], 2);
        assert_eq!(node["activities"][0]["hangoutCount"], 3, "{node}");
        assert_eq!(node["nested"][0]["hangoutCount"], 3, "{node}");
        assert!(node["again"][0].get("hangoutCount").is_none(), "{node}");
        assert_eq!(node["d"]["nodes"].as_array().unwrap().len(), 2);
        assert!(
            node["e"]["nodes"][1]["downloadUrlExpiresAt"].is_string(),
            "{node}"
        );
        assert!(node.get("skipped").is_none(), "{node}");
        assert_eq!(node["b"]["nodes"].as_array().unwrap().len(), 2);
        assert!(
            node["c"]["edges"][0]["node"]["downloadUrl"].is_string(),
            "{node}"
        );
        assert_eq!(node["pending"]["totalCount"], 0);
        assert_eq!(node["oldest"]["nodes"][0]["fileName"], "one.png");
        assert_eq!(edge["node"]["owner"]["name"], "Ada");
        assert_eq!(edge["node"]["activities"][0]["name"], "Picnic");
    }
    // Two selections of one page, one with URLs, through the loader alone: one page asked
    // for, both answered.
    let (calls, single) = with_calls(
        &system,
        &user,
        "query($id: ID!) { hangout(id: $id) { d: memories { nodes { id } } e: memories { nodes { id downloadUrl } } } }",
        json!({ "id": nodes[0]["id"] }),
    )
    .await;
    assert!(single["errors"].is_null(), "{single}");
    let (d, e) = (
        &single["data"]["hangout"]["d"]["nodes"],
        &single["data"]["hangout"]["e"]["nodes"],
    );
    assert_eq!(d.as_array().unwrap().len(), 2, "{single}");
    assert_eq!(d[0]["id"], e[0]["id"]);
    assert!(e[1]["downloadUrl"].is_string(), "{single}");
    assert_eq!(
        calls["MemoryService/ListMemoriesOfHangouts"], 1,
        "{calls:?}"
    );
    // A first page given by a variable comes with the page too.
    let (calls, page) = with_calls(
        &system,
        &user,
        "query($n: Int) { hangouts { nodes { memories(first: $n) { nodes { downloadUrl } } } } }",
        json!({ "n": 2 }),
    )
    .await;
    assert!(page["errors"].is_null(), "{page}");
    assert_eq!(
        calls,
        BTreeMap::from([
            ("FileService/GetFiles", 1),
            ("HangoutService/ListHangouts", 1),
        ])
    );
    // A page size out of range is reported by the memories field, as without the look-ahead.
    let (_, page) = with_calls(
        &system,
        &user,
        "{ hangouts { totalCount nodes { memories(first: 500) { totalCount } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        page["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{page}"
    );
    let path = page["errors"][0]["path"].as_array().unwrap();
    assert_eq!(path.len(), 4, "{page}");
    assert_eq!(path[..2], [json!("hangouts"), json!("nodes")], "{page}");
    assert_eq!(path[3], "memories", "{page}");
}
