//! FOSSA's responses mapped onto core's snapshot types.
//!
//! # Severity
//!
//! FOSSA rates vulnerabilities only. Licensing and quality issues get a severity on the
//! dashboard's scale from their category and type:
//!
//! | category | FOSSA `type` | severity |
//! | --- | --- | --- |
//! | vulnerability | any | FOSSA's `severity` (`unknown` stays unknown); when FOSSA sends none, from CVSS: ≥ 9 critical, ≥ 7 high, ≥ 4 medium, > 0 low, else unknown |
//! | licensing | `policy_conflict` (a denied license) | high |
//! | licensing | `policy_flag`, `unlicensed_dependency`, `unlicensed_and_public` | medium |
//! | licensing | any other type | unknown (kept visible, not guessed) |
//! | quality | any (`outdated_dependency`, `blacklisted_dependency`, `risk_*`, …) | low |
//!
//! # Other choices
//!
//! - Issue identity is (category, FOSSA issue id); the category is the one the call asked for.
//! - An issue is direct when `depths.direct > 0`, or else when our project's entry in
//!   `projects[]` has depth 1. It was detected at that entry's `firstFoundAt`, else at the
//!   issue's `createdAt`.
//! - A vulnerability keeps FOSSA's title unless it is generic (empty, or just the CVE or
//!   FOSSA's vulnerability id); then the title is `<CVE> in <package>`.
//! - A dependency is direct at depth 1. Its licenses are the distinct, non-ignored
//!   `licenses[].licenseId`, sorted; `license_expression` joins them with ` AND ` (FOSSA lists
//!   licenses found, not an SPDX expression). `NULL` placeholders are skipped and counted in
//!   `unresolved_dependencies`; entries marked ignored are skipped. A locator listed twice is
//!   kept once, at its shallowest depth, with the union of its licenses.

use std::collections::HashMap;

use compliance_core::domain::{Dependency, Issue, IssueCategory, IssueKey, ProjectInfo, Severity};

use crate::locator::{self, Locator};
use crate::model::{RawDependency, RawIssue, RawProject, Text};

/// Severity of an issue on the dashboard's scale (see the [module docs](self)).
#[must_use]
pub fn severity(
    category: IssueCategory,
    issue_type: &str,
    fossa_severity: Option<&str>,
    cvss: Option<f64>,
) -> Severity {
    match category {
        IssueCategory::Vulnerability => match fossa_severity.map(str::trim) {
            Some(s) if !s.is_empty() => Severity::parse(s),
            _ => cvss.map_or(Severity::Unknown, severity_from_cvss),
        },
        IssueCategory::Licensing => match issue_type {
            "policy_conflict" => Severity::High,
            "policy_flag" | "unlicensed_dependency" | "unlicensed_and_public" => Severity::Medium,
            _ => Severity::Unknown,
        },
        IssueCategory::Quality => Severity::Low,
    }
}

/// CVSS v3 qualitative ratings.
fn severity_from_cvss(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Unknown
    }
}

/// The project's metadata.
#[must_use]
pub fn project_info(raw: &RawProject) -> ProjectInfo {
    ProjectInfo {
        locator: raw.id.clone(),
        title: raw
            .title
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| raw.id.clone()),
        default_branch: raw.branch.clone(),
        latest_revision: raw.latest_revision.as_ref().and_then(|r| r.locator.clone()),
        last_analyzed_at: raw.last_analyzed,
        scanned_at: raw.scanned,
        url: raw.url.clone(),
    }
}

/// The bare revision FOSSA analysed last: from `latestRevision.locator`, else `version`.
#[must_use]
pub fn latest_revision(raw: &RawProject) -> Option<String> {
    raw.latest_revision
        .as_ref()
        .and_then(|r| r.locator.as_deref())
        .and_then(|l| locator::revision_of(&raw.id, l))
        .or(raw.version.as_deref().filter(|v| !v.is_empty()))
        .map(str::to_owned)
}

/// One issue of `category`, found in the project `project_locator`.
#[must_use]
pub fn issue(category: IssueCategory, raw: RawIssue, project_locator: &str) -> Issue {
    let source = raw.source.unwrap_or_default();
    let parsed = source.id.as_deref().map(Locator::parse);
    let package_name = source
        .name
        .filter(|n| !n.is_empty())
        .or_else(|| parsed.map(|l| l.package.to_owned()))
        .unwrap_or_else(|| "unknown package".to_owned());
    let package_version = source
        .version
        .or_else(|| parsed.and_then(|l| l.revision.map(str::to_owned)));
    let package_manager = source
        .package_manager
        .or_else(|| parsed.and_then(|l| l.fetcher.map(str::to_owned)));

    let projects = raw.projects.unwrap_or_default();
    let ours = projects
        .iter()
        .find(|p| p.id.as_deref() == Some(project_locator))
        .or_else(|| projects.first());
    let direct = match raw.depths.and_then(|d| d.direct) {
        Some(n) => n > 0,
        None => ours.and_then(|p| p.depth) == Some(1),
    };
    let detected_at = ours.and_then(|p| p.first_found_at).or(raw.created_at);

    let issue_type = raw
        .issue_type
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| category.as_str().to_owned());
    let severity = severity(category, &issue_type, raw.severity.as_deref(), raw.cvss);
    let license = raw.license.filter(|l| !l.is_empty());
    let cve = raw.cve.filter(|c| !c.is_empty());
    let title = match category {
        IssueCategory::Vulnerability => vulnerability_title(
            raw.title.as_deref(),
            cve.as_deref(),
            raw.vuln_id.as_deref(),
            &package_name,
        ),
        IssueCategory::Licensing => licensing_title(&issue_type, license.as_deref(), &package_name),
        IssueCategory::Quality => {
            quality_title(&issue_type, &package_name, package_version.as_deref())
        }
    };

    Issue {
        key: IssueKey {
            category,
            fossa_id: raw.id,
        },
        issue_type,
        severity,
        title,
        package_name,
        package_version,
        package_locator: source.id,
        package_manager,
        license,
        cve,
        cvss: raw.cvss,
        direct,
        detected_at,
        // Limitation: FOSSA publishes no link format for a single issue; `projects[].url`
        // points at the project, so no issue link is made up.
        url: None,
    }
}

fn vulnerability_title(
    title: Option<&str>,
    cve: Option<&str>,
    vuln_id: Option<&str>,
    package: &str,
) -> String {
    let title = title.map(str::trim).unwrap_or_default();
    let generic = title.is_empty()
        || cve.is_some_and(|c| title.eq_ignore_ascii_case(c))
        || vuln_id.is_some_and(|v| title.eq_ignore_ascii_case(v))
        || ["vulnerability", "security vulnerability", "unknown"]
            .iter()
            .any(|g| title.eq_ignore_ascii_case(g));
    if !generic {
        return title.to_owned();
    }
    let id = cve
        .or_else(|| vuln_id.map(|v| v.split('_').next().unwrap_or(v)))
        .unwrap_or("Vulnerability");
    format!("{id} in {package}")
}

fn licensing_title(issue_type: &str, license: Option<&str>, package: &str) -> String {
    let license = license.unwrap_or("unknown license");
    match issue_type {
        "policy_conflict" => format!("License policy conflict: {license} in {package}"),
        "policy_flag" => format!("License flagged by policy: {license} in {package}"),
        "unlicensed_dependency" => format!("No license found in {package}"),
        "unlicensed_and_public" => format!("No license found in public package {package}"),
        other => format!("{}: {license} in {package}", humanize(other)),
    }
}

fn quality_title(issue_type: &str, package: &str, version: Option<&str>) -> String {
    let what = match issue_type {
        "outdated_dependency" => "Outdated dependency".to_owned(),
        "blacklisted_dependency" => "Denied dependency".to_owned(),
        "risk_abandonware" => "Abandoned package".to_owned(),
        "risk_empty_package" => "Empty package".to_owned(),
        "risk_native_code" | "risk_native-code" => "Package contains native code".to_owned(),
        other => humanize(other),
    };
    match version {
        Some(v) if !v.is_empty() => format!("{what}: {package} {v}"),
        _ => format!("{what}: {package}"),
    }
}

/// `risk_native-code` → `Risk native code`.
fn humanize(issue_type: &str) -> String {
    let spaced = issue_type.replace(['_', '-'], " ");
    let mut chars = spaced.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Issue".to_owned(),
    }
}

/// Dependencies collected page by page, deduplicated by locator.
#[derive(Debug, Default)]
pub struct DependencySet {
    dependencies: Vec<Dependency>,
    index: HashMap<String, usize>,
    unresolved: u32,
}

impl DependencySet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one element of a dependencies page.
    pub fn add(&mut self, raw: &RawDependency<'_>) {
        if raw.ignored == Some(true) {
            return;
        }
        let Some(dependency) = dependency(raw) else {
            self.unresolved = self.unresolved.saturating_add(1);
            return;
        };
        match self.index.get(&dependency.locator) {
            Some(&i) => {
                if let Some(known) = self.dependencies.get_mut(i) {
                    merge(known, dependency);
                }
            }
            None => {
                self.index
                    .insert(dependency.locator.clone(), self.dependencies.len());
                self.dependencies.push(dependency);
            }
        }
    }

    /// Distinct dependencies so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.dependencies.len()
    }

    /// Whether none was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.dependencies.is_empty()
    }

    /// `NULL` placeholders skipped so far.
    #[must_use]
    pub fn unresolved(&self) -> u32 {
        self.unresolved
    }

    /// The dependencies in the order FOSSA listed them, and the placeholder count.
    #[must_use]
    pub fn into_parts(self) -> (Vec<Dependency>, u32) {
        (self.dependencies, self.unresolved)
    }
}

/// One dependency, or `None` for an unresolved `NULL` placeholder.
fn dependency(raw: &RawDependency<'_>) -> Option<Dependency> {
    let loc = raw.loc.as_ref();
    let fetcher = present(loc.and_then(|l| l.fetcher.as_ref()));
    let package = present(loc.and_then(|l| l.package.as_ref()));
    let revision = present(loc.and_then(|l| l.revision.as_ref()));

    let locator = match present(raw.locator.as_ref()) {
        Some(l) => l.to_owned(),
        None => {
            let (fetcher, package) = (fetcher?, package?);
            let parts = Locator {
                fetcher: Some(fetcher),
                package,
                revision,
            };
            parts.to_string()
        }
    };
    let parsed = Locator::parse(&locator);
    let name = package
        .or((!parsed.package.is_empty()).then_some(parsed.package))
        .or_else(|| present(raw.project.as_ref().and_then(|p| p.title.as_ref())))?;

    let depth = raw
        .depth
        .or_else(|| raw.dependency_lock.and_then(|l| l.depth))
        .unwrap_or(0);
    let mut licenses: Vec<String> = raw
        .licenses
        .iter()
        .flatten()
        .filter(|l| l.ignored != Some(true))
        .filter_map(|l| l.license_id.as_deref())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    licenses.sort_unstable();
    licenses.dedup();

    Some(Dependency {
        name: name.to_owned(),
        version: revision.or(parsed.revision).map(str::to_owned),
        package_manager: fetcher.or(parsed.fetcher).unwrap_or("unknown").to_owned(),
        is_direct: depth == 1,
        depth,
        license_expression: license_expression(&licenses),
        licenses,
        locator,
    })
}

/// The text, unless it is empty or FOSSA's `NULL` placeholder.
fn present<'a>(text: Option<&'a Text<'_>>) -> Option<&'a str> {
    text.map(|t| &**t).filter(|s| !s.is_empty() && *s != "NULL")
}

fn license_expression(licenses: &[String]) -> Option<String> {
    (!licenses.is_empty()).then(|| licenses.join(" AND "))
}

fn merge(known: &mut Dependency, other: Dependency) {
    if other.depth != 0 && (known.depth == 0 || other.depth < known.depth) {
        known.depth = other.depth;
    }
    known.is_direct |= other.is_direct;
    if other.licenses.iter().any(|l| !known.licenses.contains(l)) {
        known.licenses.extend(other.licenses);
        known.licenses.sort_unstable();
        known.licenses.dedup();
        known.license_expression = license_expression(&known.licenses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode_dependencies_page;

    #[test]
    fn severity_table() {
        use IssueCategory::{Licensing, Quality, Vulnerability};
        assert_eq!(
            severity(Licensing, "policy_conflict", None, None),
            Severity::High
        );
        assert_eq!(
            severity(Licensing, "policy_flag", None, None),
            Severity::Medium
        );
        assert_eq!(
            severity(Licensing, "unlicensed_dependency", None, None),
            Severity::Medium
        );
        assert_eq!(
            severity(Licensing, "something_new", None, None),
            Severity::Unknown
        );
        assert_eq!(
            severity(Quality, "outdated_dependency", None, None),
            Severity::Low
        );
        assert_eq!(
            severity(Quality, "risk_native-code", None, None),
            Severity::Low
        );
        assert_eq!(
            severity(Vulnerability, "vulnerability", Some("critical"), Some(1.0)),
            Severity::Critical
        );
        assert_eq!(
            severity(Vulnerability, "vulnerability", Some("unknown"), Some(9.8)),
            Severity::Unknown
        );
        assert_eq!(
            severity(Vulnerability, "vulnerability", None, Some(7.5)),
            Severity::High
        );
        assert_eq!(
            severity(Vulnerability, "vulnerability", Some(""), Some(4.0)),
            Severity::Medium
        );
        assert_eq!(
            severity(Vulnerability, "vulnerability", None, Some(0.1)),
            Severity::Low
        );
        assert_eq!(
            severity(Vulnerability, "vulnerability", None, None),
            Severity::Unknown
        );
    }

    #[test]
    fn generic_vulnerability_titles_are_rebuilt() {
        let t = |title| vulnerability_title(title, Some("CVE-1"), Some("CVE-1_npm+x"), "x");
        assert_eq!(t(None), "CVE-1 in x");
        assert_eq!(t(Some(" ")), "CVE-1 in x");
        assert_eq!(t(Some("cve-1")), "CVE-1 in x");
        assert_eq!(t(Some("CVE-1_npm+x")), "CVE-1 in x");
        assert_eq!(t(Some("Vulnerability")), "CVE-1 in x");
        assert_eq!(t(Some("Prototype pollution")), "Prototype pollution");
        assert_eq!(
            vulnerability_title(None, None, Some("GHSA-9_npm+x"), "x"),
            "GHSA-9 in x"
        );
    }

    #[test]
    fn unknown_issue_types_are_kept_and_titled() {
        let raw: RawIssue = serde_json::from_str(
            r#"{"id":5,"type":"risk_native-code","source":{"id":"npm+n$1.0.0"}}"#,
        )
        .unwrap();
        let issue = issue(IssueCategory::Quality, raw, "p");
        assert_eq!(issue.issue_type, "risk_native-code");
        assert_eq!(issue.title, "Package contains native code: n 1.0.0");
        assert_eq!(issue.package_name, "n");
        assert_eq!(issue.package_manager.as_deref(), Some("npm"));
        assert!(!issue.direct);
        assert_eq!(humanize("brand_new-kind"), "Brand new kind");
    }

    #[test]
    fn direct_falls_back_to_the_project_depth() {
        let raw: RawIssue = serde_json::from_str(
            r#"{"id":5,"projects":[{"id":"other","depth":2},{"id":"p","depth":1,"firstFoundAt":"2026-01-01T00:00:00Z"}],"createdAt":"2025-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let issue = issue(IssueCategory::Licensing, raw, "p");
        assert!(issue.direct);
        assert_eq!(
            issue.detected_at.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(issue.issue_type, "licensing");
    }

    #[test]
    fn dependencies_are_deduplicated_and_placeholders_counted() {
        let body = br#"[
            {"loc":{"fetcher":"npm","package":"a","revision":"1"},"locator":"npm+a$1","depth":2,
             "licenses":[{"licenseId":"MIT","ignored":false},{"licenseId":"GPL-2.0","ignored":true}]},
            {"locator":"npm+a$1","depth":1,"licenses":[{"licenseId":"ISC"},{"licenseId":"MIT"}]},
            {"loc":{"fetcher":null,"package":"NULL","revision":null},"locator":"NULL","depth":1},
            {"locator":null},
            {"locator":"pip+b$2","DependencyLock":{"depth":1},"ignored":false},
            {"locator":"pip+c$3","depth":1,"ignored":true}
        ]"#;
        let mut set = DependencySet::new();
        for raw in decode_dependencies_page(body).unwrap() {
            set.add(&raw);
        }
        let (deps, unresolved) = set.into_parts();
        assert_eq!(unresolved, 2);
        assert_eq!(deps.len(), 2);
        let a = &deps[0];
        assert_eq!((a.depth, a.is_direct), (1, true));
        assert_eq!(a.licenses, ["ISC", "MIT"]);
        assert_eq!(a.license_expression.as_deref(), Some("ISC AND MIT"));
        let b = &deps[1];
        assert_eq!(
            (
                b.name.as_str(),
                b.version.as_deref(),
                b.package_manager.as_str()
            ),
            ("b", Some("2"), "pip")
        );
        assert!(b.is_direct);
        assert_eq!(b.license_expression, None);
    }
}
