//! Each process's `/metrics` endpoint after a known sequence of requests: counters and
//! histograms move by exactly what was done, every call is counted once on each side, and the
//! gateway's own backend-call figures agree with an independent count.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
};

use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestSystem},
    memories::{png, upload_memories_with},
};

/// One scrape: every sample by its series, labels sorted (`name{a="1",b="2"}`), and the
/// metric families declared (`# TYPE` lines), with or without samples yet.
#[derive(Debug, Default)]
pub(crate) struct Samples(BTreeMap<String, f64>, BTreeSet<String>);

/// Parses one OpenMetrics text line into its canonical series and value.
fn sample(line: &str) -> Option<(String, f64)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let key = match series.split_once('{') {
        None => series.to_owned(),
        Some((name, labels)) => {
            let mut labels: Vec<&str> = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|label| !label.is_empty())
                .collect();
            labels.sort_unstable();
            format!("{name}{{{}}}", labels.join(","))
        }
    };
    Some((key, value))
}

pub(crate) async fn scrape(http: &reqwest::Client, addr: SocketAddr) -> Samples {
    let response = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics endpoint answers");
    assert!(response.status().is_success());
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let families = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    Samples(text.lines().filter_map(sample).collect(), families)
}

impl Samples {
    /// The value of one series (0 when absent). `series` uses sorted labels.
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// The sum over every series of metric `name` whose labels include all of `labels`.
    pub(crate) fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                series
                    .split_once('{')
                    .map_or(series.as_str(), |(metric, _)| metric)
                    == name
                    && labels.iter().all(|label| series.contains(label))
            })
            .map(|(_, value)| value)
            .sum()
    }
}

/// All three endpoints at one moment.
struct Scrapes {
    gateway: Samples,
    hangout_core: Samples,
    file_core: Samples,
}

impl Scrapes {
    async fn take(system: &TestSystem) -> Self {
        Self {
            gateway: scrape(&system.http, system.metrics.gateway).await,
            hangout_core: scrape(&system.http, system.metrics.hangout_core).await,
            file_core: scrape(&system.http, system.metrics.file_core).await,
        }
    }
}

/// How much `sum(name, labels)` moved between two scrapes.
fn moved(before: &Samples, after: &Samples, name: &str, labels: &[&str]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

async fn post(system: &TestSystem, token: &str, query: &str, variables: Value) -> Value {
    system
        .http
        .post(system.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

const CREATE_UPLOADS: &str = "mutation CreateUploads($input: CreateMemoryUploadsInput!) {
    createMemoryUploads(input: $input) {
        uploads { url method headers { name value } memory { id } }
    }
}";

const CONFIRM: &str = "mutation Confirm($ids: [ID!]!) {
    confirmMemoryUploads(input: { memoryIds: $ids }) { failures { reason } }
}";

const PAGE: &str = "query Page($id: ID!) {
    hangout(id: $id) { id owner { id } memories(first: 5) { nodes { id downloadUrl } } }
}";

/// Uploads two memories through named operations; returns the memory ids.
async fn upload_two(system: &TestSystem, session: &Session, hangout: &str) -> Vec<String> {
    let files = [
        ("0.png".to_owned(), png(1, 300)),
        ("1.png".to_owned(), png(2, 400)),
    ];
    upload_memories_with(system, session, hangout, &files, CREATE_UPLOADS, CONFIRM).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_by_exactly_the_requests_made() {
    let system = TestSystem::spawn().await;
    let session = system.sign_up("Ada").await;
    let hangout = system
        .create_hangout(&session, "Picnic", "2026-06-01T12:00:00Z")
        .await;

    // Phase 1: an upload batch (create, two PUTs to S3, confirm) and one invalid document.
    let before = Scrapes::take(&system).await;
    let calls_before = system.backend_calls.by_rpc();
    upload_two(&system, &session, &hangout).await;
    let broken = post(
        &system,
        &session.access_token,
        "query Broken { nope }",
        json!({}),
    )
    .await;
    assert_eq!(
        broken["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // The photo worker reads each confirmed file once more (these bytes are no image, so
    // both end FAILED): wait for it, so its S3 calls are all in.
    let processed = crate::helpers::eventually(std::time::Duration::from_secs(30), || async {
        let now = scrape(&system.http, system.metrics.file_core).await;
        moved(
            &before.file_core,
            &now,
            "photos_processed_total",
            &["outcome=\"failed\""],
        ) == 2.0
    })
    .await;
    assert!(processed, "the worker processed both files");
    let after = Scrapes::take(&system).await;
    let calls: BTreeMap<&str, u64> = system
        .backend_calls
        .by_rpc()
        .into_iter()
        .map(|(rpc, count)| (rpc, count - calls_before.get(rpc).copied().unwrap_or(0)))
        .filter(|(_, count)| *count > 0)
        .collect();
    let total_calls: u64 = calls.values().sum();
    assert!(total_calls >= 3, "{calls:?}");
    let (gw0, gw1) = (&before.gateway, &after.gateway);

    // GraphQL operations, each counted once, by name, type and outcome.
    assert_eq!(
        moved(gw0, gw1, "gateway_graphql_operations_total", &[]),
        3.0
    );
    for (operation, kind, outcome) in [
        ("CreateUploads", "mutation", "ok"),
        ("Confirm", "mutation", "ok"),
        ("other", "query", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let labels = [
            format!("operation=\"{operation}\""),
            format!("type=\"{kind}\""),
            format!("outcome=\"{outcome}\""),
        ];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        assert_eq!(
            moved(gw0, gw1, "gateway_graphql_operations_total", &labels),
            1.0,
            "{operation}"
        );
        assert_eq!(
            moved(
                gw0,
                gw1,
                "gateway_graphql_operation_duration_seconds_count",
                &labels[..2]
            ),
            1.0,
            "{operation}"
        );
    }
    // An invalid document never claims a label of its own.
    assert_eq!(
        gw1.sum(
            "gateway_graphql_operations_total",
            &["operation=\"Broken\""]
        ),
        0.0
    );
    // HTTP requests: the three POSTs, once each (scrapes use another port).
    assert_eq!(
        moved(
            gw0,
            gw1,
            "gateway_http_requests_total",
            &["route=\"/graphql\"", "method=\"POST\""]
        ),
        3.0
    );
    assert_eq!(moved(gw0, gw1, "gateway_http_requests_total", &[]), 3.0);

    // Backend fan-out: the per-operation histogram agrees with the independent call counter.
    #[allow(clippy::cast_precision_loss)]
    let total = total_calls as f64;
    assert_eq!(
        moved(gw0, gw1, "gateway_backend_calls_per_operation_sum", &[]),
        total
    );
    assert_eq!(
        moved(gw0, gw1, "gateway_backend_calls_per_operation_count", &[]),
        3.0
    );
    assert_eq!(
        moved(
            gw0,
            gw1,
            "gateway_backend_calls_per_operation_sum",
            &["operation=\"other\""]
        ),
        0.0
    );

    // Every backend call once on the client side and once on the server side, by method.
    for (rpc, count) in &calls {
        let (service, method) = rpc.split_once('/').unwrap();
        #[allow(clippy::cast_precision_loss)]
        let count = *count as f64;
        let (package, server) = if service == "FileService" {
            ("file.v1", (&before.file_core, &after.file_core))
        } else {
            ("hangout.v1", (&before.hangout_core, &after.hangout_core))
        };
        let service_label = format!("grpc_service=\"{package}.{service}\"");
        let method_label = format!("grpc_method=\"{method}\"");
        let labels = [
            service_label.as_str(),
            method_label.as_str(),
            "grpc_code=\"OK\"",
        ];
        assert_eq!(
            moved(gw0, gw1, "grpc_client_handled_total", &labels),
            count,
            "{rpc}"
        );
        assert_eq!(
            moved(server.0, server.1, "grpc_server_handled_total", &labels),
            count,
            "{rpc}"
        );
        assert_eq!(
            moved(
                server.0,
                server.1,
                "grpc_server_handling_seconds_count",
                &labels[..2]
            ),
            count,
            "{rpc}"
        );
    }
    assert_eq!(moved(gw0, gw1, "grpc_client_handled_total", &[]), total);
    let served = moved(
        &before.hangout_core,
        &after.hangout_core,
        "grpc_server_handled_total",
        &[],
    ) + moved(
        &before.file_core,
        &after.file_core,
        "grpc_server_handled_total",
        &[],
    );
    // file-core's reports of processed photos and its questions about files (the deletions
    // owed) are calls too, but not the gateway's.
    let reports = moved(
        &before.hangout_core,
        &after.hangout_core,
        "grpc_server_handled_total",
        &["grpc_service=\"hangout.v1.FileReportService\""],
    );
    assert_eq!(
        served - reports,
        total,
        "each call is counted once by the server"
    );

    // file-core: one batch created and confirmed; per file a HEAD and a GET on S3 by the
    // confirm, and the same by the photo worker.
    let (fc0, fc1) = (&before.file_core, &after.file_core);
    assert_eq!(
        moved(
            fc0,
            fc1,
            "file_upload_batches_total",
            &["outcome=\"created\""]
        ),
        1.0
    );
    assert_eq!(
        moved(
            fc0,
            fc1,
            "file_upload_batches_total",
            &["outcome=\"confirmed\""]
        ),
        1.0
    );
    assert_eq!(
        moved(
            fc0,
            fc1,
            "file_upload_batches_total",
            &["outcome=\"failed\""]
        ),
        0.0
    );
    assert_eq!(moved(fc0, fc1, "file_uploads_failed_total", &[]), 0.0);
    for operation in ["HeadObject", "GetObject"] {
        let label = format!("operation=\"{operation}\"");
        assert_eq!(
            moved(fc0, fc1, "s3_requests_total", &[&label, "outcome=\"ok\""]),
            4.0,
            "{operation}"
        );
        assert_eq!(
            moved(fc0, fc1, "s3_request_duration_seconds_count", &[&label]),
            4.0
        );
    }
    assert_eq!(moved(fc0, fc1, "s3_requests_total", &[]), 8.0);

    // Pools are reported with their limits.
    for samples in [&after.hangout_core, &after.file_core] {
        assert!(samples.get("db_pool_max_connections{pool=\"write\"}") >= 1.0);
        assert!(samples.get("db_pool_max_connections{pool=\"read\"}") >= 1.0);
        assert!(
            samples
                .0
                .contains_key("db_pool_connections{pool=\"read\",state=\"idle\"}")
        );
    }

    // Phase 2: a hangout read through the loaders: one batch per loader, sized by the keys.
    let services = after;
    let before = scrape(&system.http, system.metrics.gateway).await;
    let page = post(
        &system,
        &session.access_token,
        PAGE,
        json!({ "id": &hangout }),
    )
    .await;
    assert_eq!(page["data"]["hangout"]["id"], hangout.as_str(), "{page}");
    let after = scrape(&system.http, system.metrics.gateway).await;
    for loader in ["hangouts", "users", "memory_pages"] {
        let label = format!("loader=\"{loader}\"");
        assert_eq!(
            moved(
                &before,
                &after,
                "gateway_dataloader_batch_size_count",
                &[&label]
            ),
            1.0,
            "{loader}"
        );
        assert_eq!(
            moved(
                &before,
                &after,
                "gateway_dataloader_batch_size_sum",
                &[&label]
            ),
            1.0,
            "{loader}"
        );
    }
    assert_eq!(
        moved(
            &before,
            &after,
            "gateway_graphql_operations_total",
            &["operation=\"Page\"", "outcome=\"ok\"", "type=\"query\""]
        ),
        1.0
    );

    // The provisioned Grafana dashboard queries only metrics that exist.
    let families: BTreeSet<&String> = after
        .1
        .iter()
        .chain(&services.hangout_core.1)
        .chain(&services.file_core.1)
        .collect();
    for metric in dashboard_metrics() {
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|suffix| metric.strip_suffix(suffix))
            .unwrap_or(&metric);
        assert!(
            families.iter().any(|known| known.as_str() == family),
            "the dashboard queries {metric}, which no service exposes"
        );
    }
}

/// The metric names in the `expr` of every panel of the provisioned dashboard.
fn dashboard_metrics() -> BTreeSet<String> {
    fn exprs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", Value::String(expr)) => found.push(expr.clone()),
                        _ => exprs(value, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| exprs(item, found)),
            _ => {}
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/grafana/dashboards/request-path.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut found = Vec::new();
    exprs(&dashboard, &mut found);
    assert!(!found.is_empty());
    let ours = [
        "gateway_", "grpc_", "file_", "files_", "s3_", "db_pool_", "hangout_",
    ];
    found
        .iter()
        .flat_map(|expr| expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|token| ours.iter().any(|prefix| token.starts_with(prefix)))
        .filter(|token| {
            !token.starts_with("grpc_service")
                && !token.starts_with("grpc_method")
                && !token.starts_with("grpc_code")
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_rejections_are_counted_by_scope() {
    let system = TestSystem::spawn_with(&["--rate-limit-per-user", "1/s,2"]).await;
    let session = system.sign_up("Ada").await;
    let before = scrape(&system.http, system.metrics.gateway).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = system
            .http
            .post(system.url("/graphql"))
            .bearer_auth(&session.access_token)
            .json(&json!({ "query": "query Me { me { id } }" }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    let after = scrape(&system.http, system.metrics.gateway).await;
    let limited = statuses.iter().filter(|status| **status == 429).count();
    assert!(limited >= 1, "{statuses:?}");
    #[allow(clippy::cast_precision_loss)]
    let limited = limited as f64;
    assert_eq!(
        moved(
            &before,
            &after,
            "gateway_rate_limited_total",
            &["scope=\"user\""]
        ),
        limited
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "gateway_http_requests_total",
            &["status=\"429\""]
        ),
        limited
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "gateway_rate_limited_total",
            &["scope=\"address\""]
        ),
        0.0
    );
}
