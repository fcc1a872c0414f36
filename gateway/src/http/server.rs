//! The HTTP server loop: connections accepted up to a cap, each served by hyper with a
//! deadline on reading request headers, and a shutdown that drains for a bounded time.
//!
//! `axum::serve` has none of these bounds: it accepts without limit, sets no header timeout
//! (hyper needs a timer for one), and its graceful shutdown waits for every connection,
//! however slow, so one half-sent request kept a stopping gateway alive for minutes.
//!
//! - At most `max_connections` connections are open; beyond it the loop stops accepting (the
//!   kernel's backlog holds the rest) until one closes.
//! - A connection that does not send a complete request head within `header_read_timeout`
//!   is closed: that covers clients that send nothing, those that trickle header bytes
//!   (slowloris), and keep-alive connections left idle. nginx's upstream `keepalive_timeout`
//!   is below it, so nginx never reuses a connection the gateway is closing.
//! - On shutdown the listener closes, connections finish their requests in flight and close
//!   (`Connection: close`), and whatever is still open after `drain` is dropped.
//!
//! HTTP/1.1 only, served by hyper's own HTTP/1 connection: nginx speaks HTTP/1.1 to its
//! upstreams, and hyper-util's protocol-sniffing `auto` connection waits for a first byte
//! without any deadline, which let silent connections stay open for good.

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, task::JoinSet};
use tower_service::Service as _;

/// The bounds of the server loop.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then drains for at most
/// `limits.drain`.
///
/// # Errors
/// Never today: accept errors (a full file table, a reset before accept) are logged and the
/// loop goes on; the type leaves room for fatal ones.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept(), if connections.len() < limits.max_connections => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: waiting a moment beats spinning on the error.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Responses go out without waiting for the client's delayed ACK (Nagle).
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "setting TCP_NODELAY failed");
                }
                let connection = builder
                    .serve_connection(TokioIo::new(tcp), service(&router, peer))
                    .with_upgrades();
                let mut stop = stop.clone();
                connections.spawn(async move {
                    let mut connection = std::pin::pin!(connection);
                    let ended = tokio::select! {
                        ended = connection.as_mut() => ended,
                        () = async {
                            // The guard it returns must not be held across the drain.
                            let _ = stop.wait_for(|stopping| *stopping).await;
                        } => {
                            // Finish the request in flight, answer it with `Connection: close`.
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    };
                    if let Err(error) = ended {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!(
        open = connections.len(),
        "shutting down: draining in-flight requests"
    );
    // No receiver left only means no connection is open.
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            drain = ?limits.drain,
            "drain deadline passed: closing the connections left"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// The router as a hyper service for one connection, giving each request the peer address
/// (the per-address rate limit reads it).
fn service(
    router: &axum::Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone
+ 'static {
    let router = router.clone();
    hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        // A Router is always ready: calling it without `poll_ready` is what axum does too.
        router.clone().call(request)
    })
}
