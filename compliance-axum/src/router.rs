//! The route table.

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::error::{method_not_allowed, ApiError};
use crate::rest::{components, events, jobs, ops, session, system};
use crate::state::ComplianceApi;
use crate::{metrics as m, webhook, ws};

/// Every route of the API, with `api` as state. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the rate limits see the peer
/// address (see [`serve`](crate::shutdown::serve)).
///
/// | route | auth |
/// | --- | --- |
/// | `POST /api/webhooks/fossa-scan` | signature |
/// | `GET /api/components`, `GET /api/components/{id}[/compliance,/issues,/dependencies,/scans,/sync-jobs]` | read |
/// | `POST /api/components`, `POST /api/components/{id}/sync` | admin |
/// | `GET /api/sync-jobs/{id}`, `GET /api/webhook-events[/{id}]`, `GET /api/dead-letters` | read |
/// | `POST /api/webhook-events/{id}/replay`, `POST /api/dead-letters/redrive` | admin |
/// | `GET /ws` | read |
/// | `POST /api/login`, `POST /api/logout` | none (login takes a token) |
/// | `GET /healthz`, `GET /readyz`, `GET /api/openapi.json` | none |
/// | `GET /metrics` | read, or none with [`MetricsAccess::Public`](crate::MetricsAccess::Public) |
pub fn router(api: ComplianceApi) -> Router {
    let json_limit = api.json_body_limit();
    Router::new()
        // The webhook route reads its body itself, with its own limit and a JSON 413.
        .route("/api/webhooks/fossa-scan", post(webhook::receive))
        .route(
            "/api/components",
            get(components::list).post(components::register),
        )
        .route("/api/components/{id}", get(components::get))
        .route(
            "/api/components/{id}/compliance",
            get(components::compliance),
        )
        .route("/api/components/{id}/issues", get(components::issues))
        .route(
            "/api/components/{id}/dependencies",
            get(components::dependencies),
        )
        .route("/api/components/{id}/scans", get(components::scans))
        .route("/api/components/{id}/sync-jobs", get(components::sync_jobs))
        .route("/api/components/{id}/sync", post(components::trigger_sync))
        .route("/api/sync-jobs/{id}", get(jobs::get))
        .route("/api/webhook-events", get(events::list))
        .route("/api/webhook-events/{id}", get(events::get))
        .route("/api/webhook-events/{id}/replay", post(ops::replay))
        .route("/api/dead-letters", get(ops::dead_letters))
        .route("/api/dead-letters/redrive", post(ops::redrive))
        .route("/api/login", post(session::login))
        .route("/api/logout", post(session::logout))
        .route("/api/openapi.json", get(system::openapi))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route_layer(middleware::from_fn(m::track))
        .layer(DefaultBodyLimit::max(json_limit))
        // One span per request (method and path; never headers, which carry credentials).
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            tracing::debug_span!("http", method = %request.method(), path = request.uri().path())
        }))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}

async fn route_not_found() -> ApiError {
    metrics::counter!(m::HTTP_REQUESTS, "method" => "any", "route" => "unmatched", "status" => "404")
        .increment(1);
    ApiError::not_found("No such route")
}
