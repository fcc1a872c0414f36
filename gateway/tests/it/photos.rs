//! Processed photos through the API: real images uploaded, turned into renditions by
//! file-core's worker, and shown to the uploader and to the other members as the contract says.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestSystem, eventually},
    memories::upload_memories,
    sharing::trip_with_a_guest,
};

#[path = "../../../file-core/tests/it/photos.rs"]
#[allow(
    dead_code,
    reason = "shared with file-core's tests, which use all of it"
)]
mod fixtures;

on_both_backends!(members_see_renditions_and_only_the_uploader_the_original);

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
