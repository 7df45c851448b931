//! Checks of the webhook event log and delivery keys.

use std::sync::Arc;

use crate::domain::{
    EventStatus, JobQuery, JobStatus, PageRequest, RejectionKind, WebhookEventQuery,
};
use crate::id::WebhookEventId;
use crate::ports::{AcceptRecord, PriorDelivery, Stores};
use crate::testing::fixtures::{self, at};

use super::{accept, register};

/// Rejected and accepted events read back as written; an accepted one is linked to its job.
pub async fn record_and_get_events(stores: &Stores) {
    let rejected = fixtures::rejected_event(RejectionKind::InvalidSignature, at(10));
    stores
        .events
        .record_rejected(rejected.clone())
        .await
        .unwrap();
    let read = stores.events.get_event(rejected.id).await.unwrap();
    assert_eq!(
        read.as_ref(),
        Some(&rejected),
        "a rejected event reads back unchanged"
    );

    let component = register(stores, "payment-service").await;
    let accepted =
        fixtures::accepted_webhook(&component, "main", Some(at(15)), at(20), Some("key-1"));
    let record = stores
        .events
        .record_accepted(accepted.clone())
        .await
        .unwrap();
    let AcceptRecord::Created(created) = record else {
        panic!("first delivery must be created, got {record:?}");
    };
    assert_eq!(
        created.job,
        accepted.job.clone().into_job(),
        "the job is stored as given"
    );
    assert!(created.superseded.is_empty());
    assert_eq!(
        created.jobs_ahead, 1,
        "one job is queued in the whole store"
    );

    let event = stores.events.get_event(accepted.event.id).await.unwrap();
    assert_eq!(
        event.as_ref(),
        Some(&accepted.event),
        "the accepted event reads back unchanged"
    );
    let event = event.unwrap();
    assert_eq!(event.processing_status, EventStatus::Queued);
    assert_eq!(event.sync_job_id, Some(accepted.job.id));
    assert_eq!(event.component_id, Some(component.id));

    let job = stores.jobs.get_job(accepted.job.id).await.unwrap().unwrap();
    assert_eq!(job.webhook_event_id, Some(accepted.event.id));
    assert_eq!(job.status, JobStatus::Queued);

    let missing = stores
        .events
        .get_event(WebhookEventId::new())
        .await
        .unwrap();
    assert_eq!(missing, None);
}

/// The event list is newest first and filters by status, component and time; it pages.
pub async fn list_events_filters_and_paging(stores: &Stores) {
    let a = register(stores, "service-a").await;
    let b = register(stores, "service-b").await;
    let rejected_10 = fixtures::rejected_event(RejectionKind::InvalidPayload, at(10));
    let rejected_20 = fixtures::rejected_event(RejectionKind::ComponentNotFound, at(20));
    stores
        .events
        .record_rejected(rejected_10.clone())
        .await
        .unwrap();
    stores
        .events
        .record_rejected(rejected_20.clone())
        .await
        .unwrap();
    let a_30 = accept(stores, &a, "main", Some(1), 30).await;
    let b_40 = accept(stores, &b, "main", Some(1), 40).await;
    let a_50 = accept(stores, &a, "develop", Some(1), 50).await;
    let event_of = |created: &crate::ports::CreatedJob| created.job.webhook_event_id.unwrap();
    let (a_30, b_40, a_50) = (event_of(&a_30), event_of(&b_40), event_of(&a_50));

    let ids = |page: crate::domain::Page<crate::domain::WebhookEvent>| -> Vec<WebhookEventId> {
        page.items.iter().map(|e| e.id).collect()
    };
    let all = stores
        .events
        .list_events(&WebhookEventQuery::default())
        .await
        .unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(
        ids(all),
        [a_50, b_40, a_30, rejected_20.id, rejected_10.id],
        "newest first"
    );

    let failed = WebhookEventQuery {
        status: Some(EventStatus::Failed),
        ..WebhookEventQuery::default()
    };
    let failed = stores.events.list_events(&failed).await.unwrap();
    assert_eq!(ids(failed), [rejected_20.id, rejected_10.id]);
    let queued = WebhookEventQuery {
        status: Some(EventStatus::Queued),
        ..WebhookEventQuery::default()
    };
    assert_eq!(stores.events.list_events(&queued).await.unwrap().total, 3);

    let of_a = WebhookEventQuery {
        component_id: Some(a.id),
        ..WebhookEventQuery::default()
    };
    assert_eq!(
        ids(stores.events.list_events(&of_a).await.unwrap()),
        [a_50, a_30]
    );

    let window = WebhookEventQuery {
        from: Some(at(20)),
        to: Some(at(50)),
        ..WebhookEventQuery::default()
    };
    let window = stores.events.list_events(&window).await.unwrap();
    assert_eq!(
        ids(window),
        [b_40, a_30, rejected_20.id],
        "from is inclusive, to exclusive"
    );

    let page = WebhookEventQuery {
        page: PageRequest::new(1, 2),
        ..WebhookEventQuery::default()
    };
    let page = stores.events.list_events(&page).await.unwrap();
    assert_eq!((page.total, page.offset, page.limit), (5, 1, 2));
    assert_eq!(ids(page), [b_40, a_30]);
}

/// Pruning deletes exactly the events received before the cut.
pub async fn prune_events(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    for secs in [10, 20, 30] {
        let event = fixtures::rejected_event(RejectionKind::InvalidSignature, at(secs));
        stores.events.record_rejected(event).await.unwrap();
    }
    let accepted = fixtures::accepted_webhook(&component, "main", None, at(15), Some("old-key"));
    stores.events.record_accepted(accepted).await.unwrap();

    assert_eq!(
        stores.events.prune_events(at(10)).await.unwrap(),
        0,
        "the cut is exclusive"
    );
    assert_eq!(stores.events.prune_events(at(20)).await.unwrap(), 2);
    let left = stores
        .events
        .list_events(&WebhookEventQuery::default())
        .await
        .unwrap();
    let times: Vec<_> = left.items.iter().map(|e| e.received_at).collect();
    assert_eq!(times, [at(30), at(20)]);
    let found = stores.events.find_delivery("old-key", at(0)).await.unwrap();
    assert_eq!(found, None, "a pruned delivery is no longer found");
    assert_eq!(stores.events.prune_events(at(1_000)).await.unwrap(), 2);
}

/// A second accepted event with the same delivery key writes nothing and names the first.
pub async fn duplicate_delivery_key(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let first = fixtures::accepted_webhook(&component, "main", Some(at(5)), at(10), Some("k1"));
    let second = fixtures::accepted_webhook(&component, "main", Some(at(5)), at(12), Some("k1"));
    stores.events.record_accepted(first.clone()).await.unwrap();

    let expected = PriorDelivery {
        event_id: first.event.id,
        sync_job_id: first.job.id,
        component_id: component.id,
        received_at: at(10),
    };
    let again = stores.events.record_accepted(second.clone()).await.unwrap();
    assert_eq!(again, AcceptRecord::Duplicate(expected.clone()));
    assert_eq!(
        stores.jobs.get_job(second.job.id).await.unwrap(),
        None,
        "no second job"
    );
    assert_eq!(
        stores.events.get_event(second.event.id).await.unwrap(),
        None
    );
    let first_job = stores.jobs.get_job(first.job.id).await.unwrap().unwrap();
    assert_eq!(
        first_job.status,
        JobStatus::Queued,
        "the duplicate did not supersede it"
    );

    let find = |since| stores.events.find_delivery("k1", since);
    assert_eq!(find(at(0)).await.unwrap(), Some(expected.clone()));
    assert_eq!(
        find(at(10)).await.unwrap(),
        Some(expected),
        "since is inclusive"
    );
    assert_eq!(find(at(11)).await.unwrap(), None, "outside the window");
    let unknown = stores.events.find_delivery("k2", at(0)).await.unwrap();
    assert_eq!(unknown, None);
}

/// Ten concurrent deliveries of one signed request create exactly one event and one job.
pub async fn concurrent_duplicate_deliveries(stores: &Stores) {
    const CALLERS: usize = 10;
    let component = register(stores, "payment-service").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let accepted = fixtures::accepted_webhook(
            &component,
            "main",
            Some(at(5)),
            at(10 + i64::try_from(i).unwrap()),
            Some("same-delivery"),
        );
        let stores = stores.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            stores.events.record_accepted(accepted).await
        }));
    }

    let mut created = Vec::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok(AcceptRecord::Created(c)) => created.push(c),
            Ok(AcceptRecord::Duplicate(d)) => duplicates.push(d),
            Err(e) => panic!("a concurrent delivery failed: {e}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one delivery is created");
    assert_eq!(duplicates.len(), CALLERS - 1);
    let job_id = created.first().map(|c| c.job.id);
    assert!(
        duplicates.iter().all(|d| Some(d.sync_job_id) == job_id),
        "every duplicate names the created job"
    );
    let jobs = stores.jobs.list_jobs(&JobQuery::default()).await.unwrap();
    assert_eq!(jobs.total, 1);
    let events = stores
        .events
        .list_events(&WebhookEventQuery::default())
        .await
        .unwrap();
    assert_eq!(events.total, 1);
}

/// A webhook that cannot be recorded whole is not recorded at all: no event, no job, and its
/// delivery key stays free.
pub async fn record_accepted_is_atomic(stores: &Stores) {
    let component = register(stores, "payment-service").await;

    let mut ghost = component.clone();
    ghost.id = crate::id::ComponentId::new();
    let orphan = fixtures::accepted_webhook(&ghost, "main", None, at(10), Some("k-orphan"));
    let result = stores.events.record_accepted(orphan.clone()).await;
    assert!(
        result.is_err(),
        "a job for an unknown component is refused: {result:?}"
    );
    assert_eq!(
        stores.events.get_event(orphan.event.id).await.unwrap(),
        None
    );
    assert_eq!(stores.jobs.get_job(orphan.job.id).await.unwrap(), None);
    assert_eq!(
        stores
            .events
            .find_delivery("k-orphan", at(0))
            .await
            .unwrap(),
        None
    );

    let first = accept(stores, &component, "main", Some(5), 20).await;
    let mut clash = fixtures::accepted_webhook(&component, "develop", None, at(21), Some("k-2"));
    clash.job.id = first.job.id;
    clash.event.sync_job_id = Some(first.job.id);
    let result = stores.events.record_accepted(clash.clone()).await;
    assert!(
        result.is_err(),
        "a job id that exists is refused: {result:?}"
    );
    assert_eq!(
        stores.events.get_event(clash.event.id).await.unwrap(),
        None,
        "no event"
    );
    assert_eq!(
        stores.events.find_delivery("k-2", at(0)).await.unwrap(),
        None
    );
    let untouched = stores.jobs.get_job(first.job.id).await.unwrap().unwrap();
    assert_eq!(untouched, first.job, "the existing job is unchanged");

    let proper = fixtures::accepted_webhook(&component, "develop", None, at(22), Some("k-2"));
    let record = stores.events.record_accepted(proper).await.unwrap();
    assert!(
        matches!(record, AcceptRecord::Created(_)),
        "the key is still free: {record:?}"
    );
    let events = stores
        .events
        .list_events(&WebhookEventQuery::default())
        .await
        .unwrap();
    assert_eq!(events.total, 2);
}
