//! Users: the `User` type and `me`.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Value, parser::types::Field};
use proto::hangout::v1 as pb;

use crate::graphql::{
    error::{ApiError, ApiResult},
    ids::{self, Kind},
    loaders::UserKey,
    ready::{self, Ready, ReadyFields},
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

impl ReadyFields for User {
    fn ready_field(&self, field: &Field) -> Option<Value> {
        Some(match field.name.node.as_str() {
            "id" => ready::scalar(&ids::encode(Kind::User, &self.id)),
            "name" => Value::String(self.name.clone()),
            "email" => Value::String(self.email.clone()),
            "createdAt" => ready::scalar(&self.created_at),
            _ => return None,
        })
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
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Ready<Arc<User>>> {
        let request = signed_in(ctx)?;
        let id = user_id(request)?;
        request
            .loader
            .load_one(UserKey(id.to_owned()))
            .await?
            .map(Ready)
            .ok_or_else(ApiError::unauthenticated)
    }
}
