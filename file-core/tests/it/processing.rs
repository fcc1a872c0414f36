//! Photo processing end to end: real images uploaded through presigned PUTs, confirmed, and
//! turned into renditions by a worker, in the service process or in a worker process.

use std::time::Duration;

use proto::file::v1::{self as pb, ImageSize, Processing};

use crate::{
    helpers::{Db, Options, TestApp, amqp_url, eventually, rabbitmq},
    photos::{assert_no_metadata, jpeg_declaring, marked, phone_jpeg, two_frame_gif},
    samples::{hangout, jpeg, upload_file},
};

test_support::on_both_backends!(
    a_confirmed_photo_becomes_renditions_without_metadata,
    others_see_nothing_of_a_photo_until_it_is_ready,
    bad_images_end_failed_and_can_be_deleted,
    deleting_a_processed_photo_leaves_nothing_in_the_bucket,
    a_worker_process_does_the_jobs_of_the_service,
    a_job_whose_worker_died_is_done_again,
    object_storage_down_is_retried_then_dead_lettered,
    jobs_reach_worker_processes_through_rabbitmq,
    a_rabbitmq_restart_loses_no_job,
    through_rabbitmq_a_job_whose_worker_died_is_done_again,
);

const ALL_SIZES: [ImageSize; 3] = [ImageSize::Thumbnail, ImageSize::Preview, ImageSize::Full];
const WAIT: Duration = Duration::from_secs(30);

/// Uploads and confirms `bytes` as the app's user; the file's id.
async fn upload_photo(app: &TestApp, name: &str, content_type: &str, bytes: &[u8]) -> String {
    let created = app
        .create_uploads(&hangout(), vec![upload_file(name, content_type, bytes)])
        .await
        .unwrap();
    let upload = &created.uploads[0];
    let response = app.put(upload, bytes.to_vec(), &[]).await;
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(confirmed.confirmed.len(), 1, "{:?}", confirmed.failures);
    assert_eq!(confirmed.confirmed[0].processing(), Processing::Queued);
    upload.file_id.clone()
}

/// The file once its processing is no longer QUEUED.
async fn processed(app: &TestApp, id: &str) -> pb::File {
    let done = eventually(WAIT, || async {
        let file = app.get_files(&[id]).await.unwrap().remove(0);
        file.processing() != Processing::Queued
    })
    .await;
    let file = app.get_files(&[id]).await.unwrap().remove(0);
    assert!(done, "still queued: {file:?}");
    file
}

fn other_member() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn a_confirmed_photo_becomes_renditions_without_metadata(db: Db) {
    let app = TestApp::spawn(db).await;
    let original = phone_jpeg(&marked(1200, 900), 6, "2024:07:14 18:30:05", "+02:00");
    let id = upload_photo(&app, "beach.jpg", "image/jpeg", &original).await;
    let file = processed(&app, &id).await;
    assert_eq!(file.processing(), Processing::Ready);
    assert_eq!((file.width, file.height), (900, 1200), "turned upright");
    assert_eq!(file.taken_at.unwrap().seconds, 1_720_974_605);
    assert!(
        app.db().report(&id).await.is_some(),
        "the outcome waits to be reported to hangout-core"
    );

    // The uploader downloads the exact bytes uploaded; renditions are signed when asked for.
    let (status, body) = app.download(&file.download_url).await;
    assert_eq!((status, body == original), (200, true));
    let mine = app
        .get_images_as(&app.user, &[&id], &ALL_SIZES)
        .await
        .unwrap()
        .remove(0);
    let sizes: Vec<ImageSize> = mine.images.iter().map(pb::Image::size).collect();
    assert_eq!(sizes, ALL_SIZES);
    let mut full_rendition = Vec::new();
    for (image, longest) in mine.images.iter().zip([320, 1200, 1200]) {
        assert!(image.url.contains("/media/"), "{}", image.url);
        let (status, bytes) = app.download(&image.url).await;
        assert_eq!(status, 200);
        assert_no_metadata(&bytes);
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!(decoded.width().max(decoded.height()), longest);
        assert!(decoded.height() > decoded.width(), "upright");
        if image.size() == ImageSize::Full {
            full_rendition = bytes;
        }
    }

    // Another member's download is the FULL rendition, never the quarantined original.
    let theirs = app
        .get_images_as(&other_member(), &[&id], &[ImageSize::Thumbnail])
        .await
        .unwrap()
        .remove(0);
    assert!(!theirs.download_url.contains("/quarantine/"));
    let (status, body) = app.download(&theirs.download_url).await;
    assert_eq!((status, body == full_rendition), (200, true));
    assert_eq!(theirs.images.len(), 1);
    app.finish().await;
}

async fn others_see_nothing_of_a_photo_until_it_is_ready(db: Db) {
    let options = Options {
        processing_workers: 0,
        ..Options::default()
    };
    let app = TestApp::spawn_with(db, options).await;
    let id = upload_photo(&app, "a.gif", "image/gif", &two_frame_gif(40, 30)).await;
    let mine = app
        .get_images_as(&app.user, &[&id], &ALL_SIZES)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(mine.processing(), Processing::Queued);
    assert!(
        mine.download_url.contains("/quarantine/"),
        "{}",
        mine.download_url
    );
    assert!(mine.images.is_empty());
    assert_eq!((mine.width, mine.height, mine.taken_at), (0, 0, None));
    let theirs = app
        .get_images_as(&other_member(), &[&id], &ALL_SIZES)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(theirs.download_url, "");
    assert!(theirs.images.is_empty());
    app.finish().await;
}

async fn bad_images_end_failed_and_can_be_deleted(db: Db) {
    let app = TestApp::spawn(db).await;
    let mut ids = Vec::new();
    // Magic bytes and noise; a bomb; a truncated photo.
    ids.push(upload_photo(&app, "noise.jpg", "image/jpeg", &jpeg(4096)).await);
    ids.push(
        upload_photo(
            &app,
            "bomb.jpg",
            "image/jpeg",
            &jpeg_declaring(60_000, 60_000),
        )
        .await,
    );
    let whole = phone_jpeg(&marked(300, 200), 1, "2024:01:01 00:00:00", "+00:00");
    ids.push(upload_photo(&app, "cut.jpg", "image/jpeg", &whole[..whole.len() / 2]).await);
    for id in &ids {
        let file = processed(&app, id).await;
        assert_eq!(file.processing(), Processing::Failed, "{id}");
        assert!(!file.download_url.is_empty(), "its uploader still sees it");
        let theirs = app
            .get_images_as(&other_member(), &[id], &ALL_SIZES)
            .await
            .unwrap()
            .remove(0);
        assert_eq!((theirs.download_url.as_str(), theirs.images.len()), ("", 0));
        assert_eq!(
            app.db().job(id).await,
            None,
            "a refused image is not retried"
        );
        assert!(
            app.db().report(id).await.is_some(),
            "the failure waits to be reported"
        );
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.delete_files(&refs).await.unwrap();
    assert!(app.get_files(&refs).await.unwrap().is_empty());
    app.finish().await;
}

/// Files under the bucket's folder of the embedded server whose path contains `part`.
fn objects_named(app: &TestApp, part: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(&app.object_path(""), &mut found);
    found
        .into_iter()
        .filter(|path| path.contains(part) && !path.contains(".s3s"))
        .collect()
}

async fn deleting_a_processed_photo_leaves_nothing_in_the_bucket(db: Db) {
    let app = TestApp::spawn(db).await;
    let original = phone_jpeg(&marked(400, 300), 1, "2024:01:01 00:00:00", "+00:00");
    let id = upload_photo(&app, "a.jpg", "image/jpeg", &original).await;
    assert_eq!(processed(&app, &id).await.processing(), Processing::Ready);
    assert_eq!(
        objects_named(&app, &id).len(),
        4,
        "{:?}",
        objects_named(&app, &id)
    );
    app.delete_files(&[&id]).await.unwrap();
    assert_eq!(objects_named(&app, &id), Vec::<String>::new());
    // Nor the embedded server's sidecar files of the objects, nor their folders.
    let names = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let sidecars: Vec<String> = names(&app.s3_dir)
        .into_iter()
        .filter(|name| name.contains(".object-"))
        .collect();
    assert_eq!(sidecars, Vec::<String>::new());
    let folders: Vec<String> = names(&app.object_path(""))
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert_eq!(folders, Vec::<String>::new());
    app.finish().await;
}

async fn a_worker_process_does_the_jobs_of_the_service(db: Db) {
    let options = Options {
        processing_workers: 0,
        ..Options::default()
    };
    let mut app = TestApp::spawn_with(db, options).await;
    let id = upload_photo(&app, "a.gif", "image/gif", &two_frame_gif(64, 48)).await;
    app.start_worker(Duration::from_secs(60)).await;
    let file = processed(&app, &id).await;
    assert_eq!(file.processing(), Processing::Ready);
    assert_eq!((file.width, file.height), (64, 48));
    app.finish().await;
}

async fn a_job_whose_worker_died_is_done_again(db: Db) {
    let options = Options {
        processing_workers: 0,
        ..Options::default()
    };
    job_whose_worker_died_is_done_again(TestApp::spawn_with(db, options).await).await;
}

async fn through_rabbitmq_a_job_whose_worker_died_is_done_again(db: Db) {
    let Some(broker_url) = amqp_url().await else {
        return;
    };
    let options = Options {
        processing_workers: 0,
        broker_url: Some(broker_url),
        ..Options::default()
    };
    job_whose_worker_died_is_done_again(TestApp::spawn_with(db, options).await).await;
}

async fn job_whose_worker_died_is_done_again(mut app: TestApp) {
    let original = phone_jpeg(&marked(640, 480), 1, "2024:01:01 00:00:00", "+00:00");
    let id = upload_photo(&app, "a.jpg", "image/jpeg", &original).await;
    // A worker claimed the job for 2 s, wrote one rendition, and died.
    let lease_until = (std::time::SystemTime::now() + Duration::from_secs(2))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    app.db()
        .execute(
            "update processing_jobs set attempts = 1, lease_until = cast(? as signed) \
             where file_id = ?",
            &[&lease_until, &id],
        )
        .await;
    app.start_worker(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.get_files(&[&id]).await.unwrap()[0].processing(),
        Processing::Queued,
        "the dead worker's lease still holds"
    );
    let file = processed(&app, &id).await;
    assert_eq!(file.processing(), Processing::Ready);
    assert_eq!(app.db().job(&id).await, None);
    assert_eq!(objects_named(&app, &id).len(), 4, "each rendition once");
    app.finish().await;
}

async fn object_storage_down_is_retried_then_dead_lettered(db: Db) {
    let options = Options {
        processing_workers: 0,
        ..Options::default()
    };
    let mut app = TestApp::spawn_with(db, options).await;
    let original = phone_jpeg(&marked(64, 64), 1, "2024:01:01 00:00:00", "+00:00");
    let first = upload_photo(&app, "a.jpg", "image/jpeg", &original).await;
    app.stop_s3().await;
    app.start_worker(Duration::from_secs(60)).await;
    // Retried while S3 is down (each attempt waits out the SDK's own retries).
    let retried = eventually(WAIT, || async {
        matches!(app.db().job(&first).await, Some((state, attempts, Some(_))) if state == "QUEUED" && attempts >= 2)
    })
    .await;
    assert!(retried, "{:?}", app.db().job(&first).await);
    let dead = eventually(Duration::from_secs(120), || async {
        matches!(app.db().job(&first).await, Some((state, _, _)) if state == "DEAD")
    })
    .await;
    assert!(dead, "{:?}", app.db().job(&first).await);
    app.start_s3().await;
    let file = app.get_files(&[&first]).await.unwrap().remove(0);
    assert_eq!(file.processing(), Processing::Failed);
    assert!(
        app.db().report(&first).await.is_some(),
        "dead-lettered, reported"
    );

    // A job retried while S3 comes back succeeds.
    let second = upload_photo(&app, "b.jpg", "image/jpeg", &original).await;
    assert_eq!(
        processed(&app, &second).await.processing(),
        Processing::Ready
    );
    app.finish().await;
}

/// Photos in the service with no worker of its own, and `workers` worker processes, all
/// through RabbitMQ; `None` when there is no broker.
async fn through_rabbitmq(db: Db) -> Option<TestApp> {
    let broker_url = amqp_url().await?;
    let options = Options {
        processing_workers: 0,
        broker_url: Some(broker_url),
        // Only the broker brings jobs: a poll would hide a lost message.
        ..Options::default()
    };
    Some(TestApp::spawn_with(db, options).await)
}

async fn jobs_reach_worker_processes_through_rabbitmq(db: Db) {
    let Some(mut app) = through_rabbitmq(db).await else {
        return;
    };
    app.start_worker(Duration::from_secs(60)).await;
    app.start_worker(Duration::from_secs(60)).await;
    let mut ids = Vec::new();
    for index in 0..3 {
        let original = phone_jpeg(
            &marked(320 + index * 16, 240),
            1,
            "2024:01:01 00:00:00",
            "+00:00",
        );
        ids.push(upload_photo(&app, &format!("{index}.jpg"), "image/jpeg", &original).await);
    }
    for id in &ids {
        assert_eq!(processed(&app, id).await.processing(), Processing::Ready);
        assert_eq!(objects_named(&app, id).len(), 4, "each rendition once");
        assert_eq!(app.db().job(id).await, None);
    }
    app.finish().await;
}

async fn a_rabbitmq_restart_loses_no_job(db: Db) {
    let Some(mut app) = through_rabbitmq(db).await else {
        return;
    };
    app.start_worker(Duration::from_secs(60)).await;
    let original = phone_jpeg(&marked(200, 100), 1, "2024:01:01 00:00:00", "+00:00");
    let before = upload_photo(&app, "before.jpg", "image/jpeg", &original).await;
    assert_eq!(
        processed(&app, &before).await.processing(),
        Processing::Ready
    );
    // Confirming needs no broker: the jobs wait in the database for it.
    rabbitmq("stop_app").await;
    let during = upload_photo(&app, "during.jpg", "image/jpeg", &original).await;
    rabbitmq("start_app").await;
    let after = upload_photo(&app, "after.jpg", "image/jpeg", &original).await;
    for id in [&during, &after] {
        assert_eq!(processed(&app, id).await.processing(), Processing::Ready);
        assert_eq!(objects_named(&app, id).len(), 4, "each rendition once");
    }
    app.finish().await;
}
