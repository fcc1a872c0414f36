//! How live-update events travel through RabbitMQ (AMQP 0.9.1), when a broker is configured:
//! hangout-core's relay publishes every outbox event, in `seq` order, as a persistent message
//! to one durable fanout exchange; each gateway instance consumes its own durable queue bound
//! to it. The message body is the protobuf [`Event`](crate::hangout::v1::Event), the same
//! message `EventService.WatchEvents` streams, so both paths carry one format.
//!
//! Delivery is at least once: the relay records how far the broker confirmed, and republishes
//! from there after a restart; consumers drop repeats by `seq`. Since the relay publishes
//! every `seq` in order, a consumer that meets a gap knows it lost events (its queue expired
//! while it was away) and says so to its subscribers.

use lapin::{
    Channel, Connection, ConnectionProperties, ExchangeKind, options::ExchangeDeclareOptions,
    types::FieldTable,
};
use prost::Message as _;

use crate::hangout::v1 as pb;

/// The exchange name when none is configured.
pub const DEFAULT_EXCHANGE: &str = "hangout.events";

/// Connects to `url` (`amqp://user:password@host:5672/vhost`) on the current tokio runtime.
///
/// # Errors
/// When the broker cannot be reached or refuses the login.
pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default()
        .with_connection_name(name.into())
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    Connection::connect(url, properties).await
}

/// Declares the durable fanout exchange of the events (idempotent).
///
/// # Errors
/// When the broker refuses it (an exchange of that name with other settings).
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            exchange,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares a durable queue `queue` that the broker removes once it has had no consumer for
/// `expires_after_millis` (idempotent).
///
/// # Errors
/// When the broker refuses it (a queue of that name with other settings).
pub async fn declare_queue(
    channel: &Channel,
    queue: &str,
    expires_after_millis: u32,
) -> Result<(), lapin::Error> {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-expires".into(),
        lapin::types::AMQPValue::LongUInt(expires_after_millis),
    );
    channel
        .queue_declare(
            queue,
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..lapin::options::QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    Ok(())
}

/// The body of an event's message.
#[must_use]
pub fn encode(event: &pb::Event) -> Vec<u8> {
    event.encode_to_vec()
}

/// An event from a message body.
///
/// # Errors
/// When the body is not an encoded [`pb::Event`].
pub fn decode(body: &[u8]) -> Result<pb::Event, prost::DecodeError> {
    pb::Event::decode(body)
}

/// `url` with its password replaced, for logs and errors.
#[must_use]
pub fn redact(url: &str) -> String {
    service_kit::config::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_events_round_trip() {
        assert_eq!(
            redact("amqp://guest:secret@rabbit:5672/%2f"),
            "amqp://guest:***@rabbit:5672/%2f"
        );
        assert_eq!(redact("amqp://rabbit:5672"), "amqp://rabbit:5672");
        let event = pb::Event {
            seq: 7,
            hangout_id: "h".to_owned(),
            ..pb::Event::default()
        };
        assert_eq!(decode(&encode(&event)).unwrap(), event);
    }
}
