//! Hangouts: the `Hangout` type, its connection, `hangout`/`hangouts`, and the hangout
//! mutations. Deleting a hangout also deletes its memories' stored files in file-core.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject, Value,
    parser::types::Field, resolver_utils::enum_value,
};
use proto::hangout::v1 as pb;

use crate::graphql::{
    activity::Activity,
    backends,
    connection::{OrderDirection, Page, PageArgs, connection},
    error::{ApiError, ApiResult},
    ids::{self, Kind},
    loaders::{
        ActivitiesOfHangoutKey, HangoutKey, InvitationsPageKey, MembersPageKey, MemoriesPageKey,
        RsvpCountsKey,
    },
    markdown,
    membership::{
        HangoutMemberConnection, HangoutMembershipFilter, HangoutRole, InvitationConnection,
        RsvpCounts, RsvpStatus,
    },
    memory::{MemoryConnection, MemoryOrder, MemoryStatus},
    page_includes::PageIncludes,
    ready::{self, Ready, ReadyFields, ReadyList, Shared},
    scalars::{DateTime, DateTimeInput},
    signed_in, user,
    user::User,
};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HangoutStatus {
    Planning,
    Confirmed,
    Executed,
    Cancelled,
}

impl HangoutStatus {
    fn from_proto(value: i32) -> Self {
        match pb::HangoutStatus::try_from(value) {
            Ok(pb::HangoutStatus::Confirmed) => Self::Confirmed,
            Ok(pb::HangoutStatus::Executed) => Self::Executed,
            Ok(pb::HangoutStatus::Cancelled) => Self::Cancelled,
            Ok(pb::HangoutStatus::Planning | pb::HangoutStatus::Unspecified) | Err(_) => {
                Self::Planning
            }
        }
    }

    fn to_proto(self) -> i32 {
        let status = match self {
            Self::Planning => pb::HangoutStatus::Planning,
            Self::Confirmed => pb::HangoutStatus::Confirmed,
            Self::Executed => pb::HangoutStatus::Executed,
            Self::Cancelled => pb::HangoutStatus::Cancelled,
        };
        status as i32
    }
}

/// A hangout as the API shows it.
#[derive(Clone, Debug)]
pub struct Hangout {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub description: Option<String>,
    pub date: DateTime,
    pub status: HangoutStatus,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub viewer_role: HangoutRole,
    pub viewer_rsvp: RsvpStatus,
}

impl From<pb::Hangout> for Hangout {
    fn from(hangout: pb::Hangout) -> Self {
        Self {
            viewer_role: HangoutRole::from_proto(hangout.viewer_role),
            viewer_rsvp: RsvpStatus::from_proto(hangout.viewer_rsvp),
            date: DateTime::from_proto(hangout.date.as_ref()),
            status: HangoutStatus::from_proto(hangout.status),
            created_at: DateTime::from_proto(hangout.created_at.as_ref()),
            updated_at: DateTime::from_proto(hangout.updated_at.as_ref()),
            id: hangout.id,
            owner_id: hangout.owner_id,
            title: hangout.title,
            description: hangout.description,
        }
    }
}

#[Object]
impl Hangout {
    pub(super) async fn id(&self) -> ID {
        ids::encode(Kind::Hangout, &self.id)
    }

    async fn title(&self) -> &str {
        &self.title
    }

    /// Markdown, as written.
    async fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The description rendered from Markdown to sanitized HTML.
    async fn description_html(&self) -> Option<String> {
        self.description.as_deref().map(markdown::render)
    }

    async fn date(&self) -> DateTime {
        self.date
    }

    async fn status(&self) -> HangoutStatus {
        self.status
    }

    async fn owner(&self, ctx: &Context<'_>) -> ApiResult<Ready<Arc<User>>> {
        user::load_existing(ctx, &self.owner_id).await.map(Ready)
    }

    /// Ordered by name; at most 50.
    async fn activities(&self, ctx: &Context<'_>) -> ApiResult<ReadyList<Shared<Activity>>> {
        let request = signed_in(ctx)?;
        let activities = request
            .loader
            .load_one(ActivitiesOfHangoutKey::new(
                self.id.clone(),
                &ctx.look_ahead(),
            ))
            .await?
            .unwrap_or_default();
        Ok(ReadyList::shared(&activities))
    }

    /// Uploaded memories by default; pass status: PENDING to see uploads not yet confirmed.
    async fn memories(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<MemoryStatus>,
        order_by: Option<MemoryOrder>,
    ) -> ApiResult<Arc<MemoryConnection>> {
        let request = signed_in(ctx)?;
        let key = MemoriesPageKey::new(
            self.id.clone(),
            first,
            after,
            status,
            order_by,
            &ctx.look_ahead(),
        )?;
        request
            .loader
            .load_one(key)
            .await?
            .ok_or_else(ApiError::not_found)
    }

    async fn created_at(&self) -> DateTime {
        self.created_at
    }

    async fn updated_at(&self) -> DateTime {
        self.updated_at
    }

    /// The caller's role in this hangout.
    async fn viewer_role(&self) -> HangoutRole {
        self.viewer_role
    }

    /// The caller's own answer.
    async fn viewer_rsvp(&self) -> RsvpStatus {
        self.viewer_rsvp
    }

    /// The owner first, then members in the order they joined.
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        rsvp: Option<Vec<RsvpStatus>>,
    ) -> ApiResult<Arc<HangoutMemberConnection>> {
        let request = signed_in(ctx)?;
        let key = MembersPageKey::new(self.id.clone(), first, after, rsvp)?;
        request
            .loader
            .load_one(key)
            .await?
            .ok_or_else(ApiError::not_found)
    }

    async fn rsvp_counts(&self, ctx: &Context<'_>) -> ApiResult<RsvpCounts> {
        let request = signed_in(ctx)?;
        let counts = request
            .loader
            .load_one(RsvpCountsKey(self.id.clone()))
            .await?
            .ok_or_else(ApiError::not_found)?;
        Ok(*counts)
    }

    /// Pending invitations; empty unless the caller is OWNER or CO_HOST.
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Arc<InvitationConnection>> {
        let request = signed_in(ctx)?;
        let key = InvitationsPageKey::new(self.id.clone(), first, after)?;
        request
            .loader
            .load_one(key)
            .await?
            .ok_or_else(ApiError::not_found)
    }
}

impl ReadyFields for Hangout {
    fn ready_field(&self, field: &Field) -> Option<Value> {
        Some(match field.name.node.as_str() {
            "id" => ready::scalar(&ids::encode(Kind::Hangout, &self.id)),
            "title" => Value::String(self.title.clone()),
            "description" => ready::optional(self.description.as_ref()),
            "date" => ready::scalar(&self.date),
            "status" => enum_value(self.status),
            "createdAt" => ready::scalar(&self.created_at),
            "updatedAt" => ready::scalar(&self.updated_at),
            "viewerRole" => enum_value(self.viewer_role),
            "viewerRsvp" => enum_value(self.viewer_rsvp),
            _ => return None,
        })
    }
}

connection!(HangoutConnection, HangoutEdge, Hangout);

/// A backend page of hangouts as a connection.
pub(super) fn hangout_connection(page: pb::HangoutPage, had_after: bool) -> HangoutConnection {
    let edges = page
        .edges
        .into_iter()
        .filter_map(|edge| Some((edge.cursor, Hangout::from(edge.hangout?))))
        .collect();
    Page::new(edges, page.page_info.as_ref(), had_after).into()
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HangoutOrderField {
    CreatedAt,
    Date,
}

#[derive(InputObject)]
pub struct HangoutOrder {
    #[graphql(default_with = "HangoutOrderField::CreatedAt")]
    field: HangoutOrderField,
    #[graphql(default_with = "OrderDirection::Desc")]
    direction: OrderDirection,
}

#[derive(InputObject, Default)]
pub struct HangoutFilter {
    status: Option<Vec<HangoutStatus>>,
    /// Only hangouts whose date is at or after this instant.
    date_from: Option<DateTimeInput>,
    /// Only hangouts whose date is before this instant.
    date_to: Option<DateTimeInput>,
    membership: Option<HangoutMembershipFilter>,
}

#[derive(InputObject)]
pub struct CreateHangoutInput {
    /// 1 to 255 characters after trimming.
    title: String,
    /// Markdown, at most 10000 characters.
    description: Option<String>,
    date: DateTimeInput,
    #[graphql(default_with = "Some(HangoutStatus::Planning)")]
    status: Option<HangoutStatus>,
    /// The caller's own activities, at most 50; each at most once.
    activity_ids: Option<Vec<ID>>,
}

#[derive(SimpleObject)]
pub struct CreateHangoutPayload {
    hangout: Hangout,
}

#[derive(InputObject)]
pub struct UpdateHangoutInput {
    id: ID,
    title: Option<String>,
    /// Null clears the description; omitting it leaves it unchanged.
    description: MaybeUndefined<String>,
    date: Option<DateTimeInput>,
    status: Option<HangoutStatus>,
    activity_ids: Option<Vec<ID>>,
}

#[derive(SimpleObject)]
pub struct UpdateHangoutPayload {
    hangout: Hangout,
}

#[derive(InputObject)]
pub struct DeleteHangoutInput {
    id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteHangoutPayload {
    deleted_id: ID,
}

#[derive(Default)]
pub struct HangoutQuery;

#[Object]
impl HangoutQuery {
    async fn hangout(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Arc<Hangout>>> {
        let request = signed_in(ctx)?;
        let Some(id) = ids::decode_kind(Kind::Hangout, &id) else {
            return Ok(None);
        };
        Ok(request.loader.load_one(HangoutKey(id)).await?)
    }

    /// The hangouts the caller is a member of (as OWNER, CO_HOST or GUEST).
    async fn hangouts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        order_by: Option<HangoutOrder>,
        filter: Option<HangoutFilter>,
    ) -> ApiResult<HangoutConnection> {
        let request = signed_in(ctx)?;
        let page = PageArgs::new(first, after)?;
        let filter = filter.unwrap_or_default();
        let date_from = filter
            .date_from
            .map(|date| date.parse("filter.dateFrom"))
            .transpose()?;
        let date_to = filter
            .date_to
            .map(|date| date.parse("filter.dateTo"))
            .transpose()?;
        let (order_field, direction) = order_by.map_or(
            (HangoutOrderField::CreatedAt, OrderDirection::Desc),
            |order| (order.field, order.direction),
        );
        let backends = backends(ctx)?;
        let includes = PageIncludes::of(&ctx.look_ahead());
        let mut response = backends
            .hangout
            .list_hangouts(
                &request.call,
                pb::ListHangoutsRequest {
                    page: Some(page.to_proto()),
                    order_field: match order_field {
                        HangoutOrderField::CreatedAt => pb::HangoutOrderField::CreatedAt,
                        HangoutOrderField::Date => pb::HangoutOrderField::Date,
                    } as i32,
                    direction: direction.to_proto() as i32,
                    status_in: filter
                        .status
                        .unwrap_or_default()
                        .into_iter()
                        .map(HangoutStatus::to_proto)
                        .collect(),
                    date_from: date_from.map(DateTime::to_proto),
                    date_to: date_to.map(DateTime::to_proto),
                    include: includes.to_proto(),
                    role_in: filter
                        .membership
                        .and_then(|membership| membership.role)
                        .unwrap_or_default()
                        .into_iter()
                        .map(HangoutRole::to_proto)
                        .collect(),
                },
            )
            .await?;
        includes.prime(backends, request, &mut response).await;
        Ok(hangout_connection(response, !page.after.is_empty()))
    }
}

#[derive(Default)]
pub struct HangoutMutation;

#[Object]
impl HangoutMutation {
    async fn create_hangout(
        &self,
        ctx: &Context<'_>,
        input: CreateHangoutInput,
    ) -> ApiResult<CreateHangoutPayload> {
        let request = signed_in(ctx)?;
        let date = input.date.parse("date")?;
        let activity_ids = ids::parse_inputs(
            Kind::Activity,
            &input.activity_ids.unwrap_or_default(),
            "activityIds",
        )?;
        let hangout = backends(ctx)?
            .hangout
            .create_hangout(
                &request.call,
                pb::CreateHangoutRequest {
                    title: input.title,
                    description: input.description,
                    date: Some(date.to_proto()),
                    status: input.status.unwrap_or(HangoutStatus::Planning).to_proto(),
                    activity_ids,
                },
            )
            .await?;
        Ok(CreateHangoutPayload {
            hangout: hangout.into(),
        })
    }

    /// Changes only the fields given; activityIds, when given, replaces the whole set.
    async fn update_hangout(
        &self,
        ctx: &Context<'_>,
        input: UpdateHangoutInput,
    ) -> ApiResult<UpdateHangoutPayload> {
        let request = signed_in(ctx)?;
        let id = ids::parse_input(Kind::Hangout, &input.id, "id")?;
        let date = input.date.map(|date| date.parse("date")).transpose()?;
        let activity_ids = input
            .activity_ids
            .map(|activity_ids| ids::parse_inputs(Kind::Activity, &activity_ids, "activityIds"))
            .transpose()?;
        let description = match input.description {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(pb::OptionalStringPatch { value: None }),
            MaybeUndefined::Value(value) => Some(pb::OptionalStringPatch { value: Some(value) }),
        };
        let hangout = backends(ctx)?
            .hangout
            .update_hangout(
                &request.call,
                pb::UpdateHangoutRequest {
                    id,
                    title: input.title,
                    description,
                    date: date.map(DateTime::to_proto),
                    status: input.status.map_or(0, HangoutStatus::to_proto),
                    activity_ids: activity_ids.map(|ids| pb::IdList { ids }),
                },
            )
            .await?;
        Ok(UpdateHangoutPayload {
            hangout: hangout.into(),
        })
    }

    /// Deletes the hangout with its memories and their stored files.
    async fn delete_hangout(
        &self,
        ctx: &Context<'_>,
        input: DeleteHangoutInput,
    ) -> ApiResult<DeleteHangoutPayload> {
        let request = signed_in(ctx)?;
        let backends = backends(ctx)?;
        let id = ids::parse_input(Kind::Hangout, &input.id, "id")?;
        let deleted = backends
            .hangout
            .delete_hangout(&request.call, pb::DeleteHangoutRequest { id })
            .await?;
        if !deleted.deleted_file_ids.is_empty() {
            delete_files(backends, &request.call, deleted.deleted_file_ids).await;
        }
        Ok(DeleteHangoutPayload {
            deleted_id: ids::encode(Kind::Hangout, &deleted.id),
        })
    }
}

/// Removes stored files whose memories are already gone, so their URLs stop working at once.
/// This is the fast path only: hangout-core recorded the same deletions as owed in the
/// deleting transaction, and file-core carries them out from there when this call fails
/// (ARCHITECTURE.md, decision 20), so a failure is a warning, not the mutation failing.
pub(super) async fn delete_files(
    backends: &crate::backend::Backends,
    call: &crate::backend::CallContext,
    file_ids: Vec<String>,
) {
    let count = file_ids.len();
    if let Err(error) = backends
        .file
        .delete_files_by_ids(call, file_ids.clone())
        .await
    {
        tracing::warn!(
            request_id = %call.request_id,
            count,
            ?file_ids,
            error = %telemetry::ErrorChain(&error),
            "stored files of deleted memories not removed yet: left to the deletions hangout-core owes"
        );
    }
}
