//! Sign-up, sign-in, session refresh and sign-out: hangout-core checks credentials and keeps
//! refresh tokens; the gateway signs the access tokens.

use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, SimpleObject};
use proto::hangout::v1 as pb;

use crate::{
    auth::Tokens,
    graphql::{
        backends,
        error::{ApiError, ApiResult},
        request,
        scalars::DateTime,
        sign_in_guard::SignInGuard,
        user::User,
    },
};

#[derive(InputObject)]
pub struct SignUpInput {
    name: String,
    email: String,
    /// At least 8 characters.
    password: String,
}

#[derive(InputObject)]
pub struct SignInInput {
    email: String,
    password: String,
}

#[derive(InputObject)]
pub struct RefreshSessionInput {
    refresh_token: String,
}

#[derive(InputObject)]
pub struct SignOutInput {
    refresh_token: String,
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Bearer token for the Authorization header.
    access_token: String,
    access_token_expires_at: DateTime,
    refresh_token: String,
    user: User,
}

#[derive(SimpleObject)]
pub struct SignOutPayload {
    success: bool,
}

/// Signs an access token for the session hangout-core opened.
fn payload(ctx: &Context<'_>, response: pb::AuthResponse) -> ApiResult<AuthPayload> {
    let request_id = &request(ctx)?.call.request_id;
    let user = response.user.map(User::from).ok_or_else(|| {
        tracing::error!(%request_id, "hangout-core answered a session without its user");
        ApiError::internal()
    })?;
    let tokens = ctx
        .data::<Arc<Tokens>>()
        .map_err(|_| ApiError::internal())?;
    // Tokens name their session, so its revocation closes the sockets opened with them.
    let session = Some(response.session_family_id.as_str()).filter(|id| !id.is_empty());
    let token = tokens.issue(&user.id, session).map_err(|error| {
        tracing::error!(%request_id, error = %telemetry::ErrorChain(&error), "signing failed");
        ApiError::internal()
    })?;
    Ok(AuthPayload {
        access_token: token.token,
        access_token_expires_at: DateTime::from_system(token.expires_at),
        refresh_token: response.refresh_token,
        user,
    })
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account and signs it in. CONFLICT when the email is taken.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> ApiResult<AuthPayload> {
        let call = &request(ctx)?.call;
        let response = backends(ctx)?
            .hangout
            .sign_up(
                call,
                pb::SignUpRequest {
                    name: input.name,
                    email: input.email,
                    password: input.password,
                },
            )
            .await?;
        payload(ctx, response)
    }

    /// UNAUTHENTICATED for an unknown email or a wrong password (the same message for both).
    async fn sign_in(&self, ctx: &Context<'_>, input: SignInInput) -> ApiResult<AuthPayload> {
        let call = &request(ctx)?.call;
        let guard = ctx
            .data::<Arc<SignInGuard>>()
            .map_err(|_| ApiError::internal())?;
        if let Err(wait) = guard.check(&input.email).await {
            tracing::info!(request_id = %call.request_id, "sign-in refused: too many failures for the email");
            return Err(ApiError::too_many_requests(
                "too many failed sign-ins for this email; try again later",
                wait.as_secs_f64().ceil() as u64,
            ));
        }
        let email = input.email.clone();
        let response = backends(ctx)?
            .hangout
            .sign_in(
                call,
                pb::SignInRequest {
                    email: input.email,
                    password: input.password,
                },
            )
            .await;
        match response {
            Ok(response) => payload(ctx, response),
            Err(error) => {
                if matches!(error, crate::backend::BackendError::Unauthenticated(_)) {
                    guard.failed(&email).await;
                }
                Err(error.into())
            }
        }
    }

    /// Trades a refresh token for a new pair; the old refresh token stops working.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        input: RefreshSessionInput,
    ) -> ApiResult<AuthPayload> {
        let call = &request(ctx)?.call;
        let response = backends(ctx)?
            .hangout
            .refresh_session(
                call,
                pb::RefreshSessionRequest {
                    refresh_token: input.refresh_token,
                },
            )
            .await?;
        payload(ctx, response)
    }

    /// Revokes the given refresh token.
    async fn sign_out(&self, ctx: &Context<'_>, input: SignOutInput) -> ApiResult<SignOutPayload> {
        let call = &request(ctx)?.call;
        backends(ctx)?
            .hangout
            .sign_out(
                call,
                pb::SignOutRequest {
                    refresh_token: input.refresh_token,
                },
            )
            .await?;
        Ok(SignOutPayload { success: true })
    }
}
