//! Nothing orphaned: a memory deleted while file-core is down loses its file once file-core is
//! back (the deletion hangout-core owes), and the reconciliation removes files no memory holds
//! and objects no record names. The embedded S3 server leaves nothing behind a deleted object.

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestSystem, eventually, uuid_of},
    memories::upload_memories,
    photos::fixtures,
};

on_both_backends!(a_memory_deleted_while_file_core_is_down_loses_its_file_when_it_returns);
on_both_backends!(reconciliation_removes_files_no_memory_holds_and_objects_no_record_names);

const DELETE: &str = "mutation($id: ID!) { deleteMemory(input: { id: $id }) { deletedId } }";

const PROCESSING: &str =
    "query($id: ID!) { node(id: $id) { ... on Memory { processing downloadUrl } } }";

async fn memory(system: &TestSystem, who: &Session, id: &str) -> Value {
    let body = system
        .graphql(Some(&who.access_token), PROCESSING, json!({ "id": id }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["node"].clone()
}

/// Two photos of a new hangout, uploaded and processed; returns the owner and the memory ids.
async fn two_processed_photos(system: &TestSystem) -> (Session, Vec<String>) {
    let owner = system.sign_up("Ada").await;
    let trip = system
        .create_hangout(&owner, "Trip", "2026-08-01T10:00:00Z")
        .await;
    let ids = upload_memories(
        system,
        &owner,
        &trip,
        &[
            (
                "a.jpg".to_owned(),
                fixtures::jpeg(&fixtures::marked(64, 48), 90),
            ),
            (
                "b.jpg".to_owned(),
                fixtures::jpeg(&fixtures::marked(48, 64), 90),
            ),
        ],
    )
    .await;
    for id in &ids {
        let ready = eventually(Duration::from_secs(30), || async {
            memory(system, &owner, id).await["processing"] == "READY"
        })
        .await;
        assert!(ready, "{}", memory(system, &owner, id).await);
    }
    (owner, ids)
}

/// The stored objects of memory `id`.
fn objects_of(system: &TestSystem, id: &str) -> Vec<PathBuf> {
    let memory = uuid_of(id);
    let mut objects: Vec<PathBuf> = system
        .stored_objects()
        .into_iter()
        .filter(|path| path.to_string_lossy().contains(&memory))
        .collect();
    objects.sort();
    objects
}

/// Every file and folder under the embedded S3 server's folder, sidecars included.
fn everything_stored(system: &TestSystem) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            found.push(path.clone());
            if path.is_dir() {
                walk(&path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(&system.s3_dir(), &mut found);
    found.sort();
    found
}

async fn a_memory_deleted_while_file_core_is_down_loses_its_file_when_it_returns(
    mut system: TestSystem,
) {
    let stored_at_start = everything_stored(&system);
    let (owner, ids) = two_processed_photos(&system).await;
    // The original and three renditions each.
    assert_eq!(objects_of(&system, &ids[0]).len(), 4);

    system.stop_file_core().await;
    for id in &ids {
        let deleted = system
            .graphql(Some(&owner.access_token), DELETE, json!({ "id": id }))
            .await;
        assert_eq!(
            deleted["data"]["deleteMemory"]["deletedId"], *id,
            "{deleted}"
        );
    }
    assert_eq!(objects_of(&system, &ids[0]).len(), 4, "file-core is down");

    system.restart_file_core(&["--deletion-poll", "50ms"]).await;
    let gone = eventually(Duration::from_secs(20), || async {
        system.stored_objects().is_empty()
    })
    .await;
    assert!(gone, "{:?}", system.stored_objects());
    // Nor do the embedded server's sidecar files or the objects' folders stay behind.
    let clean = eventually(Duration::from_secs(5), || async {
        everything_stored(&system) == stored_at_start
    })
    .await;
    assert!(clean, "{:?}", everything_stored(&system));
}

async fn reconciliation_removes_files_no_memory_holds_and_objects_no_record_names(
    mut system: TestSystem,
) {
    use sqlx::Executor as _;
    let (owner, ids) = two_processed_photos(&system).await;
    let kept = objects_of(&system, &ids[1]);
    assert_eq!(kept.len(), 4);
    // Memory 0 vanishes without a deletion owed (as a record older than owed deletions would).
    let mut database = system.hangout_database().await;
    database
        .execute(format!("delete from memories where id = '{}'", uuid_of(&ids[0])).as_str())
        .await
        .unwrap();
    // An object no file record names: a rendition written after its file's record was removed.
    let rendition = kept
        .iter()
        .find(|path| path.to_string_lossy().contains("/media/"))
        .unwrap();
    let file_folder = rendition.parent().unwrap();
    let stray_folder = file_folder
        .parent()
        .unwrap()
        .join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&stray_folder).unwrap();
    let stray = stray_folder.join(rendition.file_name().unwrap());
    std::fs::write(&stray, b"stray").unwrap();
    // Something file-core did not make is not its to remove.
    let foreign = system.s3_dir().join(
        rendition
            .strip_prefix(system.s3_dir())
            .unwrap()
            .components()
            .next()
            .unwrap(),
    );
    let foreign = foreign.join("notes.txt");
    std::fs::write(&foreign, b"not a photo").unwrap();

    system
        .restart_file_core(&["--reconcile-interval", "50ms", "--reconcile-settle", "0s"])
        .await;
    let reconciled = eventually(Duration::from_secs(20), || async {
        objects_of(&system, &ids[0]).is_empty() && !stray.exists()
    })
    .await;
    assert!(reconciled, "{:?}", system.stored_objects());
    assert_eq!(objects_of(&system, &ids[1]), kept);
    assert!(foreign.exists());
    let url = memory(&system, &owner, &ids[1]).await["downloadUrl"].clone();
    let response = system.http.get(url.as_str().unwrap()).send().await.unwrap();
    assert!(response.status().is_success());
}
