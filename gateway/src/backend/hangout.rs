//! The typed client of hangout-core: one method per RPC of `hangout.v1`.

use proto::hangout::v1::{
    self as pb, activity_service_client::ActivityServiceClient,
    auth_service_client::AuthServiceClient, event_service_client::EventServiceClient,
    hangout_service_client::HangoutServiceClient,
    membership_service_client::MembershipServiceClient, memory_service_client::MemoryServiceClient,
    user_service_client::UserServiceClient,
};
use tonic::transport::Channel;

use crate::backend::Client;

/// hangout-core's services over one shared channel.
#[derive(Clone, Debug)]
pub struct HangoutCore {
    pub(crate) client: Client,
    auth: AuthServiceClient<Channel>,
    users: UserServiceClient<Channel>,
    hangouts: HangoutServiceClient<Channel>,
    activities: ActivityServiceClient<Channel>,
    memories: MemoryServiceClient<Channel>,
    membership: MembershipServiceClient<Channel>,
    events: EventServiceClient<Channel>,
}

impl HangoutCore {
    pub(crate) fn new(client: Client) -> Self {
        let channel = client.channel.clone();
        Self {
            auth: AuthServiceClient::new(channel.clone()),
            users: UserServiceClient::new(channel.clone()),
            hangouts: HangoutServiceClient::new(channel.clone()),
            activities: ActivityServiceClient::new(channel.clone()),
            memories: MemoryServiceClient::new(channel.clone()),
            membership: MembershipServiceClient::new(channel.clone()),
            events: EventServiceClient::new(channel),
            client,
        }
    }

    rpc!(sign_up, auth, "AuthService/SignUp", pb::SignUpRequest => pb::AuthResponse);
    rpc!(sign_in, auth, "AuthService/SignIn", pb::SignInRequest => pb::AuthResponse);
    rpc!(refresh_session, auth, "AuthService/RefreshSession", pb::RefreshSessionRequest => pb::AuthResponse);
    rpc!(sign_out, auth, "AuthService/SignOut", pb::SignOutRequest => pb::SignOutResponse);
    rpc!(get_users, users, "UserService/GetUsers", pb::GetUsersRequest => pb::GetUsersResponse);
    rpc!(create_hangout, hangouts, "HangoutService/CreateHangout", pb::CreateHangoutRequest => pb::Hangout);
    rpc!(update_hangout, hangouts, "HangoutService/UpdateHangout", pb::UpdateHangoutRequest => pb::Hangout);
    rpc!(delete_hangout, hangouts, "HangoutService/DeleteHangout", pb::DeleteHangoutRequest => pb::DeleteHangoutResponse);
    rpc!(get_hangouts, hangouts, "HangoutService/GetHangouts", pb::GetHangoutsRequest => pb::GetHangoutsResponse);
    rpc!(list_hangouts, hangouts, "HangoutService/ListHangouts", pb::ListHangoutsRequest => pb::HangoutPage);
    rpc!(create_activity, activities, "ActivityService/CreateActivity", pb::CreateActivityRequest => pb::Activity);
    rpc!(rename_activity, activities, "ActivityService/RenameActivity", pb::RenameActivityRequest => pb::Activity);
    rpc!(delete_activity, activities, "ActivityService/DeleteActivity", pb::DeleteActivityRequest => pb::DeleteActivityResponse);
    rpc!(get_activities, activities, "ActivityService/GetActivities", pb::GetActivitiesRequest => pb::GetActivitiesResponse);
    rpc!(list_activities, activities, "ActivityService/ListActivities", pb::ListActivitiesRequest => pb::ActivityPage);
    rpc!(list_activities_of_hangouts, activities, "ActivityService/ListActivitiesOfHangouts", pb::ListActivitiesOfHangoutsRequest => pb::ListActivitiesOfHangoutsResponse);
    rpc!(list_hangouts_of_activities, activities, "ActivityService/ListHangoutsOfActivities", pb::ListHangoutsOfActivitiesRequest => pb::ListHangoutsOfActivitiesResponse);
    rpc!(create_memories, memories, "MemoryService/CreateMemories", pb::CreateMemoriesRequest => pb::CreateMemoriesResponse);
    rpc!(attach_memory_files, memories, "MemoryService/AttachMemoryFiles", pb::AttachMemoryFilesRequest => pb::AttachMemoryFilesResponse);
    rpc!(mark_memories_uploaded, memories, "MemoryService/MarkMemoriesUploaded", pb::MarkMemoriesUploadedRequest => pb::MarkMemoriesUploadedResponse);
    rpc!(get_memories, memories, "MemoryService/GetMemories", pb::GetMemoriesRequest => pb::GetMemoriesResponse);
    rpc!(list_memories_of_hangouts, memories, "MemoryService/ListMemoriesOfHangouts", pb::ListMemoriesOfHangoutsRequest => pb::ListMemoriesOfHangoutsResponse);
    rpc!(delete_memories, memories, "MemoryService/DeleteMemories", pb::DeleteMemoriesRequest => pb::DeleteMemoriesResponse);
    rpc!(list_members_of_hangouts, membership, "MembershipService/ListMembersOfHangouts", pb::ListMembersOfHangoutsRequest => pb::ListMembersOfHangoutsResponse);
    rpc!(get_members, membership, "MembershipService/GetMembers", pb::GetMembersRequest => pb::GetMembersResponse);
    rpc!(get_rsvp_counts, membership, "MembershipService/GetRsvpCounts", pb::GetRsvpCountsRequest => pb::GetRsvpCountsResponse);
    rpc!(set_rsvp, membership, "MembershipService/SetRsvp", pb::SetRsvpRequest => pb::Member);
    rpc!(update_member_role, membership, "MembershipService/UpdateMemberRole", pb::UpdateMemberRoleRequest => pb::Member);
    rpc!(remove_member, membership, "MembershipService/RemoveMember", pb::RemoveMemberRequest => pb::RemoveMemberResponse);
    rpc!(leave_hangout, membership, "MembershipService/LeaveHangout", pb::LeaveHangoutRequest => pb::LeaveHangoutResponse);
    rpc!(transfer_hangout_ownership, membership, "MembershipService/TransferHangoutOwnership", pb::TransferHangoutOwnershipRequest => pb::Hangout);
    rpc!(create_invitation, membership, "MembershipService/CreateInvitation", pb::CreateInvitationRequest => pb::Invitation);
    rpc!(accept_invitation, membership, "MembershipService/AcceptInvitation", pb::AcceptInvitationRequest => pb::Hangout);
    rpc!(decline_invitation, membership, "MembershipService/DeclineInvitation", pb::InvitationIdRequest => pb::Invitation);
    rpc!(revoke_invitation, membership, "MembershipService/RevokeInvitation", pb::InvitationIdRequest => pb::Invitation);
    rpc!(get_invitations, membership, "MembershipService/GetInvitations", pb::GetInvitationsRequest => pb::GetInvitationsResponse);
    rpc!(list_invitations_of_hangouts, membership, "MembershipService/ListInvitationsOfHangouts", pb::ListInvitationsOfHangoutsRequest => pb::ListInvitationsOfHangoutsResponse);
    rpc!(list_my_invitations, membership, "MembershipService/ListMyInvitations", pb::PageRequest => pb::InvitationPage);
    rpc!(get_invitation_preview, membership, "MembershipService/GetInvitationPreview", pb::GetInvitationPreviewRequest => pb::InvitationPreview);

    /// Opens the stream of hangout-core's events after `after` (from now when `None`):
    /// where it starts, and the stream. Not through [`Client::call`]: the stream stays open
    /// for good, so it has no deadline, and it runs on behalf of no user.
    ///
    /// # Errors
    /// The status of a refused or failed call (OutOfRange: events after `after` are gone).
    pub async fn watch_events(
        &self,
        after: Option<u64>,
    ) -> Result<(Option<u64>, tonic::Streaming<pb::Event>), tonic::Status> {
        let mut events = self.events.clone();
        let response = events
            .watch_events(pb::WatchEventsRequest { after_seq: after })
            .await?;
        let start = response
            .metadata()
            .get(proto::metadata::EVENTS_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        Ok((start, response.into_inner()))
    }
}
