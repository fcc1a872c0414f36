//! Delivery of processing jobs through RabbitMQ (`FILE_CORE_BROKER_URL`), when a broker is
//! configured. The job queue itself stays in file-core's database (decision 18 of
//! ARCHITECTURE.md): RabbitMQ only carries the news that a job is due, to whichever worker
//! takes it first, so workers need not poll the database.
//!
//! - The service's publisher sends the id of every due job that no message is out for (or
//!   whose message went out long ago) to one durable queue, persistent, waits for the broker's
//!   confirm, and then records that it went out (`published_at`). A job retried later, or
//!   whose worker died holding it, is due again and published again.
//! - Each worker consumes the queue one message at a time (`prefetch` 1), claims that job in
//!   the database, does it, and only then acknowledges the message: a worker killed mid-job
//!   leaves the message to the broker, which hands it to another worker. A message whose job
//!   cannot be claimed (done, deleted, or leased by a live worker) is acknowledged and
//!   dropped; the database says when the job is due again.
//!
//! So a lost or repeated message can delay a job but never lose or duplicate it.

use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Channel,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions,
    },
    types::FieldTable,
};

use crate::{
    domain::{error::DomainError, ids::FileId, time::Timestamp},
    grpc::SharedService,
    metrics::Metrics,
    render::ImageRenderer,
};

/// The queue name when none is configured.
pub const DEFAULT_QUEUE: &str = "file.processing";

/// Job ids published per round, at most.
const PUBLISH_BATCH: u32 = 100;
/// How often the publisher looks for due jobs when none was queued in this process (retries
/// coming due, jobs queued by another service instance).
const PUBLISH_POLL: Duration = Duration::from_secs(1);
/// A job whose message went out this long ago and that is still not done is published again
/// (the message may have been lost with a broker that kept no copy).
pub const REPUBLISH_AFTER: Duration = Duration::from_secs(10 * 60);
/// An unused queue is removed by the broker after a day; the jobs are in the database and are
/// published again into a new one.
const QUEUE_EXPIRY_MILLIS: u32 = 24 * 60 * 60 * 1000;

/// Why one connection's worth of work ended.
#[derive(Debug, thiserror::Error)]
enum BrokerError {
    #[error("broker")]
    Broker(#[from] lapin::Error),
    #[error("the broker refused a job message")]
    Refused,
    #[error("database")]
    Domain(#[from] DomainError),
}

/// Runs `work` (one connection's worth) until `stopping`, again after each failure, with
/// backoff.
async fn reconnecting<F, Fut>(
    what: &'static str,
    url: &str,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), BrokerError>>,
{
    let mut backoff = proto::process::Backoff::default();
    loop {
        let ran = tokio::select! {
            ran = work() => ran,
            _ = stopping.wait_for(|stopping| *stopping) => return,
        };
        match ran {
            Ok(()) => backoff.reset(),
            Err(error) => tracing::warn!(
                error = %telemetry::ErrorChain(&error),
                broker = %proto::broker::redact(url),
                "{what} stopped; retrying"
            ),
        }
        if !backoff.wait(&mut stopping).await {
            return;
        }
    }
}

/// The durable job queue (idempotent).
async fn declare(channel: &Channel, queue: &str) -> Result<(), lapin::Error> {
    proto::broker::declare_queue(channel, queue, QUEUE_EXPIRY_MILLIS).await
}

/// Publishes due jobs until `stopping` turns true (the service role).
pub async fn publish_forever(
    service: SharedService,
    url: String,
    queue: String,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    reconnecting("job publisher", &url, stopping, || {
        publish(&service, &url, &queue)
    })
    .await;
}

async fn publish(service: &SharedService, url: &str, queue: &str) -> Result<(), BrokerError> {
    let connection = proto::broker::connect(url, "file-core job publisher").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    declare(&channel, queue).await?;
    tracing::info!(queue, broker = %proto::broker::redact(url), "publishing processing jobs");
    loop {
        let now = Timestamp::now();
        let due = service
            .unpublished_jobs(now, now.minus(REPUBLISH_AFTER), PUBLISH_BATCH)
            .await?;
        if due.is_empty() {
            let _ = tokio::time::timeout(PUBLISH_POLL, service.jobs_queued()).await;
            continue;
        }
        for id in &due {
            let confirmation = channel
                .basic_publish(
                    "",
                    queue,
                    BasicPublishOptions::default(),
                    id.to_string().as_bytes(),
                    // Persistent: a restarted broker still holds the queue's messages.
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?
                .await?;
            if !confirmation.is_ack() {
                return Err(BrokerError::Refused);
            }
        }
        service.jobs_published(&due, Timestamp::now()).await?;
    }
}

/// Consumes job messages and does their jobs until `stopping` turns true (one worker).
pub async fn consume_forever(
    service: SharedService,
    renderer: ImageRenderer,
    metrics: Metrics,
    url: String,
    queue: String,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    reconnecting("job consumer", &url, stopping, || {
        consume(&service, &renderer, &metrics, &url, &queue)
    })
    .await;
}

async fn consume(
    service: &SharedService,
    renderer: &ImageRenderer,
    metrics: &Metrics,
    url: &str,
    queue: &str,
) -> Result<(), BrokerError> {
    let connection = proto::broker::connect(url, "file-core worker").await?;
    let channel = connection.create_channel().await?;
    declare(&channel, queue).await?;
    // One job at a time: the next message stays with the broker for another worker.
    channel.basic_qos(1, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            queue,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue, broker = %proto::broker::redact(url), "consuming processing jobs");
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let id = std::str::from_utf8(&delivery.data)
            .ok()
            .and_then(FileId::parse);
        match id {
            None => tracing::warn!("dropped a job message that names no file"),
            Some(id) => {
                if let Some(report) = service.process_job(id, renderer).await? {
                    metrics.processed(report);
                    tracing::info!(file = %id, outcome = report.as_str(), "processed a photo");
                }
            }
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}
