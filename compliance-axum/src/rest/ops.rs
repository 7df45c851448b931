//! The operator's repairs: replay a logged webhook, list and redrive dead letters.
//!
//! # Replay (`POST /api/webhook-events/{id}/replay`)
//!
//! Re-runs what an accepted webhook asked for: a new `MANUAL` job for the same component,
//! revision, branch and scan time as the event's job, linked to the event (so the event's
//! status follows the new job). The signed request itself cannot be re-verified (its timestamp
//! has expired), so only events that were accepted, and therefore verified, can be replayed;
//! others answer 409. The store's ordering rules apply as for any job: if newer data is
//! already applied, the job is created `SUPERSEDED` and the answer says so.
//!
//! # Redrive (`POST /api/dead-letters/redrive`)
//!
//! A dead-lettered job is usually `FAILED` in the store, and final states never change; so a
//! redrive queues a new `MANUAL` job copying the dead one (component, revision, branch, scan
//! time, event) and then takes the dead letter off the list. A dead letter whose job is not
//! final (dead-lettered by the queue while the store still has it pending) is simply made
//! ready again. `{"job_id": …}` redrives one; `{"all": true}` redrives every dead letter (at
//! most 1000 per call), optionally only those of `component_id`.
//!
// Limitation: these requeue through the store and queue ports here because core's
// `IngestService::request_sync` takes no revision; the same logic could move into core.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use compliance_core::domain::{JobStatus, NewSyncJob, PageRequest, Trigger};
use compliance_core::ports::QueuePlacement;
use compliance_core::{ComponentId, SyncJobId, WebhookEventId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::dto::{ComponentRef, DeadLetterEntry, SyncAccepted};
use super::{existing_component, parse_id};
use crate::auth::{AdminAccess, ReadAccess};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use crate::state::ApiState;

/// What a requeued job copies.
struct Template {
    component_id: ComponentId,
    revision: Option<String>,
    branch: String,
    scan_completed_at: Option<compliance_core::Timestamp>,
    webhook_event_id: Option<WebhookEventId>,
}

/// Creates a MANUAL job from `template`, enqueues it when the queue is external, and
/// answers as a 202 body.
async fn requeue(api: &ApiState, template: Template) -> Result<SyncAccepted, ApiError> {
    let services = api.services();
    let component = existing_component(api, template.component_id).await?;
    let now = services.clock.now();
    let job = NewSyncJob {
        id: SyncJobId::new(),
        component_id: component.id,
        trigger: Trigger::Manual,
        webhook_event_id: template.webhook_event_id,
        revision: template.revision,
        branch: template.branch,
        scan_completed_at: template.scan_completed_at,
        queued_at: now,
    };
    let placement = services.queue.placement();
    let created = services.stores.jobs.create_job(job, placement).await?;
    if created.job.status == JobStatus::Queued {
        metrics::counter!(compliance_core::metrics::SYNC_JOB_QUEUED, "trigger" => "manual")
            .increment(1);
        if placement == QueuePlacement::External {
            if let Err(error) = services.queue.enqueue(created.job.id, Duration::ZERO).await {
                // The job is stored QUEUED; the sweeper enqueues it later.
                tracing::warn!(%error, sync_job_id = %created.job.id, "could not enqueue requeued job");
            }
        }
    }
    tracing::info!(sync_job_id = %created.job.id, component_id = %component.id, "job requeued");

    let ingest = &services.ingest;
    let wait = ingest
        .durations()
        .estimate(created.jobs_ahead, ingest.config().default_sync_estimate);
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
    Ok(SyncAccepted {
        sync_id: created.job.id.as_uuid(),
        status: created.job.status.as_str().to_ascii_lowercase(),
        component: ComponentRef {
            id: component.id.as_uuid(),
            name: component.name,
        },
        estimated_completion: now.checked_add_signed(wait).unwrap_or(now),
        webhook_event_id: None,
        duplicate: false,
    })
}

/// Re-runs an accepted webhook event as a new MANUAL job (scope `admin`); see the module
/// docs for the rules.
#[utoipa::path(
    post, path = "/api/webhook-events/{id}/replay", tag = "operations",
    params(("id" = String, Path, description = "Webhook event id (UUID)")),
    responses(
        (status = 202, body = SyncAccepted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The event was not accepted, so it cannot be replayed", body = ErrorBody),
    ),
)]
pub(crate) async fn replay(
    _access: AdminAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<SyncAccepted>), ApiError> {
    let id: WebhookEventId = parse_id("id", &id)?;
    let stores = &api.services().stores;
    let event = stores
        .events
        .get_event(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook event not found"))?;
    let not_replayable = || ApiError::conflict("Only accepted webhook events can be replayed");
    let (Some(component_id), true) = (event.component_id, event.signature_valid) else {
        return Err(not_replayable());
    };
    let job = match event.sync_job_id {
        Some(job_id) => stores.jobs.get_job(job_id).await?,
        None => None,
    };
    let template = match job {
        Some(job) => Template {
            component_id,
            revision: job.revision,
            branch: job.branch,
            scan_completed_at: job.scan_completed_at,
            webhook_event_id: Some(event.id),
        },
        // The job was pruned: fall back to what the event recorded.
        None => Template {
            component_id,
            revision: event.revision,
            branch: event.branch.ok_or_else(not_replayable)?,
            scan_completed_at: None,
            webhook_event_id: Some(event.id),
        },
    };
    let accepted = requeue(&api, template).await?;
    tracing::info!(webhook_event_id = %event.id, sync_job_id = %accepted.sync_id, "event replayed");
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// How many dead letters to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterLimit {
    /// At most this many, newest first (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// Dead-lettered jobs, newest first.
#[utoipa::path(
    get, path = "/api/dead-letters", tag = "operations",
    params(DeadLetterLimit),
    responses(
        (status = 200, body = Vec<DeadLetterEntry>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
)]
pub(crate) async fn dead_letters(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiQuery(query): ApiQuery<DeadLetterLimit>,
) -> Result<Json<Vec<DeadLetterEntry>>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > PageRequest::MAX_LIMIT {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let dead = api.services().queue.dead_letters(limit).await?;
    Ok(Json(dead.into_iter().map(Into::into).collect()))
}

/// Which dead letters to redrive.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// One dead-lettered job.
    pub job_id: Option<Uuid>,
    /// Every dead letter (at most 1000 per call).
    pub all: Option<bool>,
    /// With `all`: only dead letters of this component.
    pub component_id: Option<Uuid>,
}

/// One redriven dead letter.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redriven {
    /// The dead-lettered job.
    pub job_id: Uuid,
    /// The job that will run: a new MANUAL copy, or the same job when it was not final.
    pub sync_id: Uuid,
    /// The status of that job, lower case.
    pub status: String,
}

/// The result of a redrive.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedriveResult {
    /// What was redriven.
    pub redriven: Vec<Redriven>,
    /// Dead letters that could not be redriven, with the reason.
    pub failed: Vec<RedriveFailure>,
}

/// A dead letter that could not be redriven.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedriveFailure {
    /// The dead-lettered job.
    pub job_id: Uuid,
    /// Why.
    pub error: String,
}

/// Redrives one dead letter or all of them (scope `admin`); see the module docs.
#[utoipa::path(
    post, path = "/api/dead-letters/redrive", tag = "operations",
    request_body = RedriveRequest,
    responses(
        (status = 200, body = RedriveResult),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No dead letter for this job", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
)]
pub(crate) async fn redrive(
    _access: AdminAccess,
    State(api): State<ApiState>,
    ApiJson(request): ApiJson<RedriveRequest>,
) -> Result<Json<RedriveResult>, ApiError> {
    let all = request.all.unwrap_or(false);
    let targets: Vec<SyncJobId> = match (request.job_id, all) {
        (Some(job), false) if request.component_id.is_none() => {
            let job = SyncJobId::from_uuid(job);
            let dead = api
                .services()
                .queue
                .dead_letters(PageRequest::MAX_LIMIT)
                .await?;
            if !dead.iter().any(|d| d.job_id == job) {
                return Err(ApiError::not_found("No dead letter for this job"));
            }
            vec![job]
        }
        (None, true) => {
            let dead = api
                .services()
                .queue
                .dead_letters(PageRequest::MAX_LIMIT)
                .await?;
            let mut targets = Vec::with_capacity(dead.len());
            for letter in dead {
                if let Some(component) = request.component_id {
                    let job = api.services().stores.jobs.get_job(letter.job_id).await?;
                    if job.is_none_or(|j| j.component_id.as_uuid() != component) {
                        continue;
                    }
                }
                targets.push(letter.job_id);
            }
            targets
        }
        _ => {
            return Err(ApiError::bad_request(
                "Give either `job_id`, or `all: true` with an optional `component_id`",
                Vec::new(),
            ))
        }
    };

    let mut result = RedriveResult {
        redriven: Vec::new(),
        failed: Vec::new(),
    };
    for job_id in targets {
        match redrive_one(&api, job_id).await {
            Ok(done) => result.redriven.push(done),
            Err(error) => result.failed.push(RedriveFailure {
                job_id: job_id.as_uuid(),
                error: error.message().to_owned(),
            }),
        }
    }
    Ok(Json(result))
}

async fn redrive_one(api: &ApiState, dead: SyncJobId) -> Result<Redriven, ApiError> {
    let services = api.services();
    let job = services.stores.jobs.get_job(dead).await?;
    let redriven = match job {
        Some(job) if job.status.is_final() => {
            let accepted = requeue(
                api,
                Template {
                    component_id: job.component_id,
                    revision: job.revision,
                    branch: job.branch,
                    scan_completed_at: job.scan_completed_at,
                    webhook_event_id: job.webhook_event_id,
                },
            )
            .await?;
            // Takes the entry off the dead-letter list; the worker acknowledges it as
            // finished. `false` means another caller already did.
            services.queue.redrive(dead).await?;
            Redriven {
                job_id: dead.as_uuid(),
                sync_id: accepted.sync_id,
                status: accepted.status,
            }
        }
        Some(job) => {
            if !services.queue.redrive(dead).await? {
                return Err(ApiError::not_found("No dead letter for this job"));
            }
            Redriven {
                job_id: dead.as_uuid(),
                sync_id: dead.as_uuid(),
                status: job.status.as_str().to_ascii_lowercase(),
            }
        }
        None => {
            return Err(ApiError::not_found(
                "The dead-lettered job no longer exists",
            ))
        }
    };
    tracing::info!(dead_job_id = %dead, sync_job_id = %redriven.sync_id, "dead letter redriven");
    Ok(redriven)
}
