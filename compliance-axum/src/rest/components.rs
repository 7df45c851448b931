//! `/api/components`: the list, registration, one component and its compliance data.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use compliance_core::domain::{
    ComplianceStatus, ComponentQuery, DependencyQuery, IssueCategory, IssueQuery, IssueStatus,
    JobQuery, JobStatus, NewComponent, PageRequest, Severity, Trigger,
};
use compliance_core::ingest::RequestSyncError;
use compliance_core::{ComponentId, RepoUrl, StoreError};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::dto::{
    ComplianceView, Component, ComponentPage, DependencyPage, IssuePage, ScanPage, SyncAccepted,
    SyncJobPage,
};
use super::{existing_component, parse_id, Checks, Paging};
use crate::auth::{AdminAccess, ReadAccess};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use crate::state::ApiState;

/// Filters of the component list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComponentFilter {
    /// `UNKNOWN`, `PASSING` or `FAILING`.
    pub status: Option<String>,
    /// Text the name contains (case-insensitive).
    pub search: Option<String>,
}

/// Lists components with their current issue counts.
#[utoipa::path(
    get, path = "/api/components", tag = "components",
    params(ComponentFilter, Paging),
    responses(
        (status = 200, body = ComponentPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiQuery(filter): ApiQuery<ComponentFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<ComponentPage>, ApiError> {
    let mut checks = Checks::default();
    let query = ComponentQuery {
        status: checks.one_of(
            "status",
            filter.status.as_deref(),
            ComplianceStatus::parse,
            "UNKNOWN, PASSING, FAILING",
        ),
        search: checks.search("search", filter.search),
        page: checks.page(paging),
    };
    checks.finish()?;
    let page = api.services().stores.components.list(&query).await?;
    Ok(Json(page.into()))
}

/// What it takes to register a component.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewComponentRequest {
    /// Display name.
    #[schema(example = "payment-service")]
    pub name: String,
    /// Repository URL; one component per repository.
    #[schema(example = "https://github.com/acme/payment-service")]
    pub repository_url: String,
    /// FOSSA project locator.
    #[schema(example = "custom+48213/github.com/acme/payment-service")]
    pub fossa_locator: String,
    /// Main-line branch (default `main`).
    pub default_branch: Option<String>,
}

/// Registers a component (scope `admin`).
#[utoipa::path(
    post, path = "/api/components", tag = "components",
    request_body = NewComponentRequest,
    responses(
        (status = 201, body = Component),
        (status = 400, description = "Invalid fields; `details` lists each", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "A component is already linked to this repository", body = ErrorBody),
    ),
)]
pub(crate) async fn register(
    _access: AdminAccess,
    State(api): State<ApiState>,
    ApiJson(request): ApiJson<NewComponentRequest>,
) -> Result<(StatusCode, Json<Component>), ApiError> {
    let new = validate_new_component(request)?;
    let now = api.services().clock.now();
    match api.services().stores.components.register(new, now).await {
        Ok(component) => {
            tracing::info!(component_id = %component.id, "component registered");
            Ok((StatusCode::CREATED, Json(component.into())))
        }
        Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(
            "A component is already linked to this repository",
        )),
        Err(other) => Err(other.into()),
    }
}

fn validate_new_component(request: NewComponentRequest) -> Result<NewComponent, ApiError> {
    let mut checks = Checks::default();
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        checks.fail("name", "must be 1 to 200 characters");
    }
    let url = RepoUrl::parse(&request.repository_url);
    if let Err(error) = &url {
        checks.fail("repository_url", error.to_string());
    }
    let locator = request.fossa_locator.trim().to_owned();
    if locator.is_empty() || locator.len() > 500 || locator.contains(char::is_whitespace) {
        checks.fail(
            "fossa_locator",
            "must be 1 to 500 characters without spaces",
        );
    }
    let branch = request
        .default_branch
        .map_or_else(|| "main".to_owned(), |b| b.trim().to_owned());
    if branch.is_empty() || branch.len() > 255 {
        checks.fail("default_branch", "must be 1 to 255 characters");
    }
    checks.finish()?;
    let repository_url = url.map_err(|_| ApiError::invalid_field("repository_url", "invalid"))?;
    Ok(NewComponent {
        name,
        repository_url,
        fossa_locator: locator,
        default_branch: branch,
    })
}

/// One component.
#[utoipa::path(
    get, path = "/api/components/{id}", tag = "components",
    params(("id" = String, Path, description = "Component id (UUID)")),
    responses(
        (status = 200, body = Component),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
pub(crate) async fn get(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Component>, ApiError> {
    let id: ComponentId = parse_id("id", &id)?;
    Ok(Json(existing_component(&api, id).await?.into()))
}

/// The component page's summary: latest scan, active issues by category and severity,
/// license breakdown.
#[utoipa::path(
    get, path = "/api/components/{id}/compliance", tag = "components",
    params(("id" = String, Path, description = "Component id (UUID)")),
    responses(
        (status = 200, body = ComplianceView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
pub(crate) async fn compliance(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ComplianceView>, ApiError> {
    let id: ComponentId = parse_id("id", &id)?;
    let view = api
        .services()
        .stores
        .compliance
        .compliance_view(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Component not found"))?;
    Ok(Json(view.into()))
}

/// Filters of a component's issues.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IssueFilter {
    /// `ACTIVE` or `RESOLVED` (default both).
    pub status: Option<String>,
    /// `licensing`, `vulnerability` or `quality`.
    pub category: Option<String>,
    /// `critical`, `high`, `medium`, `low` or `unknown`.
    pub severity: Option<String>,
    /// Text the title or package name contains.
    pub search: Option<String>,
}

fn strict_severity(s: &str) -> Option<Severity> {
    let parsed = Severity::parse(s);
    (parsed.as_str() == s).then_some(parsed)
}

/// A component's issues, most severe first.
#[utoipa::path(
    get, path = "/api/components/{id}/issues", tag = "components",
    params(("id" = String, Path, description = "Component id (UUID)"), IssueFilter, Paging),
    responses(
        (status = 200, body = IssuePage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
pub(crate) async fn issues(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(filter): ApiQuery<IssueFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<IssuePage>, ApiError> {
    let id: ComponentId = parse_id("id", &id)?;
    let mut checks = Checks::default();
    let query = IssueQuery {
        status: checks.one_of(
            "status",
            filter.status.as_deref(),
            IssueStatus::parse,
            "ACTIVE, RESOLVED",
        ),
        category: checks.one_of(
            "category",
            filter.category.as_deref(),
            IssueCategory::parse,
            "licensing, vulnerability, quality",
        ),
        severity: checks.one_of(
            "severity",
            filter.severity.as_deref(),
            strict_severity,
            "critical, high, medium, low, unknown",
        ),
        search: checks.search("search", filter.search),
        page: checks.page(paging),
    };
    checks.finish()?;
    existing_component(&api, id).await?;
    let page = api
        .services()
        .stores
        .compliance
        .list_issues(id, &query)
        .await?;
    Ok(Json(page.into()))
}

/// Filters of a component's dependencies.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DependencyFilter {
    /// `true` for direct dependencies only, `false` for transitive only.
    pub direct: Option<bool>,
    /// A license the dependency carries.
    pub license: Option<String>,
    /// Text the name contains.
    pub search: Option<String>,
}

/// A component's current dependencies, by name.
#[utoipa::path(
    get, path = "/api/components/{id}/dependencies", tag = "components",
    params(("id" = String, Path, description = "Component id (UUID)"), DependencyFilter, Paging),
    responses(
        (status = 200, body = DependencyPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
pub(crate) async fn dependencies(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(filter): ApiQuery<DependencyFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<DependencyPage>, ApiError> {
    let id: ComponentId = parse_id("id", &id)?;
    let mut checks = Checks::default();
    let query = DependencyQuery {
        direct: filter.direct,
        license: checks.search("license", filter.license),
        search: checks.search("search", filter.search),
        page: checks.page(paging),
    };
    checks.finish()?;
    existing_component(&api, id).await?;
    let page = api
        .services()
        .stores
        .compliance
        .list_dependencies(id, &query)
        .await?;
    Ok(Json(page.into()))
}

/// A component's applied scans, newest first.
#[utoipa::path(
    get, path = "/api/components/{id}/scans", tag = "components",
    params(("id" = String, Path, description = "Component id (UUID)"), Paging),
    responses(
        (status = 200, body = ScanPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
pub(crate) async fn scans(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<ScanPage>, ApiError> {
    let id: ComponentId = parse_id("id", &id)?;
    let mut checks = Checks::default();
    let page: PageRequest = checks.page(paging);
    checks.finish()?;
    existing_component(&api, id).await?;
    let scans = api
        .services()
        .stores
        .compliance
        .list_scans(id, page)
        .await?;
    Ok(Json(scans.into()))
}

/// Filters of a job list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// `QUEUED`, `RUNNING`, `COMPLETED`, `FAILED` or `SUPERSEDED`.
    pub status: Option<String>,
}

/// A component's sync jobs, newest first.
#[utoipa::path(
    get, path = "/api/components/{id}/sync-jobs", tag = "sync jobs",
    params(("id" = String, Path, description = "Component id (UUID)"), JobFilter, Paging),
    responses(
        (status = 200, body = SyncJobPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
pub(crate) async fn sync_jobs(
    _access: ReadAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(filter): ApiQuery<JobFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<SyncJobPage>, ApiError> {
    let id: ComponentId = parse_id("id", &id)?;
    let mut checks = Checks::default();
    let query = JobQuery {
        component_id: Some(id),
        status: checks.one_of(
            "status",
            filter.status.as_deref(),
            JobStatus::parse,
            "QUEUED, RUNNING, COMPLETED, FAILED, SUPERSEDED",
        ),
        page: checks.page(paging),
    };
    checks.finish()?;
    existing_component(&api, id).await?;
    let jobs = api.services().stores.jobs.list_jobs(&query).await?;
    Ok(Json(jobs.into()))
}

/// Queues a MANUAL sync of the component's default branch at FOSSA's latest revision
/// (scope `admin`).
#[utoipa::path(
    post, path = "/api/components/{id}/sync", tag = "sync jobs",
    params(("id" = String, Path, description = "Component id (UUID)")),
    responses(
        (status = 202, body = SyncAccepted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
)]
pub(crate) async fn trigger_sync(
    _access: AdminAccess,
    State(api): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<SyncAccepted>), ApiError> {
    let id: ComponentId = parse_id("id", &id)?;
    match api
        .services()
        .ingest
        .request_sync(id, Trigger::Manual)
        .await
    {
        Ok(accepted) => Ok((StatusCode::ACCEPTED, Json(accepted.into()))),
        Err(RequestSyncError::ComponentNotFound(_)) => {
            Err(ApiError::not_found("Component not found"))
        }
        Err(RequestSyncError::Unavailable(error)) => Err(error.into()),
        Err(other) => {
            tracing::error!(error = %other, "manual sync failed");
            Err(ApiError::internal())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_lists_every_bad_field() {
        let error = validate_new_component(NewComponentRequest {
            name: " ".into(),
            repository_url: "nope".into(),
            fossa_locator: "has space".into(),
            default_branch: Some(String::new()),
        })
        .unwrap_err();
        let fields: Vec<&str> = error.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["name", "repository_url", "fossa_locator", "default_branch"]
        );
    }

    #[test]
    fn registration_defaults_the_branch_to_main() {
        let new = validate_new_component(NewComponentRequest {
            name: "payment-service".into(),
            repository_url: "https://github.com/acme/payment-service".into(),
            fossa_locator: "custom+1/github.com/acme/payment-service".into(),
            default_branch: None,
        })
        .unwrap();
        assert_eq!(new.default_branch, "main");
        assert_eq!(new.repository_url.key(), "github.com/acme/payment-service");
    }

    #[test]
    fn severity_filters_are_strict() {
        assert_eq!(strict_severity("high"), Some(Severity::High));
        assert_eq!(strict_severity("unknown"), Some(Severity::Unknown));
        assert_eq!(strict_severity("HIGH"), None);
        assert_eq!(strict_severity("urgent"), None);
    }
}
