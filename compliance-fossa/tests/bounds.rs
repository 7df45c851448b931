//! Memory and paging bounds: the client buffers one page of raw JSON at a time, refuses a page
//! larger than its limit instead of cutting it, and gives up on paging that never ends.
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
use compliance_core::{RetryClass, ScanSourceError};
use compliance_fossa::sim::{Endpoint, ProjectSpec};
use compliance_fossa::{FossaClient, FossaError};

use common::{sim, strict_client};

const P: &str = "custom+11/github.com/acme/bounds";
const PAGE: usize = 100;

/// An upper bound on any page of `PAGE` dependencies the simulator serves for `revision`
/// (its `PAGE` largest objects), and the size of the whole list as one body.
fn page_sizes(sim: &compliance_fossa::sim::SimHandle, revision: &str) -> (usize, usize) {
    let project = sim.state().project(P).unwrap();
    let sizes: Vec<usize> = project
        .revision(revision)
        .unwrap()
        .dependencies
        .iter()
        .filter(|d| !d.ignored)
        .map(|d| d.json.len())
        .collect();
    let whole = 2 + sizes.iter().sum::<usize>() + sizes.len().saturating_sub(1);
    (page_bound(sizes, 2), whole)
}

/// The body size of the `PAGE` largest of `sizes` joined by commas, plus `wrapper` bytes.
fn page_bound(mut sizes: Vec<usize>, wrapper: usize) -> usize {
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes.truncate(PAGE);
    wrapper + sizes.iter().sum::<usize>() + sizes.len().saturating_sub(1)
}

#[tokio::test]
async fn a_20000_dependency_project_fits_a_one_page_buffer() {
    let sim = sim().await;
    sim.state().generate_project(
        &ProjectSpec::new(P, 20_000, 5_000, 77)
            .with_unresolved(3)
            .with_revision("big"),
    );
    let (page, whole) = page_sizes(&sim, "big");
    assert!(
        whole > 150 * page,
        "the list is many pages ({whole} vs {page})"
    );

    // Every body the client reads is refused beyond this many bytes: the dependency list
    // and the issues must arrive a page at a time.
    let mut config = sim
        .client_config()
        .with_request_retries(0)
        .with_dependencies_page_size(PAGE as u32)
        .with_issues_page_size(PAGE as u32);
    config.max_page_bytes = page + 64;
    // `{"issues":[` … `]}` around the largest page of any category.
    let issue_page = {
        let project = sim.state().project(P).unwrap();
        let issues = &project.revision("big").unwrap().issues;
        [
            IssueCategory::Licensing,
            IssueCategory::Vulnerability,
            IssueCategory::Quality,
        ]
        .into_iter()
        .map(|c| {
            let sizes = issues
                .iter()
                .filter(|i| i.category == c && !i.ignored)
                .map(|i| i.json.len())
                .collect();
            page_bound(sizes, 14)
        })
        .max()
        .unwrap()
    };
    config.max_page_bytes = config.max_page_bytes.max(issue_page);
    assert!(
        config.max_page_bytes * 10 < whole,
        "the bound stays far below the whole list"
    );
    let client = FossaClient::new(config).unwrap();

    let snapshot = client.snapshot(P, Some("big")).await.unwrap();

    assert_eq!(snapshot.dependencies.len(), 20_000);
    assert_eq!(snapshot.unresolved_dependencies, 3);
    assert_eq!(snapshot.issues.len(), 5_000);
    let keys: HashSet<_> = snapshot.issues.iter().map(|i| i.key.clone()).collect();
    assert_eq!(keys.len(), 5_000, "issues are distinct");
    let locators: HashSet<_> = snapshot
        .dependencies
        .iter()
        .map(|d| d.locator.as_str())
        .collect();
    assert_eq!(locators.len(), 20_000, "dependencies are distinct");
    // 200 full pages of 100 (3 placeholders included), then a short one.
    assert_eq!(
        sim.state().requests_to(Endpoint::Dependencies).len(),
        20_003 / PAGE + 1
    );
}

#[tokio::test]
async fn a_page_over_the_limit_is_refused_not_cut_short() {
    let sim = sim().await;
    sim.state()
        .generate_project(&ProjectSpec::new(P, 300, 0, 5).with_revision("r"));
    let (page, _) = page_sizes(&sim, "r");
    let mut config = sim.client_config().with_request_retries(0);
    config.max_page_bytes = page / 2;
    let client = FossaClient::new(config).unwrap();

    let err = client.dependencies(P, "r").await.unwrap_err();

    assert!(
        matches!(err, FossaError::TooLarge { limit, .. } if limit == page / 2),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("/api/revisions/{locator}/dependencies"));
    // Never read as a short list: one request, and the fetch fails as a decode error that
    // the worker retries with backoff.
    assert_eq!(sim.state().requests_to(Endpoint::Dependencies).len(), 1);
    let core = ScanSourceError::from(err);
    assert_eq!(core.kind(), "decode");
    assert_eq!(core.retry_class(), RetryClass::Backoff);
}

#[tokio::test]
async fn paging_that_never_ends_is_given_up_after_max_pages() {
    let sim = sim().await;
    // 250 dependencies are three pages of 100; allow two.
    sim.state().generate_project(
        &ProjectSpec::new(P, 250, 0, 6)
            .with_issue_mix(0, 30, 0)
            .with_revision("r"),
    );
    let mut config = sim
        .client_config()
        .with_request_retries(0)
        .with_issues_page_size(10);
    config.max_pages = 2;
    let client = FossaClient::new(config).unwrap();

    let err = client.dependencies(P, "r").await.unwrap_err();
    assert!(
        matches!(err, FossaError::EndlessPaging { pages: 2, .. }),
        "{err}"
    );
    assert_eq!(sim.state().requests_to(Endpoint::Dependencies).len(), 2);

    let err = client
        .issues(P, "r", IssueCategory::Vulnerability)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FossaError::EndlessPaging { pages: 2, .. }),
        "{err}"
    );
    assert_eq!(ScanSourceError::from(err).kind(), "decode");

    // Within the bound, the same lists arrive whole.
    let client = strict_client(&sim);
    assert_eq!(client.dependencies(P, "r").await.unwrap().items.len(), 250);
}
