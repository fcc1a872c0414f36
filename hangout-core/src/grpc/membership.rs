//! `MembershipService`: members, RSVPs and invitations.

use proto::hangout::v1::{self as pb, membership_service_server::MembershipService};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        error::DomainError,
        ids::{HangoutId, InvitationId, UserId},
        invitation::{
            AcceptBy, Invitation, InvitationPageRequest, InvitationStatus, NewInvitation,
        },
        membership::{Member, MemberPageRequest, Role, Rsvp},
        page::Page,
        time::Timestamp,
    },
    grpc::{
        SharedService, auth::user_message, caller, hangouts::hangout_message, page_info,
        page_request, parse_id, parse_ids, parse_timestamp, timestamp,
    },
};

pub(super) fn role_message(role: Role) -> pb::HangoutRole {
    match role {
        Role::Owner => pb::HangoutRole::Owner,
        Role::CoHost => pb::HangoutRole::CoHost,
        Role::Guest => pb::HangoutRole::Guest,
    }
}

pub(super) fn rsvp_message(rsvp: Rsvp) -> pb::RsvpStatus {
    match rsvp {
        Rsvp::NoReply => pb::RsvpStatus::NoReply,
        Rsvp::Going => pb::RsvpStatus::Going,
        Rsvp::Maybe => pb::RsvpStatus::Maybe,
        Rsvp::NotGoing => pb::RsvpStatus::NotGoing,
    }
}

fn parse_role(value: i32, field: &str) -> Result<Role, Status> {
    match pb::HangoutRole::try_from(value) {
        Ok(pb::HangoutRole::Owner) => Ok(Role::Owner),
        Ok(pb::HangoutRole::CoHost) => Ok(Role::CoHost),
        Ok(pb::HangoutRole::Guest) => Ok(Role::Guest),
        Ok(pb::HangoutRole::Unspecified) | Err(_) => {
            Err(DomainError::invalid(field, "is not a known role").into())
        }
    }
}

/// A list of roles, each at most once.
pub(super) fn parse_roles(values: &[i32], field: &str) -> Result<Vec<Role>, Status> {
    let mut roles = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let role = parse_role(*value, &format!("{field}[{index}]"))?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

fn parse_rsvp(value: i32, field: &str) -> Result<Rsvp, Status> {
    match pb::RsvpStatus::try_from(value) {
        Ok(pb::RsvpStatus::NoReply) => Ok(Rsvp::NoReply),
        Ok(pb::RsvpStatus::Going) => Ok(Rsvp::Going),
        Ok(pb::RsvpStatus::Maybe) => Ok(Rsvp::Maybe),
        Ok(pb::RsvpStatus::NotGoing) => Ok(Rsvp::NotGoing),
        Ok(pb::RsvpStatus::Unspecified) | Err(_) => {
            Err(DomainError::invalid(field, "is not a known answer").into())
        }
    }
}

fn member_message(member: Member) -> pb::Member {
    pb::Member {
        hangout_id: member.hangout.to_string(),
        user_id: member.user.to_string(),
        role: role_message(member.role) as i32,
        rsvp: rsvp_message(member.rsvp) as i32,
        joined_at: timestamp(member.joined_at),
    }
}

fn status_message(status: InvitationStatus) -> pb::InvitationStatus {
    match status {
        InvitationStatus::Pending => pb::InvitationStatus::Pending,
        InvitationStatus::Accepted => pb::InvitationStatus::Accepted,
        InvitationStatus::Declined => pb::InvitationStatus::Declined,
        InvitationStatus::Revoked => pb::InvitationStatus::Revoked,
        InvitationStatus::Expired => pb::InvitationStatus::Expired,
    }
}

fn preview_message(invitation: &Invitation) -> pb::InvitationPreview {
    pb::InvitationPreview {
        hangout_title: invitation.hangout_title.clone(),
        hangout_date: timestamp(invitation.hangout_date),
        invited_by_name: invitation.invited_by.name.clone(),
        role: role_message(invitation.role) as i32,
        expires_at: invitation.expires_at.and_then(timestamp),
    }
}

fn invitation_message(invitation: Invitation, now: Timestamp) -> pb::Invitation {
    let preview = preview_message(&invitation);
    pb::Invitation {
        id: invitation.id.to_string(),
        hangout_id: invitation.hangout.to_string(),
        role: role_message(invitation.role) as i32,
        status: status_message(invitation.status(now)) as i32,
        email: match &invitation.target {
            crate::domain::invitation::InvitationTarget::Person(email) => {
                Some(email.as_str().to_owned())
            }
            crate::domain::invitation::InvitationTarget::Link { .. } => None,
        },
        uses_left: invitation.uses_left(),
        code: invitation.code,
        invited_by: Some(user_message(invitation.invited_by)),
        created_at: timestamp(invitation.created_at),
        expires_at: invitation.expires_at.and_then(timestamp),
        preview: Some(preview),
    }
}

fn invitation_page(hangout: Option<HangoutId>, page: Page<Invitation>) -> pb::InvitationPage {
    let now = Timestamp::now();
    let page_info = page_info(&page);
    pb::InvitationPage {
        hangout_id: hangout.map(|id| id.to_string()).unwrap_or_default(),
        edges: page
            .edges
            .into_iter()
            .map(|edge| pb::InvitationEdge {
                invitation: Some(invitation_message(edge.node, now)),
                cursor: edge.cursor,
            })
            .collect(),
        page_info: Some(page_info),
    }
}

fn hangout_id(text: &str) -> Result<HangoutId, Status> {
    parse_id(text, "hangoutId", HangoutId::parse)
}

fn user_id(text: &str) -> Result<UserId, Status> {
    parse_id(text, "userId", UserId::parse)
}

fn invitation_id(text: &str) -> Result<InvitationId, Status> {
    parse_id(text, "invitationId", InvitationId::parse)
}

/// Members, RSVPs and invitations.
pub struct MembershipGrpc {
    service: SharedService,
}

impl MembershipGrpc {
    #[must_use]
    pub fn new(service: SharedService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl MembershipService for MembershipGrpc {
    async fn list_members_of_hangouts(
        &self,
        request: Request<pb::ListMembersOfHangoutsRequest>,
    ) -> Result<Response<pb::ListMembersOfHangoutsResponse>, Status> {
        let user = caller(&request)?;
        let mut requests = Vec::new();
        for (index, page) in request.into_inner().pages.into_iter().enumerate() {
            let Some(hangout) = HangoutId::parse(&page.hangout_id) else {
                continue;
            };
            let (first, after) = page_request(page.page.as_ref());
            let mut rsvp_in = Vec::with_capacity(page.rsvp_in.len());
            for (at, value) in page.rsvp_in.iter().enumerate() {
                let rsvp = parse_rsvp(*value, &format!("pages[{index}].rsvp[{at}]"))?;
                if !rsvp_in.contains(&rsvp) {
                    rsvp_in.push(rsvp);
                }
            }
            requests.push(MemberPageRequest {
                hangout,
                first,
                after,
                rsvp_in,
            });
        }
        let pages = self.service.members_of_hangouts(user, requests).await?;
        Ok(Response::new(pb::ListMembersOfHangoutsResponse {
            pages: pages
                .into_iter()
                .map(|(hangout, page)| {
                    let page_info = page_info(&page);
                    pb::HangoutMembersPage {
                        hangout_id: hangout.to_string(),
                        edges: page
                            .edges
                            .into_iter()
                            .map(|edge| pb::MemberEdge {
                                member: Some(member_message(edge.node)),
                                cursor: edge.cursor,
                            })
                            .collect(),
                        page_info: Some(page_info),
                    }
                })
                .collect(),
        }))
    }

    async fn get_rsvp_counts(
        &self,
        request: Request<pb::GetRsvpCountsRequest>,
    ) -> Result<Response<pb::GetRsvpCountsResponse>, Status> {
        let user = caller(&request)?;
        let hangouts = parse_ids(&request.get_ref().hangout_ids, HangoutId::parse);
        let counts = self.service.rsvp_counts(user, &hangouts).await?;
        Ok(Response::new(pb::GetRsvpCountsResponse {
            counts: counts
                .into_iter()
                .map(|(hangout, counts)| pb::RsvpCounts {
                    hangout_id: hangout.to_string(),
                    going: counts.going,
                    maybe: counts.maybe,
                    not_going: counts.not_going,
                    no_reply: counts.no_reply,
                })
                .collect(),
        }))
    }

    async fn get_members(
        &self,
        request: Request<pb::GetMembersRequest>,
    ) -> Result<Response<pb::GetMembersResponse>, Status> {
        let user = caller(&request)?;
        let request = request.get_ref();
        let hangout = parse_id(&request.hangout_id, "hangoutId", HangoutId::parse)?;
        let users = parse_ids(&request.user_ids, UserId::parse);
        let members = self.service.members_by_ids(user, hangout, &users).await?;
        Ok(Response::new(pb::GetMembersResponse {
            members: members.into_iter().map(member_message).collect(),
        }))
    }

    async fn set_rsvp(
        &self,
        request: Request<pb::SetRsvpRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let user = caller(&request)?;
        let request = request.into_inner();
        let hangout = hangout_id(&request.hangout_id)?;
        let rsvp = parse_rsvp(request.rsvp, "status")?;
        let member = self.service.set_rsvp(user, hangout, rsvp).await?;
        Ok(Response::new(member_message(member)))
    }

    async fn update_member_role(
        &self,
        request: Request<pb::UpdateMemberRoleRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let user = caller(&request)?;
        let request = request.into_inner();
        let hangout = hangout_id(&request.hangout_id)?;
        let target = user_id(&request.user_id)?;
        let role = parse_role(request.role, "role")?;
        let member = self
            .service
            .update_member_role(user, hangout, target, role)
            .await?;
        Ok(Response::new(member_message(member)))
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        let user = caller(&request)?;
        let request = request.into_inner();
        let hangout = hangout_id(&request.hangout_id)?;
        let target = user_id(&request.user_id)?;
        self.service.remove_member(user, hangout, target).await?;
        Ok(Response::new(pb::RemoveMemberResponse {
            user_id: target.to_string(),
        }))
    }

    async fn leave_hangout(
        &self,
        request: Request<pb::LeaveHangoutRequest>,
    ) -> Result<Response<pb::LeaveHangoutResponse>, Status> {
        let user = caller(&request)?;
        let hangout = hangout_id(&request.get_ref().hangout_id)?;
        self.service.leave_hangout(user, hangout).await?;
        Ok(Response::new(pb::LeaveHangoutResponse {
            hangout_id: hangout.to_string(),
        }))
    }

    async fn transfer_hangout_ownership(
        &self,
        request: Request<pb::TransferHangoutOwnershipRequest>,
    ) -> Result<Response<pb::Hangout>, Status> {
        let user = caller(&request)?;
        let request = request.into_inner();
        let hangout = hangout_id(&request.hangout_id)?;
        let target = user_id(&request.user_id)?;
        let hangout = self
            .service
            .transfer_ownership(user, hangout, target)
            .await?;
        Ok(Response::new(hangout_message(hangout)))
    }

    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let user = caller(&request)?;
        let request = request.into_inner();
        let new = NewInvitation {
            hangout: hangout_id(&request.hangout_id)?,
            role: match request.role {
                0 => Role::Guest,
                role => parse_role(role, "role")?,
            },
            email: request.email,
            expires_at: parse_timestamp(request.expires_at.as_ref(), "expiresAt")?,
            max_uses: request.max_uses,
        };
        let invitation = self.service.create_invitation(user, new).await?;
        Ok(Response::new(invitation_message(
            invitation,
            Timestamp::now(),
        )))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::Hangout>, Status> {
        let user = caller(&request)?;
        let request = request.into_inner();
        let by = match (request.code, request.invitation_id) {
            (Some(code), None) => AcceptBy::Code(code),
            (None, Some(id)) => AcceptBy::Id(invitation_id(&id)?),
            _ => {
                return Err(DomainError::invalid(
                    "code",
                    "give exactly one of code and invitationId",
                )
                .into());
            }
        };
        let hangout = self.service.accept_invitation(user, by).await?;
        Ok(Response::new(hangout_message(hangout)))
    }

    async fn decline_invitation(
        &self,
        request: Request<pb::InvitationIdRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let user = caller(&request)?;
        let id = invitation_id(&request.get_ref().invitation_id)?;
        let invitation = self.service.decline_invitation(user, id).await?;
        Ok(Response::new(invitation_message(
            invitation,
            Timestamp::now(),
        )))
    }

    async fn revoke_invitation(
        &self,
        request: Request<pb::InvitationIdRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let user = caller(&request)?;
        let id = invitation_id(&request.get_ref().invitation_id)?;
        let invitation = self.service.revoke_invitation(user, id).await?;
        Ok(Response::new(invitation_message(
            invitation,
            Timestamp::now(),
        )))
    }

    async fn get_invitations(
        &self,
        request: Request<pb::GetInvitationsRequest>,
    ) -> Result<Response<pb::GetInvitationsResponse>, Status> {
        let user = caller(&request)?;
        let ids = parse_ids(&request.get_ref().ids, InvitationId::parse);
        let now = Timestamp::now();
        let invitations = self.service.invitations_by_ids(user, &ids).await?;
        Ok(Response::new(pb::GetInvitationsResponse {
            invitations: invitations
                .into_iter()
                .map(|invitation| invitation_message(invitation, now))
                .collect(),
        }))
    }

    async fn list_invitations_of_hangouts(
        &self,
        request: Request<pb::ListInvitationsOfHangoutsRequest>,
    ) -> Result<Response<pb::ListInvitationsOfHangoutsResponse>, Status> {
        let user = caller(&request)?;
        let requests = request
            .into_inner()
            .pages
            .into_iter()
            .filter_map(|page| {
                let hangout = HangoutId::parse(&page.hangout_id)?;
                let (first, after) = page_request(page.page.as_ref());
                Some(InvitationPageRequest {
                    hangout,
                    first,
                    after,
                })
            })
            .collect();
        let pages = self.service.invitations_of_hangouts(user, requests).await?;
        Ok(Response::new(pb::ListInvitationsOfHangoutsResponse {
            pages: pages
                .into_iter()
                .map(|(hangout, page)| invitation_page(Some(hangout), page))
                .collect(),
        }))
    }

    async fn list_my_invitations(
        &self,
        request: Request<pb::PageRequest>,
    ) -> Result<Response<pb::InvitationPage>, Status> {
        let user = caller(&request)?;
        let (first, after) = page_request(Some(request.get_ref()));
        let page = self.service.my_invitations(user, first, &after).await?;
        Ok(Response::new(invitation_page(None, page)))
    }

    async fn get_invitation_preview(
        &self,
        request: Request<pb::GetInvitationPreviewRequest>,
    ) -> Result<Response<pb::InvitationPreview>, Status> {
        // Only for someone signed in, like everything but signing in.
        caller(&request)?;
        let invitation = self
            .service
            .invitation_preview(&request.get_ref().code)
            .await?;
        Ok(Response::new(preview_message(&invitation)))
    }
}
