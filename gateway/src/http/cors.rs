//! CORS for frontends served from another origin (a Vite dev server on `localhost:5173`
//! calling the gateway on 8080 is the first thing a frontend team tries).
//!
//! Origins are matched exactly against `GATEWAY_CORS_ORIGINS`; dev mode also allows any port
//! of `http://localhost` and `http://127.0.0.1`. Credentials (cookies) are never allowed: the
//! API authenticates with bearer tokens, so no origin, listed or not, can ride on a
//! browser's cookies, and a wildcard is never combined with credentials. Preflights are
//! answered by this layer and cached by browsers for [`PREFLIGHT_MAX_AGE`]. The CSRF rule of
//! `protocol` still applies: a request that a browser sends without a preflight (a simple
//! `text/plain` POST) is refused whatever its origin.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight's answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);

/// Whether `origin` is a dev-mode origin: `http://localhost:PORT` or `http://127.0.0.1:PORT`.
fn is_local_development(origin: &[u8]) -> bool {
    let Ok(origin) = std::str::from_utf8(origin) else {
        return false;
    };
    ["http://localhost", "http://127.0.0.1"]
        .iter()
        .filter_map(|host| origin.strip_prefix(host))
        .any(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix(':')
                    .is_some_and(|port| !port.is_empty() && port.parse::<u16>().is_ok())
        })
}

/// The CORS layer for `origins` (exact, e.g. `https://app.example.com`), and in dev mode any
/// local development origin.
pub fn layer(origins: &[String], dev_mode: bool) -> CorsLayer {
    let exact: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin.trim_end_matches('/')).ok())
        .collect();
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        exact.iter().any(|allowed| allowed == origin)
            || (dev_mode && is_local_development(origin.as_bytes()))
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("apollo-require-preflight"),
            HeaderName::from_static("x-apollo-operation-name"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("traceparent"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_development_origins_are_localhost_with_any_port_only() {
        assert!(is_local_development(b"http://localhost:5173"));
        assert!(is_local_development(b"http://127.0.0.1:3000"));
        assert!(is_local_development(b"http://localhost"));
        assert!(!is_local_development(b"http://localhost.evil.com"));
        assert!(!is_local_development(b"http://localhost:5173.evil.com"));
        assert!(!is_local_development(b"https://localhost:5173@evil.com"));
        assert!(!is_local_development(b"http://127.0.0.2:3000"));
    }
}
