//! Photo memories end to end: upload through presigned URLs, confirm, download, delete.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use md5::{Digest as _, Md5};
use serde_json::{Value, json};

use crate::helpers::{Session, TestSystem, error_code, error_field};

const CREATE_UPLOADS: &str = "mutation($input: CreateMemoryUploadsInput!) {
    createMemoryUploads(input: $input) {
        uploads { url method expiresAt headers { name value } memory { id status fileName downloadUrl } }
    }
}";

const CONFIRM: &str = "mutation($ids: [ID!]!) {
    confirmMemoryUploads(input: { memoryIds: $ids }) {
        memories { id status downloadUrl downloadUrlExpiresAt }
        failures { memoryId reason message }
    }
}";

/// Bytes that start like a PNG.
pub(crate) fn png(seed: u8, len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..len).map(|index| seed.wrapping_add(u8::try_from(index % 251).unwrap())));
    bytes
}

/// The declaration of a file named `name` (its type follows the extension: `.jpg`, `.gif`,
/// else PNG).
pub(crate) fn file_input(name: &str, bytes: &[u8]) -> Value {
    let content_type = if name.ends_with(".jpg") {
        "image/jpeg"
    } else if name.ends_with(".gif") {
        "image/gif"
    } else {
        "image/png"
    };
    json!({
        "fileName": name,
        "contentType": content_type,
        "size": bytes.len(),
        "md5": STANDARD.encode(Md5::digest(bytes)),
    })
}

/// PUTs `bytes` to a presigned upload with exactly its headers; returns the HTTP status.
pub(crate) async fn put(
    system: &TestSystem,
    upload: &Value,
    bytes: Vec<u8>,
) -> reqwest::StatusCode {
    assert_eq!(upload["method"], "PUT");
    let mut request = system.http.put(upload["url"].as_str().unwrap()).body(bytes);
    for header in upload["headers"].as_array().unwrap() {
        let name = header["name"].as_str().unwrap();
        // reqwest sets these from the body and the URL.
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("host") {
            continue;
        }
        request = request.header(name, header["value"].as_str().unwrap());
    }
    request.send().await.unwrap().status()
}

/// Creates uploads for `files` on `hangout_id`, uploads all of them and confirms them;
/// returns the memory ids.
pub(crate) async fn upload_memories(
    system: &TestSystem,
    session: &Session,
    hangout_id: &str,
    files: &[(String, Vec<u8>)],
) -> Vec<String> {
    upload_memories_with(system, session, hangout_id, files, CREATE_UPLOADS, CONFIRM).await
}

/// [`upload_memories`] with other documents for the create and confirm operations (taking
/// the same variables and selecting at least the same fields).
pub(crate) async fn upload_memories_with(
    system: &TestSystem,
    session: &Session,
    hangout_id: &str,
    files: &[(String, Vec<u8>)],
    create_uploads: &str,
    confirm: &str,
) -> Vec<String> {
    let token = Some(session.access_token.as_str());
    let inputs: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| file_input(name, bytes))
        .collect();
    let created = system
        .graphql(
            token,
            create_uploads,
            json!({ "input": { "hangoutId": hangout_id, "files": inputs } }),
        )
        .await;
    let uploads = created["data"]["createMemoryUploads"]["uploads"]
        .as_array()
        .unwrap_or_else(|| panic!("createMemoryUploads failed: {created}"))
        .clone();
    let mut ids = Vec::new();
    for (upload, (_, bytes)) in uploads.iter().zip(files) {
        assert!(put(system, upload, bytes.clone()).await.is_success());
        ids.push(upload["memory"]["id"].as_str().unwrap().to_owned());
    }
    let confirmed = system.graphql(token, confirm, json!({ "ids": ids })).await;
    assert_eq!(
        confirmed["data"]["confirmMemoryUploads"]["failures"],
        json!([]),
        "{confirmed}"
    );
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memories_upload_confirm_download_and_delete() {
    let system = TestSystem::spawn().await;
    let owner = system.sign_up("Ada").await;
    let token = Some(owner.access_token.as_str());
    let hangout_id = system
        .create_hangout(&owner, "Beach", "2026-08-01T10:00:00Z")
        .await;
    let first = png(1, 2000);
    let second = png(2, 3000);
    let created = system
        .graphql(
            token,
            CREATE_UPLOADS,
            json!({ "input": { "hangoutId": hangout_id, "files": [
                file_input("a.png", &first), file_input("b.png", &second), file_input("never.png", &first),
            ] } }),
        )
        .await;
    let uploads = created["data"]["createMemoryUploads"]["uploads"]
        .as_array()
        .unwrap_or_else(|| panic!("{created}"))
        .clone();
    assert_eq!(uploads.len(), 3);
    assert_eq!(uploads[0]["memory"]["status"], "PENDING");
    assert!(uploads[0]["memory"]["downloadUrl"].is_null());
    assert!(put(&system, &uploads[0], first.clone()).await.is_success());
    // The second upload carries other bytes than declared; S3 answers BadDigest, and whatever
    // it kept, confirming must refuse it.
    let _ = put(&system, &uploads[1], png(9, 3000)).await;
    let ids: Vec<&str> = uploads
        .iter()
        .map(|upload| upload["memory"]["id"].as_str().unwrap())
        .collect();

    let confirmed = system.graphql(token, CONFIRM, json!({ "ids": ids })).await;
    let payload = &confirmed["data"]["confirmMemoryUploads"];
    assert_eq!(
        payload["memories"].as_array().unwrap().len(),
        1,
        "{confirmed}"
    );
    assert_eq!(payload["memories"][0]["id"], ids[0]);
    assert_eq!(payload["memories"][0]["status"], "UPLOADED");
    let mut reasons: Vec<(String, String)> = payload["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| {
            (
                failure["memoryId"].as_str().unwrap().to_owned(),
                failure["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    reasons.sort();
    let mut expected = vec![
        (ids[1].to_owned(), "CHECKSUM_MISMATCH".to_owned()),
        (ids[2].to_owned(), "NOT_UPLOADED".to_owned()),
    ];
    expected.sort();
    assert_eq!(reasons, expected);

    let url = payload["memories"][0]["downloadUrl"].as_str().unwrap();
    let downloaded = system
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(downloaded.as_ref(), first.as_slice());

    let listed = system
        .graphql(
            token,
            "query($id: ID!) { hangout(id: $id) {
                memories { totalCount nodes { id fileName size uploadedBy { name } hangout { id } } }
                pending: memories(status: PENDING, orderBy: { direction: ASC }) { totalCount }
            } }",
            json!({ "id": hangout_id }),
        )
        .await;
    let hangout = &listed["data"]["hangout"];
    assert_eq!(hangout["memories"]["totalCount"], 1, "{listed}");
    assert_eq!(hangout["memories"]["nodes"][0]["fileName"], "a.png");
    assert_eq!(hangout["memories"]["nodes"][0]["uploadedBy"]["name"], "Ada");
    assert_eq!(hangout["pending"]["totalCount"], 2);

    let stranger = system.sign_up("Eve").await;
    let eve = Some(stranger.access_token.as_str());
    let hidden = system
        .graphql(
            eve,
            "query($id: ID!) { memory(id: $id) { id } }",
            json!({ "id": ids[0] }),
        )
        .await;
    assert!(hidden["data"]["memory"].is_null(), "{hidden}");
    let delete = "mutation($id: ID!) { deleteMemory(input: { id: $id }) { deletedId } }";
    let refused = system.graphql(eve, delete, json!({ "id": ids[0] })).await;
    assert_eq!(error_code(&refused), "NOT_FOUND");
    let foreign_upload = system
        .graphql(
            eve,
            CREATE_UPLOADS,
            json!({ "input": { "hangoutId": hangout_id, "files": [file_input("x.png", &first)] } }),
        )
        .await;
    assert_eq!(error_code(&foreign_upload), "NOT_FOUND");

    assert!(
        !system.stored_objects().is_empty(),
        "the uploads should be stored"
    );
    let deleted = system.graphql(token, delete, json!({ "id": ids[0] })).await;
    assert_eq!(deleted["data"]["deleteMemory"]["deletedId"], ids[0]);
    let gone = system.http.get(url).send().await.unwrap();
    assert!(!gone.status().is_success(), "the object is still there");

    let deleted_hangout = system
        .graphql(
            token,
            "mutation($id: ID!) { deleteHangout(input: { id: $id }) { deletedId } }",
            json!({ "id": hangout_id }),
        )
        .await;
    assert_eq!(
        deleted_hangout["data"]["deleteHangout"]["deletedId"],
        hangout_id.as_str()
    );
    let left = system.stored_objects();
    assert!(left.is_empty(), "objects left in the bucket: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_validation_names_the_file_field() {
    let system = TestSystem::spawn().await;
    let owner = system.sign_up("Ada").await;
    let hangout_id = system
        .create_hangout(&owner, "Beach", "2026-08-01T10:00:00Z")
        .await;
    let bytes = png(1, 100);
    let mut wrong_type = file_input("b.png", &bytes);
    wrong_type["contentType"] = json!("image/gif");
    let mut bad_md5 = file_input("c.png", &bytes);
    bad_md5["md5"] = json!("not base64");
    let mut too_big = file_input("d.png", &bytes);
    too_big["size"] = json!(10_485_761);
    for (files, field) in [
        (
            json!([file_input("a.png", &bytes), wrong_type]),
            "files[1].contentType",
        ),
        (json!([too_big]), "files[0].size"),
        (json!([file_input("a.txt", &bytes)]), "files[0].fileName"),
        (
            json!([
                file_input("same.png", &bytes),
                file_input("same.png", &bytes)
            ]),
            "files[1].fileName",
        ),
        (json!([file_input("../x.png", &bytes)]), "files[0].fileName"),
        (json!([]), "files"),
        (json!([bad_md5]), "files[0].md5"),
    ] {
        let body = system
            .graphql(
                Some(&owner.access_token),
                CREATE_UPLOADS,
                json!({ "input": { "hangoutId": hangout_id, "files": files } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert_eq!(error_field(&body), field, "{body}");
    }
    // A batch refused by file-core leaves no pending memory behind.
    let pending = system
        .graphql(
            Some(&owner.access_token),
            "query($id: ID!) { hangout(id: $id) { memories(status: PENDING) { totalCount } } }",
            json!({ "id": hangout_id }),
        )
        .await;
    assert_eq!(
        pending["data"]["hangout"]["memories"]["totalCount"], 0,
        "{pending}"
    );
}
