//! Processed photos through the API: real images uploaded, turned into renditions by
//! file-core's worker, and shown to the uploader and to the other members as the contract says.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestSystem, eventually},
    live::{Client, event},
    memories::upload_memories,
    sharing::trip_with_a_guest,
};

#[path = "../../../file-core/tests/it/photos.rs"]
#[allow(
    dead_code,
    reason = "shared with file-core's tests, which use all of it"
)]
pub(crate) mod fixtures;

on_both_backends!(members_see_renditions_and_only_the_uploader_the_original);
on_both_backends!(subscribers_hear_when_processing_ends_ready_or_failed);

const MEMORY_EVENTS: &str = "subscription($id: ID!) {
    hangoutEvents(hangoutId: $id) {
        __typename
        ... on MemoryUpdated { memory { id processing width } }
    }
}";

/// The next `MemoryUpdated` event of subscription `id`; returns its memory. Events of other
/// kinds (the set-up's members joining, reaching the gateway late) are skipped.
async fn memory_updated(client: &mut Client, id: &str) -> Value {
    loop {
        let updated = event(&client.message().await, id);
        if updated["__typename"] == "MemoryUpdated" {
            return updated["memory"].clone();
        }
    }
}

const MEMORY: &str = "query($id: ID!, $size: ImageSize!) {
    node(id: $id) { ... on Memory {
        processing width height takenAt downloadUrl
        thumbnail: imageUrl(size: THUMBNAIL) preview: imageUrl full: imageUrl(size: $size)
    } }
}";

const PAGE: &str = "query($id: ID!) {
    hangout(id: $id) { memories { nodes { id processing downloadUrl imageUrl(size: THUMBNAIL) } } }
}";

async fn memory(system: &TestSystem, who: &Session, id: &str) -> Value {
    let body = system
        .graphql(
            Some(&who.access_token),
            MEMORY,
            json!({ "id": id, "size": "FULL" }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["node"].clone()
}

async fn download(system: &TestSystem, url: &Value) -> Vec<u8> {
    let response = system.http.get(url.as_str().unwrap()).send().await.unwrap();
    assert!(response.status().is_success(), "{url}");
    response.bytes().await.unwrap().to_vec()
}

async fn members_see_renditions_and_only_the_uploader_the_original(system: TestSystem) {
    let (owner, guest, trip) = trip_with_a_guest(&system).await;
    let original = fixtures::phone_jpeg(
        &fixtures::marked(1200, 900),
        6,
        "2024:07:14 18:30:05",
        "+02:00",
    );
    let ids = upload_memories(
        &system,
        &owner,
        &trip,
        &[("beach.jpg".to_owned(), original.clone())],
    )
    .await;
    let ready = eventually(Duration::from_secs(30), || async {
        memory(&system, &owner, &ids[0]).await["processing"] == "READY"
    })
    .await;
    assert!(ready, "{}", memory(&system, &owner, &ids[0]).await);

    let mine = memory(&system, &owner, &ids[0]).await;
    assert_eq!(
        (&mine["width"], &mine["height"]),
        (&json!(900), &json!(1200))
    );
    assert!(
        mine["takenAt"]
            .as_str()
            .unwrap()
            .starts_with("2024-07-14T16:30:05"),
        "{mine}"
    );
    assert_eq!(download(&system, &mine["downloadUrl"]).await, original);
    let mut full = Vec::new();
    for (field, longest) in [("thumbnail", 320), ("preview", 1200), ("full", 1200)] {
        let bytes = download(&system, &mine[field]).await;
        fixtures::assert_no_metadata(&bytes);
        let image = image::load_from_memory(&bytes).unwrap();
        assert_eq!(image.width().max(image.height()), longest, "{field}");
        if field == "full" {
            full = bytes;
        }
    }

    // The guest's download is the FULL rendition: no location, no camera, no original bytes.
    let theirs = memory(&system, &guest, &ids[0]).await;
    assert_eq!(download(&system, &theirs["downloadUrl"]).await, full);
    assert_eq!(theirs["processing"], "READY");

    // A page with thumbnails costs the same calls as one with download URLs.
    let before = system.calls_of("FileService/GetFiles");
    let page = system
        .graphql(Some(&guest.access_token), PAGE, json!({ "id": trip }))
        .await;
    assert!(page["errors"].is_null(), "{page}");
    assert_eq!(system.calls_of("FileService/GetFiles") - before, 1);
    let node = &page["data"]["hangout"]["memories"]["nodes"][0];
    let thumbnail = download(&system, &node["imageUrl"]).await;
    assert!(image::load_from_memory(&thumbnail).unwrap().width() <= 320);
}

async fn subscribers_hear_when_processing_ends_ready_or_failed(system: TestSystem) {
    let (owner, guest, trip) = trip_with_a_guest(&system).await;
    let mut client = Client::signed_in(system.gateway, &guest).await;
    client
        .subscribe("m", MEMORY_EVENTS, json!({ "id": trip }))
        .await;
    client.sync_past_events().await;
    let photo = fixtures::jpeg(&fixtures::marked(640, 480), 90);
    // Declares 60000 x 60000 pixels: refused from its header, so it ends FAILED.
    let bomb = fixtures::jpeg_declaring(60_000, 60_000);
    for (name, bytes, outcome) in [("beach.jpg", photo, "READY"), ("bomb.jpg", bomb, "FAILED")] {
        let ids = upload_memories(&system, &owner, &trip, &[(name.to_owned(), bytes)]).await;
        // One event when the upload is confirmed, one when processing ends; the payload is
        // loaded at delivery, so the first may already show the outcome. When processing ends
        // before hangout-core hears of the upload (the gateway confirms with file-core first),
        // the upload's event is the only one, and it shows the outcome. Events of the previous
        // photo (its second, when its first already showed the outcome) are passed.
        loop {
            let memory = memory_updated(&mut client, "m").await;
            if memory["id"] != ids[0] {
                continue;
            }
            if memory["processing"] == outcome {
                break;
            }
            assert!(
                matches!(memory["processing"].as_str(), Some("QUEUED" | "PROCESSING")),
                "{memory}"
            );
        }
    }
}

/// How many photos file-core's workers finished as `outcome`, from its metrics endpoint.
async fn processed(system: &TestSystem, outcome: &str) -> u64 {
    let text = system
        .http
        .get(format!("http://{}/metrics", system.metrics.file_core))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("photos_processed_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_that_ends_while_hangout_core_is_down_is_heard_after_it_returns() {
    let mut system = TestSystem::spawn().await;
    let (owner, guest, trip) = trip_with_a_guest(&system).await;
    // No worker yet: the photo waits, queued, while hangout-core goes away.
    system
        .restart_file_core(&["--processing-workers", "0"])
        .await;
    let mut client = Client::signed_in(system.gateway, &guest).await;
    client
        .subscribe("m", MEMORY_EVENTS, json!({ "id": trip }))
        .await;
    client.sync_past_events().await;
    let photo = fixtures::jpeg(&fixtures::marked(640, 480), 90);
    let ids = upload_memories(&system, &owner, &trip, &[("beach.jpg".to_owned(), photo)]).await;
    let uploaded = memory_updated(&mut client, "m").await;
    assert_eq!(
        (&uploaded["id"], &uploaded["processing"]),
        (&json!(ids[0]), &json!("QUEUED"))
    );

    system.stop_hangout_core().await;
    system.restart_file_core(&[]).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            processed(&system, "ready").await == 1
        })
        .await,
        "the photo was never processed"
    );
    // The report waits in file-core's outbox until hangout-core takes it.
    system.restart_hangout_core().await;
    let processed = memory_updated(&mut client, "m").await;
    assert_eq!(
        (&processed["id"], &processed["processing"]),
        (&json!(ids[0]), &json!("READY")),
        "{processed}"
    );
}
