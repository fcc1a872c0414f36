//! GraphiQL, served entirely by the gateway: the page and its assets come from the npm
//! packages installed in `gateway/graphiql` (see its `package.json`), never from a CDN, so it
//! works without internet access. Only the four known asset files can be fetched.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use crate::http::AppState;

/// Asset URL name, path inside `node_modules`, content type.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "react.js",
        "react/umd/react.production.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "react-dom.js",
        "react-dom/umd/react-dom.production.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "graphiql.js",
        "graphiql/graphiql.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "graphiql.css",
        "graphiql/graphiql.min.css",
        "text/css; charset=utf-8",
    ),
];

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Hangout Planner GraphiQL</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="/graphiql/assets/graphiql.css">
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphiql/assets/react.js"></script>
  <script src="/graphiql/assets/react-dom.js"></script>
  <script src="/graphiql/assets/graphiql.js"></script>
  <script>
    // Subscriptions over graphql-transport-ws at the same endpoint (GraphiQL bundles the
    // graphql-ws client); the headers editor's Authorization goes in connection_init.
    const subscriptionUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
    const fetcher = GraphiQL.createFetcher({ url: '/graphql', subscriptionUrl });
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, { fetcher, defaultEditorToolsVisibility: true })
    );
  </script>
</body>
</html>
"#;

/// The GraphiQL page.
pub(super) async fn page() -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
        )],
        Html(PAGE),
    )
        .into_response()
}

/// One of the known assets, read from the installed npm packages.
pub(super) async fn asset(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    let Some((_, relative, content_type)) = ASSETS.iter().find(|(known, _, _)| *known == name)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(assets) = &state.graphiql_assets else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = assets.join(relative);
    match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
        _ => {
            tracing::warn!(
                asset = %name,
                "GraphiQL asset missing: run `npm ci` in gateway/graphiql or set GATEWAY_GRAPHIQL_ASSETS"
            );
            StatusCode::NOT_FOUND.into_response()
        }
    }
}
