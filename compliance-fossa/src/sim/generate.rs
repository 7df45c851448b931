//! Synthetic projects of any size, deterministic for a seed, and new revisions with some
//! issues fixed and some new, so demos and tests show real diffs.

use chrono::{DateTime, Duration as Span, SecondsFormat};
use compliance_core::domain::IssueCategory;
use compliance_core::Timestamp;
use rand::rngs::StdRng;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::model::{
    Analysis, SimDependency, SimError, SimIssue, SimProject, SimRevision, SimState,
};
use crate::locator::{revision_locator, Locator};

const FETCHERS: [&str; 6] = ["npm", "pip", "mvn", "go", "cargo", "gem"];
const LICENSES: [&str; 10] = [
    "MIT",
    "Apache-2.0",
    "BSD-3-Clause",
    "ISC",
    "BSD-2-Clause",
    "MPL-2.0",
    "LGPL-2.1",
    "GPL-3.0",
    "Unlicense",
    "CC0-1.0",
];
const WORDS: [&str; 16] = [
    "alpha", "beacon", "cinder", "delta", "ember", "fjord", "garnet", "harbor", "iris", "juniper",
    "kestrel", "lumen", "maple", "nectar", "onyx", "prism",
];

/// The size and shape of a synthetic project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectSpec {
    /// Project locator, for example `custom+1/github.com/acme/big`.
    pub locator: String,
    /// Display title.
    pub title: String,
    /// Default branch.
    pub branch: String,
    /// The revision to create; derived from the seed when `None`.
    pub revision: Option<String>,
    /// Resolved dependencies.
    pub dependencies: usize,
    /// `NULL` placeholders appended to the dependency list.
    pub unresolved: usize,
    /// Active issues (two fifths licensing, two fifths vulnerabilities, one fifth quality).
    pub issues: usize,
    /// Extra ignored issues, listed only with `status=ignored`.
    pub ignored_issues: usize,
    /// Active issues per category (licensing, vulnerability, quality) instead of the
    /// default two-two-one split of `issues`.
    pub issue_mix: Option<[usize; 3]>,
    /// Seed: the same spec always generates the same project.
    pub seed: u64,
}

impl ProjectSpec {
    /// A project of `dependencies` dependencies and `issues` issues.
    pub fn new(locator: impl Into<String>, dependencies: usize, issues: usize, seed: u64) -> Self {
        let locator = locator.into();
        let title = locator
            .rsplit('/')
            .next()
            .unwrap_or(locator.as_str())
            .to_owned();
        Self {
            locator,
            title,
            branch: "main".to_owned(),
            revision: None,
            dependencies,
            unresolved: 0,
            issues,
            ignored_issues: 0,
            issue_mix: None,
            seed,
        }
    }

    /// Sets the revision.
    #[must_use]
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }

    /// Sets the number of `NULL` placeholders.
    #[must_use]
    pub fn with_unresolved(mut self, unresolved: usize) -> Self {
        self.unresolved = unresolved;
        self
    }

    /// Sets exactly how many active issues each category gets.
    #[must_use]
    pub fn with_issue_mix(
        mut self,
        licensing: usize,
        vulnerability: usize,
        quality: usize,
    ) -> Self {
        self.issues = licensing + vulnerability + quality;
        self.issue_mix = Some([licensing, vulnerability, quality]);
        self
    }

    /// Sets the number of ignored issues.
    #[must_use]
    pub fn with_ignored_issues(mut self, ignored: usize) -> Self {
        self.ignored_issues = ignored;
        self
    }
}

/// How a new revision differs from the latest one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionChange {
    /// The new bare revision.
    pub revision: String,
    /// Active issues of the latest revision that are gone in the new one.
    pub fixed: usize,
    /// New active issues.
    pub added: usize,
    /// Chooses which issues are fixed and what the new ones look like.
    pub seed: u64,
    /// Whether the new revision is still being analysed.
    pub analysis: Analysis,
}

impl RevisionChange {
    /// A finished revision with `fixed` issues gone and `added` new.
    pub fn new(revision: impl Into<String>, fixed: usize, added: usize) -> Self {
        Self {
            revision: revision.into(),
            fixed,
            added,
            seed: 0,
            analysis: Analysis::Done,
        }
    }
}

/// What [`SimState::advance_revision`] changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvanceReport {
    /// The new revision.
    pub revision: String,
    /// Issues fixed, as (category, id).
    pub fixed: Vec<(IssueCategory, u64)>,
    /// Issues added, as (category, id).
    pub added: Vec<(IssueCategory, u64)>,
}

/// The project a generated issue belongs to.
struct Owner<'a> {
    locator: &'a str,
    title: &'a str,
    branch: &'a str,
    revision: &'a str,
    at: Timestamp,
}

impl SimState {
    /// Generates a project from `spec` (replacing one with its locator) and returns its
    /// locator.
    pub fn generate_project(&self, spec: &ProjectSpec) -> String {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let revision = spec.revision.clone().unwrap_or_else(|| sha(&mut rng));
        let at = base_time() + Span::minutes(rng.random_range(0..500_000));
        let root = revision_locator(&spec.locator, &revision);

        let mut dependencies: Vec<SimDependency> = (0..spec.dependencies)
            .map(|i| generated_dependency(&mut rng, &root, i))
            .collect();
        dependencies.extend((0..spec.unresolved).map(|i| placeholder(&root, i)));

        let owner = Owner {
            locator: &spec.locator,
            title: &spec.title,
            branch: &spec.branch,
            revision: &revision,
            at,
        };
        let mut issues = Vec::with_capacity(spec.issues + spec.ignored_issues);
        {
            let mut inner = self.lock();
            for i in 0..spec.issues + spec.ignored_issues {
                let id = inner.next_issue_id;
                inner.next_issue_id += 1;
                let category = match spec.issue_mix {
                    Some([licensing, vulnerability, _]) if i < spec.issues => {
                        if i < licensing {
                            IssueCategory::Licensing
                        } else if i < licensing + vulnerability {
                            IssueCategory::Vulnerability
                        } else {
                            IssueCategory::Quality
                        }
                    }
                    _ => default_category(i),
                };
                let mut issue = generated_issue(&mut rng, id, i, category, &dependencies, &owner);
                issue.ignored = i >= spec.issues;
                issues.push(issue);
            }
        }

        self.add_project(SimProject {
            locator: spec.locator.clone(),
            title: spec.title.clone(),
            branch: spec.branch.clone(),
            url: Some(format!("https://example.invalid/{}", spec.title)),
            project_type: "provided".to_owned(),
            public: false,
            labels: vec!["generated".to_owned()],
            teams: Vec::new(),
            revisions: vec![SimRevision {
                revision,
                message: Some(format!("generated with seed {}", spec.seed)),
                analyzed_at: at,
                scanned_at: at + Span::seconds(75),
                analysis: Analysis::Done,
                issues,
                dependencies,
            }],
        });
        spec.locator.clone()
    }

    /// Adds a revision after the latest one: the same dependencies, `change.fixed` active
    /// issues gone and `change.added` new ones.
    ///
    /// # Errors
    ///
    /// [`SimError::NoProject`], [`SimError::NoRevision`] when the project has no revision
    /// yet, or [`SimError::RevisionExists`].
    pub fn advance_revision(
        &self,
        locator: &str,
        change: &RevisionChange,
    ) -> Result<AdvanceReport, SimError> {
        let mut inner = self.lock();
        let mut next_id = inner.next_issue_id;
        let project = inner
            .projects
            .get_mut(locator)
            .ok_or_else(|| SimError::NoProject(locator.to_owned()))?;
        if project.revision(&change.revision).is_some() {
            return Err(SimError::RevisionExists(change.revision.clone()));
        }
        let latest = project.latest().ok_or_else(|| SimError::NoRevision {
            project: locator.to_owned(),
            revision: "(latest)".to_owned(),
        })?;

        let mut rng = StdRng::seed_from_u64(change.seed ^ 0x5eed_f055a);
        let active: Vec<usize> = (0..latest.issues.len())
            .filter(|&i| latest.issues.get(i).is_some_and(|issue| !issue.ignored))
            .collect();
        let fixed_count = change.fixed.min(active.len());
        let fixed_positions: Vec<usize> = index::sample(&mut rng, active.len(), fixed_count)
            .into_iter()
            .filter_map(|i| active.get(i).copied())
            .collect();

        let mut fixed = Vec::with_capacity(fixed_count);
        let mut issues = Vec::with_capacity(latest.issues.len() + change.added);
        for (position, issue) in latest.issues.iter().enumerate() {
            if fixed_positions.contains(&position) {
                fixed.push((issue.category, issue.id));
            } else {
                issues.push(issue.clone());
            }
        }

        let at = latest.analyzed_at + Span::hours(rng.random_range(1..72));
        let owner = Owner {
            locator: &project.locator,
            title: &project.title,
            branch: &project.branch,
            revision: &change.revision,
            at,
        };
        let mut added = Vec::with_capacity(change.added);
        for i in 0..change.added {
            let issue = generated_issue(
                &mut rng,
                next_id,
                i,
                default_category(i),
                &latest.dependencies,
                &owner,
            );
            next_id += 1;
            added.push((issue.category, issue.id));
            issues.push(issue);
        }

        let revision = SimRevision {
            revision: change.revision.clone(),
            message: Some(format!(
                "fixes {} issues, introduces {}",
                fixed.len(),
                added.len()
            )),
            analyzed_at: at,
            scanned_at: at + Span::seconds(60),
            analysis: change.analysis,
            issues,
            dependencies: latest.dependencies.clone(),
        };
        project.revisions.push(revision);
        inner.next_issue_id = next_id;

        Ok(AdvanceReport {
            revision: change.revision.clone(),
            fixed,
            added,
        })
    }
}

fn base_time() -> Timestamp {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default() // 2026-01-01T00:00:00Z
}

/// FOSSA's timestamp format: RFC 3339 with milliseconds and `Z`.
pub(crate) fn fossa_time(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items
        .get(rng.random_range(0..items.len().max(1)))
        .copied()
        .unwrap_or_default()
}

fn sha(rng: &mut StdRng) -> String {
    (0..40)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

fn generated_dependency(rng: &mut StdRng, root: &str, i: usize) -> SimDependency {
    let fetcher = FETCHERS.get(i % FETCHERS.len()).copied().unwrap_or("npm");
    let word = pick(rng, &WORDS);
    let package = match fetcher {
        "mvn" => format!("com.example.gen:{word}-lib-{i}"),
        "go" => format!("github.com/gen-org/{word}-{i}"),
        _ => format!("{word}-kit-{i}"),
    };
    let version = format!(
        "{}.{}.{}",
        rng.random_range(0..8),
        rng.random_range(0..30),
        rng.random_range(0..20)
    );
    let depth: u32 = if rng.random_bool(0.2) {
        1
    } else {
        rng.random_range(2..=4)
    };
    let licenses: Vec<String> = match rng.random_range(0..10) {
        0 => Vec::new(),
        1 => vec![
            pick(rng, &LICENSES).to_owned(),
            pick(rng, &LICENSES).to_owned(),
        ],
        _ => vec![pick(rng, LICENSES.get(..4).unwrap_or(&LICENSES)).to_owned()],
    };
    dependency(
        root,
        Some(fetcher),
        &package,
        Some(&version),
        depth,
        &licenses,
    )
}

fn placeholder(root: &str, i: usize) -> SimDependency {
    let mut dep = dependency(root, None, "NULL", None, 1, &[]);
    // The placeholder stands for a package FOSSA could not resolve.
    let unresolved = format!("npm+@internal/unresolved-{i}$1.0.0");
    if let Ok(Value::Object(mut value)) = serde_json::from_str::<Value>(&dep.json) {
        value.insert("unresolved_locators".to_owned(), json!([unresolved]));
        if let Some(Value::Object(lock)) = value.get_mut("DependencyLock") {
            lock.insert("unresolved_locators".to_owned(), json!([unresolved]));
        }
        dep.json = Value::Object(value).to_string().into();
    }
    dep
}

fn dependency(
    root: &str,
    fetcher: Option<&str>,
    package: &str,
    version: Option<&str>,
    depth: u32,
    licenses: &[String],
) -> SimDependency {
    let locator = match fetcher {
        Some(f) => Locator {
            fetcher: Some(f),
            package,
            revision: version,
        }
        .to_string(),
        None => "NULL".to_owned(),
    };
    let project_id = locator.split('$').next().unwrap_or(&locator).to_owned();
    let manifest = match fetcher {
        Some("pip") => "requirements.txt",
        Some("mvn") => "pom.xml",
        Some("go") => "go.mod",
        Some("cargo") => "Cargo.toml",
        Some("gem") => "Gemfile.lock",
        _ => "package.json",
    };
    let license_objects: Vec<Value> = licenses
        .iter()
        .map(|l| {
            json!({ "revisionId": locator, "text": "", "licenseId": l,
                    "licenseGroupId": 1000 + l.len(), "ignored": false, "copyright": null })
        })
        .collect();
    let value = json!({
        "loc": { "fetcher": fetcher, "package": package, "revision": version },
        "locator": locator,
        "projectId": project_id,
        "resolved": fetcher.is_some(),
        "unsupported": false,
        "latestRevisionScanId": null,
        "DependencyLock": {
            "locator": locator, "unresolved_locators": [], "depth": depth, "type": "MEDIATED",
            "tags": [], "is_submodule": false, "root": root, "origin_paths": [manifest],
            "manual": false
        },
        "project": { "locator": project_id, "title": package, "description": null,
                     "url": null, "authors": [] },
        "origin_paths": [manifest],
        "manual": false,
        "unresolved_locators": [],
        "is_submodule": false,
        "type": "MEDIATED",
        "depth": depth,
        "issueTargets": [],
        "licenses": license_objects,
        "ignored": false,
        "downloadUrl": null
    });
    SimDependency {
        locator,
        depth,
        licenses: licenses.to_vec(),
        ignored: false,
        json: value.to_string().into(),
    }
}

/// Two fifths licensing, two fifths vulnerabilities, one fifth quality.
fn default_category(i: usize) -> IssueCategory {
    match i % 5 {
        0 | 1 => IssueCategory::Licensing,
        2 | 3 => IssueCategory::Vulnerability,
        _ => IssueCategory::Quality,
    }
}

fn generated_issue(
    rng: &mut StdRng,
    id: u64,
    i: usize,
    category: IssueCategory,
    dependencies: &[SimDependency],
    owner: &Owner<'_>,
) -> SimIssue {
    let resolved: Vec<&SimDependency> = dependencies
        .iter()
        .filter(|d| d.locator != "NULL")
        .collect();
    let fallback;
    let dep = match resolved.get(rng.random_range(0..resolved.len().max(1))) {
        Some(dep) => *dep,
        None => {
            fallback = dependency(
                "",
                Some("npm"),
                &format!("orphan-{i}"),
                Some("1.0.0"),
                1,
                &[],
            );
            &fallback
        }
    };
    let package = Locator::parse(&dep.locator);
    let created = owner.at - Span::hours(rng.random_range(0..2000));
    let direct = dep.depth == 1;

    let mut value = json!({
        "id": id,
        "createdAt": fossa_time(created),
        "source": {
            "id": dep.locator,
            "name": package.package,
            "url": null,
            "version": package.revision,
            "packageManager": package.fetcher
        },
        "depths": { "direct": u32::from(direct), "deep": u32::from(!direct) },
        "containerLayers": { "base": 0, "other": 0 },
        "statuses": { "active": 1, "ignored": 0 },
        "projects": [{
            "id": owner.locator,
            "status": "active",
            "depth": dep.depth,
            "title": owner.title,
            "scannedAt": fossa_time(owner.at + Span::seconds(75)),
            "analyzedAt": fossa_time(owner.at),
            "url": format!("https://app.fossa.com/projects/{}", crate::locator::encode_segment(owner.locator)),
            "firstFoundAt": fossa_time(created),
            "defaultBranch": owner.branch,
            "latest": true,
            "revisionId": revision_locator(owner.locator, owner.revision),
            "revisionScanId": 2_000_000 + id % 1_000_000
        }]
    });

    let fields = match category {
        IssueCategory::Licensing => {
            let (kind, license) = match rng.random_range(0..3) {
                0 => ("policy_conflict", Some("GPL-3.0")),
                1 => (
                    "policy_flag",
                    dep.licenses
                        .first()
                        .map(String::as_str)
                        .or(Some("LGPL-2.1")),
                ),
                _ => ("unlicensed_dependency", None),
            };
            json!({ "type": kind, "license": license })
        }
        IssueCategory::Vulnerability => {
            let (severity, cvss) = match rng.random_range(0..4) {
                0 => ("critical", 9.8),
                1 => ("high", 7.5),
                2 => ("medium", 5.3),
                _ => ("low", 2.1),
            };
            let cve = format!("CVE-2030-{id}");
            // Every seventh title is generic, as FOSSA sometimes sends.
            let title = if i % 7 == 0 {
                cve.clone()
            } else {
                format!("{} flaw in {}", pick(rng, &WORDS), package.package)
            };
            json!({
                "type": "vulnerability",
                "vulnId": format!("{cve}_{}", dep.locator.split('$').next().unwrap_or_default()),
                "title": title, "cve": cve, "cvss": cvss, "severity": severity,
                "details": "Generated by the FOSSA simulator.",
                "remediation": { "partialFix": "UNABLE_TO_CALCULATE", "partialFixDistance": null,
                                 "completeFix": "UNABLE_TO_CALCULATE", "completeFixDistance": null },
                "metrics": [], "cveStatus": "COMPLETED", "cwes": [], "cpes": [],
                "published": fossa_time(created), "affectedVersionRanges": [],
                "patchedVersionRanges": [], "references": [], "exploitability": "UNKNOWN",
                "epss": { "score": 0.001, "percentile": 0.1 }
            })
        }
        IssueCategory::Quality => {
            let kind = pick(
                rng,
                &[
                    "outdated_dependency",
                    "blacklisted_dependency",
                    "risk_abandonware",
                ],
            );
            json!({ "type": kind, "qualityRule": { "ruleId": 77000 + id % 100, "type": kind,
                    "notes": null, "enabled": true } })
        }
    };
    if let (Some(target), Value::Object(extra)) = (value.as_object_mut(), fields) {
        target.extend(extra);
    }

    SimIssue {
        id,
        category,
        ignored: false,
        package_locator: dep.locator.clone(),
        json: value.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_generates_the_same_project() {
        let a = SimState::new();
        let b = SimState::new();
        let spec = ProjectSpec::new("custom+1/x", 50, 20, 7).with_unresolved(2);
        a.generate_project(&spec);
        b.generate_project(&spec);
        assert_eq!(a.project("custom+1/x"), b.project("custom+1/x"));
        let project = a.project("custom+1/x").unwrap();
        let latest = project.latest().unwrap();
        assert_eq!(latest.dependencies.len(), 52);
        assert_eq!(latest.issues.len(), 20);
        assert_eq!(latest.revision.len(), 40);
    }

    #[test]
    fn advancing_fixes_and_adds_issues() {
        let state = SimState::new();
        state.generate_project(&ProjectSpec::new("custom+1/x", 30, 10, 1));
        let report = state
            .advance_revision("custom+1/x", &RevisionChange::new("r2", 3, 4))
            .unwrap();
        assert_eq!((report.fixed.len(), report.added.len()), (3, 4));
        let project = state.project("custom+1/x").unwrap();
        let latest = project.latest().unwrap();
        assert_eq!(latest.revision, "r2");
        assert_eq!(latest.issues.len(), 11);
        for (_, id) in &report.fixed {
            assert!(latest.issues.iter().all(|i| i.id != *id));
        }
        assert!(matches!(
            state.advance_revision("custom+1/x", &RevisionChange::new("r2", 0, 0)),
            Err(SimError::RevisionExists(_))
        ));
    }
}
