//! Every endpoint at its paging boundaries, request shape and encoding (the 20 000-dependency
//! project is in `bounds.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::collections::HashSet;

use compliance_core::domain::IssueCategory;
use compliance_fossa::sim::{Endpoint, ProjectSpec, RevisionChange};
use compliance_fossa::FossaError;

use common::{client, sim, strict_client};

const P: &str = "custom+7/github.com/acme/paging";

#[tokio::test]
async fn issues_are_paged_until_a_short_page() {
    // count = 5: 0, 1, exactly one page, many pages ending short, many pages ending full.
    for (n, pages) in [(0, 1), (1, 1), (5, 2), (12, 3), (15, 4)] {
        let sim = sim().await;
        sim.state().generate_project(
            &ProjectSpec::new(P, 10, 0, n as u64)
                .with_issue_mix(n, 0, 0)
                .with_revision("r1"),
        );
        let client = client(&sim, |c| c.with_issues_page_size(5).with_request_retries(0));

        let issues = client
            .issues(P, "r1", IssueCategory::Licensing)
            .await
            .unwrap();

        assert_eq!(issues.len(), n, "{n} issues");
        let ids: HashSet<_> = issues.iter().map(|i| i.key.fossa_id.clone()).collect();
        assert_eq!(ids.len(), n, "{n} issues, distinct");
        assert!(issues
            .iter()
            .all(|i| i.key.category == IssueCategory::Licensing));
        let calls = sim.state().requests_to(Endpoint::Issues);
        assert_eq!(calls.len(), pages, "{n} issues take {pages} pages");
        for (i, call) in calls.iter().enumerate() {
            assert_eq!(call.param("page"), Some((i + 1).to_string()));
            assert_eq!(call.param("count").as_deref(), Some("5"));
        }
    }
}

#[tokio::test]
async fn each_category_is_its_own_call_with_project_scope_and_a_bare_revision() {
    let sim = sim().await;
    sim.state().generate_project(
        &ProjectSpec::new(P, 20, 0, 3)
            .with_issue_mix(2, 3, 4)
            .with_revision("abc123"),
    );
    let client = strict_client(&sim);

    // A full revision locator is reduced to the bare revision FOSSA wants.
    let snapshot = client
        .snapshot(P, Some(&format!("{P}$abc123")))
        .await
        .unwrap();

    let count = |c| {
        snapshot
            .issues
            .iter()
            .filter(|i| i.key.category == c)
            .count()
    };
    assert_eq!(count(IssueCategory::Licensing), 2);
    assert_eq!(count(IssueCategory::Vulnerability), 3);
    assert_eq!(count(IssueCategory::Quality), 4);
    let calls = sim.state().requests_to(Endpoint::Issues);
    let categories: HashSet<_> = calls.iter().filter_map(|r| r.param("category")).collect();
    assert_eq!(
        categories,
        HashSet::from(["licensing".into(), "vulnerability".into(), "quality".into()])
    );
    for call in &calls {
        assert_eq!(call.param("scope[type]").as_deref(), Some("project"));
        assert_eq!(call.param("scope[id]").as_deref(), Some(P));
        assert_eq!(call.param("scope[revision]").as_deref(), Some("abc123"));
        assert_eq!(call.param("status").as_deref(), Some("active"));
        // Brackets and the locator are percent-encoded in the query string.
        let raw = call.query.as_deref().unwrap();
        assert!(
            raw.contains("scope%5Bid%5D=custom%2B7%2Fgithub.com%2Facme%2Fpaging"),
            "{raw}"
        );
    }
}

#[tokio::test]
async fn ignored_issues_are_not_fetched() {
    let sim = sim().await;
    sim.state().generate_project(
        &ProjectSpec::new(P, 20, 0, 4)
            .with_issue_mix(3, 0, 0)
            .with_ignored_issues(5)
            .with_revision("r"),
    );
    let issues = strict_client(&sim)
        .issues(P, "r", IssueCategory::Licensing)
        .await
        .unwrap();
    assert_eq!(issues.len(), 3);
}

#[tokio::test]
async fn dependencies_are_paged_until_a_short_page() {
    // limit = 25 (FOSSA's minimum): 0, 1, exactly one page, many pages, many full pages.
    for (n, pages) in [(0, 1), (1, 1), (25, 2), (60, 3), (100, 5)] {
        let sim = sim().await;
        sim.state()
            .generate_project(&ProjectSpec::new(P, n, 0, 9).with_revision("r1"));
        let client = client(&sim, |c| {
            c.with_dependencies_page_size(25).with_request_retries(0)
        });

        let deps = client.dependencies(P, "r1").await.unwrap();

        assert_eq!(deps.items.len(), n, "{n} dependencies");
        assert_eq!(deps.unresolved, 0);
        let locators: HashSet<_> = deps.items.iter().map(|d| d.locator.clone()).collect();
        assert_eq!(locators.len(), n);
        let calls = sim.state().requests_to(Endpoint::Dependencies);
        assert_eq!(calls.len(), pages, "{n} dependencies take {pages} pages");
        for (i, call) in calls.iter().enumerate() {
            assert_eq!(call.param("offset"), Some((i * 25).to_string()));
            assert_eq!(call.param("limit").as_deref(), Some("25"));
            assert_eq!(call.param("include_ignored").as_deref(), Some("false"));
        }
    }
}

#[tokio::test]
async fn placeholders_count_toward_pages_but_not_dependencies() {
    let sim = sim().await;
    // 99 packages and 1 placeholder make exactly one full page of 100.
    sim.state().generate_project(
        &ProjectSpec::new(P, 99, 0, 5)
            .with_unresolved(1)
            .with_revision("r"),
    );
    let deps = strict_client(&sim).dependencies(P, "r").await.unwrap();
    assert_eq!((deps.items.len(), deps.unresolved), (99, 1));
    assert_eq!(sim.state().requests_to(Endpoint::Dependencies).len(), 2);
}

#[tokio::test]
async fn locators_go_into_the_path_as_one_encoded_segment() {
    let sim = sim().await;
    let project = "git+github.com/acme/payment-service";
    sim.state()
        .generate_project(&ProjectSpec::new(project, 3, 0, 1).with_revision("abc123"));

    strict_client(&sim)
        .dependencies(project, "abc123")
        .await
        .unwrap();

    let call = &sim.state().requests_to(Endpoint::Dependencies)[0];
    assert_eq!(
        call.path,
        "/api/revisions/git%2Bgithub.com%2Facme%2Fpayment-service%24abc123/dependencies"
    );
}

#[tokio::test]
async fn a_colon_in_a_locator_is_encoded() {
    let sim = sim().await;
    let project = "mvn+com.acme:billing";
    sim.state()
        .generate_project(&ProjectSpec::new(project, 2, 1, 1).with_revision("1.0.0"));

    let snapshot = strict_client(&sim)
        .snapshot(project, Some("1.0.0"))
        .await
        .unwrap();

    assert_eq!(snapshot.dependencies.len(), 2);
    let call = &sim.state().requests_to(Endpoint::Dependencies)[0];
    assert_eq!(
        call.path,
        "/api/revisions/mvn%2Bcom.acme%3Abilling%241.0.0/dependencies"
    );
}

#[tokio::test]
async fn requests_carry_the_token_accept_and_user_agent() {
    let sim = sim().await;
    sim.state().generate_project(&ProjectSpec::new(P, 5, 5, 2));
    strict_client(&sim).snapshot(P, None).await.unwrap();

    let calls = sim.state().requests();
    assert_eq!(
        calls.len(),
        5,
        "project, three issue categories, one dependency page"
    );
    for call in calls {
        assert_eq!(call.auth, compliance_fossa::sim::AuthScheme::Bearer);
        assert!(call.authorized);
        assert_eq!(call.accept.as_deref(), Some("application/json"));
        assert!(call
            .user_agent
            .as_deref()
            .unwrap()
            .starts_with("compliance-fossa/"));
        assert_eq!(call.method, "GET");
    }
}

#[tokio::test]
async fn the_project_is_looked_up_by_exact_locator() {
    let sim = sim().await;
    sim.state().generate_project(&ProjectSpec::new(P, 1, 0, 1));
    sim.state()
        .generate_project(&ProjectSpec::new(format!("{P}-other"), 1, 0, 2));
    let client = strict_client(&sim);

    let project = client.project(P).await.unwrap();
    assert_eq!(project.info.locator, P);
    assert_eq!(project.latest_build_status.as_deref(), Some("succeeded"));
    let call = &sim.state().requests_to(Endpoint::Projects)[0];
    assert_eq!(call.param("locators[]").as_deref(), Some(P));
    assert_eq!(call.param("count").as_deref(), Some("1"));

    let missing = client.project("custom+7/nothing-here").await.unwrap_err();
    assert!(matches!(missing, FossaError::NotFound { .. }), "{missing}");
    assert!(missing
        .to_string()
        .contains("project or revision not found in FOSSA"));
}

#[tokio::test]
async fn a_new_revision_shows_fixed_and_new_issues() {
    let sim = sim().await;
    sim.state()
        .generate_project(&ProjectSpec::new(P, 50, 30, 11).with_revision("r1"));
    let report = sim
        .state()
        .advance_revision(P, &RevisionChange::new("r2", 4, 6))
        .unwrap();
    let client = strict_client(&sim);

    let before = client.snapshot(P, Some("r1")).await.unwrap();
    let after = client.snapshot(P, None).await.unwrap();

    assert_eq!(after.revision, "r2");
    assert_eq!(
        after.project.latest_revision.as_deref(),
        Some(format!("{P}$r2").as_str())
    );
    let ids = |s: &compliance_core::domain::ScanSnapshot| -> HashSet<String> {
        s.issues.iter().map(|i| i.key.fossa_id.clone()).collect()
    };
    let (before, after) = (ids(&before), ids(&after));
    let fixed: HashSet<String> = before.difference(&after).cloned().collect();
    let added: HashSet<String> = after.difference(&before).cloned().collect();
    assert_eq!(
        fixed,
        report.fixed.iter().map(|(_, id)| id.to_string()).collect()
    );
    assert_eq!(
        added,
        report.added.iter().map(|(_, id)| id.to_string()).collect()
    );
    assert_eq!((fixed.len(), added.len()), (4, 6));
}
