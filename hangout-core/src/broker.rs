//! The broker relay: the outbox's events published to RabbitMQ (`HANGOUT_CORE_BROKER_URL`),
//! in `seq` order, each confirmed by the broker before the relay's position moves past it
//! (see `proto::broker` for the conventions). The position lives in hangout-core's own
//! `event_relays` table, so a relay that dies, a restarted hangout-core or a restarted broker
//! resumes where the broker last confirmed: events are published at least once, never lost.
//!
//! Without a broker, the gateways read the same events through `EventService.WatchEvents`.

use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::{BasicProperties, options::BasicPublishOptions, options::ConfirmSelectOptions};

use crate::{
    domain::event::{Start, WatchError},
    grpc::{SharedService, event_message},
};

/// The relay's name in `event_relays`.
const RELAY: &str = "rabbitmq";

/// Positions are saved after this many events, or when the stream goes quiet.
const SAVE_EVERY: u64 = 100;

/// Why one run of the relay ended.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("broker")]
    Broker(#[from] lapin::Error),
    #[error("the broker refused an event")]
    Refused,
    #[error("events")]
    Events(#[from] WatchError),
    #[error("store")]
    Domain(#[from] crate::domain::error::DomainError),
}

/// Relays until `stopping` turns true, reconnecting with backoff.
pub async fn relay_forever(
    service: SharedService,
    url: String,
    exchange: String,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = proto::process::Backoff::default();
    loop {
        let ran = tokio::select! {
            ran = relay(&service, &url, &exchange) => ran,
            _ = stopping.wait_for(|stopping| *stopping) => return,
        };
        if let Err(error) = ran {
            tracing::warn!(
                error = %telemetry::ErrorChain(&error),
                broker = %proto::broker::redact(&url),
                "event relay to the broker stopped; retrying"
            );
        }
        if !backoff.wait(&mut stopping).await {
            return;
        }
    }
}

/// One connection's worth of relaying.
async fn relay(service: &SharedService, url: &str, exchange: &str) -> Result<(), RelayError> {
    let connection = proto::broker::connect(url, "hangout-core relay").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    proto::broker::declare_exchange(&channel, exchange).await?;
    let mut position = service.relay_position(RELAY).await?;
    let (_, events) = match service.watch_events(Start::After(position)).await {
        Ok(watch) => watch,
        Err(WatchError::Expired { first, .. }) => {
            tracing::error!(
                position,
                first,
                "events the broker never got are no longer kept: they are lost to it"
            );
            service.relay_delivered(RELAY, first - 1).await?;
            position = first - 1;
            service.watch_events(Start::After(position)).await?
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(position, broker = %proto::broker::redact(url), "relaying events to the broker");
    let mut events = std::pin::pin!(events);
    let mut saved = position;
    loop {
        let next = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
        let event = match next {
            Err(_) => {
                if saved != position {
                    service.relay_delivered(RELAY, position).await?;
                    saved = position;
                }
                continue;
            }
            Ok(None) => return Ok(()),
            Ok(Some(event)) => event?,
        };
        let body = proto::broker::encode(&event_message(&event));
        let confirmation = channel
            .basic_publish(
                exchange,
                "",
                BasicPublishOptions::default(),
                &body,
                // Persistent: a restarted broker still holds what the queues had.
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await?;
        if !confirmation.is_ack() {
            return Err(RelayError::Refused);
        }
        position = event.seq;
        if position - saved >= SAVE_EVERY {
            service.relay_delivered(RELAY, position).await?;
            saved = position;
        }
    }
}
