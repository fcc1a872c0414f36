//! The `traces` check: the real binaries export OpenTelemetry spans to an OTLP/HTTP receiver
//! running in this process, with JSON logs captured to files. One GraphQL request that touches
//! both backends (confirming an upload: hangout-core's records, file-core's S3 checks) must give
//! one trace holding spans of all three processes with the expected parent links, and no span,
//! span event or log line may contain a variable's value, a token, a password or a presigned
//! URL's signature.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context as _;
use axum::{Router, body::Bytes, extract::State, routing::post};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use md5::{Digest as _, Md5};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, KeyValue, any_value::Value as Any},
    trace::v1::span::SpanKind,
};
use prost::Message as _;
use serde_json::{Value, json};

use crate::system::{self, Output, Ports, System};

/// One received span, flattened.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i32,
    /// Attributes, and the names and attributes of events, as text.
    text: Vec<(String, String)>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn text_of(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Any::StringValue(text)) => text.clone(),
        Some(Any::IntValue(number)) => number.to_string(),
        Some(Any::BoolValue(flag)) => flag.to_string(),
        Some(Any::DoubleValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn pairs(attributes: &[KeyValue]) -> impl Iterator<Item = (String, String)> + '_ {
    attributes
        .iter()
        .map(|pair| (pair.key.clone(), text_of(pair.value.as_ref())))
}

async fn receive(State(spans): State<Spans>, body: Bytes) -> Vec<u8> {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return Vec::new();
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|resource| {
                pairs(&resource.attributes)
                    .find(|(key, _)| key == "service.name")
                    .map(|(_, value)| value)
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let mut text: Vec<(String, String)> = pairs(&span.attributes).collect();
                for event in &span.events {
                    text.push(("event".to_owned(), event.name.clone()));
                    text.extend(pairs(&event.attributes));
                }
                received.push(Received {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    text,
                });
            }
        }
    }
    spans
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(received);
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// Starts the OTLP/HTTP receiver on a free loopback port.
async fn start_receiver() -> anyhow::Result<(SocketAddr, Spans)> {
    let spans = Spans::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(Arc::clone(&spans));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((addr, spans))
}

/// What the flow sent that must never show up in telemetry.
struct Secrets {
    values: Vec<(&'static str, String)>,
}

/// The request id of the checked request and the values that must stay secret.
struct Flow {
    request_id: String,
    secrets: Secrets,
}

async fn graphql(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    request_id: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut request = http
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let body: Value = request.send().await?.json().await?;
    anyhow::ensure!(body.get("errors").is_none(), "GraphQL errors: {body}");
    Ok(body)
}

/// Signs up, creates a hangout, uploads a photo, and confirms it with a known request id.
async fn run_flow(gateway: u16) -> anyhow::Result<Flow> {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{gateway}/graphql");
    let unique = format!("{:x}", std::process::id() ^ 0x5eed);
    let email = format!("trace-{unique}@example.com");
    let password = format!("pw-{unique}-correct-horse");
    let title = format!("Secret picnic {unique}");
    let signed_up = graphql(
        &http,
        &url,
        None,
        None,
        "mutation SignUp($input: SignUpInput!) { signUp(input: $input) { accessToken refreshToken } }",
        json!({ "input": { "name": "Tracy", "email": email, "password": password } }),
    )
    .await?;
    let token = signed_up["data"]["signUp"]["accessToken"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let refresh = signed_up["data"]["signUp"]["refreshToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let created = graphql(
        &http,
        &url,
        Some(&token),
        None,
        "mutation CreateHangout($input: CreateHangoutInput!) { createHangout(input: $input) { hangout { id } } }",
        json!({ "input": { "title": title, "date": "2026-06-01T12:00:00Z" } }),
    )
    .await?;
    let hangout = created["data"]["createHangout"]["hangout"]["id"].clone();
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(unique.bytes().cycle().take(500));
    let md5 = STANDARD.encode(Md5::digest(&bytes));
    let uploads = graphql(
        &http,
        &url,
        Some(&token),
        None,
        "mutation CreateUploads($input: CreateMemoryUploadsInput!) {
            createMemoryUploads(input: $input) { uploads { url method headers { name value } memory { id } } } }",
        json!({ "input": { "hangoutId": hangout, "files": [{
            "fileName": "secret-beach.png", "contentType": "image/png", "size": bytes.len(), "md5": md5 }] } }),
    )
    .await?;
    let upload = &uploads["data"]["createMemoryUploads"]["uploads"][0];
    let presigned = upload["url"].as_str().context("no upload URL")?.to_owned();
    let mut put = http.put(&presigned).body(bytes);
    for header in upload["headers"].as_array().into_iter().flatten() {
        let name = header["name"].as_str().unwrap_or_default();
        if !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("host") {
            put = put.header(name, header["value"].as_str().unwrap_or_default());
        }
    }
    anyhow::ensure!(put.send().await?.status().is_success(), "the upload failed");
    let request_id = format!("e2e-trace-{unique}");
    let confirmed = graphql(
        &http,
        &url,
        Some(&token),
        Some(&request_id),
        "mutation Confirm($ids: [ID!]!) { confirmMemoryUploads(input: { memoryIds: $ids }) {
            memories { id downloadUrl } failures { reason } } }",
        json!({ "ids": [upload["memory"]["id"]] }),
    )
    .await?;
    let download = confirmed["data"]["confirmMemoryUploads"]["memories"][0]["downloadUrl"]
        .as_str()
        .context("no download URL")?
        .to_owned();
    anyhow::ensure!(
        download.contains("X-Amz-Signature="),
        "unexpected URL {download}"
    );
    let signature = |url: &str| {
        url.split("X-Amz-Signature=")
            .nth(1)
            .map(|rest| rest.split('&').next().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    Ok(Flow {
        request_id,
        secrets: Secrets {
            values: vec![
                ("the password", password),
                ("the email", email),
                ("the hangout title", title),
                ("the file name", "secret-beach.png".to_owned()),
                ("the file MD5", md5),
                ("the access token", token),
                ("the refresh token", refresh),
                ("an upload URL signature", signature(&presigned)),
                ("a download URL signature", signature(&download)),
            ],
        },
    })
}

/// The spans of one trace by id, and helpers over their links.
struct Trace<'a> {
    spans: Vec<&'a Received>,
}

impl<'a> Trace<'a> {
    fn by_id(&self, id: &str) -> Option<&'a Received> {
        self.spans.iter().copied().find(|span| span.span_id == id)
    }

    /// Whether `ancestor` is `span` or one of its ancestors.
    fn descends(&self, span: &Received, ancestor: &Received) -> bool {
        let mut current = Some(span);
        for _ in 0..64 {
            match current {
                Some(node) if node.span_id == ancestor.span_id => return true,
                Some(node) => current = self.by_id(&node.parent),
                None => return false,
            }
        }
        false
    }

    fn of(&self, service: &str) -> impl Iterator<Item = &'a Received> + '_ {
        let service = service.to_owned();
        self.spans
            .iter()
            .copied()
            .filter(move |span| span.service == service)
    }
}

/// Checks the trace of the request; `Ok(None)` while spans are still arriving.
fn check_trace(spans: &[Received], request_id: &str) -> anyhow::Result<Option<String>> {
    let Some(root) = spans.iter().find(|span| {
        span.service == "gateway"
            && span.parent.chars().all(|digit| digit == '0')
            && span
                .text
                .iter()
                .any(|(key, value)| key == "request_id" && value == request_id)
    }) else {
        return Ok(None);
    };
    let trace = Trace {
        spans: spans
            .iter()
            .filter(|span| span.trace_id == root.trace_id)
            .collect(),
    };
    let server = SpanKind::Server as i32;
    let client = SpanKind::Client as i32;
    let Some(operation) = trace
        .of("gateway")
        .find(|span| span.name == "mutation Confirm" && span.parent == root.span_id)
    else {
        return Ok(None);
    };
    for (service, inner) in [("hangout-core", "sql "), ("file-core", "S3.")] {
        let Some(incoming) = trace.of(service).find(|span| {
            span.kind == server
                && trace.by_id(&span.parent).is_some_and(|caller| {
                    caller.service == "gateway"
                        && caller.kind == client
                        && caller.name == span.name
                        && trace.descends(caller, operation)
                })
        }) else {
            return Ok(None);
        };
        if !trace
            .of(service)
            .any(|span| span.name.starts_with(inner) && trace.descends(span, incoming))
        {
            return Ok(None);
        }
    }
    let sql_in_file_core = trace
        .of("file-core")
        .any(|span| span.name.starts_with("sql "));
    anyhow::ensure!(sql_in_file_core, "file-core recorded no SQL span");
    Ok(Some(root.trace_id.clone()))
}

/// Runs the check against a system of its own.
pub async fn run(binaries: &Path, data: &Path) -> anyhow::Result<()> {
    let (receiver, spans) = start_receiver().await?;
    let ports = Ports::free()?;
    let logs = data.join("trace-logs");
    std::fs::create_dir_all(&logs)?;
    let mut specs = system::specs(ports, &data.join("trace-data"));
    for spec in &mut specs {
        let format = match spec.package {
            "hangout-core" => "HANGOUT_CORE_LOG_FORMAT",
            "file-core" => "FILE_CORE_LOG_FORMAT",
            _ => "GATEWAY_LOG_FORMAT",
        };
        for (key, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{receiver}")),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("RUST_LOG", "info,telemetry=debug".to_owned()),
            (format, "json".to_owned()),
        ] {
            spec.env.push((key.to_owned(), value));
        }
    }
    std::fs::create_dir_all(data.join("trace-data"))?;
    let mut system = System::start(&specs, binaries, Output::Files(logs.clone())).await?;
    let outcome = async {
        super::wait_ready(ports.gateway).await?;
        let flow = run_flow(ports.gateway).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let trace_id = loop {
            let received = spans.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(trace_id) = check_trace(&received, &flow.request_id)? {
                break trace_id;
            }
            if tokio::time::Instant::now() > deadline {
                let dump: Vec<String> = received
                    .iter()
                    .map(|span| {
                        format!(
                            "{} trace={} span={} parent={} kind={} {}",
                            span.service,
                            span.trace_id,
                            span.span_id,
                            span.parent,
                            span.kind,
                            span.name
                        )
                    })
                    .collect();
                let dump_path = std::env::temp_dir().join("hangout-e2e-trace-spans.txt");
                std::fs::write(&dump_path, dump.join("\n"))?;
                let mut seen: HashMap<&str, usize> = HashMap::new();
                for span in &received {
                    *seen.entry(span.service.as_str()).or_default() += 1;
                }
                anyhow::bail!(
                    "no complete trace for request {} after 30 s; spans received per service: {seen:?} (all listed in {})",
                    flow.request_id,
                    dump_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // Let the last batches (the gateway's root span ends last) arrive before stopping.
        system.stop().await;
        let received = spans.lock().unwrap_or_else(PoisonError::into_inner).clone();
        check_secrets_in_spans(&received, &flow.secrets)?;
        check_logs(&logs, &flow, &trace_id)?;
        println!(
            "one trace ({trace_id}) across gateway, hangout-core and file-core; {} spans checked, no secret in spans or logs",
            received.len()
        );
        anyhow::Ok(())
    }
    .await;
    system.stop().await;
    outcome
}

fn check_secrets_in_spans(spans: &[Received], secrets: &Secrets) -> anyhow::Result<()> {
    for span in spans {
        for (what, value) in &secrets.values {
            let leaked = span.name.contains(value.as_str())
                || span.text.iter().any(|(key, text)| {
                    key.contains(value.as_str()) || text.contains(value.as_str())
                });
            anyhow::ensure!(
                value.is_empty() || !leaked,
                "{what} appears in the span {:?} of {}: {:?}",
                span.name,
                span.service,
                span.text
            );
        }
    }
    Ok(())
}

/// No log line holds a secret; each process logged the request with its request and trace id.
fn check_logs(dir: &Path, flow: &Flow, trace_id: &str) -> anyhow::Result<()> {
    for package in system::PACKAGES {
        let path = dir.join(format!("{package}.log"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut correlated = false;
        for line in text.lines() {
            for (what, value) in &flow.secrets.values {
                anyhow::ensure!(
                    value.is_empty() || !line.contains(value.as_str()),
                    "{what} appears in a log line of {package}: {line}"
                );
            }
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                anyhow::bail!("{package} wrote a line that is not JSON: {line}");
            };
            if entry["request_id"] == flow.request_id.as_str() && entry["trace_id"] == trace_id {
                correlated = true;
            }
        }
        anyhow::ensure!(
            correlated,
            "{package} logged no line with request id {} and trace id {trace_id}; its lines with that request id: {:?}",
            flow.request_id,
            text.lines()
                .filter(|line| line.contains(flow.request_id.as_str()))
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}
