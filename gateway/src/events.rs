//! The event hub: hangout-core's live-update events fanned out to this instance's
//! subscriptions.
//!
//! One task per gateway ([`EventHub::run`]) watches hangout-core's `EventService` from the
//! last `seq` it received, reconnecting with backoff, so a cut stream or a restarted
//! hangout-core loses nothing (events are kept there for `HANGOUT_CORE_EVENT_RETENTION`).
//! Repeats after a reconnect are dropped by `seq`; events reach each subscription in `seq`
//! order, so in order per hangout.
//!
//! With a broker (`GATEWAY_BROKER_URL`), the hub reads RabbitMQ instead ([`EventHub::run_broker`]):
//! its own durable queue, bound to the events' exchange, kept by the broker across a restart
//! of either and for a while after this instance goes away. hangout-core's relay publishes
//! every `seq` in order, so a gap means this instance lost events (its queue expired).
//!
//! Every subscription has a bounded queue. One that fills (a client that does not read) is
//! cut off, never buffered without limit: its stream ends with [`Ended::TooSlow`]. When events
//! were lost for good (hangout-core no longer keeps those after the last one received), every
//! subscription ends with [`Ended::Lost`], so clients subscribe again and look afresh.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use proto::hangout::v1 as pb;
use telemetry::metrics::Counter;
use tokio::sync::mpsc;

use crate::backend::hangout::HangoutCore;

/// How long the broker keeps this instance's queue once nobody consumes it (10 minutes).
const QUEUE_EXPIRY_MILLIS: u32 = 10 * 60 * 1000;

/// Events one subscription may have waiting before it is cut off.
const QUEUE: usize = 64;

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// A session was revoked; its subject is the session (family) id, its hangout empty.
    SessionRevoked,
}

/// Why someone no longer sees a hangout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalReason {
    Deleted,
    Left,
    Removed,
}

/// One event, in the gateway's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    /// The hangout's UUID; empty for `SessionRevoked`.
    pub hangout: String,
    /// The user (UUID) a viewer event is for; `None` for an event of the hangout.
    pub viewer: Option<String>,
    pub kind: EventKind,
    /// The member's, memory's or invitation's UUID, when it is about one.
    pub subject: Option<String>,
    pub reason: Option<RemovalReason>,
    /// When it happened, in Unix milliseconds.
    pub at_millis: i64,
}

impl Event {
    /// From hangout-core's message; `None` for a kind this gateway does not know.
    fn from_message(message: pb::Event) -> Option<Self> {
        let kind = match message.kind() {
            pb::EventKind::Unspecified => return None,
            pb::EventKind::HangoutUpdated => EventKind::HangoutUpdated,
            pb::EventKind::MemberUpdated => EventKind::MemberUpdated,
            pb::EventKind::MemberLeft => EventKind::MemberLeft,
            pb::EventKind::MemoryUpdated => EventKind::MemoryUpdated,
            pb::EventKind::MemoryDeleted => EventKind::MemoryDeleted,
            pb::EventKind::HangoutDeleted => EventKind::HangoutDeleted,
            pb::EventKind::InvitationReceived => EventKind::InvitationReceived,
            pb::EventKind::HangoutAdded => EventKind::HangoutAdded,
            pb::EventKind::HangoutRemoved => EventKind::HangoutRemoved,
            pb::EventKind::SessionRevoked => EventKind::SessionRevoked,
        };
        let reason = match message.reason() {
            pb::RemovalReason::Unspecified => None,
            pb::RemovalReason::Deleted => Some(RemovalReason::Deleted),
            pb::RemovalReason::Left => Some(RemovalReason::Left),
            pb::RemovalReason::Removed => Some(RemovalReason::Removed),
        };
        let non_empty = |text: String| (!text.is_empty()).then_some(text);
        Some(Self {
            seq: message.seq,
            hangout: message.hangout_id,
            viewer: non_empty(message.viewer_id),
            kind,
            subject: non_empty(message.subject_id),
            reason,
            at_millis: message
                .occurred_at
                .as_ref()
                .and_then(proto::timestamp_to_millis)
                .unwrap_or_default(),
        })
    }

    fn topic(&self) -> Topic {
        match (&self.viewer, self.kind, &self.subject) {
            (_, EventKind::SessionRevoked, Some(session)) => Topic::Session(session.clone()),
            (Some(viewer), _, _) => Topic::Viewer(viewer.clone()),
            (None, _, _) => Topic::Hangout(self.hangout.clone()),
        }
    }
}

/// Who an event is delivered to: the subscribers of a hangout, of one user, or the sockets
/// of one session (which close when it is revoked).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Hangout(String),
    Viewer(String),
    Session(String),
}

/// Why a subscription's events stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Its queue filled: the client did not read its events in time.
    TooSlow,
    /// Events were lost for good between hangout-core and this gateway.
    Lost,
    /// The gateway is shutting down.
    ShuttingDown,
}

struct Subscriber {
    id: u64,
    sender: mpsc::Sender<Arc<Event>>,
    ended: Arc<Mutex<Option<Ended>>>,
}

#[derive(Default)]
struct Inner {
    topics: Mutex<HashMap<Topic, Vec<Subscriber>>>,
    next_id: AtomicU64,
    /// Whether the watch of hangout-core is open (for readiness and tests).
    connected: tokio::sync::watch::Sender<bool>,
    /// Counts the subscriptions cut off for a full queue.
    cut_off: Counter,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fan-out of events to this instance's subscriptions. Cheap to clone.
#[derive(Clone, Default)]
pub struct EventHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("EventHub").finish_non_exhaustive()
    }
}

/// One subscription's events; unsubscribes when dropped.
pub struct Subscription {
    hub: EventHub,
    topic: Topic,
    id: u64,
    receiver: mpsc::Receiver<Arc<Event>>,
    ended: Arc<Mutex<Option<Ended>>>,
}

impl Subscription {
    /// The next event, or why there are no more.
    pub async fn next(&mut self) -> Result<Arc<Event>, Ended> {
        match self.receiver.recv().await {
            Some(event) => Ok(event),
            None => Err(lock(&self.ended).unwrap_or(Ended::ShuttingDown)),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = lock(&self.hub.inner.topics);
        if let Some(subscribers) = topics.get_mut(&self.topic) {
            subscribers.retain(|subscriber| subscriber.id != self.id);
            if subscribers.is_empty() {
                topics.remove(&self.topic);
            }
        }
    }
}

impl EventHub {
    /// A hub that counts the subscriptions it cuts off in `cut_off`.
    #[must_use]
    pub fn counting_cut_offs(cut_off: Counter) -> Self {
        Self {
            inner: Arc::new(Inner {
                cut_off,
                ..Inner::default()
            }),
        }
    }

    /// Starts receiving the events of `topic`.
    #[must_use]
    pub fn subscribe(&self, topic: Topic) -> Subscription {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let ended = Arc::new(Mutex::new(None));
        lock(&self.inner.topics)
            .entry(topic.clone())
            .or_default()
            .push(Subscriber {
                id,
                sender,
                ended: Arc::clone(&ended),
            });
        Subscription {
            hub: self.clone(),
            topic,
            id,
            receiver,
            ended,
        }
    }

    /// Open subscriptions (for metrics and tests).
    #[must_use]
    pub fn subscriptions(&self) -> usize {
        lock(&self.inner.topics).values().map(Vec::len).sum()
    }

    /// Whether the watch of hangout-core is open: events reach this instance's subscribers.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        *self.inner.connected.borrow()
    }

    /// Completes once the watch of hangout-core is open.
    pub async fn connected(&self) {
        let mut connected = self.inner.connected.subscribe();
        let _ = connected.wait_for(|connected| *connected).await;
    }

    /// Hands `event` to every subscription of its topic; one whose queue is full is cut off.
    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        let mut topics = lock(&self.inner.topics);
        let Some(subscribers) = topics.get_mut(&event.topic()) else {
            return;
        };
        subscribers.retain(
            |subscriber| match subscriber.sender.try_send(Arc::clone(&event)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    *lock(&subscriber.ended) = Some(Ended::TooSlow);
                    self.inner.cut_off.inc();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
        );
        if subscribers.is_empty() {
            topics.remove(&event.topic());
        }
    }

    /// Ends every subscription with `why`.
    fn end_all(&self, why: Ended) {
        let mut topics = lock(&self.inner.topics);
        for subscriber in topics.values().flatten() {
            *lock(&subscriber.ended) = Some(why);
        }
        topics.clear();
    }

    /// Watches hangout-core until `stopping` turns true, publishing each event once.
    pub async fn run(self, hangout: HangoutCore, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let mut after: Option<u64> = None;
        let mut backoff = proto::process::Backoff::default();
        loop {
            let watched = tokio::select! {
                watched = self.watch_once(&hangout, &mut after) => watched,
                _ = stopping.wait_for(|stopping| *stopping) => break,
            };
            self.inner.connected.send_replace(false);
            match watched {
                Ok(()) => backoff.reset(),
                Err(status) if status.code() == tonic::Code::OutOfRange => {
                    tracing::warn!(
                        after,
                        "events were lost for good: every subscription ends so clients resubscribe"
                    );
                    self.end_all(Ended::Lost);
                    after = None;
                    continue;
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "event stream from hangout-core failed; reconnecting");
                }
            }
            if !backoff.wait(&mut stopping).await {
                break;
            }
        }
        self.end_all(Ended::ShuttingDown);
    }

    /// Consumes this instance's queue `queue` on the broker at `url` until `stopping` turns
    /// true, publishing each event once, reconnecting with backoff.
    pub async fn run_broker(
        self,
        url: String,
        exchange: String,
        queue: String,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut after: Option<u64> = None;
        let mut backoff = proto::process::Backoff::default();
        loop {
            let consumed = tokio::select! {
                consumed = self.consume_once(&url, &exchange, &queue, &mut after) => consumed,
                _ = stopping.wait_for(|stopping| *stopping) => break,
            };
            self.inner.connected.send_replace(false);
            if let Err(error) = consumed {
                tracing::warn!(
                    error = %telemetry::ErrorChain(&error),
                    broker = %proto::broker::redact(&url),
                    "event queue on the broker failed; reconnecting"
                );
            }
            if !backoff.wait(&mut stopping).await {
                break;
            }
        }
        self.end_all(Ended::ShuttingDown);
    }

    /// One connection's consumption of the queue.
    async fn consume_once(
        &self,
        url: &str,
        exchange: &str,
        queue: &str,
        after: &mut Option<u64>,
    ) -> Result<(), lapin::Error> {
        use lapin::{
            options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions},
            types::FieldTable,
        };
        let connection = proto::broker::connect(url, queue).await?;
        let channel = connection.create_channel().await?;
        proto::broker::declare_exchange(&channel, exchange).await?;
        // Durable, so a broker restart keeps it; removed by the broker once this instance
        // has been gone that long.
        proto::broker::declare_queue(&channel, queue, QUEUE_EXPIRY_MILLIS).await?;
        channel
            .queue_bind(
                queue,
                exchange,
                "",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel.basic_qos(256, BasicQosOptions::default()).await?;
        let mut consumer = channel
            .basic_consume(
                queue,
                queue,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.inner.connected.send_replace(true);
        tracing::info!(queue, "consuming events from the broker");
        while let Some(delivery) = futures_util::StreamExt::next(&mut consumer).await {
            let delivery = delivery?;
            match proto::broker::decode(&delivery.data) {
                Ok(message) => self.receive(after, message),
                Err(error) => tracing::error!(%error, "an event message could not be read"),
            }
            delivery.ack(BasicAckOptions::default()).await?;
        }
        Ok(())
    }

    /// Publishes `message` unless it is a repeat; a gap ends every subscription (events were
    /// lost), since the relay publishes every `seq`.
    fn receive(&self, after: &mut Option<u64>, message: pb::Event) {
        if let Some(last) = *after {
            if message.seq <= last {
                return;
            }
            if message.seq > last + 1 {
                tracing::warn!(
                    last,
                    next = message.seq,
                    "events were lost on the way from the broker: every subscription ends so clients resubscribe"
                );
                self.end_all(Ended::Lost);
            }
        }
        *after = Some(message.seq);
        if let Some(event) = Event::from_message(message) {
            self.publish(event);
        }
    }

    /// One watch, until it ends; `after` follows the last event received.
    async fn watch_once(
        &self,
        hangout: &HangoutCore,
        after: &mut Option<u64>,
    ) -> Result<(), tonic::Status> {
        let (start, mut stream) = hangout.watch_events(*after).await?;
        if after.is_none() {
            *after = start;
        }
        self.inner.connected.send_replace(true);
        tracing::info!(after = *after, "watching hangout-core's events");
        while let Some(message) = stream.message().await? {
            if after.is_some_and(|after| message.seq <= after) {
                continue;
            }
            *after = Some(message.seq);
            if let Some(event) = Event::from_message(message) {
                self.publish(event);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, topic: &Topic) -> Event {
        let (hangout, viewer, kind, subject) = match topic {
            Topic::Hangout(hangout) => (hangout.clone(), None, EventKind::HangoutUpdated, None),
            Topic::Viewer(viewer) => (
                "h".to_owned(),
                Some(viewer.clone()),
                EventKind::HangoutUpdated,
                None,
            ),
            Topic::Session(session) => (
                String::new(),
                Some("u1".to_owned()),
                EventKind::SessionRevoked,
                Some(session.clone()),
            ),
        };
        Event {
            seq,
            hangout,
            viewer,
            kind,
            subject,
            reason: None,
            at_millis: 0,
        }
    }

    #[tokio::test]
    async fn events_reach_their_topic_only_and_a_full_queue_cuts_its_subscriber_off() {
        let hub = EventHub::default();
        let hangout = Topic::Hangout("h1".to_owned());
        let viewer = Topic::Viewer("u1".to_owned());
        let mut reader = hub.subscribe(hangout.clone());
        let mut slow = hub.subscribe(hangout.clone());
        let mut other = hub.subscribe(viewer.clone());
        for seq in 1..=QUEUE as u64 {
            hub.publish(event(seq, &hangout));
            assert_eq!(reader.next().await.unwrap().seq, seq);
        }
        // A session's revocation reaches its sockets, not the user's viewer subscriptions.
        let session = Topic::Session("s1".to_owned());
        let mut socket = hub.subscribe(session.clone());
        hub.publish(event(999, &session));
        assert_eq!(socket.next().await.unwrap().seq, 999);
        drop(socket);
        hub.publish(event(1_000, &viewer));
        assert_eq!(other.next().await.unwrap().seq, 1_000);
        // `slow` never read: its queue is full, so the next event cuts it off.
        hub.publish(event(2_000, &hangout));
        assert_eq!(reader.next().await.unwrap().seq, 2_000);
        for seq in 1..=QUEUE as u64 {
            assert_eq!(slow.next().await.unwrap().seq, seq);
        }
        assert_eq!(slow.next().await.unwrap_err(), Ended::TooSlow);
        drop(reader);
        drop(other);
        assert_eq!(hub.subscriptions(), 0);
    }
}
