//! Hangouts: CRUD, validation, isolation and keyset pagination.

use proto::hangout::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, as_user, day, hangout, violated_field};

on_both_backends!(
    hangouts_are_created_read_and_updated_field_by_field,
    hangout_input_is_validated,
    hangouts_of_other_users_are_not_found,
    pagination_is_continuous_in_every_order,
    filters_select_by_status_and_date,
    deleting_a_hangout_removes_its_memories_and_names_their_files,
    a_page_carries_what_its_include_asks_for,
);

fn list(
    first: u32,
    after: &str,
    field: pb::HangoutOrderField,
    direction: pb::OrderDirection,
) -> pb::ListHangoutsRequest {
    pb::ListHangoutsRequest {
        page: Some(pb::PageRequest {
            first,
            after: after.to_owned(),
        }),
        order_field: field as i32,
        direction: direction as i32,
        ..Default::default()
    }
}

async fn hangouts_are_created_read_and_updated_field_by_field(app: TestApp) {
    let owner = app.user("Ann").await;
    let chess = app.create_activity(&owner, "Chess").await;
    let hike = app.create_activity(&owner, "Hike").await;
    let created = app
        .create_hangout(
            &owner,
            pb::CreateHangoutRequest {
                title: "  <b>Tom & Jerry</b> night ".to_owned(),
                description: Some("# Plan\n\n* snacks <script>".to_owned()),
                date: day(3),
                status: pb::HangoutStatus::Confirmed as i32,
                activity_ids: vec![chess.id.clone()],
            },
        )
        .await;
    // Stored as written: trimmed, never HTML-escaped.
    assert_eq!(created.title, "<b>Tom & Jerry</b> night");
    assert_eq!(
        created.description.as_deref(),
        Some("# Plan\n\n* snacks <script>")
    );
    assert_eq!(created.status, pb::HangoutStatus::Confirmed as i32);
    assert_eq!(created.owner_id, owner);

    // A hangout without a description reads back fine (the Go system crashed here).
    let bare = app.create_hangout(&owner, hangout("Bare", 1)).await;
    assert_eq!(bare.description, None);
    assert_eq!(bare.status, pb::HangoutStatus::Planning as i32);

    let updated = app
        .update_hangout(
            &owner,
            pb::UpdateHangoutRequest {
                id: created.id.clone(),
                title: Some("Renamed".to_owned()),
                activity_ids: Some(pb::IdList {
                    ids: vec![hike.id.clone()],
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.title, "Renamed");
    assert_eq!(
        updated.description, created.description,
        "untouched field kept"
    );
    assert_eq!(updated.date, created.date);
    assert!(
        proto::timestamp_to_millis(&updated.updated_at.unwrap())
            >= proto::timestamp_to_millis(&created.updated_at.unwrap())
    );

    let cleared = app
        .update_hangout(
            &owner,
            pb::UpdateHangoutRequest {
                id: created.id.clone(),
                description: Some(pb::OptionalStringPatch { value: None }),
                status: pb::HangoutStatus::Executed as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.description, None);
    assert_eq!(cleared.title, "Renamed");
    assert_eq!(cleared.status, pb::HangoutStatus::Executed as i32);

    let activities = app
        .list_activities_of_hangouts(
            &owner,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: vec![created.id.clone(), bare.id.clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .hangouts;
    let of_created = activities
        .iter()
        .find(|entry| entry.hangout_id == created.id)
        .unwrap();
    let names: Vec<_> = of_created
        .activities
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["Hike"], "activity_ids replaced the set");
    let of_bare = activities
        .iter()
        .find(|entry| entry.hangout_id == bare.id)
        .unwrap();
    assert!(of_bare.activities.is_empty());

    let fetched = app
        .get_hangouts(
            &owner,
            pb::GetHangoutsRequest {
                ids: vec![created.id.clone(), bare.id.clone(), "junk".to_owned()],
            },
        )
        .await
        .unwrap()
        .hangouts;
    assert_eq!(fetched.len(), 2);
}

async fn hangout_input_is_validated(app: TestApp) {
    let owner = app.user("Ben").await;
    let mut too_long = hangout("x", 1);
    too_long.title = "é".repeat(256);
    let mut blank = hangout("x", 1);
    blank.title = "   ".to_owned();
    let mut no_date = hangout("x", 1);
    no_date.date = None;
    let mut long_description = hangout("x", 1);
    long_description.description = Some("d".repeat(10_001));
    let mut bad_activity = hangout("x", 1);
    bad_activity.activity_ids = vec!["nope".to_owned()];
    for (request, field) in [
        (too_long, "title"),
        (blank, "title"),
        (no_date, "date"),
        (long_description, "description"),
        (bad_activity, "activityIds[0]"),
    ] {
        let status = app
            .hangouts()
            .create_hangout(as_user(&owner, request))
            .await
            .unwrap_err();
        assert_eq!(violated_field(&status), field);
    }
    let mut boundary = hangout(&"é".repeat(255), 1);
    boundary.description = Some("d".repeat(10_000));
    app.create_hangout(&owner, boundary).await;

    // Another user's activity cannot be attached, and nothing is half-written.
    let other = app.user("Other").await;
    let foreign = app.create_activity(&other, "Theirs").await;
    let mut with_foreign = hangout("Mine", 1);
    with_foreign.activity_ids = vec![foreign.id.clone()];
    let status = app
        .hangouts()
        .create_hangout(as_user(&owner, with_foreign))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let page = app
        .list_hangouts(&owner, pb::ListHangoutsRequest::default())
        .await
        .unwrap();
    assert_eq!(page.page_info.unwrap().total_count, 1);

    let status = app
        .list_hangouts(
            &owner,
            list(
                101,
                "",
                pb::HangoutOrderField::Date,
                pb::OrderDirection::Asc,
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(violated_field(&status), "first");
}

async fn hangouts_of_other_users_are_not_found(app: TestApp) {
    let owner = app.user("Cat").await;
    let intruder = app.user("Dan").await;
    let activity = app.create_activity(&owner, "Cards").await;
    let mut request = hangout("Private", 2);
    request.activity_ids = vec![activity.id.clone()];
    let private = app.create_hangout(&owner, request).await;

    let fetched = app
        .get_hangouts(
            &intruder,
            pb::GetHangoutsRequest {
                ids: vec![private.id.clone()],
            },
        )
        .await
        .unwrap();
    assert!(fetched.hangouts.is_empty());

    let update = app
        .update_hangout(
            &intruder,
            pb::UpdateHangoutRequest {
                id: private.id.clone(),
                title: Some("Mine now".to_owned()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(update.code(), Code::NotFound);
    let delete = app
        .delete_hangout(
            &intruder,
            pb::DeleteHangoutRequest {
                id: private.id.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Code::NotFound);

    let listed = app
        .list_hangouts(&intruder, pb::ListHangoutsRequest::default())
        .await
        .unwrap();
    assert!(listed.edges.is_empty());
    assert_eq!(listed.page_info.unwrap().total_count, 0);

    // A cursor made by the owner positions nothing for the intruder: lists stay scoped.
    let owners_page = app
        .list_hangouts(
            &owner,
            list(
                1,
                "",
                pb::HangoutOrderField::CreatedAt,
                pb::OrderDirection::Desc,
            ),
        )
        .await
        .unwrap();
    let _ = app.create_hangout(&owner, hangout("Older?", 1)).await;
    let cursor = owners_page.page_info.unwrap().end_cursor;
    let stolen = app
        .list_hangouts(
            &intruder,
            list(
                10,
                &cursor,
                pb::HangoutOrderField::CreatedAt,
                pb::OrderDirection::Desc,
            ),
        )
        .await
        .unwrap();
    assert!(stolen.edges.is_empty());

    let activities = app
        .list_activities_of_hangouts(
            &intruder,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: vec![private.id.clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(activities.hangouts.is_empty());

    // The owner still sees it unchanged.
    let fetched = app
        .get_hangouts(
            &owner,
            pb::GetHangoutsRequest {
                ids: vec![private.id.clone()],
            },
        )
        .await
        .unwrap();
    assert_eq!(fetched.hangouts[0].title, "Private");
}

/// Pages through every order with pages of 3 and checks the concatenation is the whole list
/// in the right order, with no row missing or repeated.
async fn pagination_is_continuous_in_every_order(app: TestApp) {
    let owner = app.user("Eve").await;
    let other = app.user("Fox").await;
    // Days repeat so the date order needs its id tie-break.
    for (index, days) in [5, 1, 3, 3, 9, 1, 7, 3].into_iter().enumerate() {
        app.create_hangout(&owner, hangout(&format!("H{index}"), days))
            .await;
    }
    app.create_hangout(&other, hangout("Not mine", 4)).await;

    let all = app
        .list_hangouts(
            &owner,
            list(
                100,
                "",
                pb::HangoutOrderField::CreatedAt,
                pb::OrderDirection::Asc,
            ),
        )
        .await
        .unwrap();
    assert_eq!(all.edges.len(), 8);
    let rows: Vec<pb::Hangout> = all
        .edges
        .into_iter()
        .map(|edge| edge.hangout.unwrap())
        .collect();

    for field in [
        pb::HangoutOrderField::CreatedAt,
        pb::HangoutOrderField::Date,
    ] {
        for direction in [pb::OrderDirection::Asc, pb::OrderDirection::Desc] {
            let mut expected = rows.clone();
            expected.sort_by_key(|hangout| {
                let key = match field {
                    pb::HangoutOrderField::Date => {
                        hangout.date.unwrap().seconds * 1000
                            + i64::from(hangout.date.unwrap().nanos / 1_000_000)
                    }
                    _ => {
                        hangout.created_at.unwrap().seconds * 1000
                            + i64::from(hangout.created_at.unwrap().nanos / 1_000_000)
                    }
                };
                (key, hangout.id.clone())
            });
            if direction == pb::OrderDirection::Desc {
                expected.reverse();
            }
            let expected: Vec<String> = expected.into_iter().map(|h| h.id).collect();

            let mut seen = Vec::new();
            let mut after = String::new();
            let mut pages = 0;
            loop {
                let page = app
                    .list_hangouts(&owner, list(3, &after, field, direction))
                    .await
                    .unwrap();
                let info = page.page_info.unwrap();
                assert_eq!(info.total_count, 8);
                seen.extend(
                    page.edges
                        .iter()
                        .map(|edge| edge.hangout.clone().unwrap().id),
                );
                pages += 1;
                if !info.has_next_page {
                    break;
                }
                assert_eq!(page.edges.last().unwrap().cursor, info.end_cursor);
                after = info.end_cursor;
            }
            assert_eq!(pages, 3, "{field:?} {direction:?}");
            assert_eq!(seen, expected, "{field:?} {direction:?}");

            // A cursor of one ordering is refused by another.
            let first = app
                .list_hangouts(&owner, list(1, "", field, direction))
                .await
                .unwrap();
            let other_direction = if direction == pb::OrderDirection::Asc {
                pb::OrderDirection::Desc
            } else {
                pb::OrderDirection::Asc
            };
            let status = app
                .list_hangouts(
                    &owner,
                    list(
                        1,
                        &first.page_info.unwrap().end_cursor,
                        field,
                        other_direction,
                    ),
                )
                .await
                .unwrap_err();
            assert_eq!(violated_field(&status), "after");
        }
    }
}

async fn filters_select_by_status_and_date(app: TestApp) {
    let owner = app.user("Gil").await;
    for (days, status) in [
        (1, pb::HangoutStatus::Planning),
        (2, pb::HangoutStatus::Confirmed),
        (3, pb::HangoutStatus::Executed),
        (4, pb::HangoutStatus::Cancelled),
        (5, pb::HangoutStatus::Confirmed),
    ] {
        let mut request = hangout(&format!("day {days}"), days);
        request.status = status as i32;
        app.create_hangout(&owner, request).await;
    }
    let query = |statuses: Vec<pb::HangoutStatus>, from: Option<i64>, to: Option<i64>| {
        pb::ListHangoutsRequest {
            order_field: pb::HangoutOrderField::Date as i32,
            direction: pb::OrderDirection::Asc as i32,
            status_in: statuses.into_iter().map(|s| s as i32).collect(),
            date_from: from.and_then(day),
            date_to: to.and_then(day),
            ..Default::default()
        }
    };
    let titles = |page: pb::HangoutPage| -> (Vec<String>, u64) {
        (
            page.edges
                .into_iter()
                .map(|e| e.hangout.unwrap().title)
                .collect(),
            page.page_info.unwrap().total_count,
        )
    };
    let confirmed = app
        .list_hangouts(
            &owner,
            query(vec![pb::HangoutStatus::Confirmed], None, None),
        )
        .await
        .unwrap();
    assert_eq!(
        titles(confirmed),
        (vec!["day 2".to_owned(), "day 5".to_owned()], 2)
    );

    // dateFrom is inclusive, dateTo exclusive.
    let window = app
        .list_hangouts(&owner, query(vec![], Some(2), Some(4)))
        .await
        .unwrap();
    assert_eq!(
        titles(window),
        (vec!["day 2".to_owned(), "day 3".to_owned()], 2)
    );

    let both = app
        .list_hangouts(
            &owner,
            query(
                vec![pb::HangoutStatus::Confirmed, pb::HangoutStatus::Cancelled],
                Some(3),
                None,
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        titles(both),
        (vec!["day 4".to_owned(), "day 5".to_owned()], 2)
    );

    let status = app
        .list_hangouts(&owner, query(vec![], Some(4), Some(2)))
        .await
        .unwrap_err();
    assert_eq!(violated_field(&status), "filter.dateTo");
}

async fn deleting_a_hangout_removes_its_memories_and_names_their_files(app: TestApp) {
    let owner = app.user("Hal").await;
    let activity = app.create_activity(&owner, "Bowling").await;
    let mut request = hangout("Doomed", 1);
    request.activity_ids = vec![activity.id.clone()];
    let doomed = app.create_hangout(&owner, request).await;
    let memories = app
        .create_memories(
            &owner,
            pb::CreateMemoriesRequest {
                hangout_id: doomed.id.clone(),
                files: vec![
                    pb::MemoryFile {
                        file_name: "a.jpg".to_owned(),
                        content_type: "image/jpeg".to_owned(),
                        size: 10,
                    },
                    pb::MemoryFile {
                        file_name: "b.png".to_owned(),
                        content_type: "image/png".to_owned(),
                        size: 10,
                    },
                ],
            },
        )
        .await
        .unwrap()
        .memories;
    let file_id = uuid::Uuid::now_v7().to_string();
    app.attach_memory_files(
        &owner,
        pb::AttachMemoryFilesRequest {
            links: vec![pb::MemoryFileLink {
                memory_id: memories[0].id.clone(),
                file_id: file_id.clone(),
            }],
        },
    )
    .await
    .unwrap();

    let deleted = app
        .delete_hangout(
            &owner,
            pb::DeleteHangoutRequest {
                id: doomed.id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted.id, doomed.id);
    assert_eq!(deleted.deleted_file_ids, vec![file_id]);

    let left = app
        .get_memories(
            &owner,
            pb::GetMemoriesRequest {
                ids: memories.iter().map(|m| m.id.clone()).collect(),
            },
        )
        .await
        .unwrap();
    assert!(left.memories.is_empty());
    let activity = app
        .get_activities(
            &owner,
            pb::GetActivitiesRequest {
                ids: vec![activity.id.clone()],
            },
        )
        .await
        .unwrap()
        .activities;
    assert_eq!(
        activity[0].hangout_count,
        Some(0),
        "link removed, activity kept"
    );

    let again = app
        .delete_hangout(&owner, pb::DeleteHangoutRequest { id: doomed.id })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
}

/// What `ListHangouts` carries beside its page is exactly what the dedicated calls return for
/// the page's hangouts, and only what `include` asks for.
async fn a_page_carries_what_its_include_asks_for(app: TestApp) {
    let owner = app.user("Ann").await;
    let chess = app.create_activity(&owner, "Chess").await;
    let mut hangout_ids = Vec::new();
    for (index, memories) in [3_usize, 0, 1].into_iter().enumerate() {
        let mut request = hangout(&format!("Hangout {index}"), 1);
        if index != 1 {
            request.activity_ids = vec![chess.id.clone()];
        }
        let created = app.create_hangout(&owner, request).await;
        if memories > 0 {
            app.create_memories(
                &owner,
                pb::CreateMemoriesRequest {
                    hangout_id: created.id.clone(),
                    files: (0..memories)
                        .map(|file| pb::MemoryFile {
                            file_name: format!("{file}.png"),
                            content_type: "image/png".to_owned(),
                            size: 10,
                        })
                        .collect(),
                },
            )
            .await
            .unwrap();
        }
        hangout_ids.push(created.id);
    }
    // Another user's hangout never shows.
    let other = app.user("Other").await;
    app.create_hangout(&other, hangout("Theirs", 1)).await;
    let memories = pb::MemoriesPageOptions {
        page: Some(pb::PageRequest {
            first: 2,
            after: String::new(),
        }),
        status: pb::MemoryStatus::Pending as i32,
        direction: pb::OrderDirection::Asc as i32,
    };
    let page_with = |include: Option<pb::HangoutPageIncludes>| {
        let mut hangouts = app.hangouts();
        let owner = owner.clone();
        async move {
            hangouts
                .list_hangouts(as_user(
                    &owner,
                    pb::ListHangoutsRequest {
                        include,
                        ..Default::default()
                    },
                ))
                .await
        }
    };

    let bare = page_with(None).await.unwrap().into_inner();
    assert_eq!(bare.edges.len(), 3);
    assert!(bare.owners.is_empty() && bare.activities.is_empty() && bare.memory_pages.is_empty());

    let full = page_with(Some(pb::HangoutPageIncludes {
        owners: true,
        activities: true,
        memories: Some(memories.clone()),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner();
    assert_eq!(full.edges, bare.edges);
    assert_eq!(full.page_info, bare.page_info);
    let listed: Vec<String> = full
        .edges
        .iter()
        .map(|edge| edge.hangout.as_ref().unwrap().id.clone())
        .collect();
    let users = app
        .get_users(
            &owner,
            pb::GetUsersRequest {
                ids: vec![owner.clone()],
                visible_only: false,
            },
        )
        .await
        .unwrap()
        .users;
    assert_eq!(full.owners, users);
    let activities = app
        .list_activities_of_hangouts(
            &owner,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: listed.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .hangouts;
    assert_eq!(full.activities, activities);
    assert_eq!(
        full.activities.len(),
        3,
        "one entry per hangout, even without activities"
    );
    let uncounted = page_with(Some(pb::HangoutPageIncludes {
        activities: true,
        activities_without_hangout_counts: true,
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner();
    let activities_uncounted = app
        .list_activities_of_hangouts(
            &owner,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: listed.clone(),
                without_hangout_counts: true,
            },
        )
        .await
        .unwrap()
        .hangouts;
    assert_eq!(uncounted.activities, activities_uncounted);
    assert!(
        uncounted
            .activities
            .iter()
            .flat_map(|entry| &entry.activities)
            .all(|activity| activity.hangout_count.is_none())
    );
    let pages = app
        .list_memories_of_hangouts(
            &owner,
            pb::ListMemoriesOfHangoutsRequest {
                pages: listed
                    .iter()
                    .map(|id| pb::HangoutMemoriesPageRequest {
                        hangout_id: id.clone(),
                        page: memories.page.clone(),
                        status: memories.status,
                        direction: memories.direction,
                    })
                    .collect(),
            },
        )
        .await
        .unwrap()
        .pages;
    assert_eq!(full.memory_pages, pages);
    let first = full
        .memory_pages
        .iter()
        .find(|page| page.hangout_id == hangout_ids[0])
        .unwrap();
    assert_eq!(first.edges.len(), 2);
    assert_eq!(first.page_info.as_ref().unwrap().total_count, 3);

    // Each part only when asked.
    let owners_only = page_with(Some(pb::HangoutPageIncludes {
        owners: true,
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner();
    assert_eq!(owners_only.owners, users);
    assert!(owners_only.activities.is_empty() && owners_only.memory_pages.is_empty());

    // A bad memory page is refused like the dedicated call refuses it.
    let status = page_with(Some(pb::HangoutPageIncludes {
        memories: Some(pb::MemoriesPageOptions {
            status: 99,
            ..memories.clone()
        }),
        ..Default::default()
    }))
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = page_with(Some(pb::HangoutPageIncludes {
        memories: Some(pb::MemoriesPageOptions {
            page: Some(pb::PageRequest {
                first: 101,
                after: String::new(),
            }),
            ..memories
        }),
        ..Default::default()
    }))
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // A part the store cannot read comes back empty beside the page; the dedicated call
    // reports the failure.
    let mut sql = app.sql().await;
    sqlx::Executor::execute(
        &mut sql,
        "alter table hangout_activities rename to hangout_activities_gone",
    )
    .await
    .unwrap();
    let degraded = page_with(Some(pb::HangoutPageIncludes {
        owners: true,
        activities: true,
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner();
    assert_eq!(degraded.edges, bare.edges);
    assert_eq!(degraded.owners, users);
    assert!(degraded.activities.is_empty());
    let status = app
        .list_activities_of_hangouts(
            &owner,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: listed,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
}
