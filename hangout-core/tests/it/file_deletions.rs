//! The file deletions hangout-core owes file-core, and which files memories hold: what
//! file-core asks over `FileReportService` so that no file outlives its memory.

use std::collections::BTreeSet;

use proto::hangout::v1::{self as pb, file_report_service_client::FileReportServiceClient};
use tonic::{Code, transport::Channel};

use crate::{
    helpers::{TestApp, connect, hangout, within},
    sharing::{create_memory, delete_memory},
};

on_both_backends!(deleted_memories_owe_their_files_until_file_core_confirms);

/// `FileReportService` as file-core reaches it, with its own certificate.
async fn file_core(app: &TestApp) -> FileReportServiceClient<Channel> {
    FileReportServiceClient::new(connect(app.addr, &app.certs.client("file-core")).await)
}

/// A memory of `hangout_id` holding a new file; returns both ids.
async fn memory_with_file(
    app: &TestApp,
    user: &str,
    hangout_id: &str,
    name: &str,
) -> (String, String) {
    let memory = create_memory(app, user, hangout_id, name).await.unwrap();
    let file = uuid::Uuid::new_v4().to_string();
    app.attach_memory_files(
        user,
        pb::AttachMemoryFilesRequest {
            links: vec![pb::MemoryFileLink {
                memory_id: memory.clone(),
                file_id: file.clone(),
            }],
        },
    )
    .await
    .unwrap();
    (memory, file)
}

async fn owed(reports: &mut FileReportServiceClient<Channel>) -> BTreeSet<String> {
    reports
        .owed_file_deletions(pb::OwedFileDeletionsRequest { limit: 0 })
        .await
        .unwrap()
        .into_inner()
        .file_ids
        .into_iter()
        .collect()
}

async fn held(
    reports: &mut FileReportServiceClient<Channel>,
    files: &[&String],
) -> BTreeSet<String> {
    reports
        .held_files(pb::HeldFilesRequest {
            file_ids: files.iter().map(|file| (*file).clone()).collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .file_ids
        .into_iter()
        .collect()
}

async fn confirm(reports: &mut FileReportServiceClient<Channel>, files: &[&String]) {
    reports
        .confirm_file_deletions(pb::ConfirmFileDeletionsRequest {
            file_ids: files.iter().map(|file| (*file).clone()).collect(),
        })
        .await
        .unwrap();
}

fn set(files: &[&String]) -> BTreeSet<String> {
    files.iter().map(|file| (*file).clone()).collect()
}

async fn deleted_memories_owe_their_files_until_file_core_confirms(app: TestApp) {
    let owner = app.user("owner").await;
    let trip = app.create_hangout(&owner, hangout("Trip", 1)).await.id;
    let party = app.create_hangout(&owner, hangout("Party", 2)).await.id;
    let (photo, photo_file) = memory_with_file(&app, &owner, &trip, "a.png").await;
    let (_, kept_file) = memory_with_file(&app, &owner, &trip, "b.png").await;
    let (_, party_file) = memory_with_file(&app, &owner, &party, "c.png").await;
    // A memory whose file was never recorded owes nothing.
    create_memory(&app, &owner, &party, "d.png").await.unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();
    let mut reports = file_core(&app).await;

    assert_eq!(
        held(
            &mut reports,
            &[&photo_file, &kept_file, &party_file, &unknown]
        )
        .await,
        set(&[&photo_file, &kept_file, &party_file])
    );
    assert!(owed(&mut reports).await.is_empty());

    delete_memory(&app, &owner, &photo).await.unwrap();
    app.delete_hangout(&owner, pb::DeleteHangoutRequest { id: party })
        .await
        .unwrap();
    let both = set(&[&photo_file, &party_file]);
    assert_eq!(owed(&mut reports).await, both);
    // Handed out again until confirmed.
    assert_eq!(owed(&mut reports).await, both);
    assert_eq!(
        held(&mut reports, &[&photo_file, &kept_file, &party_file]).await,
        set(&[&kept_file])
    );

    confirm(&mut reports, &[&photo_file]).await;
    assert_eq!(owed(&mut reports).await, set(&[&party_file]));
    // Confirming again, or an unknown file, is harmless.
    confirm(&mut reports, &[&photo_file, &party_file, &unknown]).await;
    assert!(owed(&mut reports).await.is_empty());

    // Bounds.
    let ids = |count: usize| {
        (0..count)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect()
    };
    let refusals = [
        reports
            .owed_file_deletions(pb::OwedFileDeletionsRequest { limit: 101 })
            .await
            .unwrap_err(),
        reports
            .confirm_file_deletions(pb::ConfirmFileDeletionsRequest { file_ids: ids(101) })
            .await
            .unwrap_err(),
        reports
            .held_files(pb::HeldFilesRequest { file_ids: ids(501) })
            .await
            .unwrap_err(),
        reports
            .held_files(pb::HeldFilesRequest {
                file_ids: vec!["not-an-id".to_owned()],
            })
            .await
            .unwrap_err(),
    ];
    for refused in refusals {
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    // The gateway may not ask.
    let mut as_gateway =
        FileReportServiceClient::new(connect(app.addr, &app.certs.client("gateway")).await);
    let refused = as_gateway
        .owed_file_deletions(pb::OwedFileDeletionsRequest { limit: 0 })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
}

/// The sweeper of abandoned uploads owes the files of the PENDING memories it removes: their
/// upload may have reached file-core although the confirm never reached hangout-core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swept_memories_owe_their_files() {
    let app = TestApp::spawn_with(crate::helpers::Db::Sqlite, |config| {
        // Long enough to record the file before the sweeper takes the memory.
        config.upload_window = std::time::Duration::from_secs(1);
        config.pending_grace = std::time::Duration::ZERO;
        config.sweep_interval = std::time::Duration::from_millis(20);
    })
    .await
    .unwrap();
    let owner = app.user("owner").await;
    let trip = app.create_hangout(&owner, hangout("Trip", 1)).await.id;
    let (_, file) = memory_with_file(&app, &owner, &trip, "a.png").await;
    let mut reports = file_core(&app).await;
    within(async {
        while owed(&mut reports).await.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(owed(&mut reports).await, set(&[&file]));
}
