//! The services' standard gRPC health (`grpc.health.v1.Health`): SERVING while their database
//! answers, NOT_SERVING while it does not and once they shut down, so the gateway's `/readyz`
//! (and any load balancer) tells a service that cannot do its work from one that can.

use tokio::sync::watch;
use tonic_health::{ServingStatus, server::HealthReporter};

/// The health reporter of one server's services.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    services: &'static [&'static str],
}

impl Health {
    /// The reporter and the health service to add to the server; every service starts as
    /// SERVING. `services` should name `""` too: the whole server, which the gateway asks
    /// about.
    pub async fn start(
        services: &'static [&'static str],
    ) -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, server) = tonic_health::server::health_reporter();
        let health = Self { reporter, services };
        health.set(ServingStatus::Serving).await;
        (health, server)
    }

    async fn set(&self, status: ServingStatus) {
        for name in self.services {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Reports what `up` says, for as long as it is polled (never completes while `up`'s sender
    /// lives): stop polling it before [`stopping`](Self::stopping).
    pub async fn follow(&self, mut up: watch::Receiver<bool>) {
        loop {
            let status = if *up.borrow_and_update() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            self.set(status).await;
            if up.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// NOT_SERVING for good: the server is draining.
    pub async fn stopping(&self) {
        self.set(ServingStatus::NotServing).await;
    }
}
