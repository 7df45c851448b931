//! `/api/webhook-events`: the audit trail of webhook requests.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use compliance_core::domain::{EventStatus, WebhookEventQuery};
use compliance_core::{ComponentId, WebhookEventId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::{WebhookEvent, WebhookEventPage};
use super::{parse_id, Checks, Paging};
use crate::auth::ReadAccess;
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::state::ApiState;

/// Filters of the event log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// `RECEIVED`, `QUEUED`, `PROCESSED` or `FAILED`.
    pub status: Option<String>,
    /// Only events matched to this component.
    pub component_id: Option<String>,
    /// Only events received at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only events received before this time (RFC 3339).
    pub to: Option<String>,
}

fn time(checks: &mut Checks, field: &str, value: Option<&str>) -> Option<DateTime<Utc>> {
    let value = value?;
    match DateTime::parse_from_rfc3339(value) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            checks.fail(
                field,
                "must be an RFC 3339 time, for example 2025-01-15T10:35:00Z",
            );
            None
        }
    }
}

/// Logged webhook requests, newest first.
#[utoipa::path(
    get, path = "/api/webhook-events", tag = "webhook events",
    params(EventFilter, Paging),
    responses(
        (status = 200, body = WebhookEventPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiQuery(filter): ApiQuery<EventFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<WebhookEventPage>, ApiError> {
    let mut checks = Checks::default();
    let component_id = match filter.component_id.as_deref() {
        Some(raw) => match raw.parse::<ComponentId>() {
            Ok(id) => Some(id),
            Err(_) => {
                checks.fail("component_id", "must be a UUID");
                None
            }
        },
        None => None,
    };
    let from = time(&mut checks, "from", filter.from.as_deref());
    let to = time(&mut checks, "to", filter.to.as_deref());
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            checks.fail("to", "must not be before `from`");
        }
    }
    let query = WebhookEventQuery {
        status: checks.one_of(
            "status",
            filter.status.as_deref(),
            EventStatus::parse,
            "RECEIVED, QUEUED, PROCESSED, FAILED",
        ),
        component_id,
        from,
        to,
        page: checks.page(paging),
    };
    checks.finish()?;
    let page = api.services().stores.events.list_events(&query).await?;
    Ok(Json(page.into()))
}

/// One logged webhook request.
#[utoipa::path(
    get, path = "/api/webhook-events/{id}", tag = "webhook events",
    params(("id" = String, Path, description = "Webhook event id (UUID)")),
    responses(
        (status = 200, body = WebhookEvent),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
pub(crate) async fn get(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookEvent>, ApiError> {
    let id: WebhookEventId = parse_id("id", &id)?;
    let event = api
        .services()
        .stores
        .events
        .get_event(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook event not found"))?;
    Ok(Json(event.into()))
}
