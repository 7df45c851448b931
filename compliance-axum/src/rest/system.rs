//! `/healthz`, `/readyz`, `/metrics` and `/api/openapi.json`.
//!
//! Health and readiness are public (probes carry no credentials) and reveal only whether
//! each dependency answered. The OpenAPI document is public too: it describes the API's
//! shape, not its data. `/metrics` needs a `read` token unless the application chose
//! [`MetricsAccess::Public`].

use std::future::Future;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use compliance_core::domain::{ComponentQuery, PageRequest};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiState, MetricsAccess};

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(
    get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health)),
    security(()),
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness and the result of each check.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    /// The store's check: `ok`, `error` or `timeout`.
    pub store: &'static str,
    /// The queue's check: `ok`, `error` or `timeout`.
    pub queue: &'static str,
}

async fn check<F, T, E>(timeout: Duration, what: &'static str, call: F) -> &'static str
where
    F: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(_)) => "ok",
        Ok(Err(error)) => {
            tracing::warn!(%error, check = what, "readiness check failed");
            "error"
        }
        Err(_) => {
            tracing::warn!(check = what, "readiness check timed out");
            "timeout"
        }
    }
}

/// The store and the queue answer.
#[utoipa::path(
    get, path = "/readyz", tag = "system",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "A dependency did not answer", body = Readiness),
    ),
    security(()),
)]
pub(crate) async fn readyz(State(api): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    let services = api.services();
    let timeout = api.readiness_timeout();
    let probe = ComponentQuery {
        page: PageRequest::new(0, 1),
        ..ComponentQuery::default()
    };
    let (store, queue) = tokio::join!(
        check(timeout, "store", services.stores.components.list(&probe)),
        check(timeout, "queue", services.queue.stats()),
    );
    let ready = store == "ok" && queue == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let report = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        store,
        queue,
    };
    (status, Json(report))
}

/// Prometheus text exposition.
#[utoipa::path(
    get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No metrics recorder configured", body = ErrorBody),
    ),
)]
pub(crate) async fn metrics(State(api): State<ApiState>, headers: HeaderMap) -> Response {
    if api.metrics_access() == MetricsAccess::Token {
        match api.authenticator().authenticate(&headers) {
            Some(scope) if scope.allows(Scope::Read) => {}
            _ => return ApiError::unauthorized().into_response(),
        }
    }
    let Some(handle) = api.metrics_handle() else {
        return ApiError::not_found("Metrics are not enabled").into_response();
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// The OpenAPI 3 document of this API.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")),
    security(()),
)]
pub(crate) async fn openapi() -> Response {
    let document = crate::openapi::ApiDoc::openapi();
    match document.to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(error) => {
            tracing::error!(%error, "could not serialize the openapi document");
            ApiError::internal().into_response()
        }
    }
}
