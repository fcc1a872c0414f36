//! Memory records: batches, names, status, lists, deletion and the sweeper.

use proto::hangout::v1 as pb;
use tonic::Code;

use crate::helpers::{Db, TestApp, hangout, violated_field, within};

on_both_backends!(
    a_batch_is_created_pending_all_or_nothing,
    file_names_are_unique_among_live_memories_only,
    memories_are_confirmed_listed_and_paged,
    memories_of_other_users_are_invisible,
    first_pages_of_many_hangouts_come_in_one_call,
    first_pages_of_more_hangouts_than_one_statement_takes,
);

fn file(name: &str, content_type: &str, size: u64) -> pb::MemoryFile {
    pb::MemoryFile {
        file_name: name.to_owned(),
        content_type: content_type.to_owned(),
        size,
    }
}

async fn create(
    app: &TestApp,
    user: &str,
    hangout_id: &str,
    files: Vec<pb::MemoryFile>,
) -> Result<Vec<pb::Memory>, tonic::Status> {
    app.create_memories(
        user,
        pb::CreateMemoriesRequest {
            hangout_id: hangout_id.to_owned(),
            files,
        },
    )
    .await
    .map(|response| response.memories)
}

async fn list(
    app: &TestApp,
    user: &str,
    hangout_id: &str,
    status: pb::MemoryStatus,
    first: u32,
    after: &str,
) -> pb::HangoutMemoriesPage {
    list_in(
        app,
        user,
        hangout_id,
        status,
        first,
        after,
        pb::OrderDirection::Asc,
    )
    .await
}

/// One page of one hangout's memories in `direction`; an empty page when it is not visible.
async fn list_in(
    app: &TestApp,
    user: &str,
    hangout_id: &str,
    status: pb::MemoryStatus,
    first: u32,
    after: &str,
    direction: pb::OrderDirection,
) -> pb::HangoutMemoriesPage {
    let mut pages = app
        .list_memories_of_hangouts(
            user,
            pb::ListMemoriesOfHangoutsRequest {
                pages: vec![pb::HangoutMemoriesPageRequest {
                    hangout_id: hangout_id.to_owned(),
                    page: Some(pb::PageRequest {
                        first,
                        after: after.to_owned(),
                    }),
                    status: status as i32,
                    direction: direction as i32,
                }],
            },
        )
        .await
        .unwrap()
        .pages;
    pages.pop().unwrap_or_default()
}

/// The first page of PENDING memories of each of `hangout_ids`, in one call.
async fn first_pages(
    app: &TestApp,
    user: &str,
    hangout_ids: &[String],
    first: u32,
    direction: pb::OrderDirection,
) -> Vec<pb::HangoutMemoriesPage> {
    app.list_memories_of_hangouts(
        user,
        pb::ListMemoriesOfHangoutsRequest {
            pages: hangout_ids
                .iter()
                .map(|id| pb::HangoutMemoriesPageRequest {
                    hangout_id: id.clone(),
                    page: Some(pb::PageRequest {
                        first,
                        after: String::new(),
                    }),
                    status: pb::MemoryStatus::Pending as i32,
                    direction: direction as i32,
                })
                .collect(),
        },
    )
    .await
    .unwrap()
    .pages
}

async fn a_batch_is_created_pending_all_or_nothing(app: TestApp) {
    let owner = app.user("Ana").await;
    let trip = app.create_hangout(&owner, hangout("Trip", 1)).await;
    let memories = create(
        &app,
        &owner,
        &trip.id,
        vec![
            file("beach.JPG", "image/jpeg", 1),
            file("sunset.png", "IMAGE/PNG; charset=binary", 10_485_760),
        ],
    )
    .await
    .unwrap();
    assert_eq!(memories.len(), 2);
    assert_eq!(memories[0].file_name, "beach.JPG");
    assert_eq!(memories[1].content_type, "image/png", "normalised");
    assert!(
        memories
            .iter()
            .all(|m| m.status == pb::MemoryStatus::Pending as i32)
    );
    assert!(memories.iter().all(|m| m.uploaded_by == owner));
    assert!(
        proto::timestamp_to_millis(&memories[0].upload_expires_at.unwrap())
            > proto::timestamp_to_millis(&memories[0].created_at.unwrap())
    );

    let eleven: Vec<_> = (0..11)
        .map(|i| file(&format!("{i}.gif"), "image/gif", 5))
        .collect();
    let cases = [
        (eleven, "files".to_owned()),
        (vec![], "files".to_owned()),
        (
            vec![
                file("ok.jpg", "image/jpeg", 1),
                file("big.jpg", "image/jpeg", 10_485_761),
            ],
            "files[1].size".to_owned(),
        ),
        (
            vec![file("doc.pdf", "application/pdf", 1)],
            "files[0].fileName".to_owned(),
        ),
        (
            vec![file("a.jpg", "image/jpegfoo", 1)],
            "files[0].contentType".to_owned(),
        ),
        (
            vec![file("../up.jpg", "image/jpeg", 1)],
            "files[0].fileName".to_owned(),
        ),
        (
            vec![
                file("same.webp", "image/webp", 1),
                file("same.webp", "image/webp", 1),
            ],
            "files[1].fileName".to_owned(),
        ),
    ];
    for (files, field) in cases {
        let status = create(&app, &owner, &trip.id, files).await.unwrap_err();
        assert_eq!(violated_field(&status), field);
    }
    // None of the refused batches left anything behind.
    let pending = list(&app, &owner, &trip.id, pb::MemoryStatus::Pending, 100, "").await;
    assert_eq!(pending.page_info.unwrap().total_count, 2);

    let missing = create(
        &app,
        &owner,
        &uuid::Uuid::now_v7().to_string(),
        vec![file("a.jpg", "image/jpeg", 1)],
    )
    .await
    .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn file_names_are_unique_among_live_memories_only(app: TestApp) {
    let owner = app.user("Bea").await;
    let party = app.create_hangout(&owner, hangout("Party", 1)).await;
    let other = app.create_hangout(&owner, hangout("Other party", 2)).await;
    let first = create(
        &app,
        &owner,
        &party.id,
        vec![file("cake.jpg", "image/jpeg", 3)],
    )
    .await
    .unwrap();
    let conflict = create(
        &app,
        &owner,
        &party.id,
        vec![
            file("new.jpg", "image/jpeg", 3),
            file("cake.jpg", "image/jpeg", 3),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);
    let pending = list(&app, &owner, &party.id, pb::MemoryStatus::Pending, 100, "").await;
    assert_eq!(
        pending.page_info.unwrap().total_count,
        1,
        "nothing half-written"
    );

    // Another hangout may use the name.
    create(
        &app,
        &owner,
        &other.id,
        vec![file("cake.jpg", "image/jpeg", 3)],
    )
    .await
    .unwrap();

    // Once deleted, the name is free again (the Go system kept it forever).
    let deleted = app
        .delete_memories(
            &owner,
            pb::DeleteMemoriesRequest {
                ids: vec![first[0].id.clone()],
            },
        )
        .await
        .unwrap()
        .deleted;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].file_id, "");
    create(
        &app,
        &owner,
        &party.id,
        vec![file("cake.jpg", "image/jpeg", 3)],
    )
    .await
    .unwrap();
}

async fn memories_are_confirmed_listed_and_paged(app: TestApp) {
    let owner = app.user("Cal").await;
    let show = app.create_hangout(&owner, hangout("Show", 1)).await;
    let memories = create(
        &app,
        &owner,
        &show.id,
        (0..5)
            .map(|i| file(&format!("{i}.png"), "image/png", 100 + i))
            .collect(),
    )
    .await
    .unwrap();
    let file_ids: Vec<String> = (0..5).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    app.attach_memory_files(
        &owner,
        pb::AttachMemoryFilesRequest {
            links: memories
                .iter()
                .zip(&file_ids)
                .map(|(memory, file_id)| pb::MemoryFileLink {
                    memory_id: memory.id.clone(),
                    file_id: file_id.clone(),
                })
                .collect(),
        },
    )
    .await
    .unwrap();

    let confirm = |ids: Vec<String>| {
        let app = &app;
        let owner = owner.clone();
        async move {
            app.mark_memories_uploaded(&owner, pb::MarkMemoriesUploadedRequest { ids })
                .await
                .unwrap()
                .memories
        }
    };
    let confirmed = confirm(memories[..4].iter().map(|m| m.id.clone()).collect()).await;
    assert_eq!(confirmed.len(), 4);
    assert!(
        confirmed
            .iter()
            .all(|m| m.status == pb::MemoryStatus::Uploaded as i32)
    );
    assert!(confirmed.iter().all(|m| file_ids.contains(&m.file_id)));
    // Confirming again is a no-op.
    let again = confirm(vec![memories[0].id.clone()]).await;
    assert_eq!(again[0].status, pb::MemoryStatus::Uploaded as i32);

    let pending = list(&app, &owner, &show.id, pb::MemoryStatus::Pending, 10, "").await;
    assert_eq!(pending.edges.len(), 1);
    assert_eq!(pending.edges[0].memory.clone().unwrap().id, memories[4].id);

    // UPLOADED is the default status; pages continue without gaps.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = list(
            &app,
            &owner,
            &show.id,
            pb::MemoryStatus::Unspecified,
            3,
            &after,
        )
        .await;
        let info = page.page_info.unwrap();
        assert_eq!(info.total_count, 4);
        seen.extend(page.edges.into_iter().map(|edge| edge.memory.unwrap().id));
        if !info.has_next_page {
            break;
        }
        after = info.end_cursor;
    }
    let expected: Vec<String> = memories[..4].iter().map(|m| m.id.clone()).collect();
    assert_eq!(seen, expected);

    // Several hangouts in one call.
    let second = app.create_hangout(&owner, hangout("Second", 2)).await;
    let pages = app
        .list_memories_of_hangouts(
            &owner,
            pb::ListMemoriesOfHangoutsRequest {
                pages: [&show.id, &second.id]
                    .into_iter()
                    .map(|id| pb::HangoutMemoriesPageRequest {
                        hangout_id: id.clone(),
                        page: Some(pb::PageRequest {
                            first: 2,
                            after: String::new(),
                        }),
                        status: 0,
                        direction: pb::OrderDirection::Desc as i32,
                    })
                    .collect(),
            },
        )
        .await
        .unwrap()
        .pages;
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].edges.len(), 2);
    assert_eq!(
        pages[0].edges[0].memory.clone().unwrap().id,
        memories[3].id,
        "newest first"
    );
    assert_eq!(pages[0].edges[1].memory.clone().unwrap().id, memories[2].id);
    assert!(pages[1].edges.is_empty());

    let deleted = app
        .delete_memories(
            &owner,
            pb::DeleteMemoriesRequest {
                ids: vec![memories[0].id.clone()],
            },
        )
        .await
        .unwrap()
        .deleted;
    assert_eq!(deleted[0].file_id, file_ids[0]);
}

async fn memories_of_other_users_are_invisible(app: TestApp) {
    let owner = app.user("Dot").await;
    let intruder = app.user("Eon").await;
    let private = app.create_hangout(&owner, hangout("Private", 1)).await;
    let memories = create(
        &app,
        &owner,
        &private.id,
        vec![file("me.jpg", "image/jpeg", 9)],
    )
    .await
    .unwrap();
    let ids = vec![memories[0].id.clone()];

    let upload = create(
        &app,
        &intruder,
        &private.id,
        vec![file("x.jpg", "image/jpeg", 9)],
    )
    .await
    .unwrap_err();
    assert_eq!(upload.code(), Code::NotFound);
    let fetched = app
        .get_memories(&intruder, pb::GetMemoriesRequest { ids: ids.clone() })
        .await
        .unwrap();
    assert!(fetched.memories.is_empty());
    let marked = app
        .mark_memories_uploaded(
            &intruder,
            pb::MarkMemoriesUploadedRequest { ids: ids.clone() },
        )
        .await
        .unwrap();
    assert!(marked.memories.is_empty());
    let attach = app
        .attach_memory_files(
            &intruder,
            pb::AttachMemoryFilesRequest {
                links: vec![pb::MemoryFileLink {
                    memory_id: ids[0].clone(),
                    file_id: uuid::Uuid::now_v7().to_string(),
                }],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(attach.code(), Code::NotFound);
    let deleted = app
        .delete_memories(&intruder, pb::DeleteMemoriesRequest { ids: ids.clone() })
        .await
        .unwrap();
    assert!(deleted.deleted.is_empty());
    let pending = list(
        &app,
        &intruder,
        &private.id,
        pb::MemoryStatus::Pending,
        10,
        "",
    )
    .await;
    assert!(pending.edges.is_empty());

    // Still there, still pending, for the owner.
    let fetched = app
        .get_memories(&owner, pb::GetMemoriesRequest { ids })
        .await
        .unwrap();
    assert_eq!(fetched.memories[0].status, pb::MemoryStatus::Pending as i32);
}

/// The dataloader's request: the first page of many hangouts alike, answered in one round
/// of statements, in the order asked, leaving out other users' hangouts.
async fn first_pages_of_many_hangouts_come_in_one_call(app: TestApp) {
    let owner = app.user("Gwen").await;
    let intruder = app.user("Hank").await;
    let mut hangout_ids = Vec::new();
    for (index, count) in [3_u64, 0, 1].into_iter().enumerate() {
        let hangout = app
            .create_hangout(&owner, hangout(&format!("H{index}"), 1))
            .await;
        if count > 0 {
            let files = (0..count)
                .map(|i| file(&format!("{i}.gif"), "image/gif", 1))
                .collect();
            create(&app, &owner, &hangout.id, files).await.unwrap();
        }
        hangout_ids.push(hangout.id);
    }
    let foreign = app.create_hangout(&intruder, hangout("Theirs", 1)).await;
    create(
        &app,
        &intruder,
        &foreign.id,
        vec![file("x.gif", "image/gif", 1)],
    )
    .await
    .unwrap();

    let asked = [
        hangout_ids[2].clone(),
        foreign.id.clone(),
        hangout_ids[0].clone(),
        hangout_ids[1].clone(),
    ];
    let pages = first_pages(&app, &owner, &asked, 2, pb::OrderDirection::Desc).await;
    let summary: Vec<(String, usize, u64, bool)> = pages
        .iter()
        .map(|page| {
            let info = page.page_info.clone().unwrap();
            (
                page.hangout_id.clone(),
                page.edges.len(),
                info.total_count,
                info.has_next_page,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (hangout_ids[2].clone(), 1, 1, false),
            (hangout_ids[0].clone(), 2, 3, true),
            (hangout_ids[1].clone(), 0, 0, false),
        ]
    );
    // The page's cursor continues where the batch left off.
    let first_page = &pages[1];
    let rest = list_desc(
        &app,
        &owner,
        &hangout_ids[0],
        &first_page.page_info.clone().unwrap().end_cursor,
    )
    .await;
    assert_eq!(rest.edges.len(), 1);
    let mut seen: Vec<String> = first_page
        .edges
        .iter()
        .map(|e| e.memory.clone().unwrap().id)
        .collect();
    seen.extend(rest.edges.iter().map(|e| e.memory.clone().unwrap().id));
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3);
}

/// The store reads first pages 100 hangouts per statement (SQLite caps a compound select at
/// 500 terms): 101 hangouts take two, and every page still comes back, in the order asked.
async fn first_pages_of_more_hangouts_than_one_statement_takes(app: TestApp) {
    let owner = app.user("Ivy").await;
    let mut hangout_ids = Vec::new();
    for index in 0..101 {
        let created = app
            .create_hangout(&owner, hangout(&format!("H{index}"), index))
            .await;
        hangout_ids.push(created.id);
    }
    for id in [&hangout_ids[0], &hangout_ids[100]] {
        let files = vec![file("a.gif", "image/gif", 1), file("b.gif", "image/gif", 1)];
        create(&app, &owner, id, files).await.unwrap();
    }
    let pages = first_pages(&app, &owner, &hangout_ids, 1, pb::OrderDirection::Asc).await;
    let returned: Vec<&str> = pages.iter().map(|page| page.hangout_id.as_str()).collect();
    assert_eq!(
        returned,
        hangout_ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for (index, page) in pages.iter().enumerate() {
        let expected = if index == 0 || index == 100 { 1 } else { 0 };
        assert_eq!(page.edges.len(), expected, "hangout {index}");
    }
    for index in [0, 100] {
        let alone = list(
            &app,
            &owner,
            &hangout_ids[index],
            pb::MemoryStatus::Pending,
            1,
            "",
        )
        .await;
        assert_eq!(
            pages[index].edges[0].memory, alone.edges[0].memory,
            "the same first memory as a page of that hangout alone"
        );
    }
}

async fn list_desc(
    app: &TestApp,
    user: &str,
    hangout_id: &str,
    after: &str,
) -> pb::HangoutMemoriesPage {
    list_in(
        app,
        user,
        hangout_id,
        pb::MemoryStatus::Pending,
        2,
        after,
        pb::OrderDirection::Desc,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_memories_are_swept_after_their_window() {
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        config.upload_window = std::time::Duration::ZERO;
        config.pending_grace = std::time::Duration::ZERO;
        config.sweep_interval = std::time::Duration::from_millis(20);
    })
    .await
    .unwrap();
    let owner = app.user("Fin").await;
    let trip = app.create_hangout(&owner, hangout("Trip", 1)).await;
    // An UPLOADED memory whose window ended long ago: the sweeper must leave it alone.
    let kept = uuid::Uuid::now_v7().to_string();
    let mut sql = app.sql().await;
    sqlx::Executor::execute(
        &mut sql,
        sqlx::query(
            "insert into memories (id, hangout_id, uploaded_by, file_name, content_type, size, \
             status, file_id, created_at, upload_expires_at) \
             values (?, ?, ?, 'kept.jpg', 'image/jpeg', 1, 'UPLOADED', null, 0, 0)",
        )
        .bind(kept.clone())
        .bind(trip.id.clone())
        .bind(owner.clone()),
    )
    .await
    .unwrap();
    create(
        &app,
        &owner,
        &trip.id,
        vec![
            file("gone.jpg", "image/jpeg", 1),
            file("also.png", "image/png", 1),
        ],
    )
    .await
    .unwrap();
    within(async {
        loop {
            let pending = list(&app, &owner, &trip.id, pb::MemoryStatus::Pending, 10, "").await;
            if pending.edges.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    let uploaded = list(&app, &owner, &trip.id, pb::MemoryStatus::Uploaded, 10, "").await;
    assert_eq!(uploaded.edges.len(), 1);
    assert_eq!(uploaded.edges[0].memory.clone().unwrap().id, kept);
}
