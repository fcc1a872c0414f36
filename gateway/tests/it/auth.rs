//! Sign-up, sign-in, refresh and sign-out, and the refusal of every kind of bad token.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestSystem, error_code, error_field, session, write_signing_key};

const ME: &str = "{ me { id name email createdAt } }";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_in_refresh_and_sign_out() {
    let system = TestSystem::spawn().await;
    let email = "ada@example.com";
    let sign_up = system
        .graphql(
            None,
            "mutation($input: SignUpInput!) { signUp(input: $input) {
                accessToken accessTokenExpiresAt refreshToken user { id name email } } }",
            json!({ "input": { "name": "Ada", "email": email, "password": "analytical engine" } }),
        )
        .await;
    let first = session(&sign_up["data"]["signUp"]);
    assert_eq!(sign_up["data"]["signUp"]["user"]["email"], email);
    let expires_at = sign_up["data"]["signUp"]["accessTokenExpiresAt"]
        .as_str()
        .unwrap();
    assert!(expires_at.ends_with('Z'), "{expires_at}");

    let me = system
        .graphql(Some(&first.access_token), ME, json!({}))
        .await;
    assert_eq!(me["data"]["me"]["id"], first.user_id.as_str());
    assert_eq!(me["data"]["me"]["name"], "Ada");

    let again = system
        .graphql(
            None,
            "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }",
            json!({ "input": { "name": "Ada", "email": email, "password": "analytical engine" } }),
        )
        .await;
    assert_eq!(error_code(&again), "CONFLICT");

    let sign_in = "mutation($input: SignInInput!) { signIn(input: $input) {
        accessToken refreshToken user { id } } }";
    let wrong = system
        .graphql(
            None,
            sign_in,
            json!({ "input": { "email": email, "password": "difference engine" } }),
        )
        .await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    let signed_in = system
        .graphql(
            None,
            sign_in,
            json!({ "input": { "email": email, "password": "analytical engine" } }),
        )
        .await;
    let second = session(&signed_in["data"]["signIn"]);
    assert_eq!(second.user_id, first.user_id);

    let refresh = "mutation($input: RefreshSessionInput!) { refreshSession(input: $input) {
        accessToken refreshToken user { id } } }";
    let refreshed = system
        .graphql(
            None,
            refresh,
            json!({ "input": { "refreshToken": second.refresh_token } }),
        )
        .await;
    let third = session(&refreshed["data"]["refreshSession"]);
    let me = system
        .graphql(Some(&third.access_token), ME, json!({}))
        .await;
    assert_eq!(me["data"]["me"]["id"], first.user_id.as_str());

    let sign_out = system
        .graphql(
            None,
            "mutation($input: SignOutInput!) { signOut(input: $input) { success } }",
            json!({ "input": { "refreshToken": third.refresh_token } }),
        )
        .await;
    assert_eq!(sign_out["data"]["signOut"]["success"], true);
    let after_sign_out = system
        .graphql(
            None,
            refresh,
            json!({ "input": { "refreshToken": third.refresh_token } }),
        )
        .await;
    assert_eq!(error_code(&after_sign_out), "UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_validation_names_the_field() {
    let system = TestSystem::spawn().await;
    let sign_up = "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }";
    for (input, field) in [
        (
            json!({ "name": "Ada", "email": "ada@example.com", "password": "short" }),
            "password",
        ),
        (
            json!({ "name": "Ada", "email": "not an email", "password": "long enough pass" }),
            "email",
        ),
        (
            json!({ "name": "  ", "email": "ada@example.com", "password": "long enough pass" }),
            "name",
        ),
    ] {
        let body = system
            .graphql(None, sign_up, json!({ "input": input }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(error_field(&body), field, "{body}");
    }
}

/// A JWT of `claims` signed with the PKCS#8 Ed25519 `key` under `kid`.
pub(crate) fn token(key: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(key)).unwrap()
}

/// The gateway's JWKS.
async fn jwks(system: &TestSystem) -> Value {
    system
        .http
        .get(system.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `kid` of the gateway's signing key, from its JWKS.
pub(crate) async fn signing_kid(system: &TestSystem) -> String {
    jwks(system).await["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_unauthenticated() {
    let system = TestSystem::spawn().await;
    let user = system.sign_up("Grace").await;
    let jwks = jwks(&system).await;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    let header = jsonwebtoken::decode_header(&user.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(header.alg, Algorithm::EdDSA);

    let sub = jsonwebtoken::dangerous::insecure_decode::<Value>(&user.access_token)
        .unwrap()
        .claims["sub"]
        .clone();
    let claims = |exp: u64| {
        json!({
            "sub": sub, "iss": "hangout-planner", "aud": "hangout-planner-api",
            "iat": now() - 3600, "exp": exp,
        })
    };
    // The same key and claims, still valid: proves the forged tokens below fail for the reason
    // they were built to show.
    let valid = token(&system.signing_key, &kid, &claims(now() + 600));
    let me = system.graphql(Some(&valid), ME, json!({})).await;
    assert!(me["errors"].is_null(), "{me}");

    let expired = token(&system.signing_key, &kid, &claims(now() - 120));
    let dir = tempfile::tempdir().unwrap();
    let stranger = write_signing_key(&dir.path().join("other.key"));
    let wrongly_signed = token(&stranger, &kid, &claims(now() + 600));
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let mut forged_claims = claims(now() + 600);
    forged_claims["sub"] = json!("00000000-0000-7000-8000-000000000000");
    parts[1] = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    let tampered = parts.join(".");
    let none_header =
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string());
    let unsigned = format!("{none_header}.{}.", parts[1]);
    let hmac = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims(now() + 600),
            &EncodingKey::from_secret(jwks.to_string().as_bytes()),
        )
        .unwrap()
    };
    let wrong_audience = token(
        &system.signing_key,
        &kid,
        &json!({ "sub": sub, "iss": "hangout-planner", "aud": "elsewhere", "iat": now(), "exp": now() + 600 }),
    );

    for (name, bad) in [
        ("expired", expired),
        ("wrongly signed", wrongly_signed),
        ("tampered", tampered),
        ("alg none", unsigned),
        ("alg HS256", hmac),
        ("wrong audience", wrong_audience),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let body = system.graphql(Some(&bad), ME, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{name}: {body}");
    }
    let basic = system
        .graphql_with_header(Some("Basic dXNlcjpwYXNz"), ME, json!({}))
        .await;
    assert_eq!(error_code(&basic), "UNAUTHENTICATED");
    let anonymous = system.graphql(None, ME, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}
