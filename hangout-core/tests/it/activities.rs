//! Activities: per-user names, counts, lists and links.

use proto::hangout::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, as_user, hangout, violated_field};

on_both_backends!(
    names_are_unique_per_user_case_insensitively,
    activities_are_listed_by_name_with_pagination,
    activities_link_hangouts_both_ways,
    deleting_an_activity_unlinks_it,
    activities_of_other_users_are_not_found,
);

async fn names_are_unique_per_user_case_insensitively(app: TestApp) {
    let ann = app.user("Ann").await;
    let bob = app.user("Bob").await;
    let climbing = app.create_activity(&ann, "  Climbing ").await;
    assert_eq!(climbing.name, "Climbing");
    assert_eq!(climbing.hangout_count, Some(0));

    let duplicate = app
        .activities()
        .create_activity(as_user(
            &ann,
            pb::CreateActivityRequest {
                name: "CLIMBING".to_owned(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    // Not a global index: another user may use the same name (the Go system refused).
    app.create_activity(&bob, "climbing").await;

    let swim = app.create_activity(&ann, "Swim").await;
    let taken = app
        .rename_activity(
            &ann,
            pb::RenameActivityRequest {
                id: swim.id.clone(),
                name: "climbing".to_owned(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);

    // Changing only the case of one's own name is fine, and renaming to itself too.
    for name in ["SWIM", "SWIM"] {
        let renamed = app
            .rename_activity(
                &ann,
                pb::RenameActivityRequest {
                    id: swim.id.clone(),
                    name: name.to_owned(),
                },
            )
            .await
            .unwrap();
        assert_eq!(renamed.name, "SWIM");
    }

    for name in ["", "   ", &"a".repeat(256)] {
        let status = app
            .activities()
            .create_activity(as_user(
                &ann,
                pb::CreateActivityRequest {
                    name: name.to_owned(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(violated_field(&status), "name");
    }
    app.create_activity(&ann, &"a".repeat(255)).await;
}

async fn activities_are_listed_by_name_with_pagination(app: TestApp) {
    let owner = app.user("Cid").await;
    for name in ["delta", "Alpha", "charlie", "Echo", "bravo"] {
        app.create_activity(&owner, name).await;
    }
    let mut names = Vec::new();
    let mut after = String::new();
    loop {
        let page = app
            .list_activities(
                &owner,
                pb::ListActivitiesRequest {
                    page: Some(pb::PageRequest {
                        first: 2,
                        after: after.clone(),
                    }),
                },
            )
            .await
            .unwrap();
        let info = page.page_info.unwrap();
        assert_eq!(info.total_count, 5);
        names.extend(page.edges.into_iter().map(|e| e.activity.unwrap().name));
        if !info.has_next_page {
            break;
        }
        after = info.end_cursor;
    }
    assert_eq!(names, ["Alpha", "bravo", "charlie", "delta", "Echo"]);
}

async fn activities_link_hangouts_both_ways(app: TestApp) {
    let owner = app.user("Dee").await;
    let darts = app.create_activity(&owner, "Darts").await;
    let pool = app.create_activity(&owner, "Pool").await;
    let mut hangout_ids = Vec::new();
    for index in 0..3 {
        let mut request = hangout(&format!("Pub {index}"), index);
        request.activity_ids = if index == 0 {
            vec![pool.id.clone(), darts.id.clone()]
        } else {
            vec![darts.id.clone()]
        };
        hangout_ids.push(app.create_hangout(&owner, request).await.id);
    }

    let counted = app
        .get_activities(
            &owner,
            pb::GetActivitiesRequest {
                ids: vec![darts.id.clone(), pool.id.clone()],
            },
        )
        .await
        .unwrap()
        .activities;
    let count_of = |id: &str| counted.iter().find(|a| a.id == id).unwrap().hangout_count;
    assert_eq!(count_of(&darts.id), Some(3));
    assert_eq!(count_of(&pool.id), Some(1));

    let of_hangouts = app
        .list_activities_of_hangouts(
            &owner,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: hangout_ids.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .hangouts;
    assert_eq!(of_hangouts.len(), 3);
    let first = of_hangouts
        .iter()
        .find(|entry| entry.hangout_id == hangout_ids[0])
        .unwrap();
    let names: Vec<_> = first.activities.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Darts", "Pool"], "ordered by name");
    let counts: Vec<_> = first.activities.iter().map(|a| a.hangout_count).collect();
    assert_eq!(counts, [Some(3), Some(1)]);
    let alone = app
        .list_activities_of_hangouts(
            &owner,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: vec![hangout_ids[0].clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .hangouts;
    let counts: Vec<_> = alone[0]
        .activities
        .iter()
        .map(|a| a.hangout_count)
        .collect();
    assert_eq!(
        counts,
        [Some(3), Some(1)],
        "counts of all hangouts, not of those asked"
    );
    let uncounted = app
        .list_activities_of_hangouts(
            &owner,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: hangout_ids.clone(),
                without_hangout_counts: true,
            },
        )
        .await
        .unwrap()
        .hangouts;
    let counted_away = |mut entries: Vec<pb::HangoutActivities>| {
        entries.sort_by(|a, b| a.hangout_id.cmp(&b.hangout_id));
        for entry in &mut entries {
            for activity in &mut entry.activities {
                activity.hangout_count = None;
            }
        }
        entries
    };
    assert!(
        uncounted
            .iter()
            .flat_map(|entry| &entry.activities)
            .all(|activity| activity.hangout_count.is_none()),
        "no count when asked without: {uncounted:?}"
    );
    assert_eq!(
        counted_away(uncounted),
        counted_away(of_hangouts),
        "the same activities, only without counts"
    );

    let pages = app
        .list_hangouts_of_activities(
            &owner,
            pb::ListHangoutsOfActivitiesRequest {
                pages: vec![
                    pb::ActivityHangoutsPageRequest {
                        activity_id: darts.id.clone(),
                        page: Some(pb::PageRequest {
                            first: 2,
                            after: String::new(),
                        }),
                    },
                    pb::ActivityHangoutsPageRequest {
                        activity_id: pool.id.clone(),
                        page: None,
                    },
                ],
            },
        )
        .await
        .unwrap()
        .pages;
    assert_eq!(pages.len(), 2);
    let darts_page = pages[0].page.clone().unwrap();
    assert_eq!(darts_page.edges.len(), 2);
    let info = darts_page.page_info.unwrap();
    assert!(info.has_next_page);
    assert_eq!(info.total_count, 3);
    let newest_first: Vec<_> = darts_page
        .edges
        .iter()
        .map(|edge| edge.hangout.clone().unwrap().id)
        .collect();
    assert_eq!(
        newest_first,
        [hangout_ids[2].clone(), hangout_ids[1].clone()]
    );
    let rest = app
        .list_hangouts_of_activities(
            &owner,
            pb::ListHangoutsOfActivitiesRequest {
                pages: vec![pb::ActivityHangoutsPageRequest {
                    activity_id: darts.id.clone(),
                    page: Some(pb::PageRequest {
                        first: 2,
                        after: info.end_cursor,
                    }),
                }],
            },
        )
        .await
        .unwrap()
        .pages;
    let last = rest[0].page.clone().unwrap();
    assert_eq!(last.edges.len(), 1);
    assert_eq!(last.edges[0].hangout.clone().unwrap().id, hangout_ids[0]);
    assert!(!last.page_info.unwrap().has_next_page);
}

async fn deleting_an_activity_unlinks_it(app: TestApp) {
    let owner = app.user("Eli").await;
    let chess = app.create_activity(&owner, "Chess").await;
    let mut request = hangout("Club", 1);
    request.activity_ids = vec![chess.id.clone()];
    let club = app.create_hangout(&owner, request).await;
    app.delete_activity(
        &owner,
        pb::DeleteActivityRequest {
            id: chess.id.clone(),
        },
    )
    .await
    .unwrap();
    let of_club = app
        .list_activities_of_hangouts(
            &owner,
            pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: vec![club.id.clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .hangouts;
    assert!(of_club[0].activities.is_empty());
    // The hangout itself stays, and the name is free again.
    let still = app
        .get_hangouts(&owner, pb::GetHangoutsRequest { ids: vec![club.id] })
        .await
        .unwrap();
    assert_eq!(still.hangouts.len(), 1);
    app.create_activity(&owner, "chess").await;
}

async fn activities_of_other_users_are_not_found(app: TestApp) {
    let owner = app.user("Flo").await;
    let intruder = app.user("Gia").await;
    let secret = app.create_activity(&owner, "Secret").await;
    let rename = app
        .rename_activity(
            &intruder,
            pb::RenameActivityRequest {
                id: secret.id.clone(),
                name: "Hacked".to_owned(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(rename.code(), Code::NotFound);
    let delete = app
        .delete_activity(
            &intruder,
            pb::DeleteActivityRequest {
                id: secret.id.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Code::NotFound);
    let fetched = app
        .get_activities(
            &intruder,
            pb::GetActivitiesRequest {
                ids: vec![secret.id.clone()],
            },
        )
        .await
        .unwrap();
    assert!(fetched.activities.is_empty());
    let listed = app
        .list_activities(&intruder, pb::ListActivitiesRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.page_info.unwrap().total_count, 0);
    let pages = app
        .list_hangouts_of_activities(
            &intruder,
            pb::ListHangoutsOfActivitiesRequest {
                pages: vec![pb::ActivityHangoutsPageRequest {
                    activity_id: secret.id.clone(),
                    page: None,
                }],
            },
        )
        .await
        .unwrap();
    assert!(pages.pages.is_empty());
    // Attaching it to the intruder's own hangout is NotFound too.
    let mut request = hangout("Sneaky", 1);
    request.activity_ids = vec![secret.id.clone()];
    let attach = app
        .hangouts()
        .create_hangout(as_user(&intruder, request))
        .await
        .unwrap_err();
    assert_eq!(attach.code(), Code::NotFound);
    let own = app.create_hangout(&intruder, hangout("Own", 1)).await;
    let update = app
        .update_hangout(
            &intruder,
            pb::UpdateHangoutRequest {
                id: own.id,
                activity_ids: Some(pb::IdList {
                    ids: vec![secret.id.clone()],
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(update.code(), Code::NotFound);
}
