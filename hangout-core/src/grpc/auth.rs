//! `AuthService` and `UserService`.

use proto::hangout::v1::{
    self as pb, auth_service_server::AuthService, user_service_server::UserService,
};
use tonic::{Request, Response, Status};

use crate::{
    domain::{ids::UserId, session::IssuedSession, user::User},
    grpc::{SharedService, caller, parse_ids, timestamp},
};

pub(super) fn user_message(user: User) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        name: user.name,
        email: user.email.as_str().to_owned(),
        created_at: timestamp(user.created_at),
    }
}

fn auth_response(issued: IssuedSession) -> pb::AuthResponse {
    pb::AuthResponse {
        user: Some(user_message(issued.user)),
        refresh_token: issued.refresh_token,
        refresh_token_expires_at: timestamp(issued.expires_at),
        session_id: issued.session.to_string(),
        session_family_id: issued.family.to_string(),
    }
}

/// Sign-up, sign-in and refresh-token rotation.
pub struct AuthGrpc {
    service: SharedService,
}

impl AuthGrpc {
    #[must_use]
    pub fn new(service: SharedService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn sign_up(
        &self,
        request: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        let request = request.into_inner();
        let user = self
            .service
            .sign_up(&request.name, &request.email, &request.password)
            .await?;
        let issued = self.service.open_session(user).await?;
        Ok(Response::new(auth_response(issued)))
    }

    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        let request = request.into_inner();
        let user = self
            .service
            .verify_credentials(&request.email, &request.password)
            .await?;
        let issued = self.service.open_session(user).await?;
        Ok(Response::new(auth_response(issued)))
    }

    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        let issued = self
            .service
            .rotate_session(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(auth_response(issued)))
    }

    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        self.service
            .revoke_session(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(pb::SignOutResponse {}))
    }
}

/// Batch reads of users.
pub struct UserGrpc {
    service: SharedService,
}

impl UserGrpc {
    #[must_use]
    pub fn new(service: SharedService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl UserService for UserGrpc {
    async fn get_users(
        &self,
        request: Request<pb::GetUsersRequest>,
    ) -> Result<Response<pb::GetUsersResponse>, Status> {
        let viewer = caller(&request).ok();
        let request = request.into_inner();
        let ids = parse_ids(&request.ids, UserId::parse);
        let users = match viewer {
            Some(viewer) if request.visible_only => {
                self.service.users_visible_to(viewer, &ids).await?
            }
            None if request.visible_only => Vec::new(),
            _ => self.service.users_by_ids(viewer, &ids).await?,
        };
        Ok(Response::new(pb::GetUsersResponse {
            users: users.into_iter().map(user_message).collect(),
        }))
    }
}
