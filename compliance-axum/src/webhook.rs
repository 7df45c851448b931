//! `POST /api/webhooks/fossa-scan`: the CI pipeline's entry point.
//!
//! The route authenticates by signature only. Before core sees a request, the HTTP layer
//! refuses, in this order and as cheaply as it can:
//!
//! | check | answer | logged in the event log |
//! | --- | --- | --- |
//! | sender address over its rate limit | 429 | no (counter only) |
//! | content type not `application/json` | 415 | yes |
//! | body over the limit | 413 | yes (headers and the first bytes) |
//! | signed, and its repository over its rate limit | 429 | no (counter only) |
//!
//! Everything else goes to [`IngestService::receive`](compliance_core::ingest::IngestService::receive)
//! with the body byte for byte, and its outcome maps one to one to a status.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use compliance_core::domain::RejectionKind;
use compliance_core::ingest::{InboundWebhook, IngestOutcome};
use compliance_core::ports::RequestHeaders;
use compliance_core::RepoUrl;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody, FieldDetail, INVALID_SIGNATURE, NO_COMPONENT};
use crate::limits::source_ip;
use crate::metrics as m;
use crate::rest::dto::SyncAccepted;
use crate::state::ApiState;

/// The webhook body, as the workflow document defines it (documentation only: the route
/// reads the raw bytes and core validates them).
#[derive(Debug, ToSchema)]
pub struct WebhookPayload {
    /// Always `fossa.scan.completed`.
    #[schema(example = "fossa.scan.completed")]
    pub event: String,
    /// When the scan completed (ISO 8601); the signed timestamp when absent.
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
    /// The repository.
    pub repository: WebhookRepository,
    /// The scan.
    pub scan: WebhookScan,
    /// The CI run.
    pub pipeline: Option<WebhookPipeline>,
    /// Who triggered it.
    pub metadata: Option<WebhookMetadata>,
}

/// `repository` of the webhook body.
#[derive(Debug, ToSchema)]
pub struct WebhookRepository {
    /// Name; derived from the URL when absent.
    pub name: Option<String>,
    /// Full repository URL, used for matching.
    #[schema(example = "https://github.com/acme/payment-service")]
    pub url: String,
    /// `github`, `gitlab`, `bitbucket`, `azure`.
    pub provider: Option<String>,
}

/// `scan` of the webhook body.
#[derive(Debug, ToSchema)]
pub struct WebhookScan {
    /// Git commit SHA.
    pub revision: String,
    /// Branch.
    pub branch: String,
    /// `passed` or `failed`.
    #[schema(example = "failed")]
    pub status: String,
    /// Whether policy violations exist.
    pub issues_found: Option<bool>,
}

/// `pipeline` of the webhook body.
#[derive(Debug, ToSchema)]
pub struct WebhookPipeline {
    /// CI run id.
    pub id: Option<String>,
    /// Link to the run.
    pub url: Option<String>,
    /// CI system.
    pub provider: Option<String>,
}

/// `metadata` of the webhook body.
#[derive(Debug, ToSchema)]
pub struct WebhookMetadata {
    /// `push`, `schedule`, …
    pub triggered_by: Option<String>,
    /// Who pushed.
    pub actor: Option<String>,
}

/// Receives a signed scan-completed webhook and queues a sync.
#[utoipa::path(
    post,
    path = "/api/webhooks/fossa-scan",
    tag = "webhooks",
    request_body(content = WebhookPayload, content_type = "application/json"),
    params(
        ("X-Webhook-Signature" = String, Header, description = "`sha256=<hex>` HMAC-SHA256 of `{timestamp}.{body}`"),
        ("X-Webhook-Timestamp" = String, Header, description = "Unix seconds; within 300 s of the server's clock"),
        ("X-Webhook-Source" = Option<String>, Header, description = "CI system: azure, gitlab, github, …"),
    ),
    responses(
        (status = 202, description = "Sync queued (or, for a redelivery, queued before)", body = SyncAccepted),
        (status = 400, description = "Invalid payload; `details` lists every field error", body = ErrorBody),
        (status = 401, description = "Invalid webhook signature", body = ErrorBody),
        (status = 404, description = "No component linked to this repository", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 429, description = "Rate limited or queue full; see `retry_after` and `Retry-After`", body = ErrorBody),
        (status = 503, description = "Storage unavailable; nothing was queued", body = ErrorBody),
    ),
    security(()),
)]
pub(crate) async fn receive(State(api): State<ApiState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let source = source_ip(peer, &parts.headers, api.trusted_proxies());

    if let Err(wait) = api.limiters().check_ip(source) {
        return rate_limited("ip", wait);
    }
    let headers = request_headers(&parts.headers);
    let limit = api.webhook_body_limit();

    if !is_json(&parts.headers) {
        let body = read_limited(body, limit).await.unwrap_or_else(Bytes::from);
        refuse(
            &api,
            RejectionKind::UnsupportedMediaType,
            body,
            headers,
            source,
        )
        .await;
        return ApiError::unsupported_media_type().into_response();
    }
    if declared_length(&parts.headers).is_some_and(|n| n > limit) {
        refuse(
            &api,
            RejectionKind::PayloadTooLarge,
            Bytes::new(),
            headers,
            source,
        )
        .await;
        return ApiError::payload_too_large(limit).into_response();
    }
    let body = match read_limited(body, limit).await {
        Ok(body) => body,
        Err(ReadError::TooLarge(prefix)) => {
            refuse(
                &api,
                RejectionKind::PayloadTooLarge,
                prefix,
                headers,
                source,
            )
            .await;
            return ApiError::payload_too_large(limit).into_response();
        }
        Err(ReadError::Broken) => {
            return ApiError::bad_request("Could not read the request body", Vec::new())
                .into_response();
        }
    };

    if let Err(wait) = check_repository(&api, &body, &headers) {
        return rate_limited("repository", wait);
    }

    let outcome = api
        .services()
        .ingest
        .receive(InboundWebhook {
            body,
            headers,
            source_ip: source,
        })
        .await;
    outcome_response(outcome)
}

/// Maps core's outcome to the answer.
pub(crate) fn outcome_response(outcome: IngestOutcome) -> Response {
    match outcome {
        IngestOutcome::Accepted(accepted) => (
            StatusCode::ACCEPTED,
            axum::Json(SyncAccepted::from(accepted)),
        )
            .into_response(),
        IngestOutcome::Invalid { message, details } => ApiError::bad_request(
            message,
            details
                .into_iter()
                .map(|d| FieldDetail::new(d.field, d.message))
                .collect(),
        )
        .into_response(),
        IngestOutcome::Unauthorized { .. } => {
            ApiError::new(StatusCode::UNAUTHORIZED, INVALID_SIGNATURE).into_response()
        }
        IngestOutcome::ComponentNotFound { .. } => {
            ApiError::not_found(NO_COMPONENT).into_response()
        }
        IngestOutcome::Overloaded { retry_after } => {
            let mut error = ApiError::too_many_requests(retry_after);
            error.set_message(IngestOutcome::OVERLOADED_MESSAGE);
            error.into_response()
        }
        IngestOutcome::Unavailable { message } => ApiError::unavailable(message).into_response(),
    }
}

fn rate_limited(limit: &'static str, wait: std::time::Duration) -> Response {
    metrics::counter!(m::HTTP_RATE_LIMITED, "limit" => limit).increment(1);
    metrics::counter!(compliance_core::metrics::WEBHOOK_RECEIVED, "outcome" => "rate_limited")
        .increment(1);
    ApiError::too_many_requests(wait).into_response()
}

async fn refuse(
    api: &ApiState,
    kind: RejectionKind,
    body: Bytes,
    headers: RequestHeaders,
    source_ip: Option<IpAddr>,
) {
    let request = InboundWebhook {
        body,
        headers,
        source_ip,
    };
    if let Err(error) = api.services().ingest.record_refusal(kind, request).await {
        tracing::warn!(%error, kind = kind.as_str(), "could not log refused webhook");
    }
}

/// Checks the repository's limit for a request whose signature verifies; unsigned or
/// unreadable requests go on to core, which refuses them.
fn check_repository(
    api: &ApiState,
    body: &[u8],
    headers: &RequestHeaders,
) -> Result<(), std::time::Duration> {
    if api.limiters().repository.is_none() {
        return Ok(());
    }
    let Some(key) = repository_key(body) else {
        return Ok(());
    };
    let services = api.services();
    if services
        .verifier
        .verify(body, headers, services.clock.now())
        .is_err()
    {
        return Ok(());
    }
    api.limiters().check_repository(&key)
}

#[derive(Deserialize)]
struct RepositoryOnly<'a> {
    #[serde(borrow)]
    repository: Option<RepositoryUrl<'a>>,
}

#[derive(Deserialize)]
struct RepositoryUrl<'a> {
    #[serde(borrow)]
    url: Option<std::borrow::Cow<'a, str>>,
}

/// The normalized repository key of a body, read without building the whole document when
/// it can be.
///
/// It must read the body as core does, or a signed body could name a repository core
/// accepts while this check sees none and skips the limit: a leading byte order mark is
/// ignored, and a duplicated key counts with its last value (serde's derive refuses
/// duplicates, so those bodies are read again as a whole document).
fn repository_key(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let url = match serde_json::from_slice::<RepositoryOnly<'_>>(body) {
        Ok(parsed) => parsed.repository?.url?.into_owned(),
        Err(_) => serde_json::from_slice::<serde_json::Value>(body)
            .ok()?
            .get("repository")?
            .get("url")?
            .as_str()?
            .to_owned(),
    };
    RepoUrl::parse(&url).ok().map(|u| u.key().to_owned())
}

/// Copies the headers core may need; credentials of other schemes never leave the HTTP layer.
fn request_headers(headers: &HeaderMap) -> RequestHeaders {
    headers
        .iter()
        .filter(|(name, _)| *name != header::AUTHORIZATION && *name != header::COOKIE)
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect()
}

/// `application/json`, with or without parameters such as `charset=utf-8`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

enum ReadError {
    /// Over the limit; the first `limit` bytes.
    TooLarge(Bytes),
    /// The client broke off.
    Broken,
}

impl From<ReadError> for Bytes {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::TooLarge(prefix) => prefix,
            ReadError::Broken => Bytes::new(),
        }
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ReadError> {
    let mut stream = body.into_data_stream();
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ReadError::Broken)?;
        if buffer.len() + chunk.len() > limit {
            let room = limit.saturating_sub(buffer.len());
            buffer.extend_from_slice(chunk.get(..room).unwrap_or_default());
            return Err(ReadError::TooLarge(buffer.freeze()));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn content_type(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn json_content_types_with_parameters_are_accepted() {
        assert!(is_json(&content_type("application/json")));
        assert!(is_json(&content_type("application/json; charset=utf-8")));
        assert!(is_json(&content_type("Application/JSON")));
        assert!(!is_json(&content_type("text/plain")));
        assert!(!is_json(&content_type("application/x-www-form-urlencoded")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn the_repository_key_is_read_from_the_body() {
        let body = br#"{"event":"x","repository":{"url":"git@github.com:Acme/Payment-Service.git"},"scan":{}}"#;
        assert_eq!(
            repository_key(body).as_deref(),
            Some("github.com/acme/payment-service")
        );
        assert_eq!(repository_key(b"{}"), None);
        assert_eq!(repository_key(b"not json"), None);
    }

    #[test]
    fn the_repository_key_is_read_as_core_reads_the_body() {
        // Core takes the last of a duplicated key and ignores a byte order mark; a body
        // spelled that way must not escape the repository's rate limit.
        let duplicated = br#"{"repository":{"url":"https://github.com/a/first"},"repository":{"url":"https://github.com/acme/payment-service"}}"#;
        assert_eq!(
            repository_key(duplicated).as_deref(),
            Some("github.com/acme/payment-service")
        );
        let inner = br#"{"repository":{"url":"https://github.com/a/first","url":"https://github.com/acme/shop"}}"#;
        assert_eq!(
            repository_key(inner).as_deref(),
            Some("github.com/acme/shop")
        );
        let bom = b"\xef\xbb\xbf{\"repository\":{\"url\":\"https://github.com/acme/shop\"}}";
        assert_eq!(repository_key(bom).as_deref(), Some("github.com/acme/shop"));
        assert_eq!(repository_key(br#"{"repository":{"url":5}}"#), None);
    }

    #[test]
    fn credentials_are_not_copied_to_core() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        h.insert("x-webhook-signature", HeaderValue::from_static("sha256=ab"));
        let copied = request_headers(&h);
        assert_eq!(copied.get("X-Webhook-Signature"), Some("sha256=ab"));
        assert_eq!(copied.get("authorization"), None);
    }

    #[tokio::test]
    async fn bodies_over_the_limit_keep_their_first_bytes() {
        let body = Body::from(vec![b'a'; 100]);
        match read_limited(body, 10).await {
            Err(ReadError::TooLarge(prefix)) => assert_eq!(prefix.len(), 10),
            _ => panic!("expected TooLarge"),
        }
        let body = Body::from(vec![b'a'; 10]);
        assert_eq!(read_limited(body, 10).await.ok().map(|b| b.len()), Some(10));
    }
}
