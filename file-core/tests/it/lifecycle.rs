//! The background sweeper, and failure injection: S3 stopping in the middle of a delete loses
//! nothing, because the record stays DELETING until the sweeper has removed the object.

use std::time::Duration;

use crate::{
    helpers::{Db, Options, TestApp, eventually},
    samples::{hangout, jpeg, object_key, upload_file},
};

test_support::on_both_backends!(
    the_sweeper_removes_expired_pending_files_and_their_objects,
    an_s3_outage_during_delete_loses_nothing,
);

async fn the_sweeper_removes_expired_pending_files_and_their_objects(db: Db) {
    let app = TestApp::spawn_with(
        db,
        Options {
            upload_url_ttl: Duration::from_secs(2),
            pending_grace: Duration::ZERO,
            sweep_interval: Duration::from_millis(200),
            ..Options::default()
        },
    )
    .await;
    let hangout = hangout();
    let bytes = [jpeg(100), jpeg(200), jpeg(300)];
    let files: Vec<_> = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| upload_file(&format!("{i}.jpg"), "image/jpeg", b))
        .collect();
    let created = app.create_uploads(&hangout, files.clone()).await.unwrap();
    let ids: Vec<&str> = created.uploads.iter().map(|u| u.file_id.as_str()).collect();
    // 0: uploaded but never confirmed; 1: never uploaded; 2: uploaded and confirmed (kept).
    for index in [0, 2] {
        let response = app
            .put(&created.uploads[index], bytes[index].clone(), &[])
            .await;
        assert!(response.status().is_success());
    }
    assert_eq!(app.confirm(&[ids[2]]).await.unwrap().confirmed.len(), 1);
    let path = |index: usize| {
        app.object_path(&object_key(
            &hangout,
            &files[index].memory_id,
            ids[index],
            "jpg",
        ))
    };
    assert!(path(0).exists());

    let swept = eventually(Duration::from_secs(20), || async {
        app.record_count(ids[0]).await == 0 && app.record_count(ids[1]).await == 0
    })
    .await;
    assert!(swept, "expired PENDING files are swept");
    assert!(!path(0).exists(), "with their objects");
    assert_eq!(app.record_count(ids[2]).await, 1, "UPLOADED files stay");
    assert!(path(2).exists());
    app.finish().await;
}

async fn an_s3_outage_during_delete_loses_nothing(db: Db) {
    let mut app = TestApp::spawn_with(
        db,
        Options {
            upload_url_ttl: Duration::from_secs(2),
            sweep_interval: Duration::from_millis(200),
            ..Options::default()
        },
    )
    .await;
    let hangout = hangout();
    let bytes = jpeg(777);
    let file = upload_file("a.jpg", "image/jpeg", &bytes);
    let created = app
        .create_uploads(&hangout, vec![file.clone()])
        .await
        .unwrap();
    let id = created.uploads[0].file_id.clone();
    assert!(
        app.put(&created.uploads[0], bytes, &[])
            .await
            .status()
            .is_success()
    );
    assert_eq!(app.confirm(&[&id]).await.unwrap().confirmed.len(), 1);
    let path = app.object_path(&object_key(&hangout, &file.memory_id, &id, "jpg"));

    app.stop_s3().await;
    app.delete_files(&[&id])
        .await
        .expect("the deletion is accepted");
    assert!(
        app.get_files(&[&id]).await.unwrap().is_empty(),
        "hidden at once"
    );
    assert_eq!(
        app.record_count(&id).await,
        1,
        "the record is kept for the retry"
    );
    assert!(path.exists(), "S3 was down, so the object is still there");

    app.start_s3().await;
    let cleaned = eventually(Duration::from_secs(30), || async {
        app.record_count(&id).await == 0
    })
    .await;
    assert!(cleaned, "the sweeper retried the deletion");
    assert!(!path.exists(), "nothing is left in the bucket");
    app.finish().await;
}
