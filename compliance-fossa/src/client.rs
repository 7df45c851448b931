//! [`FossaClient`]: the three FOSSA reads a sync makes, and the scan-source port on top.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::domain::{Dependency, Issue, IssueCategory, ProjectInfo, ScanSnapshot};
use compliance_core::ports::{FetchRequest, ScanSource};
use compliance_core::ScanSourceError;
use tracing::Instrument;

use crate::config::{ConfigError, FossaConfig};
use crate::error::FossaError;
use crate::http::{Answer, Http, DEPENDENCIES, ISSUES, PROJECTS};
use crate::locator::{self, encode_segment};
use crate::mapping::{self, DependencySet};
use crate::model::{
    decode_dependencies_page, decode_issues_page, decode_project_list, ProjectIssueCounts,
};

/// A FOSSA REST client; implements core's [`ScanSource`] port.
///
/// Cheap to clone (the HTTP pool and the concurrency limit are shared).
#[derive(Clone)]
pub struct FossaClient {
    http: Arc<Http>,
}

impl std::fmt::Debug for FossaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FossaClient")
            .field("config", self.http.config())
            .finish_non_exhaustive()
    }
}

/// A project as FOSSA's v2 project list describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    /// The metadata that goes into a snapshot.
    pub info: ProjectInfo,
    /// The bare revision FOSSA analysed last.
    pub latest_revision: Option<String>,
    /// `running`, `succeeded` or `failed`.
    pub latest_build_status: Option<String>,
    /// FOSSA's own counts of active issues in the latest revision.
    pub issue_counts: Option<ProjectIssueCounts>,
}

/// A revision's dependencies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// Resolved dependencies, in FOSSA's order, one per locator.
    pub items: Vec<Dependency>,
    /// `NULL` placeholders skipped.
    pub unresolved: u32,
}

impl FossaClient {
    /// A client with `config`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the token cannot go into a header or the HTTP client cannot be
    /// built.
    pub fn new(config: FossaConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            http: Arc::new(Http::new(Arc::new(config))?),
        })
    }

    /// A client configured from `FOSSA_API_KEY` and `FOSSA_BASE_URL`.
    ///
    /// # Errors
    ///
    /// As [`FossaConfig::from_env`] and [`FossaClient::new`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(FossaConfig::from_env()?)
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &FossaConfig {
        self.http.config()
    }

    /// `GET /api/v2/projects?locators[]=…&count=1`.
    ///
    /// # Errors
    ///
    /// [`FossaError::NotFound`] when FOSSA lists no project with that locator; the other
    /// kinds as for every call.
    pub async fn project(&self, project_locator: &str) -> Result<Project, FossaError> {
        let what = format!("project {project_locator}");
        let query = [
            ("locators[]", project_locator.to_owned()),
            ("count", "1".to_owned()),
        ];
        let body = match self.http.get(PROJECTS, PROJECTS, &query).await {
            Ok(Answer::Ok(body)) => body,
            Ok(Answer::Accepted {
                message,
                retry_after,
            }) => return Err(not_ready(PROJECTS, &what, message, retry_after)),
            Err(e) => return Err(e.about(&what)),
        };

        let list = decode_project_list(&body)?;
        let projects = list.projects.ok_or_else(|| FossaError::Decode {
            endpoint: PROJECTS,
            detail: "field `projects` is missing".to_owned(),
        })?;
        let raw = projects
            .into_iter()
            .find(|p| p.id == project_locator)
            .ok_or_else(|| FossaError::NotFound {
                endpoint: PROJECTS,
                what,
                detail: Some("FOSSA lists no project with this locator".to_owned()),
            })?;

        Ok(Project {
            info: mapping::project_info(&raw),
            latest_revision: mapping::latest_revision(&raw),
            latest_build_status: raw.latest_build_status,
            issue_counts: raw.issues,
        })
    }

    /// Every active issue of `category` in a revision: `GET /api/v2/issues`, page by page
    /// until a short page.
    ///
    /// # Errors
    ///
    /// [`FossaError::NotReady`] when FOSSA answers 202 (analysis still running), never an
    /// empty list; the other kinds as for every call.
    pub async fn issues(
        &self,
        project_locator: &str,
        revision: &str,
        category: IssueCategory,
    ) -> Result<Vec<Issue>, FossaError> {
        let revision = locator::bare_revision(project_locator, revision);
        let what = format!(
            "{} issues of revision {}",
            category.as_str(),
            locator::revision_locator(project_locator, revision)
        );
        let count = self.config().issues_count();
        let page_len = usize::try_from(count).unwrap_or(usize::MAX);
        let mut seen = HashSet::new();
        let mut issues = Vec::new();

        for page in 1..=self.config().max_pages {
            let query = [
                ("category", category.as_str().to_owned()),
                ("scope[type]", "project".to_owned()),
                ("scope[id]", project_locator.to_owned()),
                ("scope[revision]", revision.to_owned()),
                ("status", "active".to_owned()),
                ("count", count.to_string()),
                ("page", page.to_string()),
            ];
            let body = match self.http.get(ISSUES, ISSUES, &query).await {
                Ok(Answer::Ok(body)) => body,
                Ok(Answer::Accepted {
                    message,
                    retry_after,
                }) => return Err(not_ready(ISSUES, &what, message, retry_after)),
                Err(e) => return Err(e.about(&what)),
            };

            // A 200 without the list is a broken answer, not "no issues": reading it as
            // empty would resolve every open issue.
            let raw = decode_issues_page(&body)?
                .issues
                .ok_or_else(|| FossaError::Decode {
                    endpoint: ISSUES,
                    detail: format!("field `issues` is missing on page {page}"),
                })?;
            let received = raw.len();
            for issue in raw {
                // Paging can shift while FOSSA updates; keep the first sighting.
                if seen.insert(issue.id.clone()) {
                    issues.push(mapping::issue(category, issue, project_locator));
                }
            }
            tracing::trace!(category = category.as_str(), page, received, "issues page");
            // Limitation: the body has no total, so a short page is taken as the last one.
            // That holds while FOSSA honours `count` up to 1000 as it documents; a server
            // capping pages lower without saying so would end the list early.
            if received < page_len {
                return Ok(issues);
            }
        }
        Err(FossaError::EndlessPaging {
            endpoint: ISSUES,
            pages: self.config().max_pages,
        })
    }

    /// Every dependency of a revision: `GET /api/revisions/{P$R}/dependencies`, page by page
    /// until a short page. Only one page of raw JSON is held at a time.
    ///
    /// # Errors
    ///
    /// [`FossaError::InStream`] or [`FossaError::Decode`] when a 200 body carries an
    /// in-stream error or stops early (never a short list); the other kinds as for every call.
    pub async fn dependencies(
        &self,
        project_locator: &str,
        revision: &str,
    ) -> Result<Dependencies, FossaError> {
        let revision = locator::bare_revision(project_locator, revision);
        let revision_locator = locator::revision_locator(project_locator, revision);
        let what = format!("revision {revision_locator}");
        let path = format!(
            "/api/revisions/{}/dependencies",
            encode_segment(&revision_locator)
        );
        let limit = self.config().dependencies_limit();
        let page_len = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut set = DependencySet::new();
        let mut offset: usize = 0;

        for _ in 0..self.config().max_pages {
            let query = [
                ("include_ignored", "false".to_owned()),
                ("limit", limit.to_string()),
                ("offset", offset.to_string()),
            ];
            let body = match self.http.get(DEPENDENCIES, &path, &query).await {
                Ok(Answer::Ok(body)) => body,
                Ok(Answer::Accepted {
                    message,
                    retry_after,
                }) => return Err(not_ready(DEPENDENCIES, &what, message, retry_after)),
                Err(e) => return Err(e.about(&what)),
            };

            let raw = decode_dependencies_page(&body)?;
            let received = raw.len();
            for dependency in &raw {
                set.add(dependency);
            }
            tracing::trace!(offset, received, "dependencies page");
            // Limitation: as for issues, a short page ends the list; FOSSA documents clamping
            // `limit` to 25..=100, and the client never asks for more than 100.
            if received < page_len {
                let (items, unresolved) = set.into_parts();
                return Ok(Dependencies { items, unresolved });
            }
            offset += received;
        }
        Err(FossaError::EndlessPaging {
            endpoint: DEPENDENCIES,
            pages: self.config().max_pages,
        })
    }

    /// Project, issues of every category and dependencies of one revision (`None`: the
    /// project's latest analysed revision). The four lists are fetched concurrently within
    /// the client's concurrency limit; any failure fails the whole snapshot.
    ///
    /// # Errors
    ///
    /// The first error any call met.
    pub async fn snapshot(
        &self,
        project_locator: &str,
        revision: Option<&str>,
    ) -> Result<ScanSnapshot, FossaError> {
        let project = self.project(project_locator).await?;
        let revision = match revision.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => locator::bare_revision(project_locator, r).to_owned(),
            None => project
                .latest_revision
                .clone()
                .ok_or_else(|| FossaError::NotFound {
                    endpoint: PROJECTS,
                    what: format!("an analysed revision of project {project_locator}"),
                    detail: Some("the project has no latest revision".to_owned()),
                })?,
        };

        // Limitation: FOSSA's 202 on the issues call is the only "not ready" signal used;
        // `latestBuildStatus: running` describes the latest revision, which may not be ours.
        // Each of the four lists holds at most one raw page at a time, so a snapshot holds up
        // to four pages (bounded by `max_page_bytes`) besides the mapped result.
        let (licensing, vulnerability, quality, dependencies) = tokio::try_join!(
            self.issues(project_locator, &revision, IssueCategory::Licensing),
            self.issues(project_locator, &revision, IssueCategory::Vulnerability),
            self.issues(project_locator, &revision, IssueCategory::Quality),
            self.dependencies(project_locator, &revision),
        )?;

        let mut issues = licensing;
        issues.extend(vulnerability);
        issues.extend(quality);
        Ok(ScanSnapshot {
            project: project.info,
            revision,
            issues,
            dependencies: dependencies.items,
            unresolved_dependencies: dependencies.unresolved,
        })
    }
}

#[async_trait]
impl ScanSource for FossaClient {
    async fn fetch(&self, request: &FetchRequest) -> Result<ScanSnapshot, ScanSourceError> {
        let span = tracing::info_span!(
            "fossa_fetch",
            component_id = %request.component_id,
            locator = %request.locator,
            revision = request.revision.as_deref().unwrap_or("latest"),
        );
        async {
            let snapshot = self
                .snapshot(&request.locator, request.revision.as_deref())
                .await
                .map_err(|e| {
                    tracing::debug!(error = %e, "fossa fetch failed");
                    ScanSourceError::from(e)
                })?;
            tracing::debug!(
                issues = snapshot.issues.len(),
                dependencies = snapshot.dependencies.len(),
                unresolved = snapshot.unresolved_dependencies,
                "fossa fetch complete"
            );
            Ok(snapshot)
        }
        .instrument(span)
        .await
    }
}

fn not_ready(
    endpoint: &'static str,
    what: &str,
    message: Option<String>,
    retry_after: Option<std::time::Duration>,
) -> FossaError {
    FossaError::NotReady {
        endpoint,
        what: what.to_owned(),
        message: message.unwrap_or_else(|| "analysis in-progress".to_owned()),
        retry_after,
    }
}
