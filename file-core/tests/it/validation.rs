//! Every rule of an upload batch and its boundary, each refused with `InvalidArgument` naming
//! the field (`files[1].size`), and nothing written when any file is refused.

use tonic::Code;

use crate::{
    helpers::{Db, MIB, TestApp},
    samples::{hangout, jpeg, upload_file},
};

test_support::on_both_backends!(
    batch_sizes_from_one_to_ten,
    size_limits,
    file_name_rules,
    content_type_rules,
    md5_rules,
    id_rules,
    a_refused_batch_writes_nothing,
);

/// Expects `InvalidArgument` naming `field`.
fn assert_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("the request is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        crate::helpers::violated_field(&status).as_deref(),
        Some(field),
        "{status:?}"
    );
}

async fn batch_sizes_from_one_to_ten(db: Db) {
    let app = TestApp::spawn(db).await;
    let bytes = jpeg(10);
    let batch = |count: usize| -> Vec<_> {
        (0..count)
            .map(|i| upload_file(&format!("{i}.jpg"), "image/jpeg", &bytes))
            .collect()
    };
    assert_invalid(app.create_uploads(&hangout(), batch(0)).await, "files");
    assert_invalid(app.create_uploads(&hangout(), batch(11)).await, "files");
    let ten = app.create_uploads(&hangout(), batch(10)).await.unwrap();
    assert_eq!(ten.uploads.len(), 10);
    assert_eq!(
        app.create_uploads(&hangout(), batch(1))
            .await
            .unwrap()
            .uploads
            .len(),
        1
    );
    app.finish().await;
}

async fn size_limits(db: Db) {
    let app = TestApp::spawn(db).await;
    let valid = upload_file("ok.jpg", "image/jpeg", &jpeg(10));
    let sized = |size: u64| {
        let mut file = upload_file("big.jpg", "image/jpeg", &jpeg(10));
        file.size = size;
        file
    };
    let max = 10 * MIB as u64;
    let created = app
        .create_uploads(&hangout(), vec![valid.clone(), sized(max)])
        .await
        .unwrap();
    assert_eq!(created.uploads.len(), 2);
    let length = created.uploads[1]
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value.clone());
    assert_eq!(length, Some(max.to_string()));
    assert_invalid(
        app.create_uploads(&hangout(), vec![valid.clone(), sized(max + 1)])
            .await,
        "files[1].size",
    );
    assert_invalid(
        app.create_uploads(&hangout(), vec![valid, sized(0)]).await,
        "files[1].size",
    );
    app.finish().await;
}

async fn file_name_rules(db: Db) {
    let app = TestApp::spawn(db).await;
    let valid = upload_file("ok.jpg", "image/jpeg", &jpeg(10));
    let named = |name: &str| upload_file(name, "image/jpeg", &jpeg(10));
    let longest = format!("{}.jpg", "x".repeat(251));
    let too_long = format!("{}.jpg", "x".repeat(252));
    for name in [
        "",
        too_long.as_str(),
        "../etc/passwd.jpg",
        "dir/a.jpg",
        "dir\\a.jpg",
        "a\u{0}.jpg",
        "tab\t.jpg",
        "photo.bmp",
        "photo.jpg.exe",
        "jpg",
        "photo.",
    ] {
        let result = app
            .create_uploads(&hangout(), vec![valid.clone(), named(name)])
            .await;
        assert_invalid(result, "files[1].fileName");
    }
    for name in [longest.as_str(), "Ünïcødé photo.JPEG", "a.b.c.jpg"] {
        let result = app
            .create_uploads(&hangout(), vec![valid.clone(), named(name)])
            .await;
        assert!(result.is_ok(), "{name:?}: {result:?}");
    }
    app.finish().await;
}

async fn content_type_rules(db: Db) {
    let app = TestApp::spawn(db).await;
    let typed = |name: &str, content_type: &str| upload_file(name, content_type, &jpeg(10));
    for (name, content_type) in [
        ("a.jpg", "image/png"),
        ("a.jpg", "image/jpegfoo"),
        ("a.jpg", "image/jpg"),
        ("a.jpg", ""),
        ("a.png", "image/jpeg"),
        ("a.gif", "image/webp"),
        ("a.webp", "image/gif"),
    ] {
        let result = app
            .create_uploads(&hangout(), vec![typed(name, content_type)])
            .await;
        assert_invalid(result, "files[0].contentType");
    }
    for (name, content_type) in [
        ("a.jpg", "IMAGE/JPEG"),
        ("a.jpeg", "image/jpeg; charset=binary"),
        ("a.PNG", "image/png"),
        ("a.gif", " image/gif "),
        ("a.WEBP", "image/webp"),
    ] {
        let result = app
            .create_uploads(&hangout(), vec![typed(name, content_type)])
            .await;
        assert!(result.is_ok(), "{name} {content_type}: {result:?}");
    }
    app.finish().await;
}

async fn md5_rules(db: Db) {
    let app = TestApp::spawn(db).await;
    let valid = upload_file("ok.jpg", "image/jpeg", &jpeg(10));
    for md5 in [
        "",
        "not base64!",
        "AAAA",
        "AAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        let mut file = upload_file("b.jpg", "image/jpeg", &jpeg(10));
        file.md5 = md5.to_owned();
        let result = app
            .create_uploads(&hangout(), vec![valid.clone(), file])
            .await;
        assert_invalid(result, "files[1].md5");
    }
    app.finish().await;
}

async fn id_rules(db: Db) {
    let app = TestApp::spawn(db).await;
    let valid = upload_file("ok.jpg", "image/jpeg", &jpeg(10));
    assert_invalid(
        app.create_uploads("not-a-uuid", vec![valid.clone()]).await,
        "hangoutId",
    );
    let mut bad_memory = upload_file("b.jpg", "image/jpeg", &jpeg(10));
    bad_memory.memory_id = "memory-1".to_owned();
    assert_invalid(
        app.create_uploads(&hangout(), vec![valid.clone(), bad_memory])
            .await,
        "files[1].memoryId",
    );
    let mut same_memory = upload_file("b.jpg", "image/jpeg", &jpeg(10));
    same_memory.memory_id = valid.memory_id.clone();
    assert_invalid(
        app.create_uploads(&hangout(), vec![valid.clone(), same_memory])
            .await,
        "files[1].memoryId",
    );
    assert_invalid(app.confirm(&["nope"]).await, "fileIds[0]");
    let status = app
        .create_uploads_as(None, &hangout(), vec![valid])
        .await
        .expect_err("no caller");
    assert_eq!(status.code(), Code::Unauthenticated);
    app.finish().await;
}

async fn a_refused_batch_writes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let mut files: Vec<_> = (0..5)
        .map(|i| upload_file(&format!("{i}.jpg"), "image/jpeg", &jpeg(10)))
        .collect();
    files[4].size = 10 * MIB as u64 + 1;
    assert_invalid(app.create_uploads(&hangout(), files).await, "files[4].size");
    assert_eq!(app.total_records().await, 0);
    app.finish().await;
}
