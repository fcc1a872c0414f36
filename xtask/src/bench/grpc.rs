//! Direct gRPC clients of hangout-core and file-core over mutual TLS, presenting the gateway's
//! client certificate: the seeder and the floor use them.

use std::path::Path;

use anyhow::Context as _;
use proto::{
    file::v1::file_service_client::FileServiceClient,
    hangout::v1::{
        activity_service_client::ActivityServiceClient, auth_service_client::AuthServiceClient,
        hangout_service_client::HangoutServiceClient, memory_service_client::MemoryServiceClient,
        user_service_client::UserServiceClient,
    },
    tls::TlsFiles,
};
use tonic::transport::{Channel, Endpoint};

/// One HTTP/2 connection to each backend, as the gateway has.
#[derive(Clone)]
pub struct Backends {
    hangout: Channel,
    file: Channel,
}

/// The gateway's certificate files under `root/.certs`.
pub fn gateway_tls(root: &Path) -> TlsFiles {
    let certs = root.join(crate::certs::CERTS_DIR);
    TlsFiles {
        ca: certs.join("ca.pem"),
        cert: certs.join("gateway.pem"),
        key: certs.join("gateway.key"),
    }
}

async fn channel(root: &Path, server_name: &str, port: u16) -> anyhow::Result<Channel> {
    let tls = proto::tls::client_config(&gateway_tls(root), server_name)?;
    Endpoint::from_shared(format!("https://127.0.0.1:{port}"))?
        .tls_config(tls)?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {server_name} on port {port}"))
}

impl Backends {
    /// Connects to both services on loopback.
    ///
    /// # Errors
    /// When the certificates are unusable or a service does not answer.
    pub async fn connect(root: &Path, hangout_port: u16, file_port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            hangout: channel(root, "hangout-core", hangout_port).await?,
            file: channel(root, "file-core", file_port).await?,
        })
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.hangout.clone())
    }

    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.hangout.clone())
    }

    pub fn hangouts(&self) -> HangoutServiceClient<Channel> {
        HangoutServiceClient::new(self.hangout.clone())
    }

    pub fn activities(&self) -> ActivityServiceClient<Channel> {
        ActivityServiceClient::new(self.hangout.clone())
    }

    pub fn memories(&self) -> MemoryServiceClient<Channel> {
        MemoryServiceClient::new(self.hangout.clone())
    }

    pub fn files(&self) -> FileServiceClient<Channel> {
        FileServiceClient::new(self.file.clone())
    }
}

/// A request on behalf of `user_id`, as the gateway sends it after checking the JWT.
pub fn as_user<T>(user_id: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    proto::metadata::set_caller(request.metadata_mut(), Some(user_id), None);
    request
}
