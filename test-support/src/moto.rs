//! moto's S3 server (PyPI `moto[server]`) as a separate process: a second, independent
//! implementation of the S3 protocol, so file-core's external mode is not only ever checked
//! against the embedded server it ships. moto keeps everything in memory: a restart starts
//! from an empty server.

use std::{net::SocketAddr, process::Stdio, time::Duration};

use tokio::process::{Child, Command};

/// The program `pip install 'moto[server]'` puts on the `PATH`.
const PROGRAM: &str = "moto_server";

/// A running `moto_server` on a loopback port, killed on drop.
pub struct MotoServer {
    addr: SocketAddr,
    child: Option<Child>,
}

impl MotoServer {
    /// Starts moto on a free loopback port and waits until it answers. `None`, with a message,
    /// when moto is not installed; under CI (`CI` set) a missing moto fails the test instead,
    /// as a missing MariaDB or Redis does.
    ///
    /// # Panics
    /// When moto cannot start, or is missing under CI.
    pub async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = match spawn(addr) {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let message = "moto is not installed: pip install 'moto[server]'";
                assert!(std::env::var_os("CI").is_none(), "{message}");
                eprintln!("skipped: {message}");
                return None;
            }
            Err(error) => panic!("cannot start {PROGRAM}: {error}"),
        };
        let mut server = Self {
            addr,
            child: Some(child),
        };
        server.wait_until_answering().await;
        Some(server)
    }

    /// The endpoint clients use, `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on (on 127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Kills the server: connections are refused until [`start_again`](Self::start_again).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts an empty server on the same port again.
    ///
    /// # Panics
    /// When it cannot start.
    pub async fn start_again(&mut self) {
        self.kill().await;
        self.child = Some(spawn(self.addr).expect("restart moto"));
        self.wait_until_answering().await;
    }

    async fn wait_until_answering(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{PROGRAM} exited at start: {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{PROGRAM} did not listen on {} within 30 s",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn spawn(addr: SocketAddr) -> std::io::Result<Child> {
    Command::new(PROGRAM)
        .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}
