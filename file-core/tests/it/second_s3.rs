//! External mode against a second, independent S3 implementation: moto's server (PyPI
//! `moto[server]`) as a separate process. The rest of the suite runs against the embedded
//! server file-core ships; these check that nothing relies on its quirks: presigned PUTs with
//! their signed Content-MD5 (which moto, unlike AWS, does not check: confirm catches it), HEAD and GET at confirm, presigned downloads, DELETE, the bucket
//! CORS rules a browser on the app's origin needs, and what a client sees while S3 is down.

use std::time::Duration;

use file_core::{
    domain::objects::ObjectStorage as _,
    metrics::Metrics,
    s3::{S3Objects, S3Settings},
};
use proto::file::v1::{self as pb, FileStatus, UploadFailureReason};
use test_support::MotoServer;
use tonic::Code;

use crate::{
    helpers::{BUCKET, Db, Options, TestApp, eventually},
    samples::{hangout, jpeg, object_key, png, upload_file},
};

test_support::on_both_backends!(
    uploads_confirm_download_and_delete_on_moto,
    bytes_that_do_not_match_the_signed_md5_never_confirm,
    the_bucket_cors_rules_let_the_apps_origin_upload,
    while_moto_is_down_confirm_is_unavailable_and_recovers,
);

/// The app's web origin, allowed by the bucket's CORS rules in these tests.
const APP_ORIGIN: &str = "http://app.example.test";

fn on(moto: &MotoServer) -> Options {
    Options {
        external_s3: Some(moto.endpoint()),
        s3_cors_origins: vec![APP_ORIGIN.to_owned()],
        // No photo worker: these tests look at the bucket, which renditions would add to.
        processing_workers: 0,
        // Deleted files' records go soon after their upload window.
        upload_url_ttl: Duration::from_secs(2),
        sweep_interval: Duration::from_millis(200),
        ..Options::default()
    }
}

/// The bucket as a second client sees it: this crate's S3 adapter, on its own connection.
fn bucket(moto: &MotoServer) -> S3Objects {
    let settings = S3Settings {
        endpoint: Some(moto.endpoint()),
        public_endpoint: None,
        region: "us-east-1".to_owned(),
        bucket: BUCKET.to_owned(),
        force_path_style: true,
        access_key_id: "test-access-key".to_owned(),
        secret_access_key: "test-secret-key".to_owned(),
        encryption: file_core::s3::Encryption::None,
    };
    let mut registry = prometheus_client::registry::Registry::default();
    S3Objects::new(&settings, Metrics::register(&mut registry).s3)
}

/// A presigned upload of `bytes` as one JPEG named `name`, to a new hangout.
async fn one_upload(app: &TestApp, name: &str, bytes: &[u8]) -> pb::Upload {
    let created = app
        .create_uploads(&hangout(), vec![upload_file(name, "image/jpeg", bytes)])
        .await
        .expect("presigning needs no S3");
    created.uploads.into_iter().next().expect("one upload")
}

/// The reasons of a confirm's failures, in order.
fn reasons(confirmed: &pb::ConfirmUploadsResponse) -> Vec<UploadFailureReason> {
    confirmed
        .failures
        .iter()
        .map(pb::UploadFailure::reason)
        .collect()
}

async fn uploads_confirm_download_and_delete_on_moto(db: Db) {
    let Some(moto) = MotoServer::start().await else {
        return;
    };
    let app = TestApp::spawn_with(db, on(&moto)).await;
    let bucket = bucket(&moto);
    let hangout = hangout();
    let bytes = [jpeg(4096), png(70_000)];
    let declared = vec![
        upload_file("beach.jpg", "image/jpeg", &bytes[0]),
        upload_file("sunset.png", "image/png", &bytes[1]),
    ];
    let created = app
        .create_uploads(&hangout, declared.clone())
        .await
        .unwrap();
    for (upload, body) in created.uploads.iter().zip(&bytes) {
        assert!(
            upload
                .headers
                .iter()
                .any(|header| header.name.eq_ignore_ascii_case("content-md5")),
            "the upload signs its checksum"
        );
        let response = app.put(upload, body.clone(), &[]).await;
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }
    let ids: Vec<&str> = created.uploads.iter().map(|u| u.file_id.as_str()).collect();
    let confirmed = app.confirm(&ids).await.unwrap();
    assert!(confirmed.failures.is_empty(), "{:?}", confirmed.failures);
    assert!(
        confirmed
            .confirmed
            .iter()
            .all(|file| file.status() == FileStatus::Uploaded)
    );
    let key = object_key(&hangout, &declared[0].memory_id, ids[0], "jpg");
    assert_eq!(
        bucket.object_size(&key).await.unwrap(),
        Some(4096),
        "HEAD on moto"
    );

    let files = app.get_files(&ids).await.unwrap();
    assert_eq!(files.len(), 2);
    let mut urls = Vec::new();
    for (file, body) in files.iter().zip(&bytes) {
        let (status, downloaded) = app.download(&file.download_url).await;
        assert_eq!(status, 200, "presigned GET on moto");
        assert!(&downloaded == body, "the exact bytes");
        urls.push(file.download_url.clone());
    }

    app.delete_files(&ids).await.unwrap();
    assert_eq!(
        bucket.object_size(&key).await.unwrap(),
        None,
        "DELETE on moto"
    );
    for url in &urls {
        let (status, _) = app.download(url).await;
        assert_eq!(status, 404, "a deleted file's URL stops working");
    }
    let records_gone = eventually(Duration::from_secs(20), || async {
        app.total_records().await == 0
    })
    .await;
    assert!(records_gone, "the deleted records are swept");
    let left = bucket.list(None, 100).await.unwrap().objects;
    assert!(left.is_empty(), "nothing outlives its record: {left:?}");
    app.finish().await;
}

async fn bytes_that_do_not_match_the_signed_md5_never_confirm(db: Db) {
    let Some(moto) = MotoServer::start().await else {
        return;
    };
    let app = TestApp::spawn_with(db, on(&moto)).await;
    let declared = jpeg(2000);
    let upload = &one_upload(&app, "a.jpg", &declared).await;
    // Same length and type, other bytes: the Content-MD5 sent no longer matches them.
    let mut other = declared.clone();
    other[1500] ^= 0xff;
    // moto 5 stores it anyway (it does not check Content-MD5, as AWS and the embedded server
    // do), so confirm, which reads the bytes back, is what catches it there.
    let stored = app.put(upload, other, &[]).await.status().is_success();
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    let expected = if stored {
        UploadFailureReason::ChecksumMismatch
    } else {
        UploadFailureReason::NotUploaded
    };
    assert_eq!(reasons(&confirmed), [expected]);
    // The right bytes still go through the same URL.
    assert!(app.put(upload, declared, &[]).await.status().is_success());
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(confirmed.confirmed.len(), 1, "{:?}", confirmed.failures);
    app.finish().await;
}

async fn the_bucket_cors_rules_let_the_apps_origin_upload(db: Db) {
    let Some(moto) = MotoServer::start().await else {
        return;
    };
    let app = TestApp::spawn_with(db, on(&moto)).await;
    let bytes = jpeg(300);
    let upload = &one_upload(&app, "a.jpg", &bytes).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, &upload.url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type,content-md5")
            .send()
    };
    let allowed = preflight(APP_ORIGIN).await.expect("moto answers");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some(APP_ORIGIN)
    );
    assert!(
        header(&allowed, "access-control-allow-methods")
            .is_some_and(|methods| methods.split(',').any(|method| method.trim() == "PUT")),
        "{:?}",
        allowed.headers()
    );
    let refused = preflight("http://elsewhere.example.test")
        .await
        .expect("moto answers");
    assert_eq!(
        refused.status().as_u16(),
        403,
        "an origin the rules do not name is refused"
    );

    // The upload itself, as the browser sends it after the preflight.
    let response = app.put(upload, bytes, &[("origin", APP_ORIGIN)]).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(APP_ORIGIN)
    );
    app.finish().await;
}

async fn while_moto_is_down_confirm_is_unavailable_and_recovers(db: Db) {
    let Some(mut moto) = MotoServer::start().await else {
        return;
    };
    let app = TestApp::spawn_with(db, on(&moto)).await;
    let bytes = jpeg(500);
    let upload = &one_upload(&app, "a.jpg", &bytes).await;
    assert!(
        app.put(upload, bytes.clone(), &[])
            .await
            .status()
            .is_success()
    );

    moto.kill().await;
    // Presigning is local: new uploads are still handed out.
    let more = one_upload(&app, "b.jpg", &bytes).await;
    assert_eq!(more.method, "PUT");
    let status = app
        .confirm(&[&upload.file_id])
        .await
        .expect_err("S3 is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!status.message().contains("127.0.0.1"), "{status:?}");
    assert_eq!(
        app.get_files(&[&upload.file_id]).await.unwrap()[0].status(),
        FileStatus::Pending,
        "nothing half-done"
    );

    // moto comes back empty (it keeps nothing): file-core answers again without a restart,
    // and reports the object it cannot find.
    moto.start_again().await;
    let recovered = eventually(Duration::from_secs(20), || async {
        app.confirm(&[&upload.file_id]).await.is_ok()
    })
    .await;
    assert!(recovered, "confirm answers once S3 is back");
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(reasons(&confirmed), [UploadFailureReason::NotUploaded]);
    app.finish().await;
}
