//! The transactional outbox and `EventService.WatchEvents`: every change records its events
//! once, in commit order without gaps, a watch resumes where it left off, and one that asks
//! for events no longer kept is told so.

use proto::hangout::v1 as pb;
use tokio_stream::StreamExt as _;

use crate::{
    helpers::{TestApp, as_user, connect, hangout},
    sharing::{create_memory, delete_memory, invite, join, sign_up_with},
};

on_both_backends!(
    changes_record_their_events_once_in_order_and_watches_resume,
    a_watch_after_pruned_events_is_out_of_range,
    an_unreadable_event_row_is_passed_not_blocking_the_rest,
    processing_reports_record_memory_updated_for_memories_holding_the_file,
    a_revoked_session_records_its_event_once,
);

/// A watch from `after` (from now when `None`): where it starts and its stream.
async fn watch(app: &TestApp, after: Option<u64>) -> (u64, tonic::Streaming<pb::Event>) {
    let response = app
        .events()
        .watch_events(pb::WatchEventsRequest { after_seq: after })
        .await
        .unwrap();
    let start = response
        .metadata()
        .get(proto::metadata::EVENTS_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("the response says where the watch starts");
    (start, response.into_inner())
}

/// The next `count` events of `stream`.
async fn next(stream: &mut tonic::Streaming<pb::Event>, count: usize) -> Vec<pb::Event> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        events.push(stream.next().await.expect("stream open").unwrap());
    }
    events
}

/// What a test compares: kind, hangout, viewer, subject, reason.
fn summary(event: &pb::Event) -> (pb::EventKind, String, String, String, pb::RemovalReason) {
    (
        event.kind(),
        event.hangout_id.clone(),
        event.viewer_id.clone(),
        event.subject_id.clone(),
        event.reason(),
    )
}

async fn changes_record_their_events_once_in_order_and_watches_resume(mut app: TestApp) {
    use pb::{EventKind as K, RemovalReason as R};
    let owner = app.user("owner").await;
    let guest = app.user("guest").await;
    let outsider = app.user("outsider").await;
    let email = format!("invitee-{}@example.com", uuid::Uuid::new_v4().simple());
    let invitee = sign_up_with(&app, "invitee", &email).await;
    let (start, mut stream) = watch(&app, None).await;

    let created = app.create_hangout(&owner, hangout("Picnic", 3)).await;
    let id = created.id.clone();
    let rename = |user: &str| {
        as_user(
            user,
            pb::UpdateHangoutRequest {
                id: id.clone(),
                title: Some("Picnic in the park".to_owned()),
                ..Default::default()
            },
        )
    };
    app.hangouts().update_hangout(rename(&owner)).await.unwrap();
    // Refused changes record nothing.
    app.hangouts()
        .update_hangout(rename(&outsider))
        .await
        .unwrap_err();
    join(&app, &owner, &id, &guest, pb::HangoutRole::Guest).await;
    app.set_rsvp(
        &guest,
        pb::SetRsvpRequest {
            hangout_id: id.clone(),
            rsvp: pb::RsvpStatus::Going as i32,
        },
    )
    .await
    .unwrap();
    let invitation = invite(
        &app,
        &owner,
        &id,
        pb::HangoutRole::Guest,
        Some(&email),
        None,
    )
    .await
    .unwrap();
    // An invitation to an address without an account is nobody's event yet.
    invite(
        &app,
        &owner,
        &id,
        pb::HangoutRole::Guest,
        Some("nobody-yet@example.com"),
        None,
    )
    .await
    .unwrap();
    let memory = create_memory(&app, &guest, &id, "photo.png").await.unwrap();
    let uploaded = || {
        as_user(
            &guest,
            pb::MarkMemoriesUploadedRequest {
                ids: vec![memory.clone()],
            },
        )
    };
    app.memories()
        .mark_memories_uploaded(uploaded())
        .await
        .unwrap();
    // Confirmed again: no second event.
    app.memories()
        .mark_memories_uploaded(uploaded())
        .await
        .unwrap();
    delete_memory(&app, &guest, &memory).await.unwrap();
    app.leave_hangout(
        &guest,
        pb::LeaveHangoutRequest {
            hangout_id: id.clone(),
        },
    )
    .await
    .unwrap();
    app.delete_hangout(&owner, pb::DeleteHangoutRequest { id: id.clone() })
        .await
        .unwrap();

    let none = String::new();
    let expected = vec![
        (
            K::HangoutAdded,
            id.clone(),
            owner.clone(),
            none.clone(),
            R::Unspecified,
        ),
        (
            K::HangoutUpdated,
            id.clone(),
            none.clone(),
            none.clone(),
            R::Unspecified,
        ),
        (
            K::MemberUpdated,
            id.clone(),
            none.clone(),
            guest.clone(),
            R::Unspecified,
        ),
        (
            K::HangoutAdded,
            id.clone(),
            guest.clone(),
            none.clone(),
            R::Unspecified,
        ),
        (
            K::MemberUpdated,
            id.clone(),
            none.clone(),
            guest.clone(),
            R::Unspecified,
        ),
        (
            K::InvitationReceived,
            id.clone(),
            invitee.clone(),
            invitation.id.clone(),
            R::Unspecified,
        ),
        (
            K::MemoryUpdated,
            id.clone(),
            none.clone(),
            memory.clone(),
            R::Unspecified,
        ),
        (
            K::MemoryDeleted,
            id.clone(),
            none.clone(),
            memory.clone(),
            R::Unspecified,
        ),
        (
            K::MemberLeft,
            id.clone(),
            none.clone(),
            guest.clone(),
            R::Left,
        ),
        (
            K::HangoutRemoved,
            id.clone(),
            guest.clone(),
            none.clone(),
            R::Left,
        ),
        (
            K::HangoutDeleted,
            id.clone(),
            none.clone(),
            none.clone(),
            R::Unspecified,
        ),
        (
            K::HangoutRemoved,
            id.clone(),
            owner.clone(),
            none.clone(),
            R::Deleted,
        ),
    ];
    let events = next(&mut stream, expected.len()).await;
    assert_eq!(events.iter().map(summary).collect::<Vec<_>>(), expected);
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    let consecutive: Vec<u64> = (start + 1..=start + expected.len() as u64).collect();
    assert_eq!(seqs, consecutive, "numbered in order without gaps");
    assert!(events.iter().all(|event| event.occurred_at.is_some()));

    // A watch resuming after any event gets exactly the ones after it.
    let (resumed_at, mut resumed) = watch(&app, Some(seqs[5])).await;
    assert_eq!(resumed_at, seqs[5]);
    let again = next(&mut resumed, expected.len() - 6).await;
    assert_eq!(again, events[6..]);

    // From the very start, too.
    let (_, mut everything) = watch(&app, Some(0)).await;
    let all = next(
        &mut everything,
        usize::try_from(start).unwrap() + expected.len(),
    )
    .await;
    assert_eq!(all[all.len() - expected.len()..], events[..]);

    // A server with open watches still stops.
    app.stop().await;
    assert!(stream.next().await.is_none_or(|end| end.is_err()));
}

async fn a_watch_after_pruned_events_is_out_of_range(app: TestApp) {
    let owner = app.user("owner").await;
    app.create_hangout(&owner, hangout("One", 1)).await;
    app.create_hangout(&owner, hangout("Two", 2)).await;
    let (last, _) = watch(&app, None).await;
    let mut sql = app.sql().await;
    sqlx::Executor::execute(
        &mut sql,
        format!("delete from events where seq < {last}").as_str(),
    )
    .await
    .unwrap();
    let refused = app
        .events()
        .watch_events(pb::WatchEventsRequest { after_seq: Some(0) })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused:?}");
    // From just before the oldest kept, nothing was missed.
    let (start, _) = watch(&app, Some(last - 1)).await;
    assert_eq!(start, last - 1);
}

async fn an_unreadable_event_row_is_passed_not_blocking_the_rest(app: TestApp) {
    let owner = app.user("owner").await;
    let (start, mut stream) = watch(&app, None).await;
    let mut sql = app.sql().await;
    for statement in [
        "update event_sequence set last_seq = last_seq + 1 where id = 1".to_owned(),
        format!(
            "insert into events (seq, hangout_id, viewer_id, kind, occurred_at) \
             values ({}, 'not-a-uuid', null, 'HANGOUT_UPDATED', 0)",
            start + 1
        ),
    ] {
        sqlx::Executor::execute(&mut sql, statement.as_str())
            .await
            .unwrap();
    }
    let created = app.create_hangout(&owner, hangout("After", 1)).await;
    let events = next(&mut stream, 1).await;
    assert_eq!(events[0].seq, start + 2);
    assert_eq!(events[0].hangout_id, created.id);
}

async fn processing_reports_record_memory_updated_for_memories_holding_the_file(app: TestApp) {
    let owner = app.user("owner").await;
    let trip = app.create_hangout(&owner, hangout("Trip", 1)).await.id;
    let file = || uuid::Uuid::new_v4().to_string();
    let (uploaded_file, pending_file) = (file(), file());
    let uploaded = create_memory(&app, &owner, &trip, "a.png").await.unwrap();
    let pending = create_memory(&app, &owner, &trip, "b.png").await.unwrap();
    app.attach_memory_files(
        &owner,
        pb::AttachMemoryFilesRequest {
            links: vec![
                pb::MemoryFileLink {
                    memory_id: uploaded.clone(),
                    file_id: uploaded_file.clone(),
                },
                pb::MemoryFileLink {
                    memory_id: pending.clone(),
                    file_id: pending_file.clone(),
                },
            ],
        },
    )
    .await
    .unwrap();
    app.mark_memories_uploaded(
        &owner,
        pb::MarkMemoriesUploadedRequest {
            ids: vec![uploaded.clone()],
        },
    )
    .await
    .unwrap();
    let (_, mut stream) = watch(&app, None).await;

    let mut reports = pb::file_report_service_client::FileReportServiceClient::new(
        connect(app.addr, &app.certs.client("file-core")).await,
    );
    let processed = |memory: &str, file: &str| pb::ProcessedFile {
        memory_id: memory.to_owned(),
        file_id: file.to_owned(),
    };
    let report = pb::ReportProcessedRequest {
        files: vec![
            processed(&uploaded, &uploaded_file),
            // Another file than the memory holds, a memory still PENDING, a memory gone.
            processed(&uploaded, &file()),
            processed(&pending, &pending_file),
            processed(&uuid::Uuid::now_v7().to_string(), &file()),
        ],
    };
    let answer = reports.report_processed(report.clone()).await.unwrap();
    assert_eq!(answer.into_inner().recorded, 1);
    // Sent again (its answer lost): recorded again, delivery being at least once.
    let again = reports.report_processed(report).await.unwrap();
    assert_eq!(again.into_inner().recorded, 1);
    let events = next(&mut stream, 2).await;
    for event in &events {
        assert_eq!(
            summary(event),
            (
                pb::EventKind::MemoryUpdated,
                trip.clone(),
                String::new(),
                uploaded.clone(),
                pb::RemovalReason::Unspecified
            )
        );
    }

    let too_many = pb::ReportProcessedRequest {
        files: (0..101)
            .map(|_| processed(&uploaded, &uploaded_file))
            .collect(),
    };
    let refused = reports.report_processed(too_many).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let malformed = pb::ReportProcessedRequest {
        files: vec![processed("not-an-id", &uploaded_file)],
    };
    let refused = reports.report_processed(malformed).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
}

async fn a_revoked_session_records_its_event_once(app: TestApp) {
    let (_, mut stream) = watch(&app, None).await;
    let revoked = |session: &pb::AuthResponse| {
        (
            pb::EventKind::SessionRevoked,
            String::new(),
            session.user.as_ref().unwrap().id.clone(),
            session.session_family_id.clone(),
            pb::RemovalReason::Unspecified,
        )
    };
    // Signed out, twice: one event.
    let signed_out = app.sign_up("leaver").await;
    for _ in 0..2 {
        app.auth()
            .sign_out(pb::SignOutRequest {
                refresh_token: signed_out.refresh_token.clone(),
            })
            .await
            .unwrap();
    }
    // A rotated refresh token presented again revokes its session.
    let reused = app.sign_up("reuser").await;
    let refresh = |token: &str| pb::RefreshSessionRequest {
        refresh_token: token.to_owned(),
    };
    let rotated = app
        .auth()
        .refresh_session(refresh(&reused.refresh_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.session_family_id, reused.session_family_id);
    assert_ne!(rotated.session_id, reused.session_id);
    app.auth()
        .refresh_session(refresh(&reused.refresh_token))
        .await
        .unwrap_err();
    let events = next(&mut stream, 2).await;
    assert_eq!(summary(&events[0]), revoked(&signed_out));
    assert_eq!(summary(&events[1]), revoked(&reused));
    // Nothing else was recorded after them.
    let (last, _) = watch(&app, None).await;
    assert_eq!(last, events[1].seq);
}
