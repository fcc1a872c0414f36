//! GraphQL over HTTP, as the GraphQL-over-HTTP specification and browsers require, and the
//! document limits that keep one request from costing the backends too much.
//!
//! - Media types: a request is answered in `application/graphql-response+json` when its
//!   `Accept` asks for it, else in `application/json` (also for `*/*` and a missing `Accept`).
//!   With `application/graphql-response+json`, a request error (unparsable or invalid document,
//!   bad variables: nothing executed) is a 400 without a `data` entry; with `application/json`
//!   it stays a 200, as older clients expect.
//! - `POST` needs a content type: none is 415; `application/json` (or the GraphQL response
//!   type) is read as one request or a batch (a JSON array, at most [`Limits::max_batch`]).
//! - `GET` runs queries from the URL; a mutation through `GET` is 405, so a link or an image
//!   tag can never change anything.
//! - CSRF prevention as Apollo Router does it: an operation runs only when the request has a
//!   content type other than the three a browser may send without a preflight
//!   (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`), or a non-empty
//!   `X-Apollo-Operation-Name` or `Apollo-Require-Preflight` header. Otherwise: 400.
//! - Document limits beyond depth and complexity (set on the schema): aliases and root fields
//!   per document, checked on the parsed document before anything executes.
//!
//! Every refusal is a GraphQL error with a code from the contract's closed set.

use crate::graphql::error::Code;
use async_graphql::{
    BatchRequest, BatchResponse, Pos, Request, Response, ServerError,
    parser::types::{
        DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
    },
};
use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response as HttpResponse},
};

/// The official GraphQL response media type.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Limits of one HTTP request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Operations in one batch.
    pub max_batch: usize,
    /// Aliased fields in one document (alias overloading multiplies work per field).
    pub max_aliases: usize,
    /// Fields at the root of the executed operation.
    pub max_root_fields: usize,
    /// Bytes of one GraphQL document.
    pub max_document_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch: 10,
            max_aliases: 30,
            max_root_fields: 20,
            max_document_bytes: 100 * 1024,
        }
    }
}

/// The response media type chosen from `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    GraphqlResponseJson,
    Json,
}

impl MediaType {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response media type: the GraphQL one when listed (and not refused with `q=0`),
/// JSON otherwise. `None` when `Accept` lists only types we cannot produce.
#[must_use]
pub fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return Some(MediaType::Json);
    };
    if accept.trim().is_empty() {
        return Some(MediaType::Json);
    }
    let mut json = false;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|parameter| {
            parameter
                .trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if refused {
            continue;
        }
        match media.as_str() {
            GRAPHQL_RESPONSE_JSON => return Some(MediaType::GraphqlResponseJson),
            "application/json" | "application/*" | "*/*" => json = true,
            _ => {}
        }
    }
    json.then_some(MediaType::Json)
}

/// Whether the browser asked for a page (GraphiQL) rather than a GraphQL result.
#[must_use]
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A refusal before any GraphQL ran.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    code: Code,
    message: String,
    allow: Option<&'static str>,
}

impl Refusal {
    fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    /// A body that could not be read: too large (413) or broken.
    #[must_use]
    pub fn body(status: StatusCode, max_body_bytes: usize) -> Self {
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the request body is larger than {max_body_bytes} bytes")
        } else {
            "the request body could not be read".to_owned()
        };
        Self::new(status, Code::BadUserInput, message)
    }

    /// Answers with the refusal as a GraphQL error in the negotiated media type.
    #[must_use]
    pub fn into_response(self, media: MediaType) -> HttpResponse {
        let body = serde_json::json!({
            "errors": [{ "message": self.message, "extensions": { "code": self.code.as_str() } }]
        });
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, media.content_type())],
            body.to_string(),
        )
            .into_response();
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// The media type of the request body, lower-cased, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|value| !value.is_empty())
}

/// Apollo Router's CSRF rule: see the module docs.
///
/// # Errors
/// A 400 refusal explaining how to send the request.
pub fn check_csrf(headers: &HeaderMap) -> Result<(), Refusal> {
    let preflighted = content_type(headers).is_some_and(|media| {
        !matches!(
            media.as_str(),
            "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
        )
    });
    let flagged = ["x-apollo-operation-name", "apollo-require-preflight"]
        .iter()
        .any(|name| {
            headers
                .get(*name)
                .is_some_and(|value| !value.as_bytes().is_empty())
        });
    if preflighted || flagged {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            "this operation was refused as a possible cross-site request forgery: send it with \
             `Content-Type: application/json`, or with a non-empty `X-Apollo-Operation-Name` or \
             `Apollo-Require-Preflight` header",
        ))
    }
}

/// Reads a `POST` body.
///
/// # Errors
/// 415 without or with an unsupported content type, 400 for a body that is not a GraphQL
/// request (or batch), or a batch that is too large.
pub fn read_post(
    headers: &HeaderMap,
    body: &Bytes,
    limits: Limits,
) -> Result<BatchRequest, Refusal> {
    let Some(media) = content_type(headers) else {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::BadUserInput,
            "a POST needs `Content-Type: application/json`",
        ));
    };
    check_csrf(headers)?;
    if media != "application/json" && media != GRAPHQL_RESPONSE_JSON {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::BadUserInput,
            format!("unsupported content type {media}: send application/json"),
        ));
    }
    let batch: BatchRequest = serde_json::from_slice(body).map_err(|error| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            format!("the body is not a GraphQL request: {error}"),
        )
    })?;
    if let BatchRequest::Batch(_) = &batch
        && limits.max_batch == 0
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            "array batching is off on this server: send one operation per request",
        ));
    }
    if let BatchRequest::Batch(requests) = &batch
        && (requests.is_empty() || requests.len() > limits.max_batch)
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            format!("a batch holds 1 to {} operations", limits.max_batch),
        ));
    }
    Ok(batch)
}

/// Reads a `GET` query string.
///
/// # Errors
/// 400 for a missing or malformed `query` parameter, or missing CSRF protection.
pub fn read_get(headers: &HeaderMap, query: Option<&str>) -> Result<Request, Refusal> {
    check_csrf(headers)?;
    async_graphql::http::parse_query_string(query.unwrap_or_default()).map_err(|error| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            format!("malformed GraphQL GET request: {error}"),
        )
    })
}

/// A request error (nothing executed) with `code`.
fn request_error(message: impl Into<String>, code: Code, pos: Option<Pos>) -> Response {
    Response::from_errors(vec![crate::graphql::error::coded_error_at(
        message, code, pos,
    )])
}

/// The operation a request will execute, if the document names one unambiguously.
fn selected_operation<'d>(
    document: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<(OperationType, &'d SelectionSet)> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()?
        }
        _ => return None,
    };
    Some((operation.node.ty, &operation.node.selection_set.node))
}

/// What one operation asks of the root, for the rate limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RootFields {
    /// Root fields (through fragments), at least 1 for any request that runs.
    pub total: u32,
    /// Of them, `signIn`, `signUp` and `refreshSession`: a password hash or token rotation.
    pub auth: u32,
}

/// The root fields of the operation of `document` that runs (a document that selects none
/// counts as one field: it is refused later, but was still a request).
#[must_use]
pub fn root_fields(document: &ExecutableDocument, operation_name: Option<&str>) -> RootFields {
    fn walk(
        document: &ExecutableDocument,
        set: &SelectionSet,
        mutation: bool,
        depth: usize,
        fields: &mut RootFields,
    ) {
        // Fragments spread in cycles are refused by validation; stop walking them early.
        if depth > 8 {
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    fields.total = fields.total.saturating_add(1);
                    let name = field.node.name.node.as_str();
                    if mutation && matches!(name, "signIn" | "signUp" | "refreshSession") {
                        fields.auth = fields.auth.saturating_add(1);
                    }
                }
                Selection::InlineFragment(fragment) => walk(
                    document,
                    &fragment.node.selection_set.node,
                    mutation,
                    depth + 1,
                    fields,
                ),
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        walk(
                            document,
                            &fragment.node.selection_set.node,
                            mutation,
                            depth + 1,
                            fields,
                        );
                    }
                }
            }
        }
    }
    let mut fields = RootFields::default();
    if let Some((kind, set)) = selected_operation(document, operation_name) {
        walk(
            document,
            set,
            kind == OperationType::Mutation,
            0,
            &mut fields,
        );
    }
    fields.total = fields.total.max(1);
    fields
}

/// Longest message of one request error: a message quoting a client's text (an unknown
/// field's name) is cut there.
const MAX_ERROR_MESSAGE_CHARS: usize = 300;

/// Most request errors in one response; validation reports every error, and a document of
/// ten thousand unknown fields would otherwise be answered by ten thousand errors.
const MAX_REQUEST_ERRORS: usize = 20;

/// A parse error's message without the document text the parser quotes (pest prints the
/// offending line, however long): where it failed and what was expected there.
fn parse_error_message(message: &str, pos: Option<Pos>) -> String {
    let expected = message
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("= "))
        .unwrap_or("unexpected input");
    let mut text = match pos {
        Some(pos) => format!(
            "syntax error at line {}, column {}: {expected}",
            pos.line, pos.column
        ),
        None => format!("syntax error: {expected}"),
    };
    truncate(&mut text, MAX_ERROR_MESSAGE_CHARS);
    text
}

/// Cuts `text` to at most `max` characters, marking the cut.
fn truncate(text: &mut String, max: usize) {
    if let Some((index, _)) = text.char_indices().nth(max) {
        text.truncate(index);
        text.push('…');
    }
}

/// The most times one response key (a field's alias or name) may appear in one selection
/// set as written. Merging makes repeats free to write and costly to answer ("field
/// duplication": 500 `__typename`s); a client that adds `__typename` to what already has
/// one stays well within it.
const MAX_REPEATS_OF_A_FIELD: usize = 3;

/// What the document limits read from the selection sets as written, in one walk.
#[derive(Clone, Copy, Debug, Default)]
struct Written {
    /// Aliased fields.
    aliases: usize,
    /// The most times one response key (alias or name) stands in one selection set.
    most_repeated: usize,
}

impl Written {
    fn of(set: &SelectionSet) -> Self {
        let mut written = Self::default();
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for item in &set.items {
            let nested = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    written.aliases += usize::from(field.alias.is_some());
                    let key = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
                    let count = counts.entry(key).or_default();
                    *count += 1;
                    written.most_repeated = written.most_repeated.max(*count);
                    Self::of(&field.selection_set.node)
                }
                Selection::InlineFragment(fragment) => Self::of(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => Self::default(),
            };
            written = written.and(nested);
        }
        written
    }

    fn and(self, other: Self) -> Self {
        Self {
            aliases: self.aliases + other.aliases,
            most_repeated: self.most_repeated.max(other.most_repeated),
        }
    }
}

/// Parses the document of `request` (caching it in the request) and applies the document
/// limits. Returns the kind of the operation that will run, when the document selects one.
///
/// # Errors
/// A GraphQL response holding the request error, to send as is.
pub fn check_document(
    request: &mut Request,
    limits: Limits,
) -> Result<Option<OperationType>, Box<Response>> {
    let operation_name = request.operation_name.clone();
    if request.query.len() > limits.max_document_bytes {
        return Err(Box::new(request_error(
            format!(
                "the document is {} bytes; at most {} are allowed",
                request.query.len(),
                limits.max_document_bytes
            ),
            Code::GraphqlValidationFailed,
            None,
        )));
    }
    let document = match request.parsed_query() {
        Ok(document) => document,
        Err(error) => {
            let pos = error.locations.first().copied();
            return Err(Box::new(request_error(
                parse_error_message(&error.message, pos),
                Code::GraphqlParseFailed,
                pos,
            )));
        }
    };
    let written = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set.node),
        )
        .map(Written::of)
        .fold(Written::default(), Written::and);
    let aliases = written.aliases;
    if aliases > limits.max_aliases {
        return Err(Box::new(request_error(
            format!(
                "the document uses {aliases} aliases; at most {} are allowed",
                limits.max_aliases
            ),
            Code::GraphqlValidationFailed,
            None,
        )));
    }
    let repeated = written.most_repeated;
    if repeated > MAX_REPEATS_OF_A_FIELD {
        return Err(Box::new(request_error(
            format!(
                "a field is selected {repeated} times in one selection set; at most \
                 {MAX_REPEATS_OF_A_FIELD} are allowed"
            ),
            Code::GraphqlValidationFailed,
            None,
        )));
    }
    let selected = selected_operation(document, operation_name.as_deref());
    if let Some((_, selection)) = selected
        && selection.items.len() > limits.max_root_fields
    {
        return Err(Box::new(request_error(
            format!(
                "the operation selects {} root fields; at most {} are allowed",
                selection.items.len(),
                limits.max_root_fields
            ),
            Code::GraphqlValidationFailed,
            None,
        )));
    }
    Ok(selected.map(|(kind, _)| kind))
}

/// Whether a response is a request error: nothing executed (no data), and no error belongs to
/// a field (field errors always carry a path).
fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// Gives request errors without a code the contract's validation code.
/// Also bounds them: their messages to [`MAX_ERROR_MESSAGE_CHARS`] and their number to
/// [`MAX_REQUEST_ERRORS`], since validation quotes the client's own text back.
fn label_request_errors(response: &mut Response) {
    if !is_request_error(response) {
        return;
    }
    if response.errors.len() > MAX_REQUEST_ERRORS {
        let more = response.errors.len() - (MAX_REQUEST_ERRORS - 1);
        response.errors.truncate(MAX_REQUEST_ERRORS - 1);
        response.errors.push(ServerError::new(
            format!("… and {more} more errors like these"),
            None,
        ));
    }
    for error in &mut response.errors {
        truncate(&mut error.message, MAX_ERROR_MESSAGE_CHARS);
    }
    crate::graphql::error::stamp(&mut response.errors, Code::GraphqlValidationFailed);
}

/// A body that fails to be written once it would pass its cap.
struct CappedBody {
    bytes: Vec<u8>,
    max: usize,
}

impl std::io::Write for CappedBody {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(data.len()) > self.max {
            return Err(std::io::Error::other("the response is over its cap"));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serialises `value` into at most `max` bytes; `None` when it would take more (it stops
/// there: a huge answer is never held whole in memory twice).
fn to_capped_vec(
    value: &impl serde::Serialize,
    max: usize,
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let mut body = CappedBody {
        bytes: Vec::with_capacity(max.min(16 * 1024)),
        max,
    };
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => Ok(Some(body.bytes)),
        Err(error) if error.is_io() => Ok(None),
        Err(error) => Err(error),
    }
}

/// Serialises a response (or batch) in `media`, with the status the specification asks for,
/// into at most `max_bytes`: a larger answer is replaced by one error saying so (never cut).
///
/// Straight to bytes: a page's response is a tree of about a thousand values, and going
/// through a `serde_json::Value` first would build and drop a second copy of it.
#[must_use]
pub fn respond(media: MediaType, response: BatchResponse, max_bytes: usize) -> HttpResponse {
    /// The body of a request error answered as `application/graphql-response+json`.
    #[derive(serde::Serialize)]
    struct ErrorsOnly<'a> {
        errors: &'a [async_graphql::ServerError],
    }

    let (status, body) = match response {
        BatchResponse::Single(mut response) => {
            label_request_errors(&mut response);
            if is_request_error(&response) && media == MediaType::GraphqlResponseJson {
                let body = to_capped_vec(
                    &ErrorsOnly {
                        errors: &response.errors,
                    },
                    max_bytes,
                );
                (StatusCode::BAD_REQUEST, body)
            } else {
                (StatusCode::OK, to_capped_vec(&response, max_bytes))
            }
        }
        BatchResponse::Batch(mut responses) => {
            for response in &mut responses {
                label_request_errors(response);
            }
            (StatusCode::OK, to_capped_vec(&responses, max_bytes))
        }
    };
    match body {
        Ok(Some(body)) => {
            (status, [(header::CONTENT_TYPE, media.content_type())], body).into_response()
        }
        Ok(None) => {
            tracing::info!(max_bytes, "response over its cap refused");
            let body = serde_json::json!({
                "data": null,
                "errors": [{
                    "message": format!(
                        "the response is larger than {max_bytes} bytes and was not sent: ask for \
                         less (smaller pages, fewer fields)"
                    ),
                    "extensions": { "code": Code::BadUserInput.as_str() },
                }],
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, media.content_type())],
                body.to_string(),
            )
                .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot serialise a GraphQL response");
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalServerError,
                "internal error",
            )
            .into_response(media)
        }
    }
}

/// The refusal of a mutation sent with `GET`: 405, allowing `POST`.
#[must_use]
pub fn mutation_via_get(media: MediaType) -> HttpResponse {
    let mut refusal = Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::BadUserInput,
        "only queries can be sent with GET; send mutations with POST",
    );
    refusal.allow = Some("GET, POST");
    refusal.into_response(media)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn negotiates_like_the_specification() {
        assert_eq!(negotiate(&headers(&[])), Some(MediaType::Json));
        assert_eq!(
            negotiate(&headers(&[("accept", "*/*")])),
            Some(MediaType::Json)
        );
        assert_eq!(
            negotiate(&headers(&[("accept", "application/json")])),
            Some(MediaType::Json)
        );
        assert_eq!(
            negotiate(&headers(&[(
                "accept",
                "application/graphql-response+json, application/json;q=0.9"
            )])),
            Some(MediaType::GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(&headers(&[(
                "accept",
                "application/graphql-response+json;q=0, application/json"
            )])),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&headers(&[("accept", "text/xml")])), None);
    }

    #[test]
    fn csrf_needs_a_preflighted_content_type_or_a_header() {
        assert!(check_csrf(&headers(&[("content-type", "application/json")])).is_ok());
        assert!(check_csrf(&headers(&[("content-type", "text/plain")])).is_err());
        assert!(
            check_csrf(&headers(&[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8"
            )]))
            .is_err()
        );
        assert!(check_csrf(&headers(&[])).is_err());
        assert!(check_csrf(&headers(&[("apollo-require-preflight", "true")])).is_ok());
        assert!(check_csrf(&headers(&[("x-apollo-operation-name", "Me")])).is_ok());
        assert!(check_csrf(&headers(&[("x-apollo-operation-name", "")])).is_err());
    }

    #[test]
    fn posts_need_json() {
        let limits = Limits::default();
        let body = Bytes::from_static(br#"{"query":"{ __typename }"}"#);
        assert!(
            read_post(
                &headers(&[("content-type", "application/json")]),
                &body,
                limits
            )
            .is_ok()
        );
        let missing = read_post(&headers(&[]), &body, limits).unwrap_err();
        assert_eq!(missing.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let plain =
            read_post(&headers(&[("content-type", "text/plain")]), &body, limits).unwrap_err();
        assert_eq!(plain.status, StatusCode::BAD_REQUEST);
        let batch = Bytes::from(format!("[{}]", [r#"{"query":"{a}"}"#; 11].join(",")));
        let too_many = read_post(
            &headers(&[("content-type", "application/json")]),
            &batch,
            limits,
        )
        .unwrap_err();
        assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn documents_are_limited_before_execution() {
        let limits = Limits {
            max_batch: 10,
            max_aliases: 3,
            max_root_fields: 2,
            max_document_bytes: 1000,
        };
        let mut fine = Request::new("{ a: me { id } b: me { id } }");
        assert_eq!(
            check_document(&mut fine, limits).ok(),
            Some(Some(OperationType::Query))
        );
        let mut aliases = Request::new("{ a: me { x: id y: id } b: me { id } }");
        assert!(check_document(&mut aliases, limits).is_err());
        let mut roots =
            Request::new("{ me { id } hangouts { totalCount } activities { totalCount } }");
        assert!(check_document(&mut roots, limits).is_err());
        let mut repeated = Request::new("{ me { id id id id } }");
        assert!(check_document(&mut repeated, limits).is_err());
        let mut typename = Request::new("{ me { __typename id __typename } }");
        assert!(check_document(&mut typename, limits).is_ok());
        let mut long = Request::new(format!("{{ me {{ id }} }}{}", " ".repeat(1000)));
        assert!(check_document(&mut long, limits).is_err());
        let mut broken = Request::new("{ me { id ");
        let error = check_document(&mut broken, limits).unwrap_err();
        let code = error.errors[0]
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code").cloned());
        assert_eq!(
            code,
            Some(async_graphql::Value::from("GRAPHQL_PARSE_FAILED"))
        );
        let mut mutation =
            Request::new("mutation { signOut(input: {refreshToken: \"x\"}) { success } }");
        assert_eq!(
            check_document(&mut mutation, limits).ok(),
            Some(Some(OperationType::Mutation))
        );
    }

    #[test]
    fn parse_errors_do_not_quote_the_document() {
        let secret = "x".repeat(5_000);
        let mut request = Request::new(format!("{{ me {{ id }} }} ] {secret}"));
        let error = check_document(&mut request, Limits::default()).unwrap_err();
        let message = &error.errors[0].message;
        assert!(!message.contains("xxxx"), "{message}");
        assert!(
            message.starts_with("syntax error at line 1, column"),
            "{message}"
        );
        assert!(message.chars().count() <= MAX_ERROR_MESSAGE_CHARS + 1);
    }

    #[test]
    fn request_errors_are_bounded_in_number_and_length() {
        let errors = (0..100)
            .map(|index| {
                ServerError::new(format!("unknown field {index} {}", "y".repeat(1000)), None)
            })
            .collect();
        let mut response = Response::from_errors(errors);
        label_request_errors(&mut response);
        assert_eq!(response.errors.len(), MAX_REQUEST_ERRORS);
        assert!(response.errors[0].message.chars().count() <= MAX_ERROR_MESSAGE_CHARS + 1);
        assert!(
            response.errors[MAX_REQUEST_ERRORS - 1]
                .message
                .contains("81 more")
        );
    }

    #[test]
    fn root_fields_count_through_fragments_and_aliases() {
        let count = |query: &str| {
            let document = async_graphql::parser::parse_query(query).expect("parses");
            root_fields(&document, None)
        };
        assert_eq!(count("{ __typename }"), RootFields { total: 1, auth: 0 });
        assert_eq!(
            count(
                "mutation { a: signIn(input: $i) { accessToken } b: signIn(input: $i) { accessToken } \
                 ...F signOut(input: $o) { success } } fragment F on Mutation { signUp(input: $u) { accessToken } }"
            ),
            RootFields { total: 4, auth: 3 }
        );
        assert_eq!(
            count("{ signIn: me { id } }"),
            RootFields { total: 1, auth: 0 }
        );
        assert_eq!(
            count("query A { me { id } } query B { me { id } }"),
            RootFields { total: 1, auth: 0 }
        );
    }

    #[tokio::test]
    async fn responses_over_the_cap_are_replaced_by_an_error_never_cut() {
        let big = async_graphql::Value::String("x".repeat(10_000));
        let response = BatchResponse::Single(Response::new(big.clone()));
        let fits = respond(MediaType::Json, response, 20_000);
        assert_eq!(fits.status(), StatusCode::OK);
        let response = BatchResponse::Single(Response::new(big));
        let refused = respond(MediaType::Json, response, 5_000);
        assert_eq!(refused.status(), StatusCode::OK);
        let body = axum::body::to_bytes(refused.into_body(), 10_000)
            .await
            .expect("a short body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert!(body["data"].is_null());
    }

    #[test]
    fn request_errors_are_400_only_for_the_graphql_media_type() {
        let failed =
            || BatchResponse::Single(Response::from_errors(vec![ServerError::new("bad", None)]));
        assert_eq!(
            respond(MediaType::GraphqlResponseJson, failed(), usize::MAX).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            respond(MediaType::Json, failed(), usize::MAX).status(),
            StatusCode::OK
        );
        let executed = BatchResponse::Single(Response::new(async_graphql::Value::Null));
        assert_eq!(
            respond(MediaType::GraphqlResponseJson, executed, usize::MAX).status(),
            StatusCode::OK
        );
    }
}
