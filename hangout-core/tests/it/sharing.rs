//! Sharing: the permission matrix of every action for every role and a non-member,
//! invitations by email and by link (expiry, uses, concurrency, revoke, decline), lists across
//! owned and joined hangouts, and what members see of each other.

use proto::hangout::v1 as pb;
use tonic::{Code, Status};

use crate::helpers::{TestApp, day, hangout};

on_both_backends!(
    every_action_is_allowed_exactly_to_its_roles,
    email_invitations_reach_an_account_created_later_and_can_be_declined,
    links_expire_run_out_and_admit_one_of_two_for_the_last_use,
    revoked_invitations_cannot_be_accepted_and_bounds_hold,
    lists_span_owned_and_joined_hangouts_in_every_order,
    members_see_each_other_masked_and_keep_their_memories,
);

/// Who tries an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum As {
    Owner,
    CoHost,
    Guest,
    Outsider,
}

const EVERYONE: [As; 4] = [As::Owner, As::CoHost, As::Guest, As::Outsider];

/// Users who take part: the same accounts, a fresh hangout for every case.
struct People {
    owner: String,
    co_host: String,
    guest: String,
    outsider: String,
    /// A second guest, the target of role changes, removals and transfers.
    other_guest: String,
}

impl People {
    async fn new(app: &TestApp) -> Self {
        Self {
            owner: app.user("Owner").await,
            co_host: app.user("Cohost").await,
            guest: app.user("Guest").await,
            outsider: app.user("Outsider").await,
            other_guest: app.user("Other").await,
        }
    }

    fn id(&self, who: As) -> &str {
        match who {
            As::Owner => &self.owner,
            As::CoHost => &self.co_host,
            As::Guest => &self.guest,
            As::Outsider => &self.outsider,
        }
    }
}

pub(crate) async fn invite(
    app: &TestApp,
    by: &str,
    hangout_id: &str,
    role: pb::HangoutRole,
    email: Option<&str>,
    max_uses: Option<u32>,
) -> Result<pb::Invitation, Status> {
    app.create_invitation(
        by,
        pb::CreateInvitationRequest {
            hangout_id: hangout_id.to_owned(),
            role: role as i32,
            email: email.map(str::to_owned),
            expires_at: None,
            max_uses,
        },
    )
    .await
}

pub(crate) async fn accept_code(
    app: &TestApp,
    user: &str,
    code: &str,
) -> Result<pb::Hangout, Status> {
    app.accept_invitation(
        user,
        pb::AcceptInvitationRequest {
            code: Some(code.to_owned()),
            invitation_id: None,
        },
    )
    .await
}

/// `user` joins `hangout_id` with `role` through a one-use link made by its owner.
pub(crate) async fn join(
    app: &TestApp,
    owner: &str,
    hangout_id: &str,
    user: &str,
    role: pb::HangoutRole,
) {
    let link = invite(app, owner, hangout_id, role, None, Some(1))
        .await
        .unwrap();
    accept_code(app, user, link.code.as_deref().unwrap())
        .await
        .unwrap();
}

/// A hangout of `people.owner` with the co-host, both guests, one activity of the owner and
/// a memory uploaded by the owner; returns its id, the activity's and the memory's.
async fn shared_hangout(app: &TestApp, people: &People) -> (String, String, String) {
    // The matrix makes hundreds of invitations, past the per-user rate (50 an hour): earlier
    // ones are moved an hour back, out of the rate's window.
    let mut sql = app.sql().await;
    sqlx::Executor::execute(&mut sql, "update invitations_created set created_at = 1")
        .await
        .unwrap();
    let activity = app
        .create_activity(&people.owner, &format!("Chess {}", uuid::Uuid::new_v4()))
        .await;
    let mut new = hangout("Shared", 5);
    new.activity_ids = vec![activity.id.clone()];
    let shared = app.create_hangout(&people.owner, new).await;
    join(
        app,
        &people.owner,
        &shared.id,
        &people.co_host,
        pb::HangoutRole::CoHost,
    )
    .await;
    join(
        app,
        &people.owner,
        &shared.id,
        &people.guest,
        pb::HangoutRole::Guest,
    )
    .await;
    join(
        app,
        &people.owner,
        &shared.id,
        &people.other_guest,
        pb::HangoutRole::Guest,
    )
    .await;
    let memory = create_memory(app, &people.owner, &shared.id, "owner.png")
        .await
        .unwrap();
    (shared.id, activity.id, memory)
}

pub(crate) async fn create_memory(
    app: &TestApp,
    user: &str,
    hangout_id: &str,
    name: &str,
) -> Result<String, Status> {
    let created = app
        .create_memories(
            user,
            pb::CreateMemoriesRequest {
                hangout_id: hangout_id.to_owned(),
                files: vec![pb::MemoryFile {
                    file_name: name.to_owned(),
                    content_type: "image/png".to_owned(),
                    size: 10,
                }],
            },
        )
        .await?;
    Ok(created.memories[0].id.clone())
}

/// The page of `hangout_id`'s open invitations that `user` gets; `None` when they get none.
async fn invitations_page(
    app: &TestApp,
    user: &str,
    hangout_id: &str,
    page: Option<pb::PageRequest>,
) -> Result<Option<pb::InvitationPage>, Status> {
    let response = app
        .list_invitations_of_hangouts(
            user,
            pb::ListInvitationsOfHangoutsRequest {
                pages: vec![pb::InvitationsPageRequest {
                    hangout_id: hangout_id.to_owned(),
                    page,
                }],
            },
        )
        .await?;
    Ok(response.pages.into_iter().next())
}

/// The first page of `hangout_id`'s members that `user` gets; `None` when they get none.
async fn members_page(
    app: &TestApp,
    user: &str,
    hangout_id: &str,
) -> Result<Option<pb::HangoutMembersPage>, Status> {
    let response = app
        .list_members_of_hangouts(
            user,
            pb::ListMembersOfHangoutsRequest {
                pages: vec![pb::MembersPageRequest {
                    hangout_id: hangout_id.to_owned(),
                    page: None,
                    rsvp_in: Vec::new(),
                }],
            },
        )
        .await?;
    Ok(response.pages.into_iter().next())
}

/// What an action came to, reduced to what the matrix compares.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Forbidden,
    NotFound,
    Other(Code),
}

fn outcome<T>(result: Result<T, Status>) -> Outcome {
    match result {
        Ok(_) => Outcome::Allowed,
        Err(status) => match status.code() {
            Code::PermissionDenied => Outcome::Forbidden,
            Code::NotFound => Outcome::NotFound,
            code => Outcome::Other(code),
        },
    }
}

/// Reads are scoped rather than refused: "allowed" when the caller got the thing itself.
fn seen(found: bool) -> Result<(), Status> {
    if found {
        Ok(())
    } else {
        Err(Status::not_found("not in the answer"))
    }
}

/// The action named `action`, tried by `who` on a fresh shared hangout.
#[allow(clippy::too_many_lines, reason = "one arm per action of the matrix")]
async fn attempt(app: &TestApp, people: &People, action: &str, who: As) -> Outcome {
    let (hangout_id, activity_id, owner_memory) = shared_hangout(app, people).await;
    let caller = people.id(who);
    let result: Result<(), Status> = match action {
        "see the hangout" => app
            .get_hangouts(
                caller,
                pb::GetHangoutsRequest {
                    ids: vec![hangout_id.clone()],
                },
            )
            .await
            .and_then(|response| seen(!response.hangouts.is_empty())),
        "see its activities" => app
            .list_activities_of_hangouts(
                caller,
                pb::ListActivitiesOfHangoutsRequest {
                    hangout_ids: vec![hangout_id.clone()],
                    without_hangout_counts: false,
                },
            )
            .await
            .and_then(|response| {
                seen(response.hangouts.first().is_some_and(|entry| {
                    entry
                        .activities
                        .iter()
                        .any(|activity| activity.id == activity_id)
                }))
            }),
        "see its members" => members_page(app, caller, &hangout_id)
            .await
            .and_then(|page| seen(page.is_some_and(|page| page.edges.len() == 4))),
        "see its memories" => app
            .get_memories(
                caller,
                pb::GetMemoriesRequest {
                    ids: vec![owner_memory.clone()],
                },
            )
            .await
            .and_then(|response| seen(!response.memories.is_empty())),
        "see its invitations" => {
            invite(
                app,
                &people.owner,
                &hangout_id,
                pb::HangoutRole::Guest,
                None,
                None,
            )
            .await
            .unwrap();
            invitations_page(app, caller, &hangout_id, None)
                .await
                .and_then(|page| match page {
                    None => Err(Status::not_found("no page")),
                    Some(page) if page.edges.is_empty() => {
                        Err(Status::permission_denied("an empty page"))
                    }
                    Some(_) => Ok(()),
                })
        }
        "edit the details" => app
            .update_hangout(
                caller,
                pb::UpdateHangoutRequest {
                    id: hangout_id.clone(),
                    title: Some("Renamed".to_owned()),
                    date: day(9),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
        "change the activities" => app
            .update_hangout(
                caller,
                pb::UpdateHangoutRequest {
                    id: hangout_id.clone(),
                    activity_ids: Some(pb::IdList { ids: Vec::new() }),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
        "delete the hangout" => app
            .delete_hangout(
                caller,
                pb::DeleteHangoutRequest {
                    id: hangout_id.clone(),
                },
            )
            .await
            .map(drop),
        "invite a guest" => invite(
            app,
            caller,
            &hangout_id,
            pb::HangoutRole::Guest,
            Some("new@example.com"),
            None,
        )
        .await
        .map(drop),
        "invite a co-host" => invite(
            app,
            caller,
            &hangout_id,
            pb::HangoutRole::CoHost,
            None,
            None,
        )
        .await
        .map(drop),
        "revoke a guest invitation" => {
            let invitation = invite(
                app,
                &people.owner,
                &hangout_id,
                pb::HangoutRole::Guest,
                None,
                None,
            )
            .await
            .unwrap();
            app.revoke_invitation(
                caller,
                pb::InvitationIdRequest {
                    invitation_id: invitation.id,
                },
            )
            .await
            .map(drop)
        }
        "revoke a co-host invitation" => {
            let invitation = invite(
                app,
                &people.owner,
                &hangout_id,
                pb::HangoutRole::CoHost,
                None,
                None,
            )
            .await
            .unwrap();
            app.revoke_invitation(
                caller,
                pb::InvitationIdRequest {
                    invitation_id: invitation.id,
                },
            )
            .await
            .map(drop)
        }
        "promote a guest" => app
            .update_member_role(
                caller,
                pb::UpdateMemberRoleRequest {
                    hangout_id: hangout_id.clone(),
                    user_id: people.other_guest.clone(),
                    role: pb::HangoutRole::CoHost as i32,
                },
            )
            .await
            .map(drop),
        "remove a guest" => app
            .remove_member(
                caller,
                pb::RemoveMemberRequest {
                    hangout_id: hangout_id.clone(),
                    user_id: people.other_guest.clone(),
                },
            )
            .await
            .map(drop),
        "remove a co-host" => {
            let target = if who == As::CoHost {
                // A co-host removing another co-host: promote the other guest first.
                app.update_member_role(
                    &people.owner,
                    pb::UpdateMemberRoleRequest {
                        hangout_id: hangout_id.clone(),
                        user_id: people.other_guest.clone(),
                        role: pb::HangoutRole::CoHost as i32,
                    },
                )
                .await
                .unwrap();
                people.other_guest.clone()
            } else {
                people.co_host.clone()
            };
            app.remove_member(
                caller,
                pb::RemoveMemberRequest {
                    hangout_id: hangout_id.clone(),
                    user_id: target,
                },
            )
            .await
            .map(drop)
        }
        "hand over ownership" => app
            .transfer_hangout_ownership(
                caller,
                pb::TransferHangoutOwnershipRequest {
                    hangout_id: hangout_id.clone(),
                    user_id: people.other_guest.clone(),
                },
            )
            .await
            .map(drop),
        "answer" => app
            .set_rsvp(
                caller,
                pb::SetRsvpRequest {
                    hangout_id: hangout_id.clone(),
                    rsvp: pb::RsvpStatus::Maybe as i32,
                },
            )
            .await
            .map(drop),
        "leave" => app
            .leave_hangout(
                caller,
                pb::LeaveHangoutRequest {
                    hangout_id: hangout_id.clone(),
                },
            )
            .await
            .map(drop),
        "add a memory" => create_memory(app, caller, &hangout_id, "mine.png")
            .await
            .map(drop),
        "delete their own memory" => {
            // A memory of the caller's own, when they could add one.
            match create_memory(app, caller, &hangout_id, "own.png").await {
                Ok(memory) => delete_memory(app, caller, &memory).await,
                Err(status) => Err(status),
            }
        }
        "delete another member's memory" => {
            let memory = create_memory(app, &people.other_guest, &hangout_id, "theirs.png")
                .await
                .unwrap();
            delete_memory(app, caller, &memory).await
        }
        other => panic!("no action {other}"),
    };
    outcome(result)
}

pub(crate) async fn delete_memory(app: &TestApp, caller: &str, memory: &str) -> Result<(), Status> {
    let deleted = app
        .delete_memories(
            caller,
            pb::DeleteMemoriesRequest {
                ids: vec![memory.to_owned()],
            },
        )
        .await?
        .deleted;
    seen(!deleted.is_empty())
}

async fn every_action_is_allowed_exactly_to_its_roles(app: TestApp) {
    use As::{CoHost, Guest, Owner};
    let people = People::new(&app).await;
    let matrix: &[(&str, &[As])] = &[
        ("see the hangout", &[Owner, CoHost, Guest]),
        ("see its activities", &[Owner, CoHost, Guest]),
        ("see its members", &[Owner, CoHost, Guest]),
        ("see its memories", &[Owner, CoHost, Guest]),
        ("see its invitations", &[Owner, CoHost]),
        ("edit the details", &[Owner, CoHost]),
        ("change the activities", &[Owner]),
        ("delete the hangout", &[Owner]),
        ("invite a guest", &[Owner, CoHost]),
        ("invite a co-host", &[Owner]),
        ("revoke a guest invitation", &[Owner, CoHost]),
        ("revoke a co-host invitation", &[Owner]),
        ("promote a guest", &[Owner]),
        ("remove a guest", &[Owner, CoHost]),
        ("remove a co-host", &[Owner]),
        ("hand over ownership", &[Owner]),
        ("answer", &[Owner, CoHost, Guest]),
        ("leave", &[CoHost, Guest]),
        ("add a memory", &[Owner, CoHost, Guest]),
        ("delete their own memory", &[Owner, CoHost, Guest]),
        ("delete another member's memory", &[Owner, CoHost]),
    ];
    let mut wrong = Vec::new();
    for (action, allowed) in matrix {
        for who in EVERYONE {
            let expected = if allowed.contains(&who) {
                Outcome::Allowed
            } else if who == As::Outsider {
                Outcome::NotFound
            } else {
                Outcome::Forbidden
            };
            let got = attempt(&app, &people, action, who).await;
            if got != expected {
                wrong.push(format!(
                    "{action} as {who:?}: {got:?}, expected {expected:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

pub(crate) async fn sign_up_with(app: &TestApp, name: &str, email: &str) -> String {
    app.auth()
        .sign_up(pb::SignUpRequest {
            name: name.to_owned(),
            email: email.to_owned(),
            password: "correct horse battery".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .id
}

async fn my_invitations(app: &TestApp, user: &str) -> Vec<pb::Invitation> {
    app.list_my_invitations(user, pb::PageRequest::default())
        .await
        .unwrap()
        .edges
        .into_iter()
        .filter_map(|edge| edge.invitation)
        .collect()
}

async fn accept_id(app: &TestApp, user: &str, id: &str) -> Result<pb::Hangout, Status> {
    app.accept_invitation(
        user,
        pb::AcceptInvitationRequest {
            code: None,
            invitation_id: Some(id.to_owned()),
        },
    )
    .await
}

async fn email_invitations_reach_an_account_created_later_and_can_be_declined(app: TestApp) {
    let owner = app.user("Owner").await;
    let picnic = app.create_hangout(&owner, hangout("Picnic", 3)).await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let later = format!("Later-{unique}@Example.com");
    let existing_email = format!("existing-{unique}@example.com");
    let existing = sign_up_with(&app, "Existing", &existing_email).await;

    // The same answer whether or not an account has the address.
    let to_nobody = invite(
        &app,
        &owner,
        &picnic.id,
        pb::HangoutRole::Guest,
        Some(&later),
        None,
    )
    .await
    .unwrap();
    let to_someone = invite(
        &app,
        &owner,
        &picnic.id,
        pb::HangoutRole::CoHost,
        Some(&existing_email),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        to_nobody.email.as_deref(),
        Some(later.to_lowercase().as_str())
    );
    assert_eq!(to_nobody.code, None, "a person's invitation has no code");
    assert_eq!(to_nobody.status, pb::InvitationStatus::Pending as i32);
    assert!(to_nobody.expires_at.is_some(), "30 days by default");
    assert_eq!(to_someone.status, to_nobody.status);
    let preview = to_nobody.preview.clone().unwrap();
    assert_eq!(preview.hangout_title, "Picnic");
    assert_eq!(preview.invited_by_name, "Owner");

    // Signed up afterwards, the address sees its invitation and accepts it.
    let newcomer = sign_up_with(&app, "Newcomer", &later).await;
    let mine = my_invitations(&app, &newcomer).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, to_nobody.id);
    assert!(
        mine[0].invited_by.as_ref().unwrap().email.contains("***@"),
        "the inviter's email is masked for the invitee"
    );
    // Someone else cannot accept it by id.
    assert_eq!(
        accept_id(&app, &existing, &to_nobody.id)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let joined = accept_id(&app, &newcomer, &to_nobody.id).await.unwrap();
    assert_eq!(joined.id, picnic.id);
    assert_eq!(joined.viewer_role, pb::HangoutRole::Guest as i32);
    assert_eq!(joined.viewer_rsvp, pb::RsvpStatus::NoReply as i32);
    // Accepting again as a member is a no-op.
    assert_eq!(
        accept_id(&app, &newcomer, &to_nobody.id).await.unwrap().id,
        picnic.id
    );
    assert!(my_invitations(&app, &newcomer).await.is_empty());

    // An invitation to the address of someone already a member is answered by accepting it.
    let member_email = format!("member-{unique}@example.com");
    let member = sign_up_with(&app, "Member", &member_email).await;
    join(&app, &owner, &picnic.id, &member, pb::HangoutRole::Guest).await;
    let to_member = invite(
        &app,
        &owner,
        &picnic.id,
        pb::HangoutRole::CoHost,
        Some(&member_email),
        None,
    )
    .await
    .unwrap();
    assert!(
        my_invitations(&app, &member).await.is_empty(),
        "already a member"
    );
    let same = accept_id(&app, &member, &to_member.id).await.unwrap();
    assert_eq!(
        same.viewer_role,
        pb::HangoutRole::Guest as i32,
        "accepting again changes nothing"
    );

    // The existing account declines; declined cannot be accepted.
    assert_eq!(my_invitations(&app, &existing).await.len(), 1);
    let declined = app
        .decline_invitation(
            &existing,
            pb::InvitationIdRequest {
                invitation_id: to_someone.id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(declined.status, pb::InvitationStatus::Declined as i32);
    assert_eq!(
        accept_id(&app, &existing, &to_someone.id)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert!(my_invitations(&app, &existing).await.is_empty());
}

async fn preview(app: &TestApp, code: &str) -> Result<pb::InvitationPreview, Status> {
    app.get_invitation_preview(
        "00000000-0000-0000-0000-000000000000",
        pb::GetInvitationPreviewRequest {
            code: code.to_owned(),
        },
    )
    .await
}

async fn links_expire_run_out_and_admit_one_of_two_for_the_last_use(app: TestApp) {
    use sqlx::Executor as _;
    let owner = app.user("Owner").await;
    let first = app.user("First").await;
    let second = app.user("Second").await;
    let third = app.user("Third").await;
    let party = app.create_hangout(&owner, hangout("Party", 3)).await;

    // Two uses: a member accepting again takes none.
    let link = invite(
        &app,
        &owner,
        &party.id,
        pb::HangoutRole::Guest,
        None,
        Some(2),
    )
    .await
    .unwrap();
    let code = link.code.clone().unwrap();
    assert!(code.len() >= 22, "at least 128 bits: {code}");
    assert_eq!(link.uses_left, Some(2));
    assert_eq!(preview(&app, &code).await.unwrap().hangout_title, "Party");
    accept_code(&app, &first, &code).await.unwrap();
    accept_code(&app, &first, &code).await.unwrap();

    // The last use, by two at once: exactly one gets in.
    let (a, b) = tokio::join!(
        accept_code(&app, &second, &code),
        accept_code(&app, &third, &code)
    );
    let admitted = [a.is_ok(), b.is_ok()];
    assert_eq!(admitted.iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    let refused = if a.is_ok() { b } else { a };
    assert_eq!(refused.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        preview(&app, &code).await.unwrap_err().code(),
        Code::NotFound
    );
    let page = members_page(&app, &owner, &party.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.page_info.as_ref().unwrap().total_count, 3);
    assert_eq!(
        page.edges[0].member.as_ref().unwrap().user_id,
        owner,
        "owner first"
    );

    // An expired link admits nobody and shows nothing.
    let expiring = invite(&app, &owner, &party.id, pb::HangoutRole::Guest, None, None)
        .await
        .unwrap();
    let mut sql = app.sql().await;
    sql.execute(
        format!(
            "update invitations set expires_at = 1 where id = '{}'",
            expiring.id
        )
        .as_str(),
    )
    .await
    .unwrap();
    let late = app.user("Late").await;
    let expired_code = expiring.code.unwrap();
    assert_eq!(
        accept_code(&app, &late, &expired_code)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        preview(&app, &expired_code).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        accept_code(&app, &late, "not-a-code")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // Codes are stored only as hashes.
    let stored: Vec<(String,)> = sqlx::query_as("select code_hash from invitations")
        .fetch_all(&mut sql)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(hash,)| hash.len() == 64 && *hash != code)
    );
}

async fn revoked_invitations_cannot_be_accepted_and_bounds_hold(app: TestApp) {
    let owner = app.user("Owner").await;
    let co_host = app.user("Cohost").await;
    let guest = app.user("Guest").await;
    let party = app.create_hangout(&owner, hangout("Party", 3)).await;
    join(&app, &owner, &party.id, &co_host, pb::HangoutRole::CoHost).await;

    let link = invite(&app, &owner, &party.id, pb::HangoutRole::Guest, None, None)
        .await
        .unwrap();
    // The co-host is shown the owner's link's code again; only its hash is stored.
    let listed = invitations_page(&app, &co_host, &party.id, None)
        .await
        .unwrap()
        .unwrap();
    let shown = listed.edges[0].invitation.as_ref().unwrap();
    assert_eq!(shown.id, link.id);
    assert_eq!(shown.code, link.code);
    let revoked = app
        .revoke_invitation(
            &co_host,
            pb::InvitationIdRequest {
                invitation_id: link.id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(revoked.status, pb::InvitationStatus::Revoked as i32);
    assert_eq!(
        accept_code(&app, &guest, link.code.as_deref().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // Input is checked field by field.
    for (request, field) in [
        (
            pb::CreateInvitationRequest {
                hangout_id: party.id.clone(),
                role: pb::HangoutRole::Owner as i32,
                ..Default::default()
            },
            "role",
        ),
        (
            pb::CreateInvitationRequest {
                hangout_id: party.id.clone(),
                email: Some("not an email".to_owned()),
                ..Default::default()
            },
            "email",
        ),
        (
            pb::CreateInvitationRequest {
                hangout_id: party.id.clone(),
                max_uses: Some(1001),
                ..Default::default()
            },
            "maxUses",
        ),
        (
            pb::CreateInvitationRequest {
                hangout_id: party.id.clone(),
                expires_at: day(-400),
                ..Default::default()
            },
            "expiresAt",
        ),
    ] {
        let status = app.create_invitation(&owner, request).await.unwrap_err();
        assert_eq!(crate::helpers::violated_field(&status), field);
    }

    // 50 created per user per hour, whatever becomes of them: the owner made 2 so far, makes
    // 48 more on a hangout it then deletes, and is still refused, with the wait.
    let throwaway = app.create_hangout(&owner, hangout("Throwaway", 4)).await;
    for _ in 0..48 {
        invite(
            &app,
            &owner,
            &throwaway.id,
            pb::HangoutRole::Guest,
            None,
            None,
        )
        .await
        .unwrap();
    }
    app.delete_hangout(
        &owner,
        pb::DeleteHangoutRequest {
            id: throwaway.id.clone(),
        },
    )
    .await
    .unwrap();
    let rate = invite(&app, &owner, &party.id, pb::HangoutRole::Guest, None, None)
        .await
        .unwrap_err();
    assert_eq!(rate.code(), Code::ResourceExhausted, "{rate:?}");
    let wait = {
        use tonic_types::StatusExt as _;
        rate.get_error_details()
            .retry_info()
            .and_then(|info| info.retry_delay)
            .expect("a retry delay")
    };
    assert!(
        wait.as_secs() > 3000 && wait.as_secs() <= 3600,
        "until the oldest leaves the hour: {wait:?}"
    );

    // 100 open invitations per hangout: none is open yet (the co-host's link is used up, one
    // revoked); the co-host adds 50, and an hour later (moved back in the store) the owner 50.
    for _ in 0..50 {
        invite(
            &app,
            &co_host,
            &party.id,
            pb::HangoutRole::Guest,
            None,
            None,
        )
        .await
        .unwrap();
    }
    let mut sql = app.sql().await;
    sqlx::Executor::execute(&mut sql, "update invitations_created set created_at = 1")
        .await
        .unwrap();
    for _ in 0..50 {
        invite(&app, &owner, &party.id, pb::HangoutRole::Guest, None, None)
            .await
            .unwrap();
    }
    sqlx::Executor::execute(&mut sql, "update invitations_created set created_at = 1")
        .await
        .unwrap();
    let full = invite(&app, &owner, &party.id, pb::HangoutRole::Guest, None, None)
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition, "{full:?}");
    assert!(full.message().contains("100"), "{full:?}");
    // 500 members at most: fill the hangout up to 499 in the store, then one more joins and
    // the next is refused.
    let members = (2..499)
        .map(|index| {
            format!(
                "('{}', '{}', 'GUEST', 'NO_REPLY', {index}, 1, 1)",
                party.id,
                uuid::Uuid::new_v4()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::Executor::execute(
        &mut sql,
        format!(
            "insert into hangout_members (hangout_id, user_id, role, rsvp, joined_at, \
             hangout_created_at, hangout_date) values {members}"
        )
        .as_str(),
    )
    .await
    .unwrap();
    sqlx::Executor::execute(&mut sql, "update invitations_created set created_at = 1")
        .await
        .unwrap();
    let first_two = Some(pb::PageRequest {
        first: 2,
        after: String::new(),
    });
    let open = invitations_page(&app, &owner, &party.id, first_two)
        .await
        .unwrap()
        .unwrap();
    let codes: Vec<String> = open
        .edges
        .iter()
        .map(|edge| edge.invitation.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(codes.len(), 2, "two open invitations to revoke for links");
    for id in codes {
        app.revoke_invitation(&owner, pb::InvitationIdRequest { invitation_id: id })
            .await
            .unwrap();
    }
    let last = invite(&app, &owner, &party.id, pb::HangoutRole::Guest, None, None)
        .await
        .unwrap();
    let last_code = last.code.unwrap();
    let five_hundredth = app.user("Full").await;
    accept_code(&app, &five_hundredth, &last_code)
        .await
        .unwrap();
    let too_many = app.user("TooMany").await;
    let full = accept_code(&app, &too_many, &last_code).await.unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition, "{full:?}");
    assert!(full.message().contains("500"), "{full:?}");

    // A non-member is told nothing, whatever the bounds.
    let stranger = app.user("Stranger").await;
    let status = invite(
        &app,
        &stranger,
        &party.id,
        pb::HangoutRole::Guest,
        None,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn list(
    app: &TestApp,
    user: &str,
    field: pb::HangoutOrderField,
    direction: pb::OrderDirection,
    roles: &[pb::HangoutRole],
) -> (Vec<String>, u64) {
    let mut ids = Vec::new();
    let mut after = String::new();
    let mut total;
    loop {
        let page = app
            .list_hangouts(
                user,
                pb::ListHangoutsRequest {
                    page: Some(pb::PageRequest {
                        first: 2,
                        after: after.clone(),
                    }),
                    order_field: field as i32,
                    direction: direction as i32,
                    role_in: roles.iter().map(|role| *role as i32).collect(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        ids.extend(
            page.edges
                .iter()
                .filter_map(|edge| edge.hangout.as_ref())
                .map(|h| h.id.clone()),
        );
        let info = page.page_info.unwrap();
        total = info.total_count;
        if !info.has_next_page {
            break;
        }
        after = info.end_cursor;
    }
    (ids, total)
}

async fn lists_span_owned_and_joined_hangouts_in_every_order(app: TestApp) {
    let me = app.user("Me").await;
    let friend = app.user("Friend").await;
    let mut mine = Vec::new();
    let mut joined = Vec::new();
    for index in 0..3 {
        mine.push(
            app.create_hangout(&me, hangout(&format!("Mine {index}"), 10 - index))
                .await,
        );
        let theirs = app
            .create_hangout(&friend, hangout(&format!("Theirs {index}"), 20 + index))
            .await;
        join(&app, &friend, &theirs.id, &me, pb::HangoutRole::Guest).await;
        joined.push(theirs);
    }
    // The friend's hangout that I did not join stays out.
    app.create_hangout(&friend, hangout("Private", 1)).await;

    let mut by_created: Vec<&pb::Hangout> = mine.iter().chain(&joined).collect();
    by_created.sort_by_key(|h| {
        (
            proto::timestamp_to_millis(h.created_at.as_ref().unwrap()),
            h.id.clone(),
        )
    });
    let mut by_date = by_created.clone();
    by_date.sort_by_key(|h| {
        (
            proto::timestamp_to_millis(h.date.as_ref().unwrap()),
            h.id.clone(),
        )
    });
    for (field, sorted) in [
        (pb::HangoutOrderField::CreatedAt, &by_created),
        (pb::HangoutOrderField::Date, &by_date),
    ] {
        let ascending: Vec<String> = sorted.iter().map(|h| h.id.clone()).collect();
        let descending: Vec<String> = ascending.iter().rev().cloned().collect();
        assert_eq!(
            list(&app, &me, field, pb::OrderDirection::Asc, &[]).await,
            (ascending, 6),
            "{field:?} ascending"
        );
        assert_eq!(
            list(&app, &me, field, pb::OrderDirection::Desc, &[]).await,
            (descending, 6),
            "{field:?} descending"
        );
    }
    let (guest_of, total) = list(
        &app,
        &me,
        pb::HangoutOrderField::CreatedAt,
        pb::OrderDirection::Asc,
        &[pb::HangoutRole::Guest],
    )
    .await;
    assert_eq!(total, 3);
    assert_eq!(
        guest_of,
        joined.iter().map(|h| h.id.clone()).collect::<Vec<_>>()
    );
    let (owned, _) = list(
        &app,
        &me,
        pb::HangoutOrderField::CreatedAt,
        pb::OrderDirection::Asc,
        &[pb::HangoutRole::Owner, pb::HangoutRole::CoHost],
    )
    .await;
    assert_eq!(owned, mine.iter().map(|h| h.id.clone()).collect::<Vec<_>>());

    // A date change moves the hangout in every member's date order.
    app.update_hangout(
        &friend,
        pb::UpdateHangoutRequest {
            id: joined[2].id.clone(),
            date: day(-5),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (dated, _) = list(
        &app,
        &me,
        pb::HangoutOrderField::Date,
        pb::OrderDirection::Asc,
        &[],
    )
    .await;
    assert_eq!(dated[0], joined[2].id);
}

async fn members_see_each_other_masked_and_keep_their_memories(app: TestApp) {
    let owner_email = format!("ann-{}@example.com", uuid::Uuid::new_v4().simple());
    let owner = sign_up_with(&app, "Ann", &owner_email).await;
    let guest = app.user("Guest").await;
    let stranger = app.user("Stranger").await;
    let chess = app.create_activity(&owner, "Chess").await;
    let mut new = hangout("Shared", 3);
    new.activity_ids = vec![chess.id.clone()];
    let shared = app.create_hangout(&owner, new).await;
    // A hangout of the owner the guest is not in, with the same activity.
    let mut private = hangout("Private", 4);
    private.activity_ids = vec![chess.id.clone()];
    app.create_hangout(&owner, private).await;
    join(&app, &owner, &shared.id, &guest, pb::HangoutRole::Guest).await;

    let users = |viewer: String, ids: Vec<String>| {
        let app = &app;
        async move {
            app.get_users(
                &viewer,
                pb::GetUsersRequest {
                    ids,
                    visible_only: true,
                },
            )
            .await
            .unwrap()
            .users
        }
    };
    let seen = users(guest.clone(), vec![owner.clone(), stranger.clone()]).await;
    assert_eq!(seen.len(), 1, "a stranger shares no hangout");
    assert_eq!(seen[0].email, "a***@example.com");
    let own = users(owner.clone(), vec![owner.clone()]).await;
    assert_eq!(own[0].email, owner_email);
    assert!(
        users(stranger.clone(), vec![owner.clone()])
            .await
            .is_empty()
    );

    // The guest sees the owner's activity through the hangout, counted over what they see.
    let activities = app
        .get_activities(
            &guest,
            pb::GetActivitiesRequest {
                ids: vec![chess.id.clone()],
            },
        )
        .await
        .unwrap()
        .activities;
    assert_eq!(activities[0].hangout_count, Some(1));
    let renamed = app
        .rename_activity(
            &guest,
            pb::RenameActivityRequest {
                id: chess.id.clone(),
                name: "Mine now".to_owned(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(renamed.code(), Code::NotFound, "only the owner renames it");
    assert!(
        app.get_activities(
            &stranger,
            pb::GetActivitiesRequest {
                ids: vec![chess.id.clone()]
            }
        )
        .await
        .unwrap()
        .activities
        .is_empty()
    );

    // An address invited by the owner is shown in full to the owner and the addressee only.
    let co_host = app.user("Cohost").await;
    join(&app, &owner, &shared.id, &co_host, pb::HangoutRole::CoHost).await;
    let invitee = format!("zed-{}@example.com", uuid::Uuid::new_v4().simple());
    let to_zed = invite(
        &app,
        &owner,
        &shared.id,
        pb::HangoutRole::Guest,
        Some(&invitee),
        None,
    )
    .await
    .unwrap();
    assert_eq!(to_zed.email.as_deref(), Some(invitee.as_str()));
    let by_id = |viewer: String| {
        let app = &app;
        let id = to_zed.id.clone();
        async move {
            app.get_invitations(&viewer, pb::GetInvitationsRequest { ids: vec![id] })
                .await
                .unwrap()
                .invitations
        }
    };
    assert_eq!(
        by_id(co_host.clone()).await[0].email.as_deref(),
        Some("z***@example.com")
    );
    assert_eq!(
        by_id(owner.clone()).await[0].email.as_deref(),
        Some(invitee.as_str())
    );
    assert!(
        by_id(guest.clone()).await.is_empty(),
        "a guest does not manage invitations"
    );

    // A co-host's open links die with their role; a removed guest cannot rejoin by an old link.
    let co_host_link = invite(
        &app,
        &co_host,
        &shared.id,
        pb::HangoutRole::Guest,
        None,
        None,
    )
    .await
    .unwrap();
    let old_link = invite(&app, &owner, &shared.id, pb::HangoutRole::Guest, None, None)
        .await
        .unwrap();
    app.leave_hangout(
        &co_host,
        pb::LeaveHangoutRequest {
            hangout_id: shared.id.clone(),
        },
    )
    .await
    .unwrap();
    let latecomer = app.user("Latecomer").await;
    assert_eq!(
        accept_code(&app, &latecomer, co_host_link.code.as_deref().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "the link of a co-host who left is revoked"
    );

    // The guest's memory stays after they are removed, and they see the hangout no more.
    let memory = create_memory(&app, &guest, &shared.id, "guest.png")
        .await
        .unwrap();
    app.remove_member(
        &owner,
        pb::RemoveMemberRequest {
            hangout_id: shared.id.clone(),
            user_id: guest.clone(),
        },
    )
    .await
    .unwrap();
    let kept = app
        .get_memories(
            &owner,
            pb::GetMemoriesRequest {
                ids: vec![memory.clone()],
            },
        )
        .await
        .unwrap()
        .memories;
    assert_eq!(kept[0].uploaded_by, guest);
    let gone = app
        .get_hangouts(
            &guest,
            pb::GetHangoutsRequest {
                ids: vec![shared.id.clone()],
            },
        )
        .await
        .unwrap()
        .hangouts;
    assert!(gone.is_empty());
    assert_eq!(
        accept_code(&app, &guest, old_link.code.as_deref().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "a link made before the removal does not let them back in"
    );
    let new_link = invite(&app, &owner, &shared.id, pb::HangoutRole::Guest, None, None)
        .await
        .unwrap();
    accept_code(&app, &guest, new_link.code.as_deref().unwrap())
        .await
        .unwrap();

    // Deleting the hangout removes every member's memories and names their files.
    let deleted = app
        .delete_hangout(
            &owner,
            pb::DeleteHangoutRequest {
                id: shared.id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted.id, shared.id);
    let none = app
        .get_memories(&owner, pb::GetMemoriesRequest { ids: vec![memory] })
        .await
        .unwrap()
        .memories;
    assert!(none.is_empty());
}
