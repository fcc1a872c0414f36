//! Users and sessions.

use proto::hangout::v1 as pb;
use sqlx::Executor as _;
use tonic::Code;

use crate::helpers::{TestApp, violated_field};

on_both_backends!(
    sign_up_normalises_the_email_and_refuses_duplicates,
    sign_up_validates_each_field,
    sign_in_does_not_tell_unknown_emails_from_wrong_passwords,
    bcrypt_hashes_from_the_go_system_verify_and_are_upgraded,
    refresh_rotates_and_reuse_revokes_the_session,
    sign_out_revokes_the_session,
    expired_refresh_tokens_are_refused,
    users_are_fetched_in_batches,
);

/// With no room to wait for a hashing thread, a flood of sign-ups is refused at once with
/// RESOURCE_EXHAUSTED instead of queueing; what got a thread succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_hashing_beyond_its_queue_is_refused_at_once() {
    let app = TestApp::spawn_with(crate::helpers::Db::Sqlite, |config| {
        config.hashing_queue = 0;
    })
    .await
    .unwrap();
    let mut attempts = tokio::task::JoinSet::new();
    for index in 0..24 {
        let mut auth = app.auth();
        attempts.spawn(async move {
            auth.sign_up(sign_up(
                "Flood",
                &format!("flood{index}@example.com"),
                "a long enough password",
            ))
            .await
        });
    }
    let results = attempts.join_all().await;
    let refused = results
        .iter()
        .filter(|result| {
            result
                .as_ref()
                .is_err_and(|status| status.code() == Code::ResourceExhausted)
        })
        .count();
    let created = results.iter().filter(|result| result.is_ok()).count();
    assert!(refused > 0, "nothing was refused");
    assert!(created > 0, "nothing got through");
    assert_eq!(refused + created, results.len(), "{results:?}");
}

fn sign_up(name: &str, email: &str, password: &str) -> pb::SignUpRequest {
    pb::SignUpRequest {
        name: name.to_owned(),
        email: email.to_owned(),
        password: password.to_owned(),
    }
}

fn sign_in(email: &str, password: &str) -> pb::SignInRequest {
    pb::SignInRequest {
        email: email.to_owned(),
        password: password.to_owned(),
    }
}

async fn sign_up_normalises_the_email_and_refuses_duplicates(app: TestApp) {
    let response = app
        .auth()
        .sign_up(sign_up(" Ada ", "  Ada@Example.COM ", "analytical engine"))
        .await
        .unwrap()
        .into_inner();
    let user = response.user.unwrap();
    assert_eq!(user.name, "Ada");
    assert_eq!(user.email, "ada@example.com");
    assert!(!response.refresh_token.is_empty());

    let status = app
        .auth()
        .sign_up(sign_up("Other Ada", "ADA@example.com", "another password"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    let signed_in = app
        .auth()
        .sign_in(sign_in("ada@EXAMPLE.com", "analytical engine"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(signed_in.user.unwrap().id, user.id);
}

async fn sign_up_validates_each_field(app: TestApp) {
    let cases = [
        (sign_up("", "a@example.com", "long enough"), "name"),
        (sign_up("A", "not-an-email", "long enough"), "email"),
        (sign_up("A", "a@example.com", "short"), "password"),
        (sign_up("A", "a@example.com", &"x".repeat(1025)), "password"),
    ];
    for (request, field) in cases {
        let status = app.auth().sign_up(request).await.unwrap_err();
        assert_eq!(violated_field(&status), field);
    }
    // The boundaries themselves pass.
    app.auth()
        .sign_up(sign_up("A", "eight@example.com", "12345678"))
        .await
        .unwrap();
    app.auth()
        .sign_up(sign_up("A", "long@example.com", &"x".repeat(1024)))
        .await
        .unwrap();
}

async fn sign_in_does_not_tell_unknown_emails_from_wrong_passwords(app: TestApp) {
    app.auth()
        .sign_up(sign_up("Bo", "bo@example.com", "right password"))
        .await
        .unwrap();
    let wrong = app
        .auth()
        .sign_in(sign_in("bo@example.com", "wrong password"))
        .await
        .unwrap_err();
    let unknown = app
        .auth()
        .sign_in(sign_in("nobody@example.com", "right password"))
        .await
        .unwrap_err();
    let malformed = app
        .auth()
        .sign_in(sign_in("not an email", "right password"))
        .await
        .unwrap_err();
    for status in [&wrong, &unknown, &malformed] {
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), wrong.message());
    }
}

async fn bcrypt_hashes_from_the_go_system_verify_and_are_upgraded(app: TestApp) {
    let id = uuid::Uuid::now_v7().to_string();
    // Go's bcrypt writes the $2a$ prefix.
    let legacy = bcrypt::hash("go system password", 4)
        .unwrap()
        .replacen("$2b$", "$2a$", 1);
    let mut sql = app.sql().await;
    sql.execute(
        sqlx::query(
            "insert into users (id, name, email, password_hash, created_at, updated_at) \
             values (?, 'Gopher', 'gopher@example.com', ?, 0, 0)",
        )
        .bind(id.clone())
        .bind(legacy.clone()),
    )
    .await
    .unwrap();

    let wrong = app
        .auth()
        .sign_in(sign_in("gopher@example.com", "not the password"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);

    let response = app
        .auth()
        .sign_in(sign_in("gopher@example.com", "go system password"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.user.unwrap().id, id);
    let (stored,): (String,) = sqlx::query_as("select password_hash from users where id = ?")
        .bind(id.clone())
        .fetch_one(&mut sql)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    // The upgraded hash still accepts the same password.
    app.auth()
        .sign_in(sign_in("gopher@example.com", "go system password"))
        .await
        .unwrap();
}

async fn refresh_rotates_and_reuse_revokes_the_session(app: TestApp) {
    let first = app.sign_up("Cy").await;
    let refresh = |token: &str| pb::RefreshSessionRequest {
        refresh_token: token.to_owned(),
    };
    let second = app
        .auth()
        .refresh_session(refresh(&first.refresh_token))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.user.unwrap().id, first.user.clone().unwrap().id);

    // The rotated token is dead, and presenting it revokes the whole family.
    let reused = app
        .auth()
        .refresh_session(refresh(&first.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::Unauthenticated);
    let after_reuse = app
        .auth()
        .refresh_session(refresh(&second.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(after_reuse.code(), Code::Unauthenticated);

    // Another session of the same user is untouched.
    let email = first.user.unwrap().email;
    let other = app
        .auth()
        .sign_in(sign_in(&email, "correct horse battery"))
        .await
        .unwrap()
        .into_inner();
    app.auth()
        .refresh_session(refresh(&other.refresh_token))
        .await
        .unwrap();

    // Tokens are stored only as hashes.
    let mut sql = app.sql().await;
    let (plain,): (i64,) = sqlx::query_as("select count(*) from sessions where token_hash = ?")
        .bind(other.refresh_token.clone())
        .fetch_one(&mut sql)
        .await
        .unwrap();
    assert_eq!(plain, 0);

    let garbage = app
        .auth()
        .refresh_session(refresh("garbage"))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated);
}

async fn sign_out_revokes_the_session(app: TestApp) {
    let session = app.sign_up("Di").await;
    app.auth()
        .sign_out(pb::SignOutRequest {
            refresh_token: session.refresh_token.clone(),
        })
        .await
        .unwrap();
    let status = app
        .auth()
        .refresh_session(pb::RefreshSessionRequest {
            refresh_token: session.refresh_token.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // Signing out twice, or with an unknown token, is not an error.
    app.auth()
        .sign_out(pb::SignOutRequest {
            refresh_token: session.refresh_token,
        })
        .await
        .unwrap();
    app.auth()
        .sign_out(pb::SignOutRequest {
            refresh_token: "unknown".to_owned(),
        })
        .await
        .unwrap();
}

async fn expired_refresh_tokens_are_refused(app: TestApp) {
    let session = app.sign_up("Ed").await;
    let mut sql = app.sql().await;
    sql.execute(sqlx::query("update sessions set expires_at = 0"))
        .await
        .unwrap();
    let status = app
        .auth()
        .refresh_session(pb::RefreshSessionRequest {
            refresh_token: session.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

async fn users_are_fetched_in_batches(app: TestApp) {
    let first = app.user("Fay").await;
    let second = app.user("Gus").await;
    let mut users = app
        .users()
        .get_users(pb::GetUsersRequest {
            ids: vec![
                first.clone(),
                second.clone(),
                uuid::Uuid::now_v7().to_string(),
                "junk".to_owned(),
            ],
            visible_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .users;
    users.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<_> = users.iter().map(|user| user.id.clone()).collect();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(users.iter().all(|user| user.created_at.is_some()));
}
