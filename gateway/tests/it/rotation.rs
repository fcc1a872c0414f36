//! Signing-key rotation: a gateway that signs with a new key still accepts tokens of the old
//! one when its public key is configured for verification, and publishes both in the JWKS.

use std::{
    net::SocketAddr,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use clap::Parser as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};

use crate::helpers::{certs, error_code, pem, tls_args, write_signing_key};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn write_public_key(pkcs8: &[u8], path: &Path) {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).unwrap();
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    std::fs::write(path, pem("PUBLIC KEY", &spki)).unwrap();
}

/// A gateway whose backends are unreachable: enough for tokens and the JWKS.
async fn start_gateway(
    dir: &Path,
    extra: &[String],
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (_, _, gateway_tls) = certs(dir);
    let mut args = vec![
        "gateway".to_owned(),
        "--listen-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--metrics-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--hangout-core-url".to_owned(),
        "https://127.0.0.1:1".to_owned(),
        "--file-core-url".to_owned(),
        "https://127.0.0.1:1".to_owned(),
    ];
    args.extend(tls_args(&gateway_tls));
    args.extend_from_slice(extra);
    let app = gateway::App::build(gateway::Config::parse_from(args))
        .await
        .unwrap();
    let addr = app.local_addr();
    let (shutdown, receiver) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = receiver.await;
    }));
    (addr, shutdown)
}

async fn kids(http: &reqwest::Client, addr: SocketAddr) -> Vec<String> {
    let jwks: Value = http
        .get(format!("http://{addr}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn token(pkcs8: &[u8], kid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    let claims = json!({
        "sub": "0190f3c4-1b2a-7c3d-8e4f-5a6b7c8d9e0f", "iss": "hangout-planner",
        "aud": "hangout-planner-api", "iat": now, "exp": now + 600,
    });
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(pkcs8)).unwrap()
}

/// `me` with `token`: an accepted token gets as far as the (unreachable) backend.
async fn me_code(http: &reqwest::Client, addr: SocketAddr, token: &str) -> String {
    let body: Value = http
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    error_code(&body).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_a_retired_key_verify_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let old_key = write_signing_key(&dir.path().join("old.key"));
    let new_key = write_signing_key(&dir.path().join("new.key"));
    write_public_key(&old_key, &dir.path().join("old.pub"));
    let path = |name: &str| dir.path().join(name).display().to_string();

    let (before, stop_before) = start_gateway(
        dir.path(),
        &["--jwt-signing-key".to_owned(), path("old.key")],
    )
    .await;
    let old_kids = kids(&http, before).await;
    assert_eq!(old_kids.len(), 1);
    let old_token = token(&old_key, &old_kids[0]);
    assert_eq!(
        me_code(&http, before, &old_token).await,
        "SERVICE_UNAVAILABLE"
    );
    let _ = stop_before.send(());

    let (after, _stop_after) = start_gateway(
        dir.path(),
        &[
            "--jwt-signing-key".to_owned(),
            path("new.key"),
            "--jwt-verification-keys".to_owned(),
            path("old.pub"),
        ],
    )
    .await;
    let new_kids = kids(&http, after).await;
    assert_eq!(new_kids.len(), 2);
    assert!(new_kids.contains(&old_kids[0]));
    assert_eq!(
        me_code(&http, after, &old_token).await,
        "SERVICE_UNAVAILABLE"
    );
    let new_kid = new_kids.iter().find(|kid| **kid != old_kids[0]).unwrap();
    assert_eq!(
        me_code(&http, after, &token(&new_key, new_kid)).await,
        "SERVICE_UNAVAILABLE"
    );

    let (retired, _stop_retired) = start_gateway(
        dir.path(),
        &["--jwt-signing-key".to_owned(), path("new.key")],
    )
    .await;
    assert_eq!(me_code(&http, retired, &old_token).await, "UNAUTHENTICATED");
}
