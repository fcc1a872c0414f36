//! Sharing end to end over HTTP: an owner, a co-host, a guest and an outsider go through the
//! contract's flows (invite by link and by email, RSVP, roles, upload by a guest, deletion by
//! a co-host, email masking, visibility through `node` and `nodes`, leaving and handing over).

use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestSystem, error_code, error_field},
    memories::{png, upload_memories},
};

const CREATE_INVITATION: &str = "mutation($input: CreateInvitationInput!) {
    createInvitation(input: $input) {
        invitation { id role status email code usesLeft expiresAt invitedBy { id name email }
            preview { hangoutTitle hangoutDate invitedByName role expiresAt } }
    }
}";

const ACCEPT: &str = "mutation($input: AcceptInvitationInput!) {
    acceptInvitation(input: $input) { hangout { id title viewerRole viewerRsvp } }
}";

const HANGOUT: &str = "query($id: ID!) {
    hangout(id: $id) {
        id title viewerRole viewerRsvp
        owner { id name email }
        rsvpCounts { going maybe notGoing noReply }
        members { totalCount nodes { role rsvp joinedAt user { id name email } } }
        invitations { totalCount nodes { id role status code } }
        memories { nodes { id downloadUrl uploadedBy { id name email } } }
    }
}";

pub(crate) async fn create_invitation(system: &TestSystem, by: &Session, input: Value) -> Value {
    system
        .graphql(
            Some(&by.access_token),
            CREATE_INVITATION,
            json!({ "input": input }),
        )
        .await
}

pub(crate) async fn link(
    system: &TestSystem,
    by: &Session,
    hangout_id: &str,
    role: &str,
) -> String {
    let body =
        create_invitation(system, by, json!({ "hangoutId": hangout_id, "role": role })).await;
    body["data"]["createInvitation"]["invitation"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_owned()
}

/// Ada's hangout "Trip" with Gus as a GUEST (joined by link): `(owner, guest, hangout id)`.
pub(crate) async fn trip_with_a_guest(system: &TestSystem) -> (Session, Session, String) {
    let owner = system.sign_up("Ada").await;
    let guest = system.sign_up("Gus").await;
    let trip = system
        .create_hangout(&owner, "Trip", "2026-08-01T10:00:00Z")
        .await;
    let code = link(system, &owner, &trip, "GUEST").await;
    accept(system, &guest, json!({ "code": code })).await;
    (owner, guest, trip)
}

pub(crate) async fn accept(system: &TestSystem, who: &Session, input: Value) -> Value {
    system
        .graphql(Some(&who.access_token), ACCEPT, json!({ "input": input }))
        .await
}

on_both_backends!(
    owner_co_host_guest_and_outsider_share_a_hangout,
    a_page_with_members_and_rsvp_counts_is_a_fixed_number_of_calls,
    deleting_a_shared_hangout_removes_every_members_photos,
);

async fn owner_co_host_guest_and_outsider_share_a_hangout(system: TestSystem) {
    let owner_email = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    let owner = system.sign_up_with_email("Ada", &owner_email).await;
    let co_host = system.sign_up("Bea").await;
    let outsider = system.sign_up("Eve").await;
    let picnic = system
        .create_hangout(&owner, "Picnic", "2026-08-01T10:00:00Z")
        .await;

    // The co-host joins through a link; the guest through an email invitation made before
    // they had an account.
    let code = link(&system, &owner, &picnic, "CO_HOST").await;
    assert!(code.len() >= 22);
    let preview = system
        .graphql(
            Some(&co_host.access_token),
            "query($code: String!) { invitationPreview(code: $code) { hangoutTitle invitedByName role } }",
            json!({ "code": code }),
        )
        .await;
    assert_eq!(
        preview["data"]["invitationPreview"],
        json!({ "hangoutTitle": "Picnic", "invitedByName": "Ada", "role": "CO_HOST" })
    );
    let joined = accept(&system, &co_host, json!({ "code": code })).await;
    assert_eq!(
        joined["data"]["acceptInvitation"]["hangout"]["viewerRole"], "CO_HOST",
        "{joined}"
    );
    // Accepting again is a no-op that returns the hangout.
    let again = accept(&system, &co_host, json!({ "code": code })).await;
    assert_eq!(
        again["data"]["acceptInvitation"]["hangout"]["id"],
        picnic.as_str()
    );

    let guest_email = format!("gus-{}@example.com", uuid::Uuid::new_v4().simple());
    let invited = create_invitation(
        &system,
        &co_host,
        json!({ "hangoutId": picnic, "email": guest_email }),
    )
    .await;
    let invitation = &invited["data"]["createInvitation"]["invitation"];
    assert_eq!(invitation["role"], "GUEST", "{invited}");
    assert_eq!(invitation["code"], Value::Null);
    let invitation_id = invitation["id"].as_str().unwrap().to_owned();
    // A co-host may not invite a co-host.
    let refused = create_invitation(
        &system,
        &co_host,
        json!({ "hangoutId": picnic, "role": "CO_HOST" }),
    )
    .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    let bad = create_invitation(
        &system,
        &owner,
        json!({ "hangoutId": picnic, "email": "nope" }),
    )
    .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(error_field(&bad), "email");

    let guest = system.sign_up_with_email("Gus", &guest_email).await;
    let mine = system
        .graphql(
            Some(&guest.access_token),
            "{ myInvitations { totalCount nodes { id status invitedBy { name email } preview { hangoutTitle } } } }",
            json!({}),
        )
        .await;
    let mine = &mine["data"]["myInvitations"];
    assert_eq!(mine["totalCount"], 1, "{mine}");
    assert_eq!(mine["nodes"][0]["id"], invitation_id.as_str());
    assert_eq!(mine["nodes"][0]["preview"]["hangoutTitle"], "Picnic");
    let inviter_email = mine["nodes"][0]["invitedBy"]["email"].as_str().unwrap();
    assert!(
        inviter_email.ends_with("***@example.com"),
        "{inviter_email}"
    );
    let joined = accept(&system, &guest, json!({ "invitationId": invitation_id })).await;
    assert_eq!(
        joined["data"]["acceptInvitation"]["hangout"]["viewerRole"],
        "GUEST"
    );
    assert_eq!(
        joined["data"]["acceptInvitation"]["hangout"]["viewerRsvp"],
        "NO_REPLY"
    );

    // The guest answers and uploads a photo.
    let rsvp = system
        .graphql(
            Some(&guest.access_token),
            "mutation($id: ID!) { setRsvp(input: { hangoutId: $id, status: GOING }) { member { rsvp role user { id } } } }",
            json!({ "id": picnic }),
        )
        .await;
    assert_eq!(rsvp["data"]["setRsvp"]["member"]["rsvp"], "GOING", "{rsvp}");
    let memory = upload_memories(
        &system,
        &guest,
        &picnic,
        &[("gus.png".to_owned(), png(7, 900))],
    )
    .await
    .remove(0);

    // Everyone's view: roles, masked emails, the guest's memory by the guest.
    let seen = system
        .graphql(
            Some(&co_host.access_token),
            HANGOUT,
            json!({ "id": picnic }),
        )
        .await;
    let hangout = &seen["data"]["hangout"];
    assert_eq!(hangout["viewerRole"], "CO_HOST", "{seen}");
    assert_eq!(hangout["owner"]["email"], "a***@example.com");
    assert_eq!(hangout["members"]["totalCount"], 3);
    let roles: Vec<&str> = hangout["members"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["OWNER", "CO_HOST", "GUEST"],
        "owner first, then as they joined"
    );
    assert_eq!(
        hangout["rsvpCounts"],
        json!({ "going": 2, "maybe": 0, "notGoing": 0, "noReply": 1 })
    );
    assert_eq!(hangout["memories"]["nodes"][0]["uploadedBy"]["name"], "Gus");
    // Another member never gets the uploaded bytes, only their rendition, and these bytes are
    // no image that could be rendered (`photos.rs` shows a real one to the other members).
    assert_eq!(
        hangout["memories"]["nodes"][0]["downloadUrl"],
        Value::Null,
        "{seen}"
    );
    // The co-host's link has no limit, so it stays open; the email invitation is used.
    assert_eq!(hangout["invitations"]["totalCount"], 1);
    assert_eq!(
        hangout["invitations"]["nodes"][0]["code"],
        code.as_str(),
        "managers see a link's code again"
    );
    let own = system
        .graphql(Some(&owner.access_token), HANGOUT, json!({ "id": picnic }))
        .await;
    assert_eq!(
        own["data"]["hangout"]["owner"]["email"],
        owner_email.as_str()
    );
    let as_guest = system
        .graphql(Some(&guest.access_token), HANGOUT, json!({ "id": picnic }))
        .await;
    assert_eq!(
        as_guest["data"]["hangout"]["viewerRole"], "GUEST",
        "{as_guest}"
    );
    assert_eq!(as_guest["data"]["hangout"]["invitations"]["totalCount"], 0);
    let open = link(&system, &owner, &picnic, "GUEST").await;
    let managed = system
        .graphql(
            Some(&co_host.access_token),
            HANGOUT,
            json!({ "id": picnic }),
        )
        .await;
    assert_eq!(managed["data"]["hangout"]["invitations"]["totalCount"], 2);
    let guest_view = system
        .graphql(Some(&guest.access_token), HANGOUT, json!({ "id": picnic }))
        .await;
    assert_eq!(
        guest_view["data"]["hangout"]["invitations"]["totalCount"],
        0
    );

    // The outsider sees nothing: not the hangout, not its members, not the memory.
    let nothing = system
        .graphql(
            Some(&outsider.access_token),
            HANGOUT,
            json!({ "id": picnic }),
        )
        .await;
    assert_eq!(nothing["data"]["hangout"], Value::Null, "{nothing}");
    let nodes = system
        .graphql(
            Some(&outsider.access_token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": [picnic, memory, guest.user_id, owner.user_id] }),
        )
        .await;
    assert_eq!(
        nodes["data"]["nodes"],
        json!([null, null, null, null]),
        "{nodes}"
    );
    // Members see each other through node, masked.
    let node = system
        .graphql(
            Some(&guest.access_token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on User { name email } ... on Hangout { title } } }",
            json!({ "ids": [owner.user_id, picnic, outsider.user_id] }),
        )
        .await;
    assert_eq!(
        node["data"]["nodes"][0]["email"], "a***@example.com",
        "{node}"
    );
    assert_eq!(node["data"]["nodes"][1]["title"], "Picnic");
    assert_eq!(node["data"]["nodes"][2], Value::Null);
    let preview = system
        .graphql(
            Some(&outsider.access_token),
            "query($code: String!) { invitationPreview(code: $code) { hangoutTitle } }",
            json!({ "code": "not-a-real-code" }),
        )
        .await;
    assert_eq!(preview["data"]["invitationPreview"], Value::Null);
    let _ = open;

    // The guest may not delete the hangout or edit it; the co-host deletes the guest's memory.
    let forbidden = system
        .graphql(
            Some(&guest.access_token),
            "mutation($id: ID!) { updateHangout(input: { id: $id, title: \"Mine\" }) { hangout { id } } }",
            json!({ "id": picnic }),
        )
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    let delete = system
        .graphql(
            Some(&co_host.access_token),
            "mutation($id: ID!) { deleteMemory(input: { id: $id }) { deletedId } }",
            json!({ "id": memory }),
        )
        .await;
    assert_eq!(
        delete["data"]["deleteMemory"]["deletedId"],
        memory.as_str(),
        "{delete}"
    );

    // Roles: promote the guest, hand over ownership, and the old owner is a co-host.
    let promoted = system
        .graphql(
            Some(&owner.access_token),
            "mutation($h: ID!, $u: ID!) { updateMemberRole(input: { hangoutId: $h, userId: $u, role: CO_HOST }) { member { role } } }",
            json!({ "h": picnic, "u": guest.user_id }),
        )
        .await;
    assert_eq!(
        promoted["data"]["updateMemberRole"]["member"]["role"],
        "CO_HOST"
    );
    let owner_leaves = system
        .graphql(
            Some(&owner.access_token),
            "mutation($h: ID!) { leaveHangout(input: { hangoutId: $h }) { hangoutId } }",
            json!({ "h": picnic }),
        )
        .await;
    assert_eq!(error_code(&owner_leaves), "FORBIDDEN");
    let handed = system
        .graphql(
            Some(&owner.access_token),
            "mutation($h: ID!, $u: ID!) { transferHangoutOwnership(input: { hangoutId: $h, userId: $u }) { hangout { viewerRole owner { id } } } }",
            json!({ "h": picnic, "u": co_host.user_id }),
        )
        .await;
    let hangout = &handed["data"]["transferHangoutOwnership"]["hangout"];
    assert_eq!(hangout["viewerRole"], "CO_HOST", "{handed}");
    assert_eq!(hangout["owner"]["id"], co_host.user_id.as_str());
    let removed = system
        .graphql(
            Some(&co_host.access_token),
            "mutation($h: ID!, $u: ID!) { removeMember(input: { hangoutId: $h, userId: $u }) { removedUserId } }",
            json!({ "h": picnic, "u": guest.user_id }),
        )
        .await;
    assert_eq!(
        removed["data"]["removeMember"]["removedUserId"],
        guest.user_id.as_str(),
        "{removed}"
    );
    let left = system
        .graphql(
            Some(&owner.access_token),
            "mutation($h: ID!) { leaveHangout(input: { hangoutId: $h }) { hangoutId } }",
            json!({ "h": picnic }),
        )
        .await;
    assert_eq!(
        left["data"]["leaveHangout"]["hangoutId"],
        picnic.as_str(),
        "{left}"
    );
    let list = system
        .graphql(
            Some(&co_host.access_token),
            "{ hangouts(filter: { membership: { role: [OWNER] } }) { totalCount nodes { id viewerRole } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["data"]["hangouts"]["totalCount"], 1, "{list}");
    assert_eq!(list["data"]["hangouts"]["nodes"][0]["viewerRole"], "OWNER");
    let gone = system
        .graphql(Some(&owner.access_token), HANGOUT, json!({ "id": picnic }))
        .await;
    assert_eq!(gone["data"]["hangout"], Value::Null);
}

async fn a_page_with_members_and_rsvp_counts_is_a_fixed_number_of_calls(system: TestSystem) {
    let owner = system.sign_up("Ada").await;
    let friend = system.sign_up("Bea").await;
    const PAGE: &str = "query($first: Int) { hangouts(first: $first) { nodes {
        id viewerRole viewerRsvp rsvpCounts { going noReply }
        members(first: 5) { totalCount nodes { role user { name } } } } } }";
    let mut calls = Vec::new();
    for size in [1, 4] {
        while system
            .graphql(
                Some(&owner.access_token),
                "{ hangouts { totalCount } }",
                json!({}),
            )
            .await["data"]["hangouts"]["totalCount"]
            .as_i64()
            .unwrap()
            < size
        {
            let id = system
                .create_hangout(&owner, "Party", "2026-08-01T10:00:00Z")
                .await;
            let code = link(&system, &owner, &id, "GUEST").await;
            accept(&system, &friend, json!({ "code": code })).await;
        }
        let before = system.backend_calls.get();
        let page = system
            .graphql(Some(&owner.access_token), PAGE, json!({ "first": size }))
            .await;
        let nodes = page["data"]["hangouts"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), usize::try_from(size).unwrap(), "{page}");
        assert!(nodes.iter().all(|node| node["members"]["totalCount"] == 2));
        calls.push(system.backend_calls.get() - before);
    }
    assert_eq!(calls[0], calls[1], "calls for pages of 1 and 4: {calls:?}");
    assert_eq!(calls[0], 4, "hangouts, members, counts, users");
}

async fn deleting_a_shared_hangout_removes_every_members_photos(system: TestSystem) {
    let (owner, guest, trip) = trip_with_a_guest(&system).await;
    upload_memories(
        &system,
        &guest,
        &trip,
        &[("gus.png".to_owned(), png(3, 500))],
    )
    .await;
    upload_memories(
        &system,
        &owner,
        &trip,
        &[("ada.png".to_owned(), png(4, 500))],
    )
    .await;
    assert_eq!(system.stored_objects().len(), 2);
    // The guest may not delete it.
    let refused = system
        .graphql(
            Some(&guest.access_token),
            "mutation($id: ID!) { deleteHangout(input: { id: $id }) { deletedId } }",
            json!({ "id": trip }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    let deleted = system
        .graphql(
            Some(&owner.access_token),
            "mutation($id: ID!) { deleteHangout(input: { id: $id }) { deletedId } }",
            json!({ "id": trip }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteHangout"]["deletedId"],
        trip.as_str(),
        "{deleted}"
    );
    let emptied = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        system.stored_objects().is_empty()
    })
    .await;
    assert!(emptied, "left: {:?}", system.stored_objects());
}
