//! Settings of the HTTP edge, part of the gateway's [`Config`](crate::Config): request limits,
//! rate limits, introspection and persisted operations, with the values they parse to. The
//! HTTP layer reads them; nothing here depends on it.

use std::{net::IpAddr, path::PathBuf};

use axum::http::HeaderValue;

/// How the gateway protects itself from expensive or abusive requests.
#[derive(Clone, Debug, clap::Args)]
pub struct EdgeSettings {
    /// Largest request body in bytes (nginx's `client_max_body_size` matches it).
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// Most operations in one batched request (a JSON array of operations); `0`, the default,
    /// turns array batching off, so one request is one operation. Each operation of a batch
    /// counts against the rate limits.
    #[arg(long, env = "GATEWAY_MAX_BATCH", default_value_t = 0)]
    pub max_batch: usize,

    /// Largest GraphQL document (the query text) in bytes; applications' documents are a few
    /// kilobytes, and parsing a huge one would hold a worker thread.
    #[arg(long, env = "GATEWAY_MAX_DOCUMENT_BYTES", default_value_t = 100 * 1024)]
    pub max_document_bytes: usize,

    /// Most aliased fields in one document.
    #[arg(long, env = "GATEWAY_MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,

    /// Most root fields in one operation.
    #[arg(long, env = "GATEWAY_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,

    /// Most expensive operation accepted, as estimated before it runs: every object in the
    /// response costs 1, lists multiply by their size (`first`, default 20), root mutation
    /// fields cost 10. Above it: COST_ESTIMATED_TOO_EXPENSIVE.
    #[arg(long, env = "GATEWAY_MAX_COST", default_value_t = crate::graphql::cost::DEFAULT_MAX_COST)]
    pub max_cost: u64,

    /// Most directives on one field.
    #[arg(long, env = "GATEWAY_MAX_DIRECTIVES", default_value_t = 5)]
    pub max_directives: usize,

    /// Schema introspection and field suggestions in error messages. Default: on in dev mode
    /// only.
    #[arg(long, env = "GATEWAY_INTROSPECTION")]
    pub introspection: Option<bool>,

    /// The GraphiQL IDE at `/graphiql` (and for browsers opening `/graphql`). Default: on in dev
    /// mode only; it maps the API for anyone, so production serves it only when set.
    #[arg(long, env = "GATEWAY_GRAPHIQL")]
    pub graphiql: Option<bool>,

    /// Requests per client address: `RATE/s[,BURST]`, or `0` for no limit.
    #[arg(long, env = "GATEWAY_RATE_LIMIT_PER_ADDRESS", default_value = "100/s,200", value_parser = parse_rate)]
    pub rate_limit_per_address: RateLimit,

    /// Requests per signed-in user: `RATE/s[,BURST]`, or `0` for no limit.
    #[arg(long, env = "GATEWAY_RATE_LIMIT_PER_USER", default_value = "50/s,100", value_parser = parse_rate)]
    pub rate_limit_per_user: RateLimit,

    /// Estimated cost (as `GATEWAY_MAX_COST` counts it) per client address: `RATE/s[,BURST]`,
    /// or `0` for no limit. A page of 20 hangouts with their parts costs about 1,300, so one
    /// client may keep up dozens of them a second, but not hundreds of the largest documents.
    #[arg(long, env = "GATEWAY_COST_LIMIT_PER_ADDRESS", default_value = "40000/s,40000", value_parser = parse_rate)]
    pub cost_limit_per_address: RateLimit,

    /// Estimated cost per signed-in user: `RATE/s[,BURST]`, or `0` for no limit.
    #[arg(long, env = "GATEWAY_COST_LIMIT_PER_USER", default_value = "40000/s,40000", value_parser = parse_rate)]
    pub cost_limit_per_user: RateLimit,

    /// How long a rate-limit refusal (429) waits before it is sent, at most until the retry
    /// it announces: a client flooding past its limit gets one refusal per connection per
    /// pause. `0s` answers at once.
    #[arg(long, env = "GATEWAY_RATE_LIMIT_DELAY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub rate_limit_delay: std::time::Duration,

    /// `signIn`, `signUp` and `refreshSession` fields per client address, counted apart from
    /// (and besides) the general limits, since each costs a password hash or a token
    /// rotation: `RATE/s[,BURST]`, or `0` for no limit.
    #[arg(long, env = "GATEWAY_RATE_LIMIT_AUTH_PER_ADDRESS", default_value = "1/s,10", value_parser = parse_rate)]
    pub rate_limit_auth_per_address: RateLimit,

    /// Failed sign-ins for one email (whoever sends them) after which further sign-ins for it
    /// are refused with TOO_MANY_REQUESTS until the window ends; `0` turns it off.
    #[arg(long, env = "GATEWAY_SIGN_IN_MAX_FAILURES", default_value_t = 10)]
    pub sign_in_max_failures: u32,

    /// The window of `GATEWAY_SIGN_IN_MAX_FAILURES` (e.g. `15m`).
    #[arg(long, env = "GATEWAY_SIGN_IN_FAILURE_WINDOW", default_value = "15m", value_parser = humantime::parse_duration)]
    pub sign_in_failure_window: std::time::Duration,

    /// Most open client connections; beyond it new ones wait in the kernel's backlog.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// How long a connection may take to send a complete request head, and stay idle between
    /// requests; then it is closed (nginx's upstream `keepalive_timeout` stays below it).
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: std::time::Duration,

    /// How long a client may take to send the request body; then it gets a 408.
    #[arg(long, env = "GATEWAY_BODY_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: std::time::Duration,

    /// Deadline of a whole GraphQL request: past it, the request is cancelled and answered 504
    /// with SERVICE_UNAVAILABLE.
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,

    /// Most GraphQL requests executing at once; more are refused at once with 503,
    /// `Retry-After` and SERVICE_UNAVAILABLE rather than queued.
    #[arg(long, env = "GATEWAY_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,

    /// Largest response body in bytes; a larger answer is replaced by an error, never cut.
    #[arg(long, env = "GATEWAY_MAX_RESPONSE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// How long shutdown waits for requests in flight before closing their connections.
    #[arg(long, env = "GATEWAY_SHUTDOWN_DRAIN", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_drain: std::time::Duration,

    /// Comma-separated origins whose pages may call the API from a browser, exactly as the
    /// browser sends them (e.g. `https://app.example.com,http://localhost:5173`). Dev mode also
    /// allows any port of `http://localhost` and `http://127.0.0.1`. Never `*`.
    #[arg(long, env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Which GraphQL requests get an INFO log line (`graphql request`: operation name, error
    /// count, backend calls, time): `all`, `errors`, `off`, or `1/N` for one in N; a request
    /// with errors is logged unless `off`, wherever it is sampled. Metrics count every one.
    #[arg(long, env = "GATEWAY_REQUEST_LOG", default_value = "all", value_parser = RequestLog::parse)]
    pub request_log: RequestLog,

    /// Comma-separated proxy addresses or CIDR ranges (nginx; e.g. a container network's
    /// `172.28.0.0/16`) whose `X-Real-IP` / `X-Forwarded-For` name the client.
    #[arg(
        long,
        env = "GATEWAY_TRUSTED_PROXIES",
        default_value = "127.0.0.1,::1",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Subscriptions (graphql-transport-ws over WebSocket): how long a socket may take to
    /// send `connection_init` before it is closed with 4408.
    #[arg(long, env = "GATEWAY_WS_INIT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub ws_init_timeout: std::time::Duration,

    /// How often the gateway pings an open socket (through nginx's `proxy_read_timeout`, which
    /// must be longer); a socket silent for two of these is dropped as dead.
    #[arg(long, env = "GATEWAY_WS_PING_INTERVAL", default_value = "20s", value_parser = humantime::parse_duration)]
    pub ws_ping_interval: std::time::Duration,

    /// Largest message a client may send on a socket, in bytes.
    #[arg(long, env = "GATEWAY_WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub ws_max_message_bytes: usize,

    /// Most subscriptions running on one socket.
    #[arg(
        long,
        env = "GATEWAY_WS_MAX_SUBSCRIPTIONS_PER_SOCKET",
        default_value_t = 25
    )]
    pub ws_max_subscriptions_per_socket: usize,

    /// Most subscriptions of one user across their sockets (on this instance).
    #[arg(
        long,
        env = "GATEWAY_WS_MAX_SUBSCRIPTIONS_PER_USER",
        default_value_t = 100
    )]
    pub ws_max_subscriptions_per_user: usize,

    /// Most open sockets of one user (on this instance).
    #[arg(long, env = "GATEWAY_WS_MAX_SOCKETS_PER_USER", default_value_t = 10)]
    pub ws_max_sockets_per_user: usize,

    /// Most open sockets from one client address (on this instance).
    #[arg(long, env = "GATEWAY_WS_MAX_SOCKETS_PER_ADDRESS", default_value_t = 50)]
    pub ws_max_sockets_per_address: usize,

    /// Trusted-documents mode: a manifest (`cargo xtask trusted-documents`) of the only
    /// operations that run. Unset: any operation, with automatic persisted queries.
    #[arg(long, env = "GATEWAY_TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<PathBuf>,
}

/// A configured rate limit; `None` when switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit(pub Option<Rate>);

/// An address (a network of one) or a CIDR range.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a CIDR range"))
}

fn parse_rate(text: &str) -> Result<RateLimit, String> {
    Rate::parse(text).map(RateLimit)
}

/// One limit: a steady rate and the burst allowed above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// Parses `RATE/s` or `RATE/s,BURST` (burst defaults to twice the rate); `0` turns the limit off.
    ///
    /// # Errors
    /// A message for malformed text.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text == "0" || text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (rate, burst) = match text.split_once(',') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let per_second: u32 = rate
            .trim()
            .trim_end_matches("/s")
            .parse()
            .map_err(|_| format!("{text:?} is not RATE/s or RATE/s,BURST"))?;
        let burst = match burst {
            Some(burst) => burst
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: the burst is not a number"))?,
            None => per_second.saturating_mul(2),
        };
        if per_second == 0 || burst == 0 {
            return Ok(None);
        }
        Ok(Some(Self { per_second, burst }))
    }
}

/// `GATEWAY_REQUEST_LOG`: `all`, `errors`, `off`, or `1/N` (one request in N, and every one
/// with errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestLog {
    All,
    /// Only requests that answered with errors.
    Errors,
    /// One successful request in this many (and every one with errors).
    OneIn(u64),
    /// No per-request line (errors are still logged where they happen).
    Off,
}

impl RequestLog {
    /// Parses the setting's value.
    ///
    /// # Errors
    /// A message naming the forms it takes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text {
            "all" => Ok(Self::All),
            "errors" => Ok(Self::Errors),
            "off" => Ok(Self::Off),
            _ => text
                .strip_prefix("1/")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n >= 1)
                .map(|n| if n == 1 { Self::All } else { Self::OneIn(n) })
                .ok_or_else(|| format!("{text:?} is not all, errors, off or 1/N (N at least 1)")),
        }
    }
}

/// Checks `GATEWAY_CORS_ORIGINS` entries: each a bare origin (`scheme://host[:port]`).
///
/// # Errors
/// The first entry that is not one, with why.
pub fn validate_cors_origins(origins: &[String]) -> Result<(), String> {
    for origin in origins {
        let origin = origin.trim_end_matches('/');
        if origin == "*" {
            return Err("`*` is not accepted: list each origin".to_owned());
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return Err(format!("{origin:?} is not scheme://host[:port]"));
        };
        if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
            return Err(format!("{origin:?} is not scheme://host[:port]"));
        }
        if HeaderValue::from_str(origin).is_err() {
            return Err(format!("{origin:?} is not a valid origin"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_origins_must_be_bare_origins() {
        assert!(validate_cors_origins(&["https://app.example.com".to_owned()]).is_ok());
        assert!(validate_cors_origins(&["http://localhost:5173/".to_owned()]).is_ok());
        assert!(validate_cors_origins(&["*".to_owned()]).is_err());
        assert!(validate_cors_origins(&["app.example.com".to_owned()]).is_err());
        assert!(validate_cors_origins(&["https://app.example.com/path".to_owned()]).is_err());
        assert!(validate_cors_origins(&["ftp://app.example.com".to_owned()]).is_err());
    }
}
