//! Uploads end to end: presigned PUTs over plain HTTP, then confirm. Every way a client can get
//! an upload wrong is caught, at S3 (the signature binds type, MD5, length and encryption) or at
//! confirm (which reads the bytes back), with the right reason.

use std::time::Duration;

use proto::file::v1::{self as pb, FileStatus, UploadFailureReason};

use crate::{
    helpers::{Db, MIB, Options, TestApp},
    samples::{hangout, jpeg, object_key, png, upload_file},
};

test_support::on_both_backends!(
    a_correct_upload_confirms,
    the_presigned_put_binds_type_md5_length_and_encryption,
    wrong_bytes_are_caught,
    a_wrong_length_fails_at_s3,
    a_wrong_content_type_fails_at_s3,
    a_non_image_disguised_as_jpeg_is_a_content_mismatch,
    a_missing_or_resized_object_is_reported,
    exactly_ten_mib_uploads_and_confirms,
    confirming_an_uploaded_file_again_is_a_no_op,
    an_expired_upload_url_fails_at_s3,
);

fn reasons(response: &pb::ConfirmUploadsResponse) -> Vec<(String, UploadFailureReason)> {
    response
        .failures
        .iter()
        .map(|failure| (failure.file_id.clone(), failure.reason()))
        .collect()
}

async fn a_correct_upload_confirms(db: Db) {
    let app = TestApp::spawn(db).await;
    let hangout = hangout();
    let bytes = [jpeg(2048), png(4096)];
    let declared = vec![
        upload_file("beach.JPG", "image/jpeg", &bytes[0]),
        upload_file("sunset.png", "image/png; charset=binary", &bytes[1]),
    ];
    let created = app
        .create_uploads(&hangout, declared.clone())
        .await
        .unwrap();
    assert_eq!(created.uploads.len(), 2);
    for ((upload, file), body) in created.uploads.iter().zip(&declared).zip(&bytes) {
        assert_eq!(
            upload.memory_id, file.memory_id,
            "uploads follow request order"
        );
        let response = app.put(upload, body.clone(), &[]).await;
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }
    let ids: Vec<&str> = created.uploads.iter().map(|u| u.file_id.as_str()).collect();

    let pending = app.get_files(&ids).await.unwrap();
    assert!(pending.iter().all(|f| f.status() == FileStatus::Pending));
    assert!(pending.iter().all(|f| f.download_url.is_empty()));

    let confirmed = app.confirm(&ids).await.unwrap();
    assert!(confirmed.failures.is_empty(), "{:?}", confirmed.failures);
    assert_eq!(confirmed.confirmed.len(), 2);
    let first = &confirmed.confirmed[0];
    assert_eq!(first.status(), FileStatus::Uploaded);
    assert_eq!(first.file_name, "beach.JPG");
    assert_eq!(first.content_type, "image/jpeg");
    assert_eq!(first.hangout_id, hangout);
    assert_eq!(first.size, 2048);
    assert_eq!(confirmed.confirmed[1].content_type, "image/png");

    // The key is built from ids only, never from the client's file name.
    let key = object_key(&hangout, &declared[0].memory_id, ids[0], "jpg");
    assert_eq!(std::fs::read(app.object_path(&key)).unwrap(), bytes[0]);
    app.finish().await;
}

async fn the_presigned_put_binds_type_md5_length_and_encryption(db: Db) {
    let app = TestApp::spawn_with(
        db,
        Options {
            encryption: file_core::s3::Encryption::Aes256,
            ..Options::default()
        },
    )
    .await;
    let bytes = jpeg(100);
    let file = upload_file("a.jpeg", "image/jpeg", &bytes);
    let created = app
        .create_uploads(&hangout(), vec![file.clone()])
        .await
        .unwrap();
    let upload = &created.uploads[0];
    assert_eq!(upload.method, "PUT");
    let header = |name: &str| {
        upload
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.clone())
    };
    assert_eq!(header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(header("content-md5"), Some(file.md5.clone()));
    assert_eq!(header("content-length").as_deref(), Some("100"));
    assert_eq!(
        header("x-amz-server-side-encryption").as_deref(),
        Some("AES256")
    );
    let signed = upload
        .url
        .split_once("X-Amz-SignedHeaders=")
        .map(|(_, rest)| {
            rest.split('&')
                .next()
                .unwrap_or_default()
                .replace("%3B", ";")
        })
        .unwrap();
    for name in [
        "content-length",
        "content-md5",
        "content-type",
        "host",
        "x-amz-server-side-encryption",
    ] {
        assert!(
            signed.split(';').any(|s| s == name),
            "{name} not in {signed}"
        );
    }
    assert!(upload.url.contains("X-Amz-Expires=900"), "{}", upload.url);
    let expires = upload.expires_at.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((expires.seconds - now - 900).abs() <= 5);

    // Leaving out the encryption header breaks the signature.
    let mut without_sse = upload.clone();
    without_sse
        .headers
        .retain(|h| !h.name.eq_ignore_ascii_case("x-amz-server-side-encryption"));
    let response = app.put(&without_sse, bytes, &[]).await;
    assert_eq!(response.status().as_u16(), 403);
    app.finish().await;

    // By default no encryption is asked (what a MinIO without a KMS accepts): no header.
    let app = TestApp::spawn(db).await;
    let bytes = jpeg(100);
    let created = app
        .create_uploads(
            &hangout(),
            vec![upload_file("b.jpeg", "image/jpeg", &bytes)],
        )
        .await
        .unwrap();
    let upload = &created.uploads[0];
    assert!(
        upload
            .headers
            .iter()
            .all(|h| !h.name.eq_ignore_ascii_case("x-amz-server-side-encryption")),
        "{:?}",
        upload.headers
    );
    assert!(
        !upload.url.contains("x-amz-server-side-encryption"),
        "{}",
        upload.url
    );
    let response = app.put(upload, bytes, &[]).await;
    assert!(response.status().is_success(), "{}", response.status());
    app.finish().await;
}

async fn wrong_bytes_are_caught(db: Db) {
    let app = TestApp::spawn(db).await;
    let declared = jpeg(1000);
    let created = app
        .create_uploads(
            &hangout(),
            vec![upload_file("a.jpg", "image/jpeg", &declared)],
        )
        .await
        .unwrap();
    let upload = &created.uploads[0];
    let mut other = declared.clone();
    other[500] ^= 0xFF;

    // Same length and the declared Content-MD5: S3 answers BadDigest. The embedded server keeps
    // the bytes anyway, so confirm must (and does) catch them.
    let response = app.put(upload, other.clone(), &[]).await;
    assert!(!response.status().is_success());

    // A Content-MD5 matching the other bytes is not the signed one.
    let forged = file_core::domain::file::Md5Digest::of(&other).to_base64();
    let response = app.put(upload, other, &[("content-md5", &forged)]).await;
    assert_eq!(response.status().as_u16(), 403);

    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert!(confirmed.confirmed.is_empty());
    assert_eq!(
        reasons(&confirmed),
        vec![(
            upload.file_id.clone(),
            UploadFailureReason::ChecksumMismatch
        )]
    );
    let files = app.get_files(&[&upload.file_id]).await.unwrap();
    assert_eq!(
        files[0].status(),
        FileStatus::Pending,
        "failures stay PENDING"
    );

    // The right bytes afterwards still confirm.
    let response = app.put(upload, declared, &[]).await;
    assert!(response.status().is_success());
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(confirmed.confirmed.len(), 1);
    app.finish().await;
}

async fn a_wrong_length_fails_at_s3(db: Db) {
    let app = TestApp::spawn(db).await;
    let declared = jpeg(1000);
    let created = app
        .create_uploads(
            &hangout(),
            vec![upload_file("a.jpg", "image/jpeg", &declared)],
        )
        .await
        .unwrap();
    let upload = &created.uploads[0];
    for body in [jpeg(1001), jpeg(999)] {
        let response = app.put(upload, body, &[]).await;
        assert_eq!(response.status().as_u16(), 403);
    }
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(
        reasons(&confirmed),
        vec![(upload.file_id.clone(), UploadFailureReason::NotUploaded)]
    );
    app.finish().await;
}

async fn a_wrong_content_type_fails_at_s3(db: Db) {
    let app = TestApp::spawn(db).await;
    let declared = jpeg(1000);
    let created = app
        .create_uploads(
            &hangout(),
            vec![upload_file("a.jpg", "image/jpeg", &declared)],
        )
        .await
        .unwrap();
    let upload = &created.uploads[0];
    for content_type in ["image/png", "application/octet-stream", "image/jpeg; x=1"] {
        let response = app
            .put(upload, declared.clone(), &[("content-type", content_type)])
            .await;
        assert_eq!(response.status().as_u16(), 403, "{content_type}");
    }
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(
        reasons(&confirmed),
        vec![(upload.file_id.clone(), UploadFailureReason::NotUploaded)]
    );
    app.finish().await;
}

async fn a_non_image_disguised_as_jpeg_is_a_content_mismatch(db: Db) {
    let app = TestApp::spawn(db).await;
    let text = b"#!/bin/sh\necho definitely not a photo\n".to_vec();
    let png_bytes = png(300);
    let created = app
        .create_uploads(
            &hangout(),
            vec![
                upload_file("holiday.jpg", "image/jpeg", &text),
                upload_file("actually-png.jpg", "image/jpeg", &png_bytes),
            ],
        )
        .await
        .unwrap();
    for (upload, body) in created.uploads.iter().zip([text, png_bytes]) {
        let response = app.put(upload, body, &[]).await;
        assert!(response.status().is_success(), "S3 cannot tell");
    }
    let ids: Vec<&str> = created.uploads.iter().map(|u| u.file_id.as_str()).collect();
    let confirmed = app.confirm(&ids).await.unwrap();
    assert!(confirmed.confirmed.is_empty());
    assert_eq!(
        reasons(&confirmed),
        vec![
            (ids[0].to_owned(), UploadFailureReason::ContentMismatch),
            (ids[1].to_owned(), UploadFailureReason::ContentMismatch),
        ]
    );
    app.finish().await;
}

async fn a_missing_or_resized_object_is_reported(db: Db) {
    let app = TestApp::spawn(db).await;
    let hangout = hangout();
    let good = jpeg(500);
    let files = vec![
        upload_file("good.jpg", "image/jpeg", &good),
        upload_file("never.jpg", "image/jpeg", &jpeg(500)),
        upload_file("resized.jpg", "image/jpeg", &jpeg(500)),
    ];
    let created = app.create_uploads(&hangout, files.clone()).await.unwrap();
    let ids: Vec<&str> = created.uploads.iter().map(|u| u.file_id.as_str()).collect();
    assert!(
        app.put(&created.uploads[0], good, &[])
            .await
            .status()
            .is_success()
    );
    // A server that does not enforce the signed length could store other sizes; simulate one.
    let key = object_key(&hangout, &files[2].memory_id, ids[2], "jpg");
    let path = app.object_path(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, jpeg(400)).unwrap();

    let confirmed = app.confirm(&ids).await.unwrap();
    assert_eq!(confirmed.confirmed.len(), 1);
    assert_eq!(confirmed.confirmed[0].id, ids[0]);
    assert_eq!(
        reasons(&confirmed),
        vec![
            (ids[1].to_owned(), UploadFailureReason::NotUploaded),
            (ids[2].to_owned(), UploadFailureReason::SizeMismatch),
        ]
    );
    app.finish().await;
}

async fn exactly_ten_mib_uploads_and_confirms(db: Db) {
    let app = TestApp::spawn(db).await;
    let bytes = png(10 * MIB);
    let created = app
        .create_uploads(
            &hangout(),
            vec![upload_file("big.png", "image/png", &bytes)],
        )
        .await
        .unwrap();
    let upload = &created.uploads[0];
    let response = app.put(upload, bytes.clone(), &[]).await;
    assert!(response.status().is_success());
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(confirmed.confirmed.len(), 1, "{:?}", confirmed.failures);
    let (status, downloaded) = app.download(&confirmed.confirmed[0].download_url).await;
    assert_eq!(status, 200);
    assert!(downloaded == bytes, "the download is the upload");
    app.finish().await;
}

async fn confirming_an_uploaded_file_again_is_a_no_op(db: Db) {
    let app = TestApp::spawn(db).await;
    let bytes = jpeg(64);
    let created = app
        .create_uploads(&hangout(), vec![upload_file("a.jpg", "image/jpeg", &bytes)])
        .await
        .unwrap();
    let id = created.uploads[0].file_id.clone();
    assert!(
        app.put(&created.uploads[0], bytes, &[])
            .await
            .status()
            .is_success()
    );
    let first = app.confirm(&[&id]).await.unwrap();
    assert_eq!(first.confirmed.len(), 1);
    // Even with the object gone, an UPLOADED file is not checked again.
    let again = app.confirm(&[&id, &id]).await.unwrap();
    assert!(again.failures.is_empty());
    assert_eq!(again.confirmed.len(), 1);
    assert_eq!(again.confirmed[0].status(), FileStatus::Uploaded);
    app.finish().await;
}

/// An expired presigned URL fails at S3; the file stays PENDING and confirm says so.
async fn an_expired_upload_url_fails_at_s3(db: Db) {
    let app = TestApp::spawn_with(
        db,
        Options {
            upload_url_ttl: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    let bytes = jpeg(100);
    let created = app
        .create_uploads(&hangout(), vec![upload_file("a.jpg", "image/jpeg", &bytes)])
        .await
        .unwrap();
    let upload = &created.uploads[0];
    // Waiting for time itself to pass, not for a server: the URL's signing time has one-second
    // precision and S3 refuses it once more than a second has passed since.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = app.put(upload, bytes, &[]).await;
    assert_eq!(response.status().as_u16(), 403);
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(
        reasons(&confirmed),
        vec![(upload.file_id.clone(), UploadFailureReason::NotUploaded)]
    );
    app.finish().await;
}
