//! The code-first GraphQL schema implementing `shared/contract/schema.graphql`.
//!
//! One module per area (`auth`, `user`, `hangout`, `activity`, `memory`, `node`), merged into
//! the roots with `MergedObject`. GraphQL types are the gateway's own, converted from prost
//! messages, so a `.proto` change cannot silently change the public schema. Every request gets
//! a fresh [`RequestContext`]: the caller's identity and a dataloader that is never shared
//! between requests or users.

pub mod batch;
pub mod connection;
pub mod cost;
pub mod error;
pub mod ids;
pub mod loaders;
pub mod markdown;
pub mod ready;
pub mod scalars;
pub mod sign_in_guard;

mod activity;
mod auth;
mod hangout;
pub mod live;
mod membership;
mod memory;

pub use memory::FileUrls;
mod node;
mod page_includes;
mod uploads;
mod user;

use std::sync::Arc;

use async_graphql::{Context, MergedObject, SDLExportOptions, Schema, SchemaBuilder};

use crate::{
    auth::Tokens,
    backend::{Backends, CallContext},
    graphql::error::{ApiError, ApiResult},
};

/// The query root.
#[derive(MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    user::UserQuery,
    hangout::HangoutQuery,
    activity::ActivityQuery,
    memory::MemoryQuery,
    membership::MembershipQuery,
);

/// The mutation root.
#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    hangout::HangoutMutation,
    activity::ActivityMutation,
    memory::MemoryMutation,
    uploads::UploadMutation,
    membership::MembershipMutation,
);

/// The executable schema.
pub type AppSchema = Schema<Query, Mutation, live::LiveSubscription>;

/// Deep enough for GraphiQL's introspection query, shallow enough to stop abusive nesting.
const MAX_DEPTH: usize = 20;
const MAX_COMPLEXITY: usize = 5_000;

fn builder() -> SchemaBuilder<Query, Mutation, live::LiveSubscription> {
    // `DateTime` is one GraphQL scalar with an output and an input Rust type (see `scalars`).
    Schema::build_with_ignore_name_conflicts(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
        ["DateTime"],
    )
    // No extension: with one, every field resolves through it (see `error::code_response_errors`).
    // `execute` drives the batch loads and stamps the error codes instead.
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
}

/// Schema switches from configuration.
#[derive(Clone, Copy, Debug)]
pub struct SchemaOptions {
    /// Introspection and "did you mean" suggestions (off in production: they map the API for
    /// an attacker).
    pub introspection: bool,
    /// Most directives on one field.
    pub max_directives: usize,
    /// Failed sign-ins per email within `sign_in_failure_window` before it is refused.
    pub sign_in_max_failures: u32,
    pub sign_in_failure_window: std::time::Duration,
}

/// The schema with its process-wide data: backend clients and token keys.
#[must_use]
pub fn build(
    backends: Backends,
    tokens: Arc<Tokens>,
    options: SchemaOptions,
    shared: Option<Arc<crate::shared_limits::SharedLimits>>,
    hub: crate::events::EventHub,
) -> AppSchema {
    let mut builder = builder()
        .limit_directives(options.max_directives)
        .data(backends)
        .data(hub)
        .data(tokens)
        .data(Arc::new(sign_in_guard::SignInGuard::new(
            options.sign_in_max_failures,
            options.sign_in_failure_window,
            shared,
        )));
    if !options.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The schema as sorted SDL, as committed at `schema/schema.graphql`.
#[must_use]
pub fn sdl() -> String {
    builder().finish().sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}

/// Who is calling, as far as the bearer token says.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No token.
    Anonymous,
    /// A verified token for this user id.
    User(String),
    /// A token was presented and refused.
    Refused,
}

/// What a transport knows of the request an operation belongs to.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub caller: Caller,
    pub request_id: String,
    /// The renditions the operation's `imageUrl` fields ask for (from its cost check).
    pub file_urls: memory::FileUrls,
}

/// An executed query or mutation.
pub struct Executed {
    /// The response, every error of it coded.
    pub response: async_graphql::Response,
    /// Backend calls the execution made.
    pub backend_calls: u64,
}

/// Executes a query or mutation: the one way any transport runs one. The request's batch
/// loads are driven around the execution, and the response leaves with its error codes.
pub async fn execute(
    schema: &AppSchema,
    backends: &Backends,
    request: async_graphql::Request,
    invocation: Invocation,
) -> Executed {
    let context = RequestContext::new(backends, invocation);
    let calls = context.call.clone();
    let tasks = context.tasks.clone();
    let finish = context.finisher();
    let mut response = tasks.drive(schema.execute(request.data(context))).await;
    finish(&mut response);
    Executed {
        response,
        backend_calls: calls.calls_made(),
    }
}

/// Executes a subscription: [`execute`] for a stream, one coded response per event.
pub fn execute_stream(
    schema: &AppSchema,
    backends: &Backends,
    request: async_graphql::Request,
    invocation: Invocation,
) -> impl async_graphql::futures_util::Stream<Item = async_graphql::Response> + Send + use<> {
    use async_graphql::futures_util::StreamExt as _;
    let context = RequestContext::new(backends, invocation);
    let tasks = context.tasks.clone();
    let finish = context.finisher();
    tasks
        .drive_stream(schema.execute_stream(request.data(context)))
        .map(move |mut response| {
            finish(&mut response);
            response
        })
}

/// Per-request data: the caller and a dataloader bound to the caller's identity.
pub struct RequestContext {
    pub caller: Caller,
    pub call: CallContext,
    pub loader: batch::BatchLoader<loaders::BackendLoader>,
    /// The loader's batches, driven around the execution by [`execute`].
    tasks: batch::LoaderTasks,
    /// The renditions the operation's `imageUrl` fields ask for.
    pub file_urls: memory::FileUrls,
    /// Whether a page of memories was answered without its files: see [`Self::finisher`].
    pub files_unavailable: memory::FilesUnavailable,
}

impl RequestContext {
    /// A fresh context; its loader caches only for this request, and signs the renditions of
    /// `file_urls` with every file it loads.
    fn new(backends: &Backends, invocation: Invocation) -> Self {
        let Invocation {
            caller,
            request_id,
            file_urls,
        } = invocation;
        let user_id = match &caller {
            Caller::User(id) => Some(id.clone()),
            Caller::Anonymous | Caller::Refused => None,
        };
        let call = CallContext::new(user_id, request_id);
        let tasks = batch::LoaderTasks::default();
        let files_unavailable = memory::FilesUnavailable::default();
        let loader = batch::BatchLoader::new(
            loaders::BackendLoader::new(
                backends.clone(),
                call.clone(),
                file_urls,
                files_unavailable.clone(),
            ),
            tasks.clone(),
        );
        Self {
            caller,
            call,
            loader,
            tasks,
            file_urls,
            files_unavailable,
        }
    }

    /// What finishes every response of the request: one error for URLs a page had to go
    /// without, then a code on every error.
    fn finisher(&self) -> impl Fn(&mut async_graphql::Response) + Send + Sync + use<> {
        let files_unavailable = self.files_unavailable.clone();
        move |response| {
            files_unavailable.report(response);
            error::code_response_errors(response);
        }
    }
}

/// The request's context.
fn request<'a>(ctx: &Context<'a>) -> ApiResult<&'a RequestContext> {
    ctx.data::<RequestContext>().map_err(|_| {
        tracing::error!("request context missing");
        ApiError::internal()
    })
}

/// The backend clients.
fn backends<'a>(ctx: &Context<'a>) -> ApiResult<&'a Backends> {
    ctx.data::<Backends>().map_err(|_| {
        tracing::error!("backends missing from the schema data");
        ApiError::internal()
    })
}

/// The request's context, requiring a signed-in caller.
///
/// # Errors
/// UNAUTHENTICATED without a valid access token.
fn signed_in<'a>(ctx: &Context<'a>) -> ApiResult<&'a RequestContext> {
    let request = request(ctx)?;
    match request.caller {
        Caller::User(_) => Ok(request),
        Caller::Anonymous | Caller::Refused => Err(ApiError::unauthenticated()),
    }
}

/// The caller's user id.
fn user_id(request: &RequestContext) -> ApiResult<&str> {
    request
        .call
        .user_id
        .as_deref()
        .ok_or_else(ApiError::unauthenticated)
}
