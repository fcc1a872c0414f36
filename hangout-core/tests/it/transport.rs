//! Mutual TLS, caller identity, health and shutdown.

use proto::{dev_certs::DevCa, hangout::v1 as pb, tls::TlsFiles};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::helpers::{Db, TestApp, as_user, connect};

async fn health_with(app: &TestApp, client: &TlsFiles) -> Result<ServingStatus, tonic::Status> {
    let channel = connect(app.addr, client).await;
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|response| response.into_inner().status())
}

#[tokio::test]
async fn the_gateway_certificate_is_served() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let status = health_with(&app, &app.certs.gateway).await;
    assert_eq!(status.unwrap(), ServingStatus::Serving);
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&app.certs.server.ca).unwrap(),
        ))
        .domain_name("hangout-core");
    let channel =
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", app.addr.port()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_lazy();
    let result = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await;
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let other_ca = DevCa::new("someone else's CA").unwrap();
    let dir = app.certs.dir.join("other");
    let mut files = proto::dev_certs::write_pair(
        &dir,
        &other_ca,
        "gateway",
        &other_ca.issue_client("gateway").unwrap(),
    )
    .unwrap();
    // Trust our server (the client side), present the foreign certificate.
    files.ca = app.certs.server.ca.clone();
    assert!(health_with(&app, &files).await.is_err());
}

#[tokio::test]
async fn a_certificate_with_a_name_not_allowed_is_refused() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    for name in ["intruder", "file-core.example"] {
        let files = app.certs.client(name);
        assert!(
            health_with(&app, &files).await.is_err(),
            "{name} was served"
        );
    }
}

#[tokio::test]
async fn each_kind_of_client_reaches_only_its_own_services() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let file_core = connect(app.addr, &app.certs.client("file-core")).await;
    // file-core passes the handshake and is served health, but none of the gateway's services,
    // even with a caller identity it might forge.
    assert_eq!(
        health_with(&app, &app.certs.client("file-core"))
            .await
            .unwrap(),
        ServingStatus::Serving
    );
    let user = uuid::Uuid::now_v7().to_string();
    let refused = pb::hangout_service_client::HangoutServiceClient::new(file_core.clone())
        .list_hangouts(as_user(&user, pb::ListHangoutsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = pb::event_service_client::EventServiceClient::new(file_core.clone())
        .watch_events(pb::WatchEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let report = pb::ReportProcessedRequest::default();
    let answer = pb::file_report_service_client::FileReportServiceClient::new(file_core)
        .report_processed(report.clone())
        .await
        .unwrap();
    assert_eq!(answer.into_inner().recorded, 0);
    // The gateway may not report processing.
    let gateway = connect(app.addr, &app.certs.gateway).await;
    let refused = pb::file_report_service_client::FileReportServiceClient::new(gateway)
        .report_processed(report)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
}

#[tokio::test]
async fn the_allow_list_is_configurable() {
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        config.allowed_clients = vec!["gateway".to_owned(), "bench".to_owned()];
    })
    .await
    .unwrap();
    let bench = app.certs.client("bench");
    assert_eq!(
        health_with(&app, &bench).await.unwrap(),
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn plaintext_is_refused() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", app.addr.port()))
            .unwrap()
            .connect_lazy();
    let result = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn calls_without_a_caller_identity_are_unauthenticated() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let status = app
        .hangouts()
        .list_hangouts(pb::ListHangoutsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = app
        .list_hangouts("not-a-uuid", pb::ListHangoutsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn shutdown_drains_and_stops_serving() {
    let mut app = TestApp::spawn(Db::Sqlite).await.unwrap();
    app.stop().await;
    let result = health_with(&app, &app.certs.gateway).await;
    assert!(result.is_err(), "still serving after shutdown: {result:?}");
}

#[tokio::test]
async fn start_up_fails_with_the_variable_named() {
    use clap::Parser as _;
    let mut config = hangout_core::Config::parse_from(["hangout-core"]);
    config.tls_ca = "/nonexistent/ca.pem".into();
    let error = match hangout_core::App::build(config).await {
        Err(error) => error,
        Ok(_) => panic!("started without certificates"),
    };
    let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(chain.contains("HANGOUT_CORE_TLS_CA"), "{chain}");
}

#[tokio::test]
async fn deadlines_sent_by_callers_are_honoured() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let mut request = as_user(
        &uuid::Uuid::now_v7().to_string(),
        pb::SignInRequest {
            email: "nobody@example.com".to_owned(),
            password: "whatever-password".to_owned(),
        },
    );
    // Sign-in costs a password hash (tens of milliseconds): far longer than this deadline.
    request.set_timeout(std::time::Duration::from_micros(1));
    let status = app.auth().sign_in(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
}
