//! Users: the `User` type and `me`.

use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use proto::hangout::v1 as pb;

use crate::graphql::{
    error::{ApiError, ApiResult},
    ids::{self, Kind},
    loaders::UserKey,
    scalars::DateTime,
    signed_in, user_id,
};

/// A user as the API shows it.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub created_at: DateTime,
}

impl From<pb::User> for User {
    fn from(user: pb::User) -> Self {
        Self {
            created_at: DateTime::from_proto(user.created_at.as_ref()),
            id: user.id,
            name: user.name,
            email: user.email,
        }
    }
}

#[Object]
impl User {
    pub(super) async fn id(&self) -> ID {
        ids::encode(Kind::User, &self.id)
    }

    async fn name(&self) -> &str {
        &self.name
    }

    async fn email(&self) -> &str {
        &self.email
    }

    async fn created_at(&self) -> DateTime {
        self.created_at
    }
}

/// Loads a user who must exist (an owner or uploader of something the caller can see).
pub(super) async fn load_existing(ctx: &Context<'_>, id: &str) -> ApiResult<Arc<User>> {
    let request = signed_in(ctx)?;
    request
        .loader
        .load_one(UserKey(id.to_owned()))
        .await?
        .ok_or_else(|| {
            tracing::error!(request_id = %request.call.request_id, "a referenced user is missing");
            ApiError::internal()
        })
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The signed-in user. UNAUTHENTICATED without a valid access token.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Arc<User>> {
        let request = signed_in(ctx)?;
        let id = user_id(request)?;
        request
            .loader
            .load_one(UserKey(id.to_owned()))
            .await?
            .ok_or_else(ApiError::unauthenticated)
    }
}
