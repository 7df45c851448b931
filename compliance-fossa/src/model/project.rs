//! `GET /api/v2/projects?locators[]=…`: `{ total, projects: [Project] }`.

use compliance_core::Timestamp;
use serde::{Deserialize, Serialize};

use super::lenient;
use crate::error::FossaError;

/// A page of the v2 project list.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ProjectList {
    /// Projects matching the filter, across all pages.
    #[serde(default)]
    pub total: Option<u64>,
    /// This page's projects.
    #[serde(default)]
    pub projects: Option<Vec<RawProject>>,
}

/// One project of the v2 list (the fields the sync reads).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawProject {
    /// The project locator.
    pub id: String,
    /// Display name.
    pub title: Option<String>,
    /// Default branch.
    pub branch: Option<String>,
    /// FOSSA shows the latest revision here; string or null.
    pub version: Option<String>,
    /// Repository or project URL.
    pub url: Option<String>,
    /// When the latest issue scan ran.
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub scanned: Option<Timestamp>,
    /// When the latest revision's dependency analysis finished.
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub last_analyzed: Option<Timestamp>,
    /// The latest revision.
    pub latest_revision: Option<LatestRevision>,
    /// `running`, `succeeded` or `failed`.
    pub latest_build_status: Option<String>,
    /// Active issue counts of the latest revision; each may be null.
    pub issues: Option<ProjectIssueCounts>,
    /// Labels.
    pub labels: Option<Vec<String>>,
}

/// `latestRevision` of a project.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LatestRevision {
    /// The revision locator `project$revision`.
    pub locator: Option<String>,
    /// The commit message or upload note.
    pub message: Option<String>,
}

/// `issues` of a project: counts per category, any of them possibly null.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ProjectIssueCounts {
    /// All categories.
    pub total: Option<u64>,
    /// Licensing issues.
    pub licensing: Option<u64>,
    /// Vulnerabilities (FOSSA calls the category `security` here).
    pub security: Option<u64>,
    /// Quality issues.
    pub quality: Option<u64>,
}

/// Decodes one page of `GET /api/v2/projects`.
///
/// # Errors
///
/// [`FossaError::Decode`] naming the field that does not match.
pub fn decode_project_list(bytes: &[u8]) -> Result<ProjectList, FossaError> {
    super::decode(crate::http::PROJECTS, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_optional_fields_default_and_unknown_fields_are_ignored() {
        let body =
            br#"{"projects":[{"id":"custom+1/x","brandNew":{"a":1},"issues":{"total":null}}]}"#;
        let list = decode_project_list(body).unwrap();
        assert_eq!(list.total, None);
        let p = &list.projects.unwrap()[0];
        assert_eq!(p.id, "custom+1/x");
        assert_eq!(p.title, None);
        assert_eq!(p.issues.unwrap().total, None);
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let body = br#"{"total":1,"projects":[{"id":"p","lastAnalyzed":"not a date"}]}"#;
        let err = decode_project_list(body).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/api/v2/projects"), "{text}");
        assert!(text.contains("projects[0].lastAnalyzed"), "{text}");

        let err = decode_project_list(br#"{"projects":[{"title":"no id"}]}"#).unwrap_err();
        assert!(err.to_string().contains("projects[0]"), "{err}");
    }
}
