//! The bundled FOSSA fixtures, served by the simulator and read back by the client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use compliance_core::domain::{
    Dependency, Issue, IssueCategory, IssueKey, ProjectInfo, ScanSnapshot, Severity,
};
use compliance_core::ports::ScanSource;
use compliance_fossa::locator::encode_segment;
use compliance_fossa::sim::fixtures::{self, PROJECT, REVISION};
use compliance_fossa::sim::Endpoint;
use serde_json::Value;

use common::{request, sim, strict_client, ts};

#[allow(clippy::too_many_arguments)]
fn issue(
    category: IssueCategory,
    id: &str,
    issue_type: &str,
    severity: Severity,
    title: &str,
    package: (&str, &str, &str, &str),
    license: Option<&str>,
    vulnerability: Option<(&str, f64)>,
    direct: bool,
    detected_at: &str,
) -> Issue {
    let (locator, name, version, manager) = package;
    Issue {
        key: IssueKey {
            category,
            fossa_id: id.to_owned(),
        },
        issue_type: issue_type.to_owned(),
        severity,
        title: title.to_owned(),
        package_name: name.to_owned(),
        package_version: Some(version.to_owned()),
        package_locator: Some(locator.to_owned()),
        package_manager: Some(manager.to_owned()),
        license: license.map(str::to_owned),
        cve: vulnerability.map(|(cve, _)| cve.to_owned()),
        cvss: vulnerability.map(|(_, cvss)| cvss),
        direct,
        detected_at: Some(ts(detected_at)),
        url: None,
    }
}

fn dependency(
    locator: &str,
    name: &str,
    version: &str,
    manager: &str,
    depth: u32,
    licenses: &[&str],
) -> Dependency {
    let licenses: Vec<String> = licenses.iter().map(|l| (*l).to_owned()).collect();
    Dependency {
        locator: locator.to_owned(),
        name: name.to_owned(),
        version: Some(version.to_owned()),
        package_manager: manager.to_owned(),
        is_direct: depth == 1,
        depth,
        license_expression: (!licenses.is_empty()).then(|| licenses.join(" AND ")),
        licenses,
    }
}

fn expected_snapshot() -> ScanSnapshot {
    use IssueCategory::{Licensing, Quality, Vulnerability};
    ScanSnapshot {
        project: ProjectInfo {
            locator: PROJECT.to_owned(),
            title: "payments-api".to_owned(),
            default_branch: Some("main".to_owned()),
            latest_revision: Some(format!("{PROJECT}${REVISION}")),
            last_analyzed_at: Some(ts("2026-08-14T09:12:47.120Z")),
            scanned_at: Some(ts("2026-08-14T09:14:02.418Z")),
            url: Some("https://github.com/acme-corp/payments-api".to_owned()),
        },
        revision: REVISION.to_owned(),
        issues: vec![
            issue(
                Licensing,
                "90311001",
                "policy_conflict",
                Severity::High,
                "License policy conflict: GPL-3.0 in pdf-stamp-kit",
                ("npm+pdf-stamp-kit$3.2.0", "pdf-stamp-kit", "3.2.0", "npm"),
                Some("GPL-3.0"),
                None,
                true,
                "2026-03-02T11:05:19.552Z",
            ),
            issue(
                Licensing,
                "90311002",
                "policy_flag",
                Severity::Medium,
                "License flagged by policy: LGPL-2.1 in com.example.reports:report-engine",
                (
                    "mvn+com.example.reports:report-engine$2.3.1",
                    "com.example.reports:report-engine",
                    "2.3.1",
                    "mvn",
                ),
                Some("LGPL-2.1"),
                None,
                true,
                "2026-05-18T08:44:02.117Z",
            ),
            issue(
                Licensing,
                "90311003",
                "unlicensed_dependency",
                Severity::Medium,
                "No license found in glob-walker-lite",
                (
                    "npm+glob-walker-lite$0.4.1",
                    "glob-walker-lite",
                    "0.4.1",
                    "npm",
                ),
                None,
                None,
                false,
                "2026-08-14T09:13:55.301Z",
            ),
            issue(
                Vulnerability,
                "90311004",
                "vulnerability",
                Severity::Critical,
                "Arbitrary code execution via crafted YAML tags",
                (
                    "go+github.com/acme-oss/yamlkit$v1.4.0",
                    "github.com/acme-oss/yamlkit",
                    "v1.4.0",
                    "go",
                ),
                None,
                Some(("CVE-2029-41001", 9.8)),
                true,
                "2026-07-21T16:30:11.904Z",
            ),
            issue(
                Vulnerability,
                "90311005",
                "vulnerability",
                Severity::High,
                "Prototype pollution in recursive merge",
                (
                    "npm+json-merge-deep$2.0.1",
                    "json-merge-deep",
                    "2.0.1",
                    "npm",
                ),
                None,
                Some(("CVE-2029-41002", 7.5)),
                false,
                "2026-06-09T10:02:47.330Z",
            ),
            issue(
                Vulnerability,
                "90311006",
                "vulnerability",
                Severity::Medium,
                "Proxy-Authorization header kept across cross-origin redirects",
                ("pip+tinyhttp$1.8.2", "tinyhttp", "1.8.2", "pip"),
                None,
                Some(("CVE-2029-41003", 5.3)),
                false,
                "2026-08-14T09:13:58.772Z",
            ),
            issue(
                Quality,
                "90311007",
                "outdated_dependency",
                Severity::Low,
                "Outdated dependency: rack 2.2.3",
                ("gem+rack$2.2.3", "rack", "2.2.3", "gem"),
                None,
                None,
                true,
                "2026-04-27T13:51:09.006Z",
            ),
        ],
        dependencies: vec![
            dependency(
                "npm+express$4.19.2",
                "express",
                "4.19.2",
                "npm",
                1,
                &["MIT"],
            ),
            dependency(
                "npm+body-parser$1.20.2",
                "body-parser",
                "1.20.2",
                "npm",
                2,
                &["MIT"],
            ),
            dependency("npm+qs$6.11.0", "qs", "6.11.0", "npm", 3, &["BSD-3-Clause"]),
            dependency(
                "npm+lodash$4.17.21",
                "lodash",
                "4.17.21",
                "npm",
                1,
                &["MIT"],
            ),
            dependency(
                "npm+json-merge-deep$2.0.1",
                "json-merge-deep",
                "2.0.1",
                "npm",
                2,
                &["ISC"],
            ),
            dependency(
                "npm+pdf-stamp-kit$3.2.0",
                "pdf-stamp-kit",
                "3.2.0",
                "npm",
                1,
                &["GPL-3.0"],
            ),
            dependency(
                "npm+glob-walker-lite$0.4.1",
                "glob-walker-lite",
                "0.4.1",
                "npm",
                2,
                &[],
            ),
            dependency(
                "pip+requests$2.31.0",
                "requests",
                "2.31.0",
                "pip",
                1,
                &["Apache-2.0"],
            ),
            dependency(
                "pip+tinyhttp$1.8.2",
                "tinyhttp",
                "1.8.2",
                "pip",
                2,
                &["MIT"],
            ),
            dependency(
                "mvn+com.example.reports:report-engine$2.3.1",
                "com.example.reports:report-engine",
                "2.3.1",
                "mvn",
                1,
                &["LGPL-2.1"],
            ),
            dependency(
                "go+github.com/acme-oss/yamlkit$v1.4.0",
                "github.com/acme-oss/yamlkit",
                "v1.4.0",
                "go",
                1,
                &["Apache-2.0"],
            ),
            dependency(
                "cargo+serde$1.0.197",
                "serde",
                "1.0.197",
                "cargo",
                1,
                &["Apache-2.0", "MIT"],
            ),
            dependency("gem+rack$2.2.3", "rack", "2.2.3", "gem", 1, &["MIT"]),
        ],
        unresolved_dependencies: 1,
    }
}

#[tokio::test]
async fn fixtures_are_parsed_into_the_expected_snapshot() {
    let sim = sim().await;
    sim.state().load_bundled_fixtures().unwrap();
    let client = strict_client(&sim);

    let snapshot = client
        .fetch(&request(PROJECT, Some(REVISION)))
        .await
        .unwrap();

    let expected = expected_snapshot();
    assert_eq!(snapshot.project, expected.project);
    for (got, want) in snapshot.issues.iter().zip(&expected.issues) {
        assert_eq!(got, want);
    }
    assert_eq!(snapshot.dependencies, expected.dependencies);
    assert_eq!(snapshot, expected);
    assert_eq!(snapshot.issues.len(), 7);
    assert_eq!(snapshot.dependencies.len(), 13);
    assert_eq!(
        snapshot.dependencies.iter().filter(|d| d.is_direct).count(),
        8
    );
}

#[tokio::test]
async fn a_manual_sync_uses_the_latest_revision() {
    let sim = sim().await;
    sim.state().load_bundled_fixtures().unwrap();
    let client = strict_client(&sim);

    let snapshot = client.fetch(&request(PROJECT, None)).await.unwrap();

    assert_eq!(snapshot, expected_snapshot());
    let issues = sim.state().requests_to(Endpoint::Issues);
    assert!(issues
        .iter()
        .all(|r| r.param("scope[revision]").as_deref() == Some(REVISION)));
}

async fn get_json(sim: &compliance_fossa::sim::SimHandle, path_and_query: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.base_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path_and_query}");
    response.json().await.unwrap()
}

fn file(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn the_simulator_serves_the_fixture_bodies_back() {
    let sim = sim().await;
    sim.state().load_bundled_fixtures().unwrap();
    let project = encode_segment(PROJECT);

    let list = get_json(
        &sim,
        &format!("/api/v2/projects?locators%5B%5D={project}&count=1"),
    )
    .await;
    assert_eq!(list, file(fixtures::PROJECT_V2_LIST));

    for (category, body) in [
        ("licensing", fixtures::ISSUES_LICENSING),
        ("vulnerability", fixtures::ISSUES_VULNERABILITY),
        ("quality", fixtures::ISSUES_QUALITY),
    ] {
        let served = get_json(
            &sim,
            &format!(
                "/api/v2/issues?category={category}&scope[type]=project&scope[id]={project}\
                 &scope[revision]={REVISION}&status=active&count=100&page=1"
            ),
        )
        .await;
        assert_eq!(served, file(body), "{category}");
    }

    let revision = encode_segment(&format!("{PROJECT}${REVISION}"));
    let dependencies = get_json(&sim, &format!("/api/revisions/{revision}/dependencies")).await;
    assert_eq!(dependencies, file(fixtures::DEPENDENCIES_V1));
}

#[tokio::test]
async fn the_project_alias_serves_the_single_object() {
    let sim = sim().await;
    sim.state().load_bundled_fixtures().unwrap();

    let alias = get_json(
        &sim,
        &format!("/api/v2/projects/{}", encode_segment(PROJECT)),
    )
    .await;

    let list = file(fixtures::PROJECT_V2_LIST);
    assert_eq!(alias, list["projects"][0]);
}

#[tokio::test]
async fn the_legacy_token_scheme_is_accepted() {
    let sim = sim().await;
    sim.state().load_bundled_fixtures().unwrap();

    let response = reqwest::Client::new()
        .get(format!("{}/api/v2/projects", sim.base_url()))
        .header("Authorization", format!("token {}", sim.token()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["total"], 1);
}
