//! Whether the database answers: a probe on a connection of its own decides, and while it
//! finds the database down, checkouts fail at once as unavailable (a circuit breaker) instead
//! of each request waiting for the pool's acquire timeout, and the service reports NOT_SERVING.
//!
//! The probe runs on its own connection, not one of the pool's, so a pool busy with load is
//! not taken for a database that is down; when that connection cannot be had, the pool is
//! asked too, so a server refusing new connections (its `max_connections` reached) while the
//! pool's still work is not taken for one that is down either. A checkout that fails as
//! unavailable wakes the probe at once; it also runs every [`PROBE_INTERVAL`] while the
//! database is up, and more often while it is down, so recovery is seen within
//! [`RECOVERY_PROBE_INTERVAL`].

use std::{sync::Arc, time::Duration};

use sqlx::{
    ConnectOptions as _, Connection as _, MySqlConnection, MySqlPool, mysql::MySqlConnectOptions,
};
use tokio::sync::{Notify, watch};

/// How often a database that answered is asked again.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How often a database that did not answer is asked again.
pub(crate) const RECOVERY_PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// How long one probe (connect or ping) may take before the database counts as down: the
/// pool's acquire timeout, so a database slow enough to fail requests is the one called down.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared state: up or down, and a way to ask for a probe now.
#[derive(Clone, Debug)]
pub(crate) struct Availability {
    up: Arc<watch::Sender<bool>>,
    wake: Arc<Notify>,
}

impl Default for Availability {
    fn default() -> Self {
        Self {
            up: Arc::new(watch::Sender::new(true)),
            wake: Arc::new(Notify::new()),
        }
    }
}

impl Availability {
    pub(crate) fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// A checkout failed as unavailable: probe now rather than at the next interval.
    pub(crate) fn suspect(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// Probes MySQL for as long as it is polled, keeping one connection for the pings.
    pub(crate) async fn probe_mysql(&self, pool: &MySqlPool) {
        let options = pool.connect_options();
        let mut connection: Option<MySqlConnection> = None;
        loop {
            let answered = ping(&mut connection, &options).await || pool_answers(pool).await;
            self.up.send_if_modified(|up| {
                let changed = *up != answered;
                if changed {
                    if answered {
                        tracing::info!("the database answers again");
                    } else {
                        tracing::warn!("the database does not answer: failing requests fast");
                    }
                }
                *up = answered;
                changed
            });
            let interval = if answered {
                PROBE_INTERVAL
            } else {
                RECOVERY_PROBE_INTERVAL
            };
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

/// Whether one of the pool's connections answers a ping in time.
async fn pool_answers(pool: &MySqlPool) -> bool {
    let attempt = async {
        let mut connection = pool.acquire().await?;
        connection.ping().await
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Ok(()))
    )
}

/// Pings on `connection`, connecting first when there is none; drops a connection that fails.
async fn ping(connection: &mut Option<MySqlConnection>, options: &MySqlConnectOptions) -> bool {
    let attempt = async {
        if connection.is_none() {
            *connection = Some(options.connect().await?);
        }
        match connection.as_mut() {
            Some(connection) => connection.ping().await,
            None => Ok(()),
        }
    };
    let answered = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Ok(()))
    );
    if !answered {
        *connection = None;
    }
    answered
}
