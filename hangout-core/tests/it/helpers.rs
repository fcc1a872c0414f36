//! `TestApp`: a real hangout-core on a random port, over real mTLS, on a fresh SQLite file or
//! a fresh MariaDB database, with typed clients acting as the gateway.

use std::{future::Future, path::PathBuf, time::Duration};

use clap::Parser as _;
use hangout_core::{App, Config};
use proto::{
    dev_certs::{DevCa, write_pair},
    hangout::v1::{
        self as pb, activity_service_client::ActivityServiceClient,
        auth_service_client::AuthServiceClient, event_service_client::EventServiceClient,
        hangout_service_client::HangoutServiceClient,
        membership_service_client::MembershipServiceClient,
        memory_service_client::MemoryServiceClient, user_service_client::UserServiceClient,
    },
    tls::TlsFiles,
};
use sqlx::Connection as _;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tonic::{
    Request,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub use test_support::Db;

/// Certificates of one test: a CA, the server's, the gateway client's.
pub struct Certs {
    pub dir: PathBuf,
    pub ca: DevCa,
    pub server: TlsFiles,
    pub gateway: TlsFiles,
}

impl Certs {
    pub fn new(dir: PathBuf) -> Self {
        let ca = DevCa::new("test CA").unwrap();
        let server = write_pair(
            &dir,
            &ca,
            "hangout-core",
            &ca.issue_server("hangout-core").unwrap(),
        )
        .unwrap();
        let gateway =
            write_pair(&dir, &ca, "gateway", &ca.issue_client("gateway").unwrap()).unwrap();
        Self {
            dir,
            ca,
            server,
            gateway,
        }
    }

    /// Client files for a certificate named `name` issued by this test's CA.
    pub fn client(&self, name: &str) -> TlsFiles {
        write_pair(
            &self.dir,
            &self.ca,
            name,
            &self.ca.issue_client(name).unwrap(),
        )
        .unwrap()
    }
}

/// A running hangout-core.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub certs: Certs,
    pub database_url: String,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _database: test_support::TestDatabase,
    _dir: TempDir,
}

impl TestApp {
    /// Starts hangout-core on `db` with default settings; `None` when `db` is MySQL and
    /// `TEST_MYSQL_URL` is not set.
    pub async fn spawn(db: Db) -> Option<Self> {
        Self::spawn_with(db, |_| {}).await
    }

    /// The fixture of `on_both_backends!`: [`TestApp::spawn`]; it takes no arguments.
    pub async fn fixture(db: Db, _args: &[&str]) -> Option<Self> {
        Self::spawn(db).await
    }

    /// As [`TestApp::spawn`], letting the test adjust the configuration.
    pub async fn spawn_with(db: Db, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        test_support::init_logs("debug,h2=info,hyper=info,rustls=info,sqlx=warn");
        let dir = tempfile::tempdir().unwrap();
        let database =
            test_support::TestDatabase::create(db, dir.path(), "hangout.db", "hc_test").await?;
        let database_url = database.url().to_owned();
        let certs = Certs::new(dir.path().join("certs"));
        let mut config = Config::parse_from(["hangout-core"]);
        config.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.metrics_addr = "127.0.0.1:0".parse().unwrap();
        config.database_url = database_url.clone().into();
        config.database_max_connections = 4;
        config.tls_ca = certs.server.ca.clone();
        config.tls_cert = certs.server.cert.clone();
        config.tls_key = certs.server.key.clone();
        adjust(&mut config);
        let app = App::build(config).await.unwrap();
        let addr = app.local_addr();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let channel = connect(addr, &certs.gateway).await;
        let app = Self {
            addr,
            certs,
            database_url,
            channel,
            shutdown: Some(shutdown),
            server: Some(server),
            _database: database,
            _dir: dir,
        };
        app.wait_until_serving().await;
        Some(app)
    }

    /// Polls the gRPC health check until it says SERVING.
    async fn wait_until_serving(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let status = HealthClient::new(self.channel.clone())
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|response| response.into_inner().status());
            if matches!(status, Ok(ServingStatus::Serving)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "hangout-core did not become ready: {status:?}"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Stops the server and waits until it has drained.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel.clone())
    }

    pub fn hangouts(&self) -> HangoutServiceClient<Channel> {
        HangoutServiceClient::new(self.channel.clone())
    }

    pub fn activities(&self) -> ActivityServiceClient<Channel> {
        ActivityServiceClient::new(self.channel.clone())
    }

    pub fn memories(&self) -> MemoryServiceClient<Channel> {
        MemoryServiceClient::new(self.channel.clone())
    }

    pub fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel.clone())
    }

    pub fn membership(&self) -> MembershipServiceClient<Channel> {
        MembershipServiceClient::new(self.channel.clone())
    }

    /// Signs up a user with a unique email; returns the response.
    pub async fn sign_up(&self, name: &str) -> pb::AuthResponse {
        let email = format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple());
        self.auth()
            .sign_up(pb::SignUpRequest {
                name: name.to_owned(),
                email,
                password: "correct horse battery".to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Signs up a user and returns their id.
    pub async fn user(&self, name: &str) -> String {
        self.sign_up(name).await.user.unwrap().id
    }

    /// A direct connection to the test's database, for arranging and checking rows.
    pub async fn sql(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.database_url)
            .await
            .unwrap()
    }

    pub async fn create_activity(&self, user: &str, name: &str) -> pb::Activity {
        self.activities()
            .create_activity(as_user(
                user,
                pb::CreateActivityRequest {
                    name: name.to_owned(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn create_hangout(
        &self,
        user: &str,
        request: pb::CreateHangoutRequest,
    ) -> pb::Hangout {
        self.hangouts()
            .create_hangout(as_user(user, request))
            .await
            .unwrap()
            .into_inner()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// One `TestApp` method per unary RPC a user calls: `app.update_hangout(&user, request)` is
/// the RPC made as `user`, its message or its status.
macro_rules! rpcs {
    ($($client:ident . $rpc:ident ($request:ident) -> $response:ident;)*) => {
        #[allow(dead_code, reason = "a method for every RPC, whether a test calls it yet or not")]
        impl TestApp {
            $(
                pub async fn $rpc(
                    &self,
                    user: &str,
                    request: pb::$request,
                ) -> Result<pb::$response, tonic::Status> {
                    self.$client()
                        .$rpc(as_user(user, request))
                        .await
                        .map(tonic::Response::into_inner)
                }
            )*
        }
    };
}

rpcs! {
    users.get_users(GetUsersRequest) -> GetUsersResponse;
    hangouts.update_hangout(UpdateHangoutRequest) -> Hangout;
    hangouts.delete_hangout(DeleteHangoutRequest) -> DeleteHangoutResponse;
    hangouts.get_hangouts(GetHangoutsRequest) -> GetHangoutsResponse;
    hangouts.list_hangouts(ListHangoutsRequest) -> HangoutPage;
    activities.rename_activity(RenameActivityRequest) -> Activity;
    activities.delete_activity(DeleteActivityRequest) -> DeleteActivityResponse;
    activities.get_activities(GetActivitiesRequest) -> GetActivitiesResponse;
    activities.list_activities(ListActivitiesRequest) -> ActivityPage;
    activities.list_activities_of_hangouts(ListActivitiesOfHangoutsRequest) -> ListActivitiesOfHangoutsResponse;
    activities.list_hangouts_of_activities(ListHangoutsOfActivitiesRequest) -> ListHangoutsOfActivitiesResponse;
    memories.create_memories(CreateMemoriesRequest) -> CreateMemoriesResponse;
    memories.attach_memory_files(AttachMemoryFilesRequest) -> AttachMemoryFilesResponse;
    memories.mark_memories_uploaded(MarkMemoriesUploadedRequest) -> MarkMemoriesUploadedResponse;
    memories.get_memories(GetMemoriesRequest) -> GetMemoriesResponse;
    memories.list_memories_of_hangouts(ListMemoriesOfHangoutsRequest) -> ListMemoriesOfHangoutsResponse;
    memories.delete_memories(DeleteMemoriesRequest) -> DeleteMemoriesResponse;
    membership.list_members_of_hangouts(ListMembersOfHangoutsRequest) -> ListMembersOfHangoutsResponse;
    membership.get_rsvp_counts(GetRsvpCountsRequest) -> GetRsvpCountsResponse;
    membership.get_members(GetMembersRequest) -> GetMembersResponse;
    membership.set_rsvp(SetRsvpRequest) -> Member;
    membership.update_member_role(UpdateMemberRoleRequest) -> Member;
    membership.remove_member(RemoveMemberRequest) -> RemoveMemberResponse;
    membership.leave_hangout(LeaveHangoutRequest) -> LeaveHangoutResponse;
    membership.transfer_hangout_ownership(TransferHangoutOwnershipRequest) -> Hangout;
    membership.create_invitation(CreateInvitationRequest) -> Invitation;
    membership.accept_invitation(AcceptInvitationRequest) -> Hangout;
    membership.decline_invitation(InvitationIdRequest) -> Invitation;
    membership.revoke_invitation(InvitationIdRequest) -> Invitation;
    membership.get_invitations(GetInvitationsRequest) -> GetInvitationsResponse;
    membership.list_invitations_of_hangouts(ListInvitationsOfHangoutsRequest) -> ListInvitationsOfHangoutsResponse;
    membership.list_my_invitations(PageRequest) -> InvitationPage;
    membership.get_invitation_preview(GetInvitationPreviewRequest) -> InvitationPreview;
}

/// Opens a channel to `addr` with client certificate files `client`.
pub async fn connect(addr: std::net::SocketAddr, client: &TlsFiles) -> Channel {
    let tls = proto::tls::client_config(client, "hangout-core").unwrap();
    Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
}

/// A request made on behalf of `user`.
pub fn as_user<T>(user: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    proto::metadata::set_caller(request.metadata_mut(), Some(user), Some("test-request"));
    request
}

/// A timestamp `days` days after 2026-01-01T00:00:00Z.
pub fn day(days: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: 1_767_225_600 + days * 86_400,
        nanos: 0,
    })
}

/// A minimal valid hangout.
pub fn hangout(title: &str, days: i64) -> pb::CreateHangoutRequest {
    pb::CreateHangoutRequest {
        title: title.to_owned(),
        description: None,
        date: day(days),
        status: 0,
        activity_ids: Vec::new(),
    }
}

/// The field named by an InvalidArgument status.
pub fn violated_field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .and_then(|request| request.field_violations.first())
        .map(|violation| violation.field.clone())
        .unwrap_or_default()
}

/// Runs `future` with a deadline so a hang fails the test instead of blocking CI.
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    test_support::within(Duration::from_secs(30), future).await
}
