//! `EventService`: the outbox's events streamed to the gateway, the relay of the embedded
//! default (without a broker). Each call is one watch (`domain::event::watch`) from where the
//! caller asks; the streams end when the server shuts down, so draining never waits on them.

use std::pin::Pin;

use futures_util::{Stream, StreamExt as _};
use proto::hangout::v1::{self as pb, event_service_server::EventService};
use tonic::{Request, Response, Status};

use crate::{
    domain::event::{Event, EventKind, RemovalReason, Start, StoredEvent, WatchError},
    grpc::{SharedService, timestamp},
};

pub struct EventGrpc {
    service: SharedService,
    /// Turns true when the server stops; every stream ends then.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl EventGrpc {
    #[must_use]
    pub fn new(service: SharedService, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Self { service, stopping }
    }
}

/// The message of a stored event.
#[must_use]
pub fn event_message(stored: &StoredEvent) -> pb::Event {
    let Event {
        hangout,
        viewer,
        kind,
        subject,
        reason,
        at,
    } = &stored.event;
    pb::Event {
        seq: stored.seq,
        hangout_id: hangout
            .map(|hangout| hangout.to_string())
            .unwrap_or_default(),
        viewer_id: viewer.map(|viewer| viewer.to_string()).unwrap_or_default(),
        kind: kind_message(*kind).into(),
        subject_id: subject.clone().unwrap_or_default(),
        reason: reason
            .map_or(pb::RemovalReason::Unspecified, reason_message)
            .into(),
        occurred_at: timestamp(*at),
    }
}

const fn kind_message(kind: EventKind) -> pb::EventKind {
    match kind {
        EventKind::HangoutUpdated => pb::EventKind::HangoutUpdated,
        EventKind::MemberUpdated => pb::EventKind::MemberUpdated,
        EventKind::MemberLeft => pb::EventKind::MemberLeft,
        EventKind::MemoryUpdated => pb::EventKind::MemoryUpdated,
        EventKind::MemoryDeleted => pb::EventKind::MemoryDeleted,
        EventKind::HangoutDeleted => pb::EventKind::HangoutDeleted,
        EventKind::InvitationReceived => pb::EventKind::InvitationReceived,
        EventKind::HangoutAdded => pb::EventKind::HangoutAdded,
        EventKind::HangoutRemoved => pb::EventKind::HangoutRemoved,
        EventKind::SessionRevoked => pb::EventKind::SessionRevoked,
    }
}

const fn reason_message(reason: RemovalReason) -> pb::RemovalReason {
    match reason {
        RemovalReason::Deleted => pb::RemovalReason::Deleted,
        RemovalReason::Left => pb::RemovalReason::Left,
        RemovalReason::Removed => pb::RemovalReason::Removed,
    }
}

fn watch_status(error: &WatchError) -> Status {
    match error {
        WatchError::Expired { .. } => Status::out_of_range(error.to_string()),
        WatchError::Store(store) => {
            tracing::error!(
                error = store as &dyn std::error::Error,
                "reading events failed"
            );
            Status::unavailable("events cannot be read right now")
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventGrpc {
    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let start = request.get_ref().after_seq.map_or(Start::Now, Start::After);
        let mut stopping = self.stopping.clone();
        let stopped = async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        };
        let (after, events) = self
            .service
            .watch_events(start)
            .await
            .map_err(|error| watch_status(&error))?;
        let events = events
            .map(|event| match event {
                Ok(event) => Ok(event_message(&event)),
                Err(error) => Err(watch_status(&error)),
            })
            .take_until(stopped);
        let mut response = Response::new(Box::pin(events) as Self::WatchEventsStream);
        response
            .metadata_mut()
            .insert(proto::metadata::EVENTS_AFTER, after.into());
        Ok(response)
    }
}
