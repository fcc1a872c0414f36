//! Hangouts and activities over GraphQL: pagination, ordering, filters, validation and owner
//! isolation.

use serde_json::{Value, json};

use crate::helpers::{TestSystem, error_code, error_field};

const PAGE: &str =
    "query($first: Int, $after: String, $orderBy: HangoutOrder, $filter: HangoutFilter) {
    hangouts(first: $first, after: $after, orderBy: $orderBy, filter: $filter) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id title } }
        nodes { title status date }
    }
}";

fn titles(body: &Value) -> Vec<String> {
    body["data"]["hangouts"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no page in {body}"))
        .iter()
        .map(|node| node["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangouts_page_in_both_orders_with_filters() {
    let system = TestSystem::spawn().await;
    let user = system.sign_up("Ada").await;
    let token = Some(user.access_token.as_str());
    for (title, date) in [
        ("March", "2026-03-01T10:00:00Z"),
        ("January", "2026-01-01T10:00:00Z"),
        ("February", "2026-02-01T10:00:00+01:00"),
    ] {
        system.create_hangout(&user, title, date).await;
    }

    let first_page = system
        .graphql(
            token,
            PAGE,
            json!({ "first": 2, "orderBy": { "field": "DATE", "direction": "ASC" } }),
        )
        .await;
    assert_eq!(titles(&first_page), ["January", "February"]);
    let page = &first_page["data"]["hangouts"];
    assert_eq!(page["totalCount"], 3);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(page["nodes"][1]["date"], "2026-02-01T09:00:00Z");
    assert_eq!(page["nodes"][0]["status"], "PLANNING");
    let end = page["pageInfo"]["endCursor"].as_str().unwrap();
    let second_page = system
        .graphql(
            token,
            PAGE,
            json!({ "first": 2, "after": end, "orderBy": { "field": "DATE", "direction": "ASC" } }),
        )
        .await;
    assert_eq!(titles(&second_page), ["March"]);
    assert_eq!(
        second_page["data"]["hangouts"]["pageInfo"]["hasNextPage"],
        false
    );

    let newest_first = system
        .graphql(token, PAGE, json!({ "orderBy": { "field": "DATE" } }))
        .await;
    assert_eq!(titles(&newest_first), ["March", "February", "January"]);
    let by_creation = system.graphql(token, PAGE, json!({})).await;
    assert_eq!(titles(&by_creation), ["February", "January", "March"]);

    let filtered = system
        .graphql(
            token,
            PAGE,
            json!({ "filter": { "dateFrom": "2026-02-01T00:00:00Z", "dateTo": "2026-03-01T10:00:00Z" } }),
        )
        .await;
    assert_eq!(titles(&filtered), ["February"]);
    let confirmed = system
        .graphql(
            token,
            PAGE,
            json!({ "filter": { "status": ["CONFIRMED"] } }),
        )
        .await;
    assert_eq!(confirmed["data"]["hangouts"]["totalCount"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_their_field() {
    let system = TestSystem::spawn().await;
    let user = system.sign_up("Ada").await;
    let token = Some(user.access_token.as_str());
    let create =
        "mutation($input: CreateHangoutInput!) { createHangout(input: $input) { hangout { id } } }";
    let activity_id = {
        let body = system
            .graphql(
                token,
                "mutation { createActivity(input: { name: \"Hiking\" }) { activity { id } } }",
                json!({}),
            )
            .await;
        body["data"]["createActivity"]["activity"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let cases = [
        (
            create,
            json!({ "input": { "title": "   ", "date": "2026-01-01T00:00:00Z" } }),
            "title",
        ),
        (
            create,
            json!({ "input": { "title": "ok", "date": "2026-01-01T00:00:00Z", "description": "x".repeat(10_001) } }),
            "description",
        ),
        (
            create,
            json!({ "input": { "title": "ok", "date": "2026-01-01T00:00:00Z", "activityIds": ["nope"] } }),
            "activityIds[0]",
        ),
        (
            create,
            json!({ "input": { "title": "ok", "date": "2026-01-01T00:00:00Z", "activityIds": [activity_id, activity_id] } }),
            "activityIds[1]",
        ),
        (
            create,
            json!({ "input": { "title": "ok", "date": "next tuesday" } }),
            "date",
        ),
        (PAGE, json!({ "first": 101 }), "first"),
        (
            create,
            json!({ "input": { "title": "x".repeat(256), "date": "2026-01-01T00:00:00Z" } }),
            "title",
        ),
        (
            PAGE,
            json!({ "filter": { "dateFrom": "2026-02-01T00:00:00Z", "dateTo": "2026-01-01T00:00:00Z" } }),
            "filter.dateTo",
        ),
        (
            PAGE,
            json!({ "filter": { "dateFrom": "soon" } }),
            "filter.dateFrom",
        ),
        (
            "mutation($id: ID!) { updateHangout(input: { id: $id, title: \"x\" }) { hangout { id } } }",
            json!({ "id": "bm90IGFuIGlk" }),
            "id",
        ),
        (
            "mutation { confirmMemoryUploads(input: { memoryIds: [\"bad\"] }) { failures { reason } } }",
            json!({}),
            "memoryIds[0]",
        ),
        (PAGE, json!({ "first": 0 }), "first"),
        (
            "mutation { createActivity(input: { name: \"\" }) { activity { id } } }",
            json!({}),
            "name",
        ),
    ];
    for (query, variables, field) in cases {
        let body = system.graphql(token, query, variables).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert_eq!(error_field(&body), field, "{body}");
    }
    let malformed = system.graphql(token, "{ hangouts { ", json!({})).await;
    assert_eq!(error_code(&malformed), "GRAPHQL_PARSE_FAILED");
    let unknown = system.graphql(token, "{ nothing }", json!({})).await;
    assert_eq!(error_code(&unknown), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_hangouts_and_markdown() {
    let system = TestSystem::spawn().await;
    let user = system.sign_up("Ada").await;
    let token = Some(user.access_token.as_str());
    let create_activity = "mutation($name: String!) { createActivity(input: { name: $name }) { activity { id name hangoutCount } } }";
    let hiking = system
        .graphql(token, create_activity, json!({ "name": "Hiking" }))
        .await["data"]["createActivity"]["activity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let duplicate = system
        .graphql(token, create_activity, json!({ "name": "hiking" }))
        .await;
    assert_eq!(error_code(&duplicate), "CONFLICT");

    let created = system
        .graphql(
            token,
            "mutation($input: CreateHangoutInput!) { createHangout(input: $input) { hangout {
                id description descriptionHtml status activities { name } owner { name } } } }",
            json!({ "input": {
                "title": "Alps", "date": "2026-07-01T08:00:00Z", "status": "CONFIRMED",
                "description": "**Boots** <script>alert(1)</script>", "activityIds": [hiking],
            } }),
        )
        .await;
    let hangout = &created["data"]["createHangout"]["hangout"];
    assert_eq!(hangout["status"], "CONFIRMED", "{created}");
    assert_eq!(hangout["activities"][0]["name"], "Hiking");
    assert_eq!(hangout["owner"]["name"], "Ada");
    let html = hangout["descriptionHtml"].as_str().unwrap();
    assert!(
        html.contains("<strong>Boots</strong>") && !html.contains("script"),
        "{html}"
    );
    let hangout_id = hangout["id"].as_str().unwrap().to_owned();

    let activity = system
        .graphql(
            token,
            "query($id: ID!) { activity(id: $id) { name hangoutCount hangouts { totalCount nodes { id } } } }",
            json!({ "id": hiking }),
        )
        .await;
    assert_eq!(
        activity["data"]["activity"]["hangoutCount"], 1,
        "{activity}"
    );
    assert_eq!(
        activity["data"]["activity"]["hangouts"]["nodes"][0]["id"],
        hangout_id.as_str()
    );

    let cleared = system
        .graphql(
            token,
            "mutation($input: UpdateHangoutInput!) { updateHangout(input: $input) { hangout { title description activities { id } } } }",
            json!({ "input": { "id": hangout_id, "description": null, "activityIds": [] } }),
        )
        .await;
    let hangout = &cleared["data"]["updateHangout"]["hangout"];
    assert_eq!(hangout["title"], "Alps", "{cleared}");
    assert!(hangout["description"].is_null());
    assert_eq!(hangout["activities"], json!([]));

    let listed = system
        .graphql(
            token,
            "{ activities { totalCount nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["data"]["activities"]["totalCount"], 1);
    let renamed = system
        .graphql(
            token,
            "mutation($id: ID!) { updateActivity(input: { id: $id, name: \"Climbing\" }) { activity { name } } }",
            json!({ "id": hiking }),
        )
        .await;
    assert_eq!(
        renamed["data"]["updateActivity"]["activity"]["name"],
        "Climbing"
    );
    let deleted = system
        .graphql(
            token,
            "mutation($id: ID!) { deleteActivity(input: { id: $id }) { deletedId } }",
            json!({ "id": hiking }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteActivity"]["deletedId"],
        hiking.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_only_their_own_hangouts() {
    let system = TestSystem::spawn().await;
    let owner = system.sign_up("Ada").await;
    let stranger = system.sign_up("Eve").await;
    let hangout_id = system
        .create_hangout(&owner, "Private", "2026-05-01T12:00:00Z")
        .await;
    let eve = Some(stranger.access_token.as_str());

    let by_id = system
        .graphql(
            eve,
            "query($id: ID!) { hangout(id: $id) { id } node(id: $id) { id } nodes(ids: [$id]) { id } }",
            json!({ "id": hangout_id }),
        )
        .await;
    assert!(by_id["data"]["hangout"].is_null(), "{by_id}");
    assert!(by_id["data"]["node"].is_null());
    assert_eq!(by_id["data"]["nodes"], json!([null]));
    let listed = system.graphql(eve, PAGE, json!({})).await;
    assert_eq!(listed["data"]["hangouts"]["totalCount"], 0);
    let owner_user = system
        .graphql(
            eve,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": owner.user_id }),
        )
        .await;
    assert!(owner_user["data"]["node"].is_null());

    let update = system
        .graphql(
            eve,
            "mutation($id: ID!) { updateHangout(input: { id: $id, title: \"Mine\" }) { hangout { id } } }",
            json!({ "id": hangout_id }),
        )
        .await;
    assert_eq!(error_code(&update), "NOT_FOUND");
    let delete = system
        .graphql(
            eve,
            "mutation($id: ID!) { deleteHangout(input: { id: $id }) { deletedId } }",
            json!({ "id": hangout_id }),
        )
        .await;
    assert_eq!(error_code(&delete), "NOT_FOUND");

    let mine = system
        .graphql(
            Some(&owner.access_token),
            "query($id: ID!) { node(id: $id) { id ... on Hangout { title } } }",
            json!({ "id": hangout_id }),
        )
        .await;
    assert_eq!(mine["data"]["node"]["title"], "Private", "{mine}");
}
