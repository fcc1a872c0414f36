//! Sharing: members, roles, RSVPs and invitations (version 2 of the contract, "Sharing").
//! Who may do what is decided by hangout-core; this module only translates.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, ID, InputObject, Object, SimpleObject, Value, parser::types::Field,
    resolver_utils::enum_value,
};
use proto::hangout::v1 as pb;

use crate::{
    backend::BackendError,
    graphql::{
        backends,
        connection::{Page, PageArgs, connection},
        error::{ApiError, ApiResult},
        hangout::Hangout,
        ids::{self, Kind},
        ready::{self, Ready, ReadyFields},
        scalars::{DateTime, DateTimeInput},
        signed_in, user,
        user::User,
    },
};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HangoutRole {
    Owner,
    CoHost,
    Guest,
}

impl HangoutRole {
    pub(crate) fn from_proto(value: i32) -> Self {
        match pb::HangoutRole::try_from(value) {
            Ok(pb::HangoutRole::Owner) => Self::Owner,
            Ok(pb::HangoutRole::CoHost) => Self::CoHost,
            Ok(pb::HangoutRole::Guest | pb::HangoutRole::Unspecified) | Err(_) => Self::Guest,
        }
    }

    pub(crate) fn to_proto(self) -> i32 {
        (match self {
            Self::Owner => pb::HangoutRole::Owner,
            Self::CoHost => pb::HangoutRole::CoHost,
            Self::Guest => pb::HangoutRole::Guest,
        }) as i32
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RsvpStatus {
    /// Has not answered yet (the default for every new member).
    NoReply,
    Going,
    Maybe,
    NotGoing,
}

impl RsvpStatus {
    pub(crate) fn from_proto(value: i32) -> Self {
        match pb::RsvpStatus::try_from(value) {
            Ok(pb::RsvpStatus::Going) => Self::Going,
            Ok(pb::RsvpStatus::Maybe) => Self::Maybe,
            Ok(pb::RsvpStatus::NotGoing) => Self::NotGoing,
            Ok(pb::RsvpStatus::NoReply | pb::RsvpStatus::Unspecified) | Err(_) => Self::NoReply,
        }
    }

    pub(crate) fn to_proto(self) -> i32 {
        (match self {
            Self::NoReply => pb::RsvpStatus::NoReply,
            Self::Going => pb::RsvpStatus::Going,
            Self::Maybe => pb::RsvpStatus::Maybe,
            Self::NotGoing => pb::RsvpStatus::NotGoing,
        }) as i32
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
    Expired,
}

impl InvitationStatus {
    fn from_proto(value: i32) -> Self {
        match pb::InvitationStatus::try_from(value) {
            Ok(pb::InvitationStatus::Accepted) => Self::Accepted,
            Ok(pb::InvitationStatus::Declined) => Self::Declined,
            Ok(pb::InvitationStatus::Revoked) => Self::Revoked,
            Ok(pb::InvitationStatus::Expired) => Self::Expired,
            Ok(pb::InvitationStatus::Pending | pb::InvitationStatus::Unspecified) | Err(_) => {
                Self::Pending
            }
        }
    }
}

/// A member of a hangout.
#[derive(Clone, Debug)]
pub struct HangoutMember {
    pub user_id: String,
    pub role: HangoutRole,
    pub rsvp: RsvpStatus,
    pub joined_at: DateTime,
}

impl From<pb::Member> for HangoutMember {
    fn from(member: pb::Member) -> Self {
        Self {
            role: HangoutRole::from_proto(member.role),
            rsvp: RsvpStatus::from_proto(member.rsvp),
            joined_at: DateTime::from_proto(member.joined_at.as_ref()),
            user_id: member.user_id,
        }
    }
}

#[Object]
impl HangoutMember {
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<Ready<Arc<User>>> {
        user::load_existing(ctx, &self.user_id).await.map(Ready)
    }

    async fn role(&self) -> HangoutRole {
        self.role
    }

    async fn rsvp(&self) -> RsvpStatus {
        self.rsvp
    }

    async fn joined_at(&self) -> DateTime {
        self.joined_at
    }
}

impl ReadyFields for HangoutMember {
    fn ready_field(&self, field: &Field) -> Option<Value> {
        Some(match field.name.node.as_str() {
            "role" => enum_value(self.role),
            "rsvp" => enum_value(self.rsvp),
            "joinedAt" => ready::scalar(&self.joined_at),
            _ => return None,
        })
    }
}

connection!(HangoutMemberConnection, HangoutMemberEdge, HangoutMember);

/// A backend page of members as a connection.
pub(super) fn member_connection(
    page: pb::HangoutMembersPage,
    had_after: bool,
) -> HangoutMemberConnection {
    let edges = page
        .edges
        .into_iter()
        .filter_map(|edge| Some((edge.cursor, HangoutMember::from(edge.member?))))
        .collect();
    Page::new(edges, page.page_info.as_ref(), had_after).into()
}

#[derive(SimpleObject, Clone, Copy, Debug, Default)]
pub struct RsvpCounts {
    pub going: i32,
    pub maybe: i32,
    pub not_going: i32,
    pub no_reply: i32,
}

impl From<&pb::RsvpCounts> for RsvpCounts {
    fn from(counts: &pb::RsvpCounts) -> Self {
        let int = |count: u64| i32::try_from(count).unwrap_or(i32::MAX);
        Self {
            going: int(counts.going),
            maybe: int(counts.maybe),
            not_going: int(counts.not_going),
            no_reply: int(counts.no_reply),
        }
    }
}

/// The little an invitee sees of a hangout before joining it.
#[derive(SimpleObject, Clone, Debug)]
pub struct InvitationPreview {
    hangout_title: String,
    hangout_date: DateTime,
    invited_by_name: String,
    role: HangoutRole,
    expires_at: Option<DateTime>,
}

impl From<pb::InvitationPreview> for InvitationPreview {
    fn from(preview: pb::InvitationPreview) -> Self {
        Self {
            hangout_date: DateTime::from_proto(preview.hangout_date.as_ref()),
            role: HangoutRole::from_proto(preview.role),
            expires_at: preview
                .expires_at
                .as_ref()
                .map(|at| DateTime::from_proto(Some(at))),
            hangout_title: preview.hangout_title,
            invited_by_name: preview.invited_by_name,
        }
    }
}

/// An invitation to join a hangout with a role: to one email address, or a link whose code
/// anyone signed in can accept while it is open.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub id: String,
    pub role: HangoutRole,
    pub status: InvitationStatus,
    pub email: Option<String>,
    pub code: Option<String>,
    pub uses_left: Option<u32>,
    pub invited_by: Option<User>,
    pub created_at: DateTime,
    pub expires_at: Option<DateTime>,
    pub preview: Option<InvitationPreview>,
}

impl From<pb::Invitation> for Invitation {
    fn from(invitation: pb::Invitation) -> Self {
        Self {
            role: HangoutRole::from_proto(invitation.role),
            status: InvitationStatus::from_proto(invitation.status),
            created_at: DateTime::from_proto(invitation.created_at.as_ref()),
            expires_at: invitation
                .expires_at
                .as_ref()
                .map(|at| DateTime::from_proto(Some(at))),
            invited_by: invitation.invited_by.map(User::from),
            preview: invitation.preview.map(InvitationPreview::from),
            id: invitation.id,
            email: invitation.email,
            code: invitation.code,
            uses_left: invitation.uses_left,
        }
    }
}

#[Object]
impl Invitation {
    pub(super) async fn id(&self) -> ID {
        ids::encode(Kind::Invitation, &self.id)
    }

    async fn role(&self) -> HangoutRole {
        self.role
    }

    async fn status(&self) -> InvitationStatus {
        self.status
    }

    /// Set for an invitation to one person; null for a link.
    async fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// The code to share, for a link; visible to the hangout's OWNER and CO_HOSTs only.
    async fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// For a link: how many more people can accept it; null when unlimited.
    async fn uses_left(&self) -> Option<i32> {
        self.uses_left
            .map(|uses| i32::try_from(uses).unwrap_or(i32::MAX))
    }

    async fn invited_by(&self) -> ApiResult<&User> {
        self.invited_by.as_ref().ok_or_else(|| {
            tracing::error!("an invitation came without its inviter");
            ApiError::internal()
        })
    }

    async fn created_at(&self) -> DateTime {
        self.created_at
    }

    /// Null when it never expires.
    async fn expires_at(&self) -> Option<DateTime> {
        self.expires_at
    }

    /// What the invitee may see before accepting.
    async fn preview(&self) -> ApiResult<&InvitationPreview> {
        self.preview.as_ref().ok_or_else(|| {
            tracing::error!("an invitation came without its preview");
            ApiError::internal()
        })
    }
}

impl ReadyFields for Invitation {
    fn ready_field(&self, field: &Field) -> Option<Value> {
        Some(match field.name.node.as_str() {
            "id" => ready::scalar(&ids::encode(Kind::Invitation, &self.id)),
            "role" => enum_value(self.role),
            "status" => enum_value(self.status),
            "createdAt" => ready::scalar(&self.created_at),
            _ => return None,
        })
    }
}

connection!(InvitationConnection, InvitationEdge, Invitation);

/// A backend page of invitations as a connection.
pub(super) fn invitation_connection(
    page: pb::InvitationPage,
    had_after: bool,
) -> InvitationConnection {
    let edges = page
        .edges
        .into_iter()
        .filter_map(|edge| Some((edge.cursor, Invitation::from(edge.invitation?))))
        .collect();
    Page::new(edges, page.page_info.as_ref(), had_after).into()
}

#[derive(InputObject, Default)]
pub struct HangoutMembershipFilter {
    /// Only hangouts where the caller has one of these roles.
    pub role: Option<Vec<HangoutRole>>,
}

#[derive(InputObject)]
pub struct CreateInvitationInput {
    hangout_id: ID,
    /// GUEST or CO_HOST; only the OWNER may invite co-hosts.
    #[graphql(default_with = "HangoutRole::Guest")]
    role: HangoutRole,
    /// Invite one person by email address; omit it to create a link. The answer is the same
    /// whether or not an account has this address.
    email: Option<String>,
    /// Null: a person's invitation expires after 30 days, a link never.
    expires_at: Option<DateTimeInput>,
    /// For a link: how many people may accept it (1 to 1000); null is unlimited.
    max_uses: Option<i32>,
}

#[derive(SimpleObject)]
pub struct CreateInvitationPayload {
    invitation: Invitation,
}

#[derive(InputObject)]
pub struct AcceptInvitationInput {
    /// Exactly one of code (a link) or invitationId (an invitation to the caller's email).
    code: Option<String>,
    invitation_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct AcceptInvitationPayload {
    hangout: Hangout,
}

#[derive(InputObject)]
pub struct DeclineInvitationInput {
    invitation_id: ID,
}

#[derive(SimpleObject)]
pub struct DeclineInvitationPayload {
    invitation: Invitation,
}

#[derive(InputObject)]
pub struct RevokeInvitationInput {
    invitation_id: ID,
}

#[derive(SimpleObject)]
pub struct RevokeInvitationPayload {
    invitation: Invitation,
}

#[derive(InputObject)]
pub struct SetRsvpInput {
    hangout_id: ID,
    status: RsvpStatus,
}

#[derive(SimpleObject)]
pub struct SetRsvpPayload {
    member: HangoutMember,
}

#[derive(InputObject)]
pub struct UpdateMemberRoleInput {
    hangout_id: ID,
    user_id: ID,
    /// GUEST or CO_HOST; OWNER only.
    role: HangoutRole,
}

#[derive(SimpleObject)]
pub struct UpdateMemberRolePayload {
    member: HangoutMember,
}

#[derive(InputObject)]
pub struct RemoveMemberInput {
    hangout_id: ID,
    user_id: ID,
}

#[derive(SimpleObject)]
pub struct RemoveMemberPayload {
    removed_user_id: ID,
}

#[derive(InputObject)]
pub struct LeaveHangoutInput {
    hangout_id: ID,
}

#[derive(SimpleObject)]
pub struct LeaveHangoutPayload {
    hangout_id: ID,
}

#[derive(InputObject)]
pub struct TransferHangoutOwnershipInput {
    hangout_id: ID,
    /// A current member; the previous owner becomes a CO_HOST.
    user_id: ID,
}

#[derive(SimpleObject)]
pub struct TransferHangoutOwnershipPayload {
    hangout: Hangout,
}

/// The longest code accepted: ours are 43 characters; anything much longer names nothing.
const MAX_CODE_CHARS: usize = 128;

#[derive(Default)]
pub struct MembershipQuery;

#[Object]
impl MembershipQuery {
    /// A link invitation's preview by its code; null when unknown, expired, revoked or used up.
    async fn invitation_preview(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> ApiResult<Option<InvitationPreview>> {
        let request = signed_in(ctx)?;
        if code.is_empty() || code.len() > MAX_CODE_CHARS {
            return Ok(None);
        }
        match backends(ctx)?
            .hangout
            .get_invitation_preview(&request.call, pb::GetInvitationPreviewRequest { code })
            .await
        {
            Ok(preview) => Ok(Some(preview.into())),
            Err(BackendError::NotFound) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Pending invitations addressed to the caller's email address, newest first.
    async fn my_invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<InvitationConnection> {
        let request = signed_in(ctx)?;
        let page = PageArgs::new(first, after)?;
        let response = backends(ctx)?
            .hangout
            .list_my_invitations(&request.call, page.to_proto())
            .await?;
        Ok(invitation_connection(response, !page.after.is_empty()))
    }
}

fn hangout_id(id: &ID) -> ApiResult<String> {
    ids::parse_input(Kind::Hangout, id, "hangoutId")
}

fn user_id(id: &ID) -> ApiResult<String> {
    ids::parse_input(Kind::User, id, "userId")
}

fn invitation_id(id: &ID) -> ApiResult<String> {
    ids::parse_input(Kind::Invitation, id, "invitationId")
}

#[derive(Default)]
pub struct MembershipMutation;

#[Object]
impl MembershipMutation {
    async fn create_invitation(
        &self,
        ctx: &Context<'_>,
        input: CreateInvitationInput,
    ) -> ApiResult<CreateInvitationPayload> {
        let request = signed_in(ctx)?;
        let expires_at = input
            .expires_at
            .map(|at| at.parse("expiresAt"))
            .transpose()?;
        let max_uses = input
            .max_uses
            .map(|uses| {
                u32::try_from(uses)
                    .ok()
                    .filter(|uses| *uses >= 1)
                    .ok_or_else(|| ApiError::bad_input("maxUses", "must be 1 to 1000"))
            })
            .transpose()?;
        let invitation = backends(ctx)?
            .hangout
            .create_invitation(
                &request.call,
                pb::CreateInvitationRequest {
                    hangout_id: hangout_id(&input.hangout_id)?,
                    role: input.role.to_proto(),
                    email: input.email,
                    expires_at: expires_at.map(DateTime::to_proto),
                    max_uses,
                },
            )
            .await?;
        Ok(CreateInvitationPayload {
            invitation: invitation.into(),
        })
    }

    /// Joins the hangout; accepting again as a member is a no-op that returns the hangout.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> ApiResult<AcceptInvitationPayload> {
        let request = signed_in(ctx)?;
        let message = match (input.code, input.invitation_id) {
            (Some(code), None) => {
                if code.is_empty() || code.len() > MAX_CODE_CHARS {
                    return Err(ApiError::not_found());
                }
                pb::AcceptInvitationRequest {
                    code: Some(code),
                    invitation_id: None,
                }
            }
            (None, Some(id)) => pb::AcceptInvitationRequest {
                code: None,
                invitation_id: Some(invitation_id(&id)?),
            },
            _ => {
                return Err(ApiError::bad_input(
                    "code",
                    "give exactly one of code and invitationId",
                ));
            }
        };
        let hangout = backends(ctx)?
            .hangout
            .accept_invitation(&request.call, message)
            .await?;
        Ok(AcceptInvitationPayload {
            hangout: hangout.into(),
        })
    }

    async fn decline_invitation(
        &self,
        ctx: &Context<'_>,
        input: DeclineInvitationInput,
    ) -> ApiResult<DeclineInvitationPayload> {
        let request = signed_in(ctx)?;
        let invitation = backends(ctx)?
            .hangout
            .decline_invitation(
                &request.call,
                pb::InvitationIdRequest {
                    invitation_id: invitation_id(&input.invitation_id)?,
                },
            )
            .await?;
        Ok(DeclineInvitationPayload {
            invitation: invitation.into(),
        })
    }

    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: RevokeInvitationInput,
    ) -> ApiResult<RevokeInvitationPayload> {
        let request = signed_in(ctx)?;
        let invitation = backends(ctx)?
            .hangout
            .revoke_invitation(
                &request.call,
                pb::InvitationIdRequest {
                    invitation_id: invitation_id(&input.invitation_id)?,
                },
            )
            .await?;
        Ok(RevokeInvitationPayload {
            invitation: invitation.into(),
        })
    }

    async fn set_rsvp(&self, ctx: &Context<'_>, input: SetRsvpInput) -> ApiResult<SetRsvpPayload> {
        let request = signed_in(ctx)?;
        let member = backends(ctx)?
            .hangout
            .set_rsvp(
                &request.call,
                pb::SetRsvpRequest {
                    hangout_id: hangout_id(&input.hangout_id)?,
                    rsvp: input.status.to_proto(),
                },
            )
            .await?;
        Ok(SetRsvpPayload {
            member: member.into(),
        })
    }

    async fn update_member_role(
        &self,
        ctx: &Context<'_>,
        input: UpdateMemberRoleInput,
    ) -> ApiResult<UpdateMemberRolePayload> {
        let request = signed_in(ctx)?;
        let member = backends(ctx)?
            .hangout
            .update_member_role(
                &request.call,
                pb::UpdateMemberRoleRequest {
                    hangout_id: hangout_id(&input.hangout_id)?,
                    user_id: user_id(&input.user_id)?,
                    role: input.role.to_proto(),
                },
            )
            .await?;
        Ok(UpdateMemberRolePayload {
            member: member.into(),
        })
    }

    /// OWNER removes anyone else; CO_HOST removes guests. Their memories stay in the hangout.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        input: RemoveMemberInput,
    ) -> ApiResult<RemoveMemberPayload> {
        let request = signed_in(ctx)?;
        let removed = backends(ctx)?
            .hangout
            .remove_member(
                &request.call,
                pb::RemoveMemberRequest {
                    hangout_id: hangout_id(&input.hangout_id)?,
                    user_id: user_id(&input.user_id)?,
                },
            )
            .await?;
        Ok(RemoveMemberPayload {
            removed_user_id: ids::encode(Kind::User, &removed.user_id),
        })
    }

    /// Any member but the OWNER, who must hand over ownership or delete the hangout.
    async fn leave_hangout(
        &self,
        ctx: &Context<'_>,
        input: LeaveHangoutInput,
    ) -> ApiResult<LeaveHangoutPayload> {
        let request = signed_in(ctx)?;
        let left = backends(ctx)?
            .hangout
            .leave_hangout(
                &request.call,
                pb::LeaveHangoutRequest {
                    hangout_id: hangout_id(&input.hangout_id)?,
                },
            )
            .await?;
        Ok(LeaveHangoutPayload {
            hangout_id: ids::encode(Kind::Hangout, &left.hangout_id),
        })
    }

    async fn transfer_hangout_ownership(
        &self,
        ctx: &Context<'_>,
        input: TransferHangoutOwnershipInput,
    ) -> ApiResult<TransferHangoutOwnershipPayload> {
        let request = signed_in(ctx)?;
        let hangout = backends(ctx)?
            .hangout
            .transfer_hangout_ownership(
                &request.call,
                pb::TransferHangoutOwnershipRequest {
                    hangout_id: hangout_id(&input.hangout_id)?,
                    user_id: user_id(&input.user_id)?,
                },
            )
            .await?;
        Ok(TransferHangoutOwnershipPayload {
            hangout: hangout.into(),
        })
    }
}
