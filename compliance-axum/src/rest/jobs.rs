//! `/api/sync-jobs/{id}`.

use axum::extract::State;
use axum::Json;
use compliance_core::SyncJobId;

use super::dto::SyncJob;
use super::parse_id;
use crate::auth::ReadAccess;
use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::state::ApiState;

/// One sync job.
#[utoipa::path(
    get, path = "/api/sync-jobs/{id}", tag = "sync jobs",
    params(("id" = String, Path, description = "Sync job id (the `sync_id` of a 202)")),
    responses(
        (status = 200, body = SyncJob),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
pub(crate) async fn get(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SyncJob>, ApiError> {
    let id: SyncJobId = parse_id("id", &id)?;
    let job = api
        .services()
        .stores
        .jobs
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Sync job not found"))?;
    Ok(Json(job.into()))
}
