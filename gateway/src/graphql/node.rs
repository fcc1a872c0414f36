//! The Relay `Node` interface with `node` and `nodes`.

use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Object};

use crate::graphql::{
    activity::Activity,
    error::ApiResult,
    hangout::Hangout,
    ids::{self, Kind},
    loaders::{ActivityKey, HangoutKey, InvitationKey, MemoryKey, VisibleUserKey},
    membership::Invitation,
    memory::Memory,
    signed_in,
    user::User,
};

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    User(User),
    Hangout(Hangout),
    Activity(Activity),
    Memory(Memory),
    Invitation(Invitation),
}

/// Resolves one global id through the request's loader, so `nodes` batches per type.
async fn load(ctx: &Context<'_>, id: &str) -> ApiResult<Option<Node>> {
    let request = signed_in(ctx)?;
    let Some((kind, uuid)) = ids::decode(id) else {
        return Ok(None);
    };
    let loader = &request.loader;
    Ok(match kind {
        // Users are visible to themselves and to the members of hangouts they belong to.
        Kind::User => (loader.load_one(VisibleUserKey(uuid)).await?)
            .map(|user| Node::User(Arc::unwrap_or_clone(user))),
        Kind::Invitation => (loader.load_one(InvitationKey(uuid)).await?)
            .map(|invitation| Node::Invitation(Arc::unwrap_or_clone(invitation))),
        Kind::Hangout => (loader.load_one(HangoutKey(uuid)).await?)
            .map(|hangout| Node::Hangout(Arc::unwrap_or_clone(hangout))),
        Kind::Activity => loader
            .load_one(ActivityKey(uuid))
            .await?
            .map(|activity| Node::Activity(Arc::unwrap_or_clone(activity))),
        Kind::Memory => (loader.load_one(MemoryKey(uuid)).await?)
            .map(|memory| Node::Memory(Arc::unwrap_or_clone(memory))),
    })
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global ID; null when it does not exist or is not visible to the caller.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Node>> {
        load(ctx, &id).await
    }

    /// Objects by global IDs (at most 100), in the order asked; null for each one that is
    /// missing.
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> ApiResult<Vec<Option<Node>>> {
        if ids.len() as u64 > crate::graphql::cost::MAX_NODE_IDS {
            return Err(crate::graphql::error::ApiError::bad_input(
                "ids",
                format!(
                    "must hold at most {} ids",
                    crate::graphql::cost::MAX_NODE_IDS
                ),
            ));
        }
        let loads = ids.iter().map(|id| load(ctx, id));
        async_graphql::futures_util::future::join_all(loads)
            .await
            .into_iter()
            .collect()
    }
}
