//! `GET /api/v2/issues?category=…`: `{ issues: [Issue] }` (202: `{ message, issues: [] }`).

use compliance_core::Timestamp;
use serde::Deserialize;

use super::lenient;
use crate::error::FossaError;

/// One page of issues of one category. The body carries no total.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct IssuesPage {
    /// The issues.
    #[serde(default)]
    pub issues: Option<Vec<RawIssue>>,
    /// Set on the 202 answer (`analysis in-progress`).
    #[serde(default)]
    pub message: Option<String>,
}

/// One v2 issue (fields of every category; the ones of other categories stay empty).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawIssue {
    /// FOSSA's issue id, unique within the category.
    #[serde(deserialize_with = "lenient::id_string")]
    pub id: String,
    /// When FOSSA first created the issue (organization-wide).
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub created_at: Option<Timestamp>,
    /// The affected package.
    pub source: Option<IssueSource>,
    /// How many direct and deep paths lead to the package.
    pub depths: Option<IssueDepths>,
    /// The projects the issue affects (ours, in project scope).
    pub projects: Option<Vec<IssueProject>>,
    /// `policy_conflict`, `vulnerability`, `outdated_dependency`, … (kept as sent).
    #[serde(rename = "type")]
    pub issue_type: Option<String>,
    /// Licensing: the license involved (`null` for unlicensed dependencies).
    pub license: Option<String>,
    /// Vulnerability: FOSSA's id (`CVE-…_npm+pkg`).
    pub vuln_id: Option<String>,
    /// Vulnerability: title (may be generic).
    pub title: Option<String>,
    /// Vulnerability: CVE id.
    pub cve: Option<String>,
    /// Vulnerability: CVSS score.
    #[serde(default, deserialize_with = "lenient::opt_number")]
    pub cvss: Option<f64>,
    /// Vulnerability: `critical|high|medium|low|unknown`.
    pub severity: Option<String>,
}

/// `source` of an issue.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueSource {
    /// Package revision locator.
    pub id: Option<String>,
    /// Package name.
    pub name: Option<String>,
    /// Package version.
    pub version: Option<String>,
    /// Package manager.
    pub package_manager: Option<String>,
}

/// `depths` of an issue.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct IssueDepths {
    /// Direct paths.
    pub direct: Option<u32>,
    /// Transitive paths.
    pub deep: Option<u32>,
}

/// One entry of `projects[]` of an issue.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueProject {
    /// Project locator.
    pub id: Option<String>,
    /// Shallowest depth of the package in this project.
    pub depth: Option<u32>,
    /// When FOSSA first found the issue in this project.
    #[serde(default, deserialize_with = "lenient::opt_timestamp")]
    pub first_found_at: Option<Timestamp>,
}

/// Decodes one page of `GET /api/v2/issues`.
///
/// # Errors
///
/// [`FossaError::Decode`] naming the field that does not match.
pub fn decode_issues_page(bytes: &[u8]) -> Result<IssuesPage, FossaError> {
    super::decode(crate::http::ISSUES, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_numbers_or_strings_and_nulls_everywhere() {
        let body = br#"{"issues":[
            {"id":12,"type":"policy_flag","license":null,"source":null,"depths":null,"projects":null},
            {"id":"13","type":"vulnerability","cvss":"7.5","severity":null,"unknownField":[1,2]}
        ]}"#;
        let issues = decode_issues_page(body).unwrap().issues.unwrap();
        assert_eq!(issues[0].id, "12");
        assert_eq!(issues[1].id, "13");
        assert_eq!(issues[1].cvss, Some(7.5));
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let body = br#"{"issues":[{"id":1},{"id":2,"depths":{"direct":"one"}}]}"#;
        let text = decode_issues_page(body).unwrap_err().to_string();
        assert!(text.contains("/api/v2/issues"), "{text}");
        assert!(text.contains("issues[1].depths.direct"), "{text}");
    }

    #[test]
    fn a_missing_id_is_a_decode_error() {
        let text = decode_issues_page(br#"{"issues":[{"type":"x"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(text.contains("issues[0]") && text.contains("id"), "{text}");
    }
}
