//! Activities: the `Activity` type, its connection, `activity`/`activities`, and the activity
//! mutations.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Value, parser::types::Field};
use proto::hangout::v1 as pb;

use crate::graphql::{
    backends,
    connection::{Page, PageArgs, connection},
    error::{ApiError, ApiResult},
    hangout::HangoutConnection,
    ids::{self, Kind},
    loaders::{ActivityKey, HangoutsOfActivityKey},
    ready::{self, ReadyFields},
    scalars::DateTime,
    signed_in,
};

/// An activity as the API shows it.
#[derive(Clone, Debug)]
pub struct Activity {
    pub id: String,
    pub name: String,
    /// `None` when it was loaded without its count (see
    /// [`ActivitiesOfHangoutKey`](crate::graphql::loaders::ActivitiesOfHangoutKey)).
    pub hangout_count: Option<u64>,
    pub created_at: DateTime,
}

impl From<pb::Activity> for Activity {
    fn from(activity: pb::Activity) -> Self {
        Self {
            created_at: DateTime::from_proto(activity.created_at.as_ref()),
            id: activity.id,
            name: activity.name,
            hangout_count: activity.hangout_count,
        }
    }
}

#[Object]
impl Activity {
    pub(super) async fn id(&self) -> ID {
        ids::encode(Kind::Activity, &self.id)
    }

    async fn name(&self) -> &str {
        &self.name
    }

    /// How many of the caller's hangouts carry this activity.
    async fn hangout_count(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        let count = match self.hangout_count {
            Some(count) => count,
            // Loaded without it, though the selection asks for it (activities are loaded with
            // counts when their selection holds `hangoutCount`): the activity by id has it.
            None => signed_in(ctx)?
                .loader
                .load_one(ActivityKey(self.id.clone()))
                .await?
                .and_then(|activity| activity.hangout_count)
                .ok_or_else(ApiError::not_found)?,
        };
        Ok(count_scalar(count))
    }

    async fn hangouts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Arc<HangoutConnection>> {
        let request = signed_in(ctx)?;
        let key = HangoutsOfActivityKey::new(self.id.clone(), first, after)?;
        request
            .loader
            .load_one(key)
            .await?
            .ok_or_else(ApiError::not_found)
    }

    async fn created_at(&self) -> DateTime {
        self.created_at
    }
}

impl ReadyFields for Activity {
    fn ready_field(&self, field: &Field) -> Option<Value> {
        Some(match field.name.node.as_str() {
            "id" => ready::scalar(&ids::encode(Kind::Activity, &self.id)),
            "name" => Value::String(self.name.clone()),
            "hangoutCount" => ready::scalar(&count_scalar(self.hangout_count?)),
            "createdAt" => ready::scalar(&self.created_at),
            _ => return None,
        })
    }
}

/// A count as the API's `Int`.
fn count_scalar(count: u64) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

connection!(ActivityConnection, ActivityEdge, Activity);

#[derive(InputObject)]
pub struct CreateActivityInput {
    /// 1 to 255 characters after trimming.
    name: String,
}

#[derive(SimpleObject)]
pub struct CreateActivityPayload {
    activity: Activity,
}

#[derive(InputObject)]
pub struct UpdateActivityInput {
    id: ID,
    name: String,
}

#[derive(SimpleObject)]
pub struct UpdateActivityPayload {
    activity: Activity,
}

#[derive(InputObject)]
pub struct DeleteActivityInput {
    id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteActivityPayload {
    deleted_id: ID,
}

#[derive(Default)]
pub struct ActivityQuery;

#[Object]
impl ActivityQuery {
    async fn activity(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Arc<Activity>>> {
        let request = signed_in(ctx)?;
        let Some(id) = ids::decode_kind(Kind::Activity, &id) else {
            return Ok(None);
        };
        Ok(request.loader.load_one(ActivityKey(id)).await?)
    }

    /// The caller's activities, ordered by name.
    async fn activities(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<ActivityConnection> {
        let request = signed_in(ctx)?;
        let page = PageArgs::new(first, after)?;
        let response = backends(ctx)?
            .hangout
            .list_activities(
                &request.call,
                pb::ListActivitiesRequest {
                    page: Some(page.to_proto()),
                },
            )
            .await?;
        let edges = response
            .edges
            .into_iter()
            .filter_map(|edge| Some((edge.cursor, Activity::from(edge.activity?))))
            .collect();
        Ok(Page::new(edges, response.page_info.as_ref(), !page.after.is_empty()).into())
    }
}

#[derive(Default)]
pub struct ActivityMutation;

#[Object]
impl ActivityMutation {
    /// CONFLICT when the caller already has an activity of that name (case-insensitive).
    async fn create_activity(
        &self,
        ctx: &Context<'_>,
        input: CreateActivityInput,
    ) -> ApiResult<CreateActivityPayload> {
        let request = signed_in(ctx)?;
        let activity = backends(ctx)?
            .hangout
            .create_activity(
                &request.call,
                pb::CreateActivityRequest { name: input.name },
            )
            .await?;
        Ok(CreateActivityPayload {
            activity: activity.into(),
        })
    }

    async fn update_activity(
        &self,
        ctx: &Context<'_>,
        input: UpdateActivityInput,
    ) -> ApiResult<UpdateActivityPayload> {
        let request = signed_in(ctx)?;
        let id = ids::parse_input(Kind::Activity, &input.id, "id")?;
        let activity = backends(ctx)?
            .hangout
            .rename_activity(
                &request.call,
                pb::RenameActivityRequest {
                    id,
                    name: input.name,
                },
            )
            .await?;
        Ok(UpdateActivityPayload {
            activity: activity.into(),
        })
    }

    async fn delete_activity(
        &self,
        ctx: &Context<'_>,
        input: DeleteActivityInput,
    ) -> ApiResult<DeleteActivityPayload> {
        let request = signed_in(ctx)?;
        let id = ids::parse_input(Kind::Activity, &input.id, "id")?;
        let deleted = backends(ctx)?
            .hangout
            .delete_activity(&request.call, pb::DeleteActivityRequest { id })
            .await?;
        Ok(DeleteActivityPayload {
            deleted_id: ids::encode(Kind::Activity, &deleted.id),
        })
    }
}
