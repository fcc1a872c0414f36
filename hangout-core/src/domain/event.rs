//! Live-update events: what a change tells the subscribers of its hangout or of one user.
//!
//! Every change a subscriber can see records its events in its own transaction (the
//! transactional outbox, `store::events`), numbered by `seq` in commit order without gaps.
//! [`watch`] then reads them in that order for a relay: the gRPC stream to the gateway, or the
//! broker relay. Nothing is lost when a process dies between a commit and its delivery: a relay
//! resumes from the last `seq` it delivered.
//!
//! Which events a change records is part of the storage port's contract
//! (`domain::store::EventStore` and the change methods' documentation):
//! - a hangout's fields changed (also by a transfer of ownership): `HangoutUpdated`;
//! - a member joined, changed role or RSVP: `MemberUpdated` with the member as subject;
//! - a member left or was removed: `MemberLeft` for the hangout and `HangoutRemoved` for them;
//! - a memory became UPLOADED, or file-core reported that its photo's processing ended:
//!   `MemoryUpdated`; a memory deleted (also by the sweeper): `MemoryDeleted`;
//! - the hangout deleted: `HangoutDeleted` for the hangout and `HangoutRemoved` (DELETED) for
//!   each member;
//! - an invitation by email to an address with an account: `InvitationReceived` for that user;
//! - someone joined or created a hangout: `HangoutAdded` for them;
//! - a session revoked (signed out, or a rotated refresh token presented again):
//!   `SessionRevoked` for its user, of no hangout, its subject the session family, so the
//!   gateway closes that session's sockets.

use std::{future::Future, time::Duration};

use futures_util::Stream;

use crate::domain::{
    ids::{HangoutId, SessionFamilyId, UserId},
    store::{StoreError, StoreResult},
    time::Timestamp,
};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    HangoutUpdated,
    MemberUpdated,
    MemberLeft,
    MemoryUpdated,
    MemoryDeleted,
    HangoutDeleted,
    InvitationReceived,
    HangoutAdded,
    HangoutRemoved,
    SessionRevoked,
}

impl EventKind {
    pub const ALL: [Self; 10] = [
        Self::HangoutUpdated,
        Self::MemberUpdated,
        Self::MemberLeft,
        Self::MemoryUpdated,
        Self::MemoryDeleted,
        Self::HangoutDeleted,
        Self::InvitationReceived,
        Self::HangoutAdded,
        Self::HangoutRemoved,
        Self::SessionRevoked,
    ];

    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HangoutUpdated => "HANGOUT_UPDATED",
            Self::MemberUpdated => "MEMBER_UPDATED",
            Self::MemberLeft => "MEMBER_LEFT",
            Self::MemoryUpdated => "MEMORY_UPDATED",
            Self::MemoryDeleted => "MEMORY_DELETED",
            Self::HangoutDeleted => "HANGOUT_DELETED",
            Self::InvitationReceived => "INVITATION_RECEIVED",
            Self::HangoutAdded => "HANGOUT_ADDED",
            Self::HangoutRemoved => "HANGOUT_REMOVED",
            Self::SessionRevoked => "SESSION_REVOKED",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Why a user can no longer see a hangout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemovalReason {
    Deleted,
    Left,
    Removed,
}

impl RemovalReason {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "DELETED",
            Self::Left => "LEFT",
            Self::Removed => "REMOVED",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Deleted, Self::Left, Self::Removed]
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

/// One event as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The hangout it is about; `None` only for `SessionRevoked`.
    pub hangout: Option<HangoutId>,
    /// The one user it is addressed to (a viewer event); `None` for an event of the hangout,
    /// delivered to its members.
    pub viewer: Option<UserId>,
    pub kind: EventKind,
    /// The id of the member, memory or invitation it is about.
    pub subject: Option<String>,
    pub reason: Option<RemovalReason>,
    pub at: Timestamp,
}

impl Event {
    /// An event of the hangout, about `subject`.
    #[must_use]
    pub fn of_hangout(
        hangout: HangoutId,
        kind: EventKind,
        subject: Option<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            hangout: Some(hangout),
            viewer: None,
            kind,
            subject,
            reason: None,
            at,
        }
    }

    /// An event addressed to `viewer`.
    #[must_use]
    pub fn for_viewer(hangout: HangoutId, viewer: UserId, kind: EventKind, at: Timestamp) -> Self {
        Self {
            hangout: Some(hangout),
            viewer: Some(viewer),
            kind,
            subject: None,
            reason: None,
            at,
        }
    }

    /// `viewer`'s session `family` was revoked.
    #[must_use]
    pub fn session_revoked(viewer: UserId, family: SessionFamilyId, at: Timestamp) -> Self {
        Self {
            hangout: None,
            viewer: Some(viewer),
            kind: EventKind::SessionRevoked,
            subject: Some(family.to_string()),
            reason: None,
            at,
        }
    }

    #[must_use]
    pub fn with_subject(mut self, subject: impl ToString) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    #[must_use]
    pub const fn with_reason(mut self, reason: RemovalReason) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// An event with its place in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub event: Event,
}

/// Events read from the outbox.
#[derive(Debug, Default)]
pub struct EventBatch {
    /// In `seq` order.
    pub events: Vec<StoredEvent>,
    /// The last `seq` read, including rows that could not be read (and are left out).
    pub last_read: Option<u64>,
}

/// Reading the outbox.
pub trait EventStore: Clone + Send + Sync + 'static {
    /// Up to `limit` events after `after`, in `seq` order.
    fn events_after(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<EventBatch>> + Send;

    /// The last `seq` given out (0 before the first event).
    fn last_event_seq(&self) -> impl Future<Output = StoreResult<u64>> + Send;

    /// The first `seq` still kept; `None` when no event is kept.
    fn first_event_seq(&self) -> impl Future<Output = StoreResult<Option<u64>>> + Send;

    /// Completes when events may have been recorded since it was called: at once after a
    /// commit of this process that recorded some, else after `poll` (another process's).
    fn recorded(&self, poll: Duration) -> impl Future<Output = ()> + Send;

    /// Where the relay `name` has got to; a relay seen for the first time starts at `start`.
    fn relay_position(
        &self,
        name: &str,
        start: u64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Records that the relay `name` delivered every event up to `seq`.
    fn save_relay_position(
        &self,
        name: &str,
        seq: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deletes the events that occurred before `before`; returns how many.
    fn delete_events_before(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// With the events recorded from now on.
    Now,
    /// With the events after this `seq`.
    After(u64),
}

/// Why a watch cannot start where asked.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Events after the asked `seq` were already deleted: the watcher missed some for good.
    #[error("events after {asked} are no longer kept (the oldest kept is {first})")]
    Expired { asked: u64, first: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many events one read takes.
const READ_BATCH: u32 = 500;

/// How often a watch looks for events another process recorded.
pub const POLL: Duration = Duration::from_millis(250);

/// Where a watch from `start` begins (the last `seq` before its first event), and the events
/// from there in `seq` order, then each new one as it is recorded. The stream ends with an
/// error when the store fails; the watcher resumes from the last `seq` it has.
///
/// # Errors
/// `Expired` when events after the asked `seq` were deleted; `Store` when the store fails.
pub async fn watch<S: EventStore>(
    store: S,
    start: Start,
) -> Result<
    (
        u64,
        impl Stream<Item = Result<StoredEvent, WatchError>> + Send,
    ),
    WatchError,
> {
    struct State<S> {
        store: S,
        after: u64,
        buffer: std::collections::VecDeque<StoredEvent>,
        failed: bool,
    }
    let after = resolve_start(&store, start).await?;
    let state = State {
        store,
        after,
        buffer: std::collections::VecDeque::new(),
        failed: false,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        if state.failed {
            return None;
        }
        loop {
            if let Some(event) = state.buffer.pop_front() {
                state.after = event.seq;
                return Some((Ok(event), state));
            }
            // Subscribed before the read, so a commit between the read and the wait wakes it.
            let recorded = state.store.recorded(POLL);
            match state.store.events_after(state.after, READ_BATCH).await {
                Ok(EventBatch {
                    last_read: None, ..
                }) => recorded.await,
                Ok(EventBatch { events, last_read }) => {
                    if events.is_empty() {
                        // Only unreadable rows: passed.
                        state.after = last_read.unwrap_or(state.after);
                    }
                    state.buffer.extend(events);
                }
                Err(error) => {
                    drop(recorded);
                    state.failed = true;
                    return Some((Err(error.into()), state));
                }
            }
        }
    });
    Ok((after, events))
}

async fn resolve_start<S: EventStore>(store: &S, start: Start) -> Result<u64, WatchError> {
    match start {
        Start::Now => Ok(store.last_event_seq().await?),
        Start::After(asked) => match store.first_event_seq().await? {
            Some(first) if first > asked.saturating_add(1) => {
                Err(WatchError::Expired { asked, first })
            }
            // Nothing kept: fine if nothing after `asked` was ever recorded.
            None if store.last_event_seq().await? > asked => Err(WatchError::Expired {
                asked,
                first: asked.saturating_add(1),
            }),
            _ => Ok(asked),
        },
    }
}

impl<S: crate::domain::store::Store> crate::domain::Service<S> {
    /// Where a watch from `start` begins and its events, for a relay (see [`watch`]).
    ///
    /// # Errors
    /// As [`watch`].
    pub async fn watch_events(
        &self,
        start: Start,
    ) -> Result<
        (
            u64,
            impl Stream<Item = Result<StoredEvent, WatchError>> + Send + 'static,
        ),
        WatchError,
    > {
        watch(self.store.clone(), start).await
    }

    /// Where the relay `name` resumes: the last `seq` it delivered, or, the first time, the
    /// last `seq` given out (a new relay delivers from now on).
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn relay_position(&self, name: &str) -> crate::domain::error::DomainResult<u64> {
        let last = self.store.last_event_seq().await?;
        Ok(self.store.relay_position(name, last).await?)
    }

    /// Records that the relay `name` delivered every event up to `seq`.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn relay_delivered(
        &self,
        name: &str,
        seq: u64,
    ) -> crate::domain::error::DomainResult<()> {
        Ok(self.store.save_relay_position(name, seq).await?)
    }

    /// Deletes the events older than the retention period; returns how many.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn prune_events(&self) -> crate::domain::error::DomainResult<u64> {
        let before = Timestamp::now().minus(self.settings.event_retention);
        Ok(self.store.delete_events_before(before).await?)
    }
}
