//! Binding a service's listener.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// The listen address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {addr}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` and returns the listener with the address it got (the port chosen for port 0).
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), BindError> {
    let failed = |source| BindError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let local_addr = listener.local_addr().map_err(failed)?;
    Ok((listener, local_addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn port_zero_gets_a_port_and_a_taken_one_names_its_address() {
        let (_listener, local) = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        assert_ne!(local.port(), 0);
        let taken = bind(local).await.expect_err("the port is taken");
        assert_eq!(taken.to_string(), format!("cannot bind {local}"));
    }
}
