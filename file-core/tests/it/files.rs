//! Reading and deleting files: presigned downloads of the exact bytes, idempotent deletes of
//! object and record, and files scoped to the calling user.

use std::time::Duration;

use proto::file::v1::FileStatus;
use tonic::Code;

use crate::{
    helpers::{Db, Options, TestApp, eventually},
    samples::{hangout, jpeg, object_key, png, upload_file},
};

test_support::on_both_backends!(
    presigned_downloads_return_the_exact_bytes,
    presigning_needs_no_round_trip_to_s3,
    download_urls_stay_the_same_between_reads,
    delete_removes_object_and_record_and_is_idempotent,
    a_late_upload_after_delete_is_removed_too,
    files_are_confirmed_by_their_uploader_and_served_to_whom_the_gateway_names,
);

/// A short upload window and a busy sweeper, so deleted files' tombstones clear quickly.
fn short_window() -> Options {
    Options {
        upload_url_ttl: Duration::from_secs(2),
        sweep_interval: Duration::from_millis(200),
        ..Options::default()
    }
}

/// Creates, uploads and confirms one file; returns its id, memory id and bytes.
async fn uploaded(app: &TestApp, hangout: &str, name: &str, bytes: Vec<u8>) -> (String, String) {
    let content_type = if name.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let file = upload_file(name, content_type, &bytes);
    let created = app
        .create_uploads(hangout, vec![file.clone()])
        .await
        .unwrap();
    let upload = &created.uploads[0];
    assert!(app.put(upload, bytes, &[]).await.status().is_success());
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(confirmed.confirmed.len(), 1, "{:?}", confirmed.failures);
    (upload.file_id.clone(), file.memory_id)
}

async fn presigned_downloads_return_the_exact_bytes(db: Db) {
    let app = TestApp::spawn(db).await;
    let hangout = hangout();
    let first = jpeg(3000);
    let second = png(70_000);
    let (first_id, _) = uploaded(&app, &hangout, "one.jpg", first.clone()).await;
    let (second_id, _) = uploaded(&app, &hangout, "two.png", second.clone()).await;
    let pending = app
        .create_uploads(
            &hangout,
            vec![upload_file("later.jpg", "image/jpeg", &jpeg(5))],
        )
        .await
        .unwrap();
    let pending_id = pending.uploads[0].file_id.clone();

    let unknown = uuid::Uuid::new_v4().to_string();
    let files = app
        .get_files(&[&second_id, &unknown, "garbage", &pending_id, &first_id])
        .await
        .unwrap();
    let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [&second_id, &pending_id, &first_id],
        "request order, unknown left out"
    );
    assert_eq!(files[1].status(), FileStatus::Pending);
    assert!(files[1].download_url.is_empty());
    assert!(files[1].download_url_expires_at.is_none());
    for (file, bytes) in [(&files[0], &second), (&files[2], &first)] {
        assert_eq!(file.status(), FileStatus::Uploaded);
        assert!(file.download_url_expires_at.is_some());
        let (status, downloaded) = app.download(&file.download_url).await;
        assert_eq!(status, 200);
        assert!(&downloaded == bytes, "the download is the upload");
    }
    // A tampered URL is refused by S3.
    let (start, _) = files[0]
        .download_url
        .split_once("X-Amz-Signature=")
        .unwrap();
    let tampered = format!("{start}X-Amz-Signature={}", "0".repeat(64));
    assert_eq!(app.download(&tampered).await.0, 403);
    app.finish().await;
}

/// Clients cache photos by URL: a page read twice must not hand out new URLs.
async fn download_urls_stay_the_same_between_reads(db: Db) {
    let app = TestApp::spawn(db).await;
    let (first, _) = uploaded(&app, &hangout(), "a.jpg", jpeg(10)).await;
    let (second, _) = uploaded(&app, &hangout(), "b.png", png(10)).await;
    let read = || async {
        let files = app.get_files(&[&first, &second]).await.unwrap();
        files
            .into_iter()
            .map(|file| (file.download_url, file.download_url_expires_at.unwrap()))
            .collect::<Vec<_>>()
    };
    let mut before = read().await;
    let mut after = read().await;
    if before[0].1 != after[0].1 {
        // The reads straddled the start of a signing window (every 225 s by default).
        before = after;
        after = read().await;
    }
    assert_eq!(before, after);
    assert_ne!(before[0].0, before[1].0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    for (url, expires_at) in &after {
        let valid_for = u64::try_from(expires_at.seconds).unwrap() - now.as_secs();
        assert!(
            (15 * 60 - 1..=15 * 60 + 225).contains(&valid_for),
            "valid for at least the configured 15 minutes: {valid_for} s"
        );
        // Signed at the start of a window, not at the read: `X-Amz-Date=YYYYMMDDTHHMMSSZ`.
        let date = url.split("X-Amz-Date=").nth(1).unwrap();
        let hms: Vec<u32> = [9..11, 11..13, 13..15]
            .map(|range| date[range].parse().unwrap())
            .to_vec();
        assert_eq!((hms[0] * 3600 + hms[1] * 60 + hms[2]) % 225, 0, "{date}");
        assert_eq!(app.download(url).await.0, 200);
    }
    app.finish().await;
}

async fn presigning_needs_no_round_trip_to_s3(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let bytes = jpeg(500);
    let (id, _) = uploaded(&app, &hangout(), "a.jpg", bytes.clone()).await;
    let mut ids: Vec<String> = (0..499).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    ids.push(id.clone());
    let page: Vec<&str> = ids.iter().map(String::as_str).collect();

    // With S3 down, a page of 500 ids still gets fresh download URLs.
    app.stop_s3().await;
    let files = app.get_files(&page).await.unwrap();
    assert_eq!(files.len(), 1);
    assert!(!files[0].download_url.is_empty());
    app.start_s3().await;
    let (status, downloaded) = app.download(&files[0].download_url).await;
    assert_eq!(status, 200);
    assert!(downloaded == bytes);

    ids.push(uuid::Uuid::new_v4().to_string());
    let too_many: Vec<&str> = ids.iter().map(String::as_str).collect();
    let status = app.get_files(&too_many).await.expect_err("501 ids");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        crate::helpers::violated_field(&status).as_deref(),
        Some("ids")
    );
    app.finish().await;
}

async fn delete_removes_object_and_record_and_is_idempotent(db: Db) {
    let app = TestApp::spawn_with(db, short_window()).await;
    let hangout = hangout();
    let (id, memory) = uploaded(&app, &hangout, "gone.jpg", jpeg(1234)).await;
    let (kept, _) = uploaded(&app, &hangout, "kept.jpg", jpeg(99)).await;
    let path = app.object_path(&object_key(&hangout, &memory, &id, "jpg"));
    assert!(path.exists());
    let pending = app
        .create_uploads(&hangout, vec![upload_file("p.jpg", "image/jpeg", &jpeg(5))])
        .await
        .unwrap();
    let pending_id = pending.uploads[0].file_id.clone();

    app.delete_files(&[&id, &pending_id]).await.unwrap();
    assert!(!path.exists(), "the object is gone at once");
    assert!(app.get_files(&[&id, &pending_id]).await.unwrap().is_empty());
    assert_eq!(app.get_files(&[&kept]).await.unwrap().len(), 1);
    // The record stays (hidden) until the upload window has closed, then goes too.
    let gone = eventually(Duration::from_secs(20), || async {
        app.record_count(&id).await == 0 && app.record_count(&pending_id).await == 0
    })
    .await;
    assert!(gone, "the records are gone");
    assert_eq!(app.record_count(&kept).await, 1);

    // Again, with unknown and malformed ids: still fine.
    let unknown = uuid::Uuid::new_v4().to_string();
    app.delete_files(&[&id, &unknown, "garbage"]).await.unwrap();
    app.delete_files(&[]).await.unwrap();
    let status = app.confirm(&[&id]).await.expect_err("deleted");
    assert_eq!(status.code(), Code::NotFound);
    app.finish().await;
}

async fn a_late_upload_after_delete_is_removed_too(db: Db) {
    let app = TestApp::spawn_with(db, short_window()).await;
    let hangout = hangout();
    let bytes = jpeg(321);
    let file = upload_file("late.jpg", "image/jpeg", &bytes);
    let created = app
        .create_uploads(&hangout, vec![file.clone()])
        .await
        .unwrap();
    let upload = &created.uploads[0];
    app.delete_files(&[&upload.file_id]).await.unwrap();
    // The presigned PUT is still valid and S3 accepts it...
    assert!(app.put(upload, bytes, &[]).await.status().is_success());
    let path = app.object_path(&object_key(
        &hangout,
        &file.memory_id,
        &upload.file_id,
        "jpg",
    ));
    assert!(path.exists());
    // ...but the tombstone makes the sweeper remove it once the window has closed.
    let cleaned = eventually(Duration::from_secs(20), || async {
        !path.exists() && app.record_count(&upload.file_id).await == 0
    })
    .await;
    assert!(cleaned, "nothing is left behind");
    app.finish().await;
}

/// Who may see or delete a memory's file is hangout-core's decision (the members of its
/// hangout), so file-core serves and deletes any file the gateway names; only the uploader
/// confirms an upload.
async fn files_are_confirmed_by_their_uploader_and_served_to_whom_the_gateway_names(db: Db) {
    let app = TestApp::spawn(db).await;
    let hangout = hangout();
    let (id, memory) = uploaded(&app, &hangout, "mine.jpg", jpeg(300)).await;
    let member = uuid::Uuid::new_v4().to_string();
    let status = app
        .confirm_as(&member, &[&id])
        .await
        .expect_err("not theirs to confirm");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(app.get_files_as(&member, &[&id]).await.unwrap().len(), 1);
    app.delete_files_as(&member, &[&id]).await.unwrap();
    assert!(app.get_files(&[&id]).await.unwrap().is_empty());
    let removed = eventually(Duration::from_secs(20), || async {
        !app.object_path(&object_key(&hangout, &memory, &id, "jpg"))
            .exists()
    })
    .await;
    assert!(removed, "a co-host's delete of a guest's photo removes it");
    app.finish().await;
}
