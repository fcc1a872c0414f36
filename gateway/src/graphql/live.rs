//! The live-updates part of contract version 2: `Subscription.hangoutEvents` and
//! `Subscription.viewerEvents` over the [`EventHub`](crate::events::EventHub).
//!
//! Visibility is checked when a subscription starts (NOT_FOUND for a hangout the caller cannot
//! see) and for every event: each payload loads through the subscription's own loader, bound
//! to the subscriber, with its cache emptied before each event, so it shows what the backends
//! hold then and what the subscriber may see (masking included); an event whose object the
//! subscriber can no longer see is left out. Since events come in order per hangout, the
//! event that ends a membership reaches a subscription before anything after it: the
//! subscriber's own `MemberLeft` or the hangout's deletion becomes `HangoutRemoved`, and the
//! subscription completes.
//!
//! The subscription is registered with the hub before the visibility check, so no event
//! between the check and the first delivery is missed.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription, Union, futures_util::Stream};
use proto::hangout::v1 as pb;

use crate::{
    backend::BackendError,
    events::{Ended, Event, EventHub, EventKind, Subscription as Events, Topic},
    graphql::{
        RequestContext, backends,
        error::{ApiError, ApiResult, Code},
        hangout::Hangout,
        ids::{self, Kind},
        loaders::{HangoutKey, InvitationKey, MemoryKey},
        membership::{HangoutMember, Invitation},
        memory::Memory,
        scalars::DateTime,
        signed_in,
    },
};

/// Closes the subscriber's socket with a code and reason (a subscription cut off for being
/// too slow takes its socket with it, as the transport promises).
#[derive(Clone)]
pub struct SocketCloser(pub Arc<dyn Fn(u16, &'static str) + Send + Sync>);

/// The WebSocket close code for a subscriber that did not read its events in time.
pub const CLOSE_TOO_SLOW: u16 = 4429;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HangoutRemovedReason {
    Deleted,
    Left,
    Removed,
}

#[derive(SimpleObject)]
pub struct HangoutUpdated {
    hangout: Arc<Hangout>,
    at: DateTime,
}

/// A member joined, changed role or answered.
#[derive(SimpleObject)]
pub struct MemberUpdated {
    hangout_id: ID,
    member: HangoutMember,
    at: DateTime,
}

#[derive(SimpleObject)]
pub struct MemberLeft {
    hangout_id: ID,
    user_id: ID,
    at: DateTime,
}

/// A memory became UPLOADED, or its processing changed.
#[derive(SimpleObject)]
pub struct MemoryUpdated {
    memory: Arc<Memory>,
    at: DateTime,
}

#[derive(SimpleObject)]
pub struct MemoryDeleted {
    hangout_id: ID,
    memory_id: ID,
    at: DateTime,
}

/// The caller can no longer see the hangout; the subscription to it ends after this event.
#[derive(SimpleObject)]
pub struct HangoutRemoved {
    hangout_id: ID,
    reason: HangoutRemovedReason,
    at: DateTime,
}

#[derive(SimpleObject)]
pub struct InvitationReceived {
    invitation: Arc<Invitation>,
    at: DateTime,
}

/// The caller joined a hangout (or was given it as owner).
#[derive(SimpleObject)]
pub struct HangoutAdded {
    hangout: Arc<Hangout>,
    at: DateTime,
}

#[derive(Union)]
pub enum HangoutEvent {
    HangoutUpdated(HangoutUpdated),
    MemberUpdated(MemberUpdated),
    MemberLeft(MemberLeft),
    MemoryUpdated(MemoryUpdated),
    MemoryDeleted(MemoryDeleted),
    HangoutRemoved(HangoutRemoved),
}

#[derive(Union)]
pub enum ViewerEvent {
    InvitationReceived(InvitationReceived),
    HangoutAdded(HangoutAdded),
    HangoutRemoved(HangoutRemoved),
}

/// The subscription root.
#[derive(Default)]
pub struct LiveSubscription;

#[Subscription(name = "Subscription")]
impl LiveSubscription {
    /// What happens in one hangout the caller is a member of; NOT_FOUND otherwise.
    async fn hangout_events(
        &self,
        ctx: &Context<'_>,
        hangout_id: ID,
    ) -> Result<impl Stream<Item = ApiResult<HangoutEvent>>, ApiError> {
        let request = signed_in(ctx)?;
        let hub = hub(ctx)?;
        let hangout =
            ids::decode_kind(Kind::Hangout, &hangout_id).ok_or_else(ApiError::not_found)?;
        // Registered first: nothing between the check and the first event is missed.
        let events = hub.subscribe(Topic::Hangout(hangout.clone()));
        if request
            .loader
            .load_one(HangoutKey(hangout.clone()))
            .await?
            .is_none()
        {
            return Err(ApiError::not_found());
        }
        let watch = Watch::new(events, ctx, request, viewer_id(request)?);
        Ok(async_graphql::futures_util::stream::unfold(
            watch,
            |mut watch| async move {
                let item = watch.next_hangout_event().await?;
                Some((item, watch))
            },
        ))
    }

    /// What concerns the caller across hangouts.
    async fn viewer_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = ApiResult<ViewerEvent>>, ApiError> {
        let request = signed_in(ctx)?;
        let viewer = viewer_id(request)?;
        let events = hub(ctx)?.subscribe(Topic::Viewer(viewer.clone()));
        let watch = Watch::new(events, ctx, request, viewer);
        Ok(async_graphql::futures_util::stream::unfold(
            watch,
            |mut watch| async move {
                let item = watch.next_viewer_event().await?;
                Some((item, watch))
            },
        ))
    }
}

fn hub<'a>(ctx: &Context<'a>) -> ApiResult<&'a EventHub> {
    ctx.data::<EventHub>().map_err(|_| {
        tracing::error!("event hub missing from the schema data");
        ApiError::internal()
    })
}

fn viewer_id(request: &RequestContext) -> ApiResult<String> {
    match &request.caller {
        crate::graphql::Caller::User(id) => Ok(id.clone()),
        crate::graphql::Caller::Anonymous | crate::graphql::Caller::Refused => {
            Err(ApiError::unauthenticated())
        }
    }
}

fn removed_reason(event: &Event) -> HangoutRemovedReason {
    match event.reason {
        Some(crate::events::RemovalReason::Left) => HangoutRemovedReason::Left,
        Some(crate::events::RemovalReason::Removed) => HangoutRemovedReason::Removed,
        Some(crate::events::RemovalReason::Deleted) | None => HangoutRemovedReason::Deleted,
    }
}

fn at(event: &Event) -> DateTime {
    let nanos = i128::from(event.at_millis) * 1_000_000;
    DateTime(
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

fn removed(event: &Event) -> HangoutRemoved {
    HangoutRemoved {
        hangout_id: ids::encode(Kind::Hangout, &event.hangout),
        reason: removed_reason(event),
        at: at(event),
    }
}

/// One subscription's state between events.
struct Watch<'a, 'b> {
    events: Events,
    ctx: &'a Context<'b>,
    request: &'b RequestContext,
    viewer: String,
    /// The subscriber lost sight of the hangout: nothing more follows.
    done: bool,
}

impl<'a, 'b> Watch<'a, 'b> {
    fn new(
        events: Events,
        ctx: &'a Context<'b>,
        request: &'b RequestContext,
        viewer: String,
    ) -> Self {
        Self {
            events,
            ctx,
            request,
            viewer,
            done: false,
        }
    }

    /// The next event, after emptying the loader's cache; `None` once the subscription ends.
    async fn next_event(&mut self) -> Option<Result<Arc<Event>, ApiError>> {
        if self.done {
            return None;
        }
        match self.events.next().await {
            Ok(event) => {
                self.request.loader.clear_cache();
                Some(Ok(event))
            }
            Err(Ended::ShuttingDown) => None,
            Err(Ended::TooSlow) => {
                if let Ok(closer) = self.ctx.data::<SocketCloser>() {
                    (closer.0)(
                        CLOSE_TOO_SLOW,
                        "subscriber too slow: events were not read in time",
                    );
                }
                None
            }
            Err(Ended::Lost) => {
                self.done = true;
                Some(Err(ApiError::new(
                    Code::ServiceUnavailable,
                    "some events could not be delivered; subscribe again",
                )))
            }
        }
    }

    async fn next_hangout_event(&mut self) -> Option<ApiResult<HangoutEvent>> {
        loop {
            let event = match self.next_event().await? {
                Ok(event) => event,
                Err(error) => return Some(Err(error)),
            };
            // Boxed: what an event takes to resolve (a loader or a backend call) would otherwise
            // sit in every idle subscription's state, which waits only for the next event.
            match Box::pin(self.hangout_event(&event)).await {
                Ok(Some(item)) => return Some(Ok(item)),
                // Not visible (any more): left out.
                Ok(None) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }

    async fn hangout_event(&mut self, event: &Event) -> ApiResult<Option<HangoutEvent>> {
        let loader = &self.request.loader;
        Ok(match event.kind {
            EventKind::HangoutUpdated => loader
                .load_one(HangoutKey(event.hangout.clone()))
                .await?
                .map(|hangout| {
                    HangoutEvent::HangoutUpdated(HangoutUpdated {
                        hangout,
                        at: at(event),
                    })
                }),
            EventKind::MemberUpdated => {
                let Some(user) = &event.subject else {
                    return Ok(None);
                };
                let found = backends(self.ctx)?
                    .hangout
                    .get_members(
                        &self.request.call,
                        pb::GetMembersRequest {
                            hangout_id: event.hangout.clone(),
                            user_ids: vec![user.clone()],
                        },
                    )
                    .await?;
                found.members.into_iter().next().map(|member| {
                    HangoutEvent::MemberUpdated(MemberUpdated {
                        hangout_id: ids::encode(Kind::Hangout, &event.hangout),
                        member: HangoutMember::from(member),
                        at: at(event),
                    })
                })
            }
            EventKind::MemberLeft if event.subject.as_deref() == Some(self.viewer.as_str()) => {
                self.done = true;
                Some(HangoutEvent::HangoutRemoved(removed(event)))
            }
            EventKind::MemberLeft => event.subject.as_ref().map(|user| {
                HangoutEvent::MemberLeft(MemberLeft {
                    hangout_id: ids::encode(Kind::Hangout, &event.hangout),
                    user_id: ids::encode(Kind::User, user),
                    at: at(event),
                })
            }),
            EventKind::MemoryUpdated => match &event.subject {
                Some(memory) => loader
                    .load_one(MemoryKey(memory.clone()))
                    .await?
                    .map(|memory| {
                        HangoutEvent::MemoryUpdated(MemoryUpdated {
                            memory,
                            at: at(event),
                        })
                    }),
                None => None,
            },
            EventKind::MemoryDeleted => event.subject.as_ref().map(|memory| {
                HangoutEvent::MemoryDeleted(MemoryDeleted {
                    hangout_id: ids::encode(Kind::Hangout, &event.hangout),
                    memory_id: ids::encode(Kind::Memory, memory),
                    at: at(event),
                })
            }),
            EventKind::HangoutDeleted => {
                self.done = true;
                Some(HangoutEvent::HangoutRemoved(HangoutRemoved {
                    reason: HangoutRemovedReason::Deleted,
                    ..removed(event)
                }))
            }
            // Viewer and session events never reach a hangout's topic.
            EventKind::InvitationReceived
            | EventKind::HangoutAdded
            | EventKind::HangoutRemoved
            | EventKind::SessionRevoked => None,
        })
    }

    async fn next_viewer_event(&mut self) -> Option<ApiResult<ViewerEvent>> {
        loop {
            let event = match self.next_event().await? {
                Ok(event) => event,
                Err(error) => return Some(Err(error)),
            };
            // Boxed, as in `next_hangout_event`.
            let item = Box::pin(self.viewer_event(&event)).await;
            match item {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(error) => return Some(Err(error.into())),
            }
        }
    }

    async fn viewer_event(&self, event: &Event) -> Result<Option<ViewerEvent>, BackendError> {
        let loader = &self.request.loader;
        match event.kind {
            EventKind::InvitationReceived => match &event.subject {
                Some(invitation) => loader
                    .load_one(InvitationKey(invitation.clone()))
                    .await
                    .map(|found| {
                        found.map(|invitation| {
                            ViewerEvent::InvitationReceived(InvitationReceived {
                                invitation,
                                at: at(event),
                            })
                        })
                    }),
                None => Ok(None),
            },
            EventKind::HangoutAdded => loader
                .load_one(HangoutKey(event.hangout.clone()))
                .await
                .map(|found| {
                    found.map(|hangout| {
                        ViewerEvent::HangoutAdded(HangoutAdded {
                            hangout,
                            at: at(event),
                        })
                    })
                }),
            EventKind::HangoutRemoved => Ok(Some(ViewerEvent::HangoutRemoved(removed(event)))),
            _ => Ok(None),
        }
    }
}
