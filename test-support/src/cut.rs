//! A TCP path to a real server (MariaDB, a backend) that a test can stall, cut and restore, to
//! see what a client does when the server stops answering or goes away mid-call, without
//! stopping the server, which other tests share.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// What the link does with its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Forwards bytes both ways.
    Open,
    /// Keeps its connections but forwards nothing (a server that hangs); new connections are
    /// accepted and wait.
    Stalled,
    /// Closes every connection, and new ones as soon as they are accepted (a client sees its
    /// connection reset or ended, as when the server's process is gone).
    Cut,
}

/// Forwards each connection made to [`addr`](Self::addr) to the server, as its state says.
pub struct CuttableLink {
    addr: SocketAddr,
    state: watch::Sender<State>,
    accepting: JoinHandle<()>,
}

impl CuttableLink {
    /// Listens on a free loopback port and forwards to `server`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn to(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let (state, _) = watch::channel(State::Open);
        let accepting = tokio::spawn(accept(listener, server, state.clone()));
        Self {
            addr,
            state,
            accepting,
        }
    }

    /// Forwards to the server a URL such as `mysql://user@host:port/db` names.
    ///
    /// # Panics
    /// When the URL names no host and port that resolve.
    pub async fn to_server_of(url: &str) -> Self {
        let (_, authority) = split(url);
        let server = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .expect("the URL's host and port")
            .next()
            .expect("an address of the URL's host");
        Self::to(server).await
    }

    /// `url` with this link's address for its host and port.
    #[must_use]
    pub fn url_for(&self, url: &str) -> String {
        let (before, authority) = split(url);
        let after = &url[before.len() + authority.len()..];
        format!("{before}{}{after}", self.addr)
    }

    /// Where clients connect.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keeps every connection open but forwards nothing, until [`cut`](Self::cut) or
    /// [`restore`](Self::restore).
    pub fn stall(&self) {
        self.state.send_replace(State::Stalled);
    }

    /// Closes every forwarded connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.state.send_replace(State::Cut);
    }

    /// Forwards again (the connections a cut closed stay closed).
    pub fn restore(&self) {
        self.state.send_replace(State::Open);
    }
}

impl Drop for CuttableLink {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

/// The part of `url` before its `host:port`, and the `host:port`.
fn split(url: &str) -> (&str, &str) {
    let start = url
        .rfind('@')
        .map(|at| at + 1)
        .or_else(|| url.find("://").map(|at| at + 3))
        .unwrap_or(0);
    let end = url[start..].find('/').map_or(url.len(), |at| start + at);
    (&url[..start], &url[start..end])
}

async fn accept(listener: TcpListener, server: SocketAddr, state: watch::Sender<State>) {
    while let Ok((client, _)) = listener.accept().await {
        if *state.borrow() == State::Cut {
            drop(client);
            continue;
        }
        let state = state.subscribe();
        tokio::spawn(async move {
            let Ok(upstream) = TcpStream::connect(server).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = upstream.into_split();
            // Either direction ending (or a cut) ends both: the halves are dropped together.
            tokio::select! {
                () = forward(client_read, server_write, state.clone()) => {}
                () = forward(server_read, client_write, state) => {}
            }
        });
    }
}

/// Copies `from` to `to` while the link is open, waits while it is stalled, and returns
/// when either side ends or the link is cut.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut state: watch::Receiver<State>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let now = *state.borrow_and_update();
        match now {
            State::Cut => return,
            State::Stalled => {
                if state.changed().await.is_err() {
                    return;
                }
            }
            State::Open => {
                tokio::select! {
                    read = from.read(&mut buffer) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(read) => {
                            if to.write_all(&buffer[..read]).await.is_err() {
                                return;
                            }
                        }
                    },
                    changed = state.changed() => if changed.is_err() {
                        return;
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn urls_split_around_their_host_and_port() {
        assert_eq!(
            split("mysql://root@127.0.0.1:3306/db"),
            ("mysql://root@", "127.0.0.1:3306")
        );
        assert_eq!(
            split("mysql://127.0.0.1:3306"),
            ("mysql://", "127.0.0.1:3306")
        );
    }
}
