//! Checks of the component directory.

use crate::domain::{ComplianceStatus, ComponentQuery, PageRequest};
use crate::error::StoreError;
use crate::ports::Stores;
use crate::repo_url::RepoUrl;
use crate::testing::fixtures::{self, at};

use super::{register, sync};

/// A registered component reads back as registered, with no sync yet.
pub async fn register_and_get(stores: &Stores) {
    let new = fixtures::component("payment-service", "https://github.com/acme/payment-service");
    let registered = stores
        .components
        .register(new.clone(), at(5))
        .await
        .unwrap();

    assert_eq!(registered.name, "payment-service");
    assert_eq!(
        registered.repository_url,
        "https://github.com/acme/payment-service"
    );
    assert_eq!(registered.repository_key, new.repository_url.key());
    assert_eq!(registered.fossa_locator, new.fossa_locator);
    assert_eq!(registered.default_branch, "main");
    assert_eq!(registered.compliance_status, ComplianceStatus::Unknown);
    assert_eq!(registered.last_synced_at, None);
    assert_eq!(registered.last_scan_at, None);
    assert_eq!(registered.last_revision, None);
    assert_eq!(registered.last_sync_job_id, None);
    assert_eq!(registered.created_at, at(5));

    let read = stores.components.get(registered.id).await.unwrap();
    assert_eq!(
        read.as_ref(),
        Some(&registered),
        "get returns what register returned"
    );
    let unknown = stores
        .components
        .get(crate::id::ComponentId::new())
        .await
        .unwrap();
    assert_eq!(unknown, None, "an unknown id finds nothing");
}

/// A repository can be registered once, whatever the spelling of its URL.
pub async fn register_conflict(stores: &Stores) {
    register(stores, "payment-service").await;

    for spelling in [
        "https://github.com/acme/payment-service",
        "git@github.com:acme/payment-service.git",
    ] {
        let again = fixtures::component("again", spelling);
        let result = stores.components.register(again, at(1)).await;
        assert!(
            matches!(result, Err(StoreError::Conflict { .. })),
            "registering {spelling} again must conflict, got {result:?}"
        );
    }

    let other = fixtures::component("billing", "https://github.com/acme/billing");
    stores
        .components
        .register(other, at(1))
        .await
        .expect("another repository registers");
    let all = stores
        .components
        .list(&ComponentQuery::default())
        .await
        .unwrap();
    assert_eq!(all.total, 2, "the conflicting registrations wrote nothing");
}

/// Every spelling of a repository URL finds the component registered under another one.
pub async fn find_by_every_url_spelling(stores: &Stores) {
    let new = fixtures::component("payment-service", "https://github.com/Acme/Payment-Service");
    let registered = stores.components.register(new, at(0)).await.unwrap();

    for spelling in [
        "https://github.com/Acme/Payment-Service",
        "https://github.com/acme/payment-service/",
        "https://github.com/acme/payment-service.git",
        "git@github.com:Acme/Payment-Service.git",
        "ssh://git@github.com/acme/payment-service",
    ] {
        let url = RepoUrl::parse(spelling).unwrap();
        let found = stores.components.find_by_repository(&url).await.unwrap();
        assert_eq!(
            found.map(|c| c.id),
            Some(registered.id),
            "{spelling} must find the component"
        );
    }

    let other = RepoUrl::parse("https://github.com/acme/payment-service-v2").unwrap();
    let found = stores.components.find_by_repository(&other).await.unwrap();
    assert_eq!(found, None, "a different repository finds nothing");
}

/// The list filters by status and name, orders by name, pages, and carries counts.
pub async fn list_filters_and_paging(stores: &Stores) {
    let names = ["delta", "alpha", "echo", "charlie", "bravo-api"];
    let mut registered = Vec::new();
    for name in names {
        registered.push(register(stores, name).await);
    }
    let alpha = registered
        .iter()
        .find(|c| c.name == "alpha")
        .unwrap()
        .clone();
    let echo = registered
        .iter()
        .find(|c| c.name == "echo")
        .unwrap()
        .clone();
    sync(
        stores,
        &alpha,
        "main",
        Some(100),
        &fixtures::snapshot(4, 6, 1),
        200,
    )
    .await;
    sync(
        stores,
        &echo,
        "main",
        Some(100),
        &fixtures::snapshot(0, 2, 2),
        200,
    )
    .await;

    let all = stores
        .components
        .list(&ComponentQuery::default())
        .await
        .unwrap();
    let order: Vec<&str> = all
        .items
        .iter()
        .map(|s| s.component.name.as_str())
        .collect();
    assert_eq!(order, ["alpha", "bravo-api", "charlie", "delta", "echo"]);
    assert_eq!(all.total, 5);

    let alpha_row = all
        .items
        .iter()
        .find(|s| s.component.id == alpha.id)
        .unwrap();
    assert_eq!(alpha_row.issues.total, 4, "summary counts active issues");
    assert_eq!(alpha_row.issues.licensing, 2);
    assert_eq!(alpha_row.issues.vulnerability, 1);
    assert_eq!(alpha_row.issues.quality, 1);
    assert_eq!(alpha_row.issues.critical, 3);
    assert_eq!(alpha_row.issues.high, 1);
    assert_eq!(alpha_row.dependency_count, 6);
    assert_eq!(
        alpha_row.component.compliance_status,
        ComplianceStatus::Failing
    );

    let failing = ComponentQuery {
        status: Some(ComplianceStatus::Failing),
        ..ComponentQuery::default()
    };
    let failing = stores.components.list(&failing).await.unwrap();
    assert_eq!(failing.items.len(), 1);
    assert_eq!(
        failing.items.first().map(|s| s.component.id),
        Some(alpha.id)
    );
    let passing = ComponentQuery {
        status: Some(ComplianceStatus::Passing),
        ..ComponentQuery::default()
    };
    let passing = stores.components.list(&passing).await.unwrap();
    assert_eq!(passing.items.first().map(|s| s.component.id), Some(echo.id));
    assert_eq!(passing.total, 1);
    let unknown = ComponentQuery {
        status: Some(ComplianceStatus::Unknown),
        ..ComponentQuery::default()
    };
    assert_eq!(stores.components.list(&unknown).await.unwrap().total, 3);

    let search = ComponentQuery {
        search: Some("HARL".to_owned()),
        ..ComponentQuery::default()
    };
    let found = stores.components.list(&search).await.unwrap();
    let found: Vec<&str> = found
        .items
        .iter()
        .map(|s| s.component.name.as_str())
        .collect();
    assert_eq!(found, ["charlie"], "search ignores case");

    let page = ComponentQuery {
        page: PageRequest::new(1, 2),
        ..ComponentQuery::default()
    };
    let page = stores.components.list(&page).await.unwrap();
    let names: Vec<&str> = page
        .items
        .iter()
        .map(|s| s.component.name.as_str())
        .collect();
    assert_eq!(names, ["bravo-api", "charlie"]);
    assert_eq!((page.total, page.offset, page.limit), (5, 1, 2));

    let beyond = ComponentQuery {
        page: PageRequest::new(10, 2),
        ..ComponentQuery::default()
    };
    let beyond = stores.components.list(&beyond).await.unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 5);
}

/// Components never synced come first, then the oldest syncs; recent ones are left out.
pub async fn stale_components(stores: &Stores) {
    let never = register(stores, "never").await;
    let old = register(stores, "old").await;
    let older = register(stores, "older").await;
    let fresh = register(stores, "fresh").await;
    let snapshot = fixtures::snapshot(1, 1, 3);
    sync(stores, &old, "main", Some(10), &snapshot, 1_000).await;
    sync(stores, &older, "main", Some(10), &snapshot, 500).await;
    sync(stores, &fresh, "main", Some(10), &snapshot, 9_000).await;

    let stale = stores.components.stale(at(5_000), 10).await.unwrap();
    let ids: Vec<_> = stale.iter().map(|c| c.id).collect();
    assert_eq!(ids, [never.id, older.id, old.id]);

    let limited = stores.components.stale(at(5_000), 2).await.unwrap();
    let ids: Vec<_> = limited.iter().map(|c| c.id).collect();
    assert_eq!(ids, [never.id, older.id]);
}
