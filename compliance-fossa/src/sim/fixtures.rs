//! The sample FOSSA responses shipped with the crate, and loading response bodies of that
//! shape into the simulator so it serves them back.
//!
//! All data in the bundled files is invented: organization `48213`, project
//! [`PROJECT`], revision [`REVISION`], 7 issues, 13 dependencies and one `NULL` placeholder.

use serde_json::Value;

use super::model::{
    Analysis, SimDependency, SimError, SimIssue, SimProject, SimRevision, SimState,
};
use crate::locator;
use compliance_core::domain::IssueCategory;

/// The bundled project's locator.
pub const PROJECT: &str = "custom+48213/github.com/acme-corp/payments-api";
/// The bundled project's revision.
pub const REVISION: &str = "c41d9e0b7a3f52e8d16b4a09f7e2c3d8b5a6f1e4";

/// 200 of `GET /api/v2/projects?locators[]=…`.
pub const PROJECT_V2_LIST: &str = include_str!("../../fixtures/project_v2_list.json");
/// 200 of `GET /api/projects/{locator}` (v1; not served, kept for reference).
pub const PROJECT_V1: &str = include_str!("../../fixtures/project_v1.json");
/// 200 of `GET /api/v2/issues?category=licensing…`.
pub const ISSUES_LICENSING: &str = include_str!("../../fixtures/issues_licensing.json");
/// 200 of `GET /api/v2/issues?category=vulnerability…`.
pub const ISSUES_VULNERABILITY: &str = include_str!("../../fixtures/issues_vulnerability.json");
/// 200 of `GET /api/v2/issues?category=quality…`.
pub const ISSUES_QUALITY: &str = include_str!("../../fixtures/issues_quality.json");
/// 202 of `GET /api/v2/issues` while FOSSA analyses.
pub const ISSUES_ANALYZING_202: &str = include_str!("../../fixtures/issues_analyzing_202.json");
/// 200 of `GET /api/v2/issues/statuses?category=licensing…`.
pub const ISSUE_STATUSES_LICENSING: &str =
    include_str!("../../fixtures/issue_statuses_licensing.json");
/// 200 of `GET /api/revisions/{locator}/dependencies`.
pub const DEPENDENCIES_V1: &str = include_str!("../../fixtures/dependencies_v1.json");
/// FOSSA's 404 body for an unknown project.
pub const ERROR_PROJECT_NOT_FOUND_404: &str =
    include_str!("../../fixtures/error_project_not_found_404.json");
/// FOSSA's 401 body for a bad token.
pub const ERROR_UNAUTHORIZED_401: &str = include_str!("../../fixtures/error_unauthorized_401.json");

/// Response bodies describing one project and one revision.
#[derive(Clone, Copy, Debug)]
pub struct FixtureSet<'a> {
    /// A `GET /api/v2/projects` body; its first project is loaded.
    pub project_list: &'a str,
    /// A licensing issues body.
    pub issues_licensing: &'a str,
    /// A vulnerability issues body.
    pub issues_vulnerability: &'a str,
    /// A quality issues body.
    pub issues_quality: &'a str,
    /// A v1 dependencies body.
    pub dependencies: &'a str,
}

impl FixtureSet<'static> {
    /// The files shipped with the crate.
    #[must_use]
    pub fn bundled() -> Self {
        Self {
            project_list: PROJECT_V2_LIST,
            issues_licensing: ISSUES_LICENSING,
            issues_vulnerability: ISSUES_VULNERABILITY,
            issues_quality: ISSUES_QUALITY,
            dependencies: DEPENDENCIES_V1,
        }
    }
}

impl SimState {
    /// Loads the bundled fixtures; returns the project locator ([`PROJECT`]).
    ///
    /// # Errors
    ///
    /// Never for the bundled files; [`SimError::Fixture`] if they were edited badly.
    pub fn load_bundled_fixtures(&self) -> Result<String, SimError> {
        self.load_fixtures(&FixtureSet::bundled())
    }

    /// Loads a project, its latest revision, its issues and its dependencies from FOSSA
    /// response bodies, so the simulator serves those objects back; returns the locator.
    ///
    /// # Errors
    ///
    /// [`SimError::Fixture`] when a body does not have FOSSA's shape.
    pub fn load_fixtures(&self, set: &FixtureSet<'_>) -> Result<String, SimError> {
        let list = parse("project list", set.project_list)?;
        let project = list
            .get("projects")
            .and_then(Value::as_array)
            .and_then(|p| p.first())
            .ok_or_else(|| fixture_error("project list", "no project"))?;
        let text = |key: &str| project.get(key).and_then(Value::as_str).map(str::to_owned);
        let time = |key: &str| {
            text(key)
                .and_then(|t| crate::model::parse_timestamp(&t))
                .unwrap_or_default()
        };

        let locator = text("id").ok_or_else(|| fixture_error("project list", "no id"))?;
        let latest = project.get("latestRevision");
        let revision = latest
            .and_then(|r| r.get("locator"))
            .and_then(Value::as_str)
            .and_then(|l| locator::revision_of(&locator, l))
            .map(str::to_owned)
            .or_else(|| text("version"))
            .ok_or_else(|| fixture_error("project list", "no latest revision"))?;

        let mut issues = Vec::new();
        for (file, body, category) in [
            (
                "licensing issues",
                set.issues_licensing,
                IssueCategory::Licensing,
            ),
            (
                "vulnerability issues",
                set.issues_vulnerability,
                IssueCategory::Vulnerability,
            ),
            ("quality issues", set.issues_quality, IssueCategory::Quality),
        ] {
            issues.extend(issues_of(file, body, category)?);
        }
        let dependencies = dependencies_of(set.dependencies)?;

        self.add_project(SimProject {
            title: text("title").unwrap_or_else(|| locator.clone()),
            branch: text("branch").unwrap_or_else(|| "main".to_owned()),
            url: text("url"),
            project_type: text("type").unwrap_or_else(|| "provided".to_owned()),
            public: project
                .get("public")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            labels: string_list(project.get("labels")),
            teams: project
                .get("teams")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            revisions: vec![SimRevision {
                revision,
                message: latest
                    .and_then(|r| r.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                analyzed_at: time("lastAnalyzed"),
                scanned_at: time("scanned"),
                analysis: match text("latestBuildStatus").as_deref() {
                    Some("running") => Analysis::InProgress,
                    _ => Analysis::Done,
                },
                issues,
                dependencies,
            }],
            locator: locator.clone(),
        });
        Ok(locator)
    }
}

fn issues_of(
    file: &'static str,
    body: &str,
    category: IssueCategory,
) -> Result<Vec<SimIssue>, SimError> {
    let page = parse(file, body)?;
    let items = page
        .get("issues")
        .and_then(Value::as_array)
        .ok_or_else(|| fixture_error(file, "no issues array"))?;
    items
        .iter()
        .map(|item| {
            let id = item
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| fixture_error(file, "an issue without a numeric id"))?;
            let statuses = item.get("statuses");
            let count = |k: &str| statuses.and_then(|s| s.get(k)).and_then(Value::as_u64);
            Ok(SimIssue {
                id,
                category,
                ignored: count("active") == Some(0) && count("ignored").unwrap_or(0) > 0,
                package_locator: item
                    .get("source")
                    .and_then(|s| s.get("id"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                json: item.to_string().into(),
            })
        })
        .collect()
}

fn dependencies_of(body: &str) -> Result<Vec<SimDependency>, SimError> {
    let file = "dependencies";
    let items = parse(file, body)?;
    let items = items
        .as_array()
        .ok_or_else(|| fixture_error(file, "not an array"))?;
    Ok(items
        .iter()
        .map(|item| SimDependency {
            locator: item
                .get("locator")
                .and_then(Value::as_str)
                .unwrap_or("NULL")
                .to_owned(),
            depth: item
                .get("depth")
                .and_then(Value::as_u64)
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(0),
            licenses: item
                .get("licenses")
                .and_then(Value::as_array)
                .map(|ls| {
                    ls.iter()
                        .filter_map(|l| l.get("licenseId").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            ignored: item
                .get("ignored")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            json: item.to_string().into(),
        })
        .collect())
}

fn parse(file: &'static str, body: &str) -> Result<Value, SimError> {
    serde_json::from_str(body).map_err(|e| fixture_error(file, &e.to_string()))
}

fn fixture_error(file: &'static str, reason: &str) -> SimError {
    SimError::Fixture {
        file,
        reason: reason.to_owned(),
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorBody;

    #[test]
    fn bundled_fixtures_load() {
        let state = SimState::new();
        assert_eq!(state.load_bundled_fixtures().unwrap(), PROJECT);
        let project = state.project(PROJECT).unwrap();
        let latest = project.latest().unwrap();
        assert_eq!(latest.revision, REVISION);
        assert_eq!(latest.issues.len(), 7);
        assert_eq!(latest.dependencies.len(), 14);
        assert_eq!(project.labels, ["backend", "pci-scope"]);
        let errors: Vec<(u16, String)> = [ERROR_PROJECT_NOT_FOUND_404, ERROR_UNAUTHORIZED_401]
            .iter()
            .map(|b| serde_json::from_str::<ErrorBody>(b).unwrap())
            .map(|b| (b.http_status_code.unwrap(), b.message.unwrap()))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    404,
                    "Could not find project custom+48213/github.com/acme-corp/payments-api"
                        .to_owned()
                ),
                (401, "API token is invalid".to_owned())
            ]
        );
    }
}
