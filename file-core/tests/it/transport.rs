//! The service's edges: only allow-listed mTLS clients are served; the embedded mode runs the
//! whole flow with nothing installed; presigned URLs can name another endpoint than the one
//! file-core uses.

use proto::file::v1::{self as pb, file_service_client::FileServiceClient};

use crate::{
    helpers::{Db, Options, TestApp},
    samples::{hangout, jpeg, upload_file},
};

test_support::on_both_backends!(
    a_client_outside_the_allow_list_is_refused,
    embedded_mode_runs_the_whole_flow,
    browsers_may_upload_to_the_embedded_server_cross_origin,
    presigned_urls_use_the_public_endpoint,
);

async fn a_client_outside_the_allow_list_is_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    // The intruder's certificate is signed by the right CA but not named in the allow-list.
    let refused = match app.connect_as("intruder").await {
        Err(_) => true,
        Ok(channel) => FileServiceClient::new(channel)
            .get_files(pb::GetFilesRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "a non-allow-listed client must not be served");
    let gateway = app
        .connect_as("gateway")
        .await
        .expect("the gateway is served");
    let mut client = FileServiceClient::new(gateway);
    let mut request = tonic::Request::new(pb::GetFilesRequest::default());
    proto::metadata::set_caller(request.metadata_mut(), Some(&app.user), None);
    assert!(client.get_files(request).await.is_ok());
    app.finish().await;
}

async fn embedded_mode_runs_the_whole_flow(db: Db) {
    let app = TestApp::spawn_with(
        db,
        Options {
            embedded_mode: true,
            ..Options::default()
        },
    )
    .await;
    let bytes = jpeg(4096);
    let created = app
        .create_uploads(&hangout(), vec![upload_file("a.jpg", "image/jpeg", &bytes)])
        .await
        .unwrap();
    let upload = &created.uploads[0];
    assert!(
        upload.url.starts_with("http://127.0.0.1:"),
        "{}",
        upload.url
    );
    assert!(
        app.put(upload, bytes.clone(), &[])
            .await
            .status()
            .is_success()
    );
    let confirmed = app.confirm(&[&upload.file_id]).await.unwrap();
    assert_eq!(confirmed.confirmed.len(), 1, "{:?}", confirmed.failures);
    let (status, downloaded) = app.download(&confirmed.confirmed[0].download_url).await;
    assert_eq!(status, 200);
    assert_eq!(downloaded, bytes);
    // Without a signature the embedded server serves nothing.
    let (unsigned, _) = confirmed.confirmed[0].download_url.split_once('?').unwrap();
    assert_eq!(app.download(unsigned).await.0, 403);
    app.finish().await;
}

async fn presigned_urls_use_the_public_endpoint(db: Db) {
    let app = TestApp::spawn_with(
        db,
        Options {
            public_endpoint: Some("https://files.example.test:8443".to_owned()),
            ..Options::default()
        },
    )
    .await;
    let created = app
        .create_uploads(
            &hangout(),
            vec![upload_file("a.jpg", "image/jpeg", &jpeg(10))],
        )
        .await
        .unwrap();
    let url = &created.uploads[0].url;
    assert!(
        url.starts_with("https://files.example.test:8443/test-files/quarantine/hangouts/"),
        "{url}"
    );
    app.finish().await;
}

async fn browsers_may_upload_to_the_embedded_server_cross_origin(db: Db) {
    let app = TestApp::spawn_with(
        db,
        Options {
            embedded_mode: true,
            ..Options::default()
        },
    )
    .await;
    let bytes = jpeg(1024);
    let created = app
        .create_uploads(&hangout(), vec![upload_file("a.jpg", "image/jpeg", &bytes)])
        .await
        .unwrap();
    let upload = &created.uploads[0];
    let signed: Vec<String> = upload
        .headers
        .iter()
        .map(|header| header.name.to_ascii_lowercase())
        .collect();
    let client = reqwest::Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, &upload.url)
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", signed.join(","))
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = |name: &str| {
        preflight
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(allowed("access-control-allow-origin"), "*");
    assert!(allowed("access-control-allow-methods").contains("put"));
    for header in &signed {
        assert!(
            allowed("access-control-allow-headers").contains(header.as_str()),
            "{header}"
        );
    }
    let put = app
        .put(upload, bytes, &[("origin", "http://localhost:5173")])
        .await;
    assert!(put.status().is_success());
    assert_eq!(
        put.headers()
            .get("access-control-allow-origin")
            .and_then(|value| value.to_str().ok()),
        Some("*")
    );
    app.finish().await;
}
