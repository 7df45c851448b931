//! Checks of coalescing and of the sync job state machine.

use crate::domain::{EventStatus, JobQuery, JobStatus, PageRequest, SyncJob};
use crate::error::StoreError;
use crate::id::{SyncJobId, WebhookEventId};
use crate::ports::{CreatedJob, StartOutcome, Stores};
use crate::testing::fixtures::{self, at};

use super::{accept, create, job, register, running, start, sync, LEASE};

/// The processing status of `id`.
async fn event_status(stores: &Stores, id: Option<WebhookEventId>) -> EventStatus {
    let id = id.expect("the job has a webhook event");
    let event = stores
        .events
        .get_event(id)
        .await
        .unwrap()
        .expect("event exists");
    event.processing_status
}

/// Jobs of `component` with `status`.
async fn jobs_with(
    stores: &Stores,
    component: crate::id::ComponentId,
    status: JobStatus,
) -> Vec<SyncJob> {
    let query = JobQuery {
        component_id: Some(component),
        status: Some(status),
        page: PageRequest::new(0, PageRequest::MAX_LIMIT),
    };
    stores.jobs.list_jobs(&query).await.unwrap().items
}

/// A burst for one component and branch leaves one pending job; each earlier one is
/// superseded by the one that arrived after it.
pub async fn burst_coalesces_to_one_pending(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let mut created: Vec<CreatedJob> = Vec::new();
    for i in 0..20 {
        let next = accept(stores, &component, "main", Some(100 + i * 10), 10 + i).await;
        assert_eq!(next.job.status, JobStatus::Queued);
        assert_eq!(next.jobs_ahead, 1, "one job is pending after each write");
        let expected: Vec<SyncJobId> = created.last().map(|c| c.job.id).into_iter().collect();
        assert_eq!(
            next.superseded, expected,
            "the new job replaces the pending one"
        );
        created.push(next);
    }

    let queued = jobs_with(stores, component.id, JobStatus::Queued).await;
    let last = created.last().unwrap();
    assert_eq!(
        queued.iter().map(|j| j.id).collect::<Vec<_>>(),
        [last.job.id]
    );
    assert_eq!(
        event_status(stores, last.job.webhook_event_id).await,
        EventStatus::Queued
    );

    for pair in created.windows(2) {
        let [earlier, later] = pair else {
            unreachable!("windows of two");
        };
        let stored = job(stores, earlier.job.id).await;
        assert_eq!(stored.status, JobStatus::Superseded);
        assert_eq!(stored.superseded_by, Some(later.job.id));
        assert!(stored.completed_at.is_some(), "a superseded job has ended");
        let status = event_status(stores, stored.webhook_event_id).await;
        assert_eq!(
            status,
            EventStatus::Processed,
            "a superseded job's event is processed"
        );
    }
    assert_eq!(stores.jobs.active_jobs().await.unwrap(), 1);
}

/// Coalescing is per branch: bursts on two branches leave one pending job each.
pub async fn branches_coalesce_independently(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let other = register(stores, "billing").await;
    let mut last_main = None;
    let mut last_develop = None;
    for i in 0..5 {
        let main = accept(stores, &component, "main", Some(100 + i), 10 + 2 * i).await;
        let develop = accept(stores, &component, "develop", Some(100 + i), 11 + 2 * i).await;
        assert!(
            !develop.superseded.contains(&main.job.id),
            "a job never supersedes another branch's job"
        );
        last_main = Some(main.job.id);
        last_develop = Some(develop.job.id);
    }
    let elsewhere = accept(stores, &other, "main", Some(200), 50).await;
    assert!(
        elsewhere.superseded.is_empty(),
        "a job never supersedes another component's"
    );

    let queued = jobs_with(stores, component.id, JobStatus::Queued).await;
    let mut ids: Vec<SyncJobId> = queued.iter().map(|j| j.id).collect();
    ids.sort();
    let mut expected = vec![last_main.unwrap(), last_develop.unwrap()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(stores.jobs.active_jobs().await.unwrap(), 3);
}

/// A scan older than the pending job's arrives late: it is stored superseded by the pending
/// job, which stays pending. Equal or unknown scan times replace the pending job.
pub async fn older_scan_is_superseded_by_pending(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let pending = accept(stores, &component, "main", Some(100), 10).await;

    let late = accept(stores, &component, "main", Some(50), 11).await;
    assert_eq!(
        late.job.status,
        JobStatus::Superseded,
        "the older scan is born superseded"
    );
    assert_eq!(late.job.superseded_by, Some(pending.job.id));
    assert!(late.superseded.is_empty(), "it replaced nothing");
    assert_eq!(late.jobs_ahead, 1);
    assert_eq!(job(stores, late.job.id).await.status, JobStatus::Superseded);
    assert_eq!(job(stores, pending.job.id).await.status, JobStatus::Queued);
    let status = event_status(stores, late.job.webhook_event_id).await;
    assert_eq!(status, EventStatus::Processed);
    let status = event_status(stores, pending.job.webhook_event_id).await;
    assert_eq!(status, EventStatus::Queued);

    let same_scan = accept(stores, &component, "main", Some(100), 12).await;
    assert_eq!(
        same_scan.job.status,
        JobStatus::Queued,
        "an equal scan time is not older"
    );
    assert_eq!(same_scan.superseded, [pending.job.id]);

    let manual = create(stores, &component, "main", None, 13).await;
    assert_eq!(
        manual.job.status,
        JobStatus::Queued,
        "an unknown scan time is not older"
    );
    assert_eq!(manual.superseded, [same_scan.job.id]);
    let replaced = job(stores, same_scan.job.id).await;
    assert_eq!(replaced.superseded_by, Some(manual.job.id));
}

/// A scan older than the data already synced is stored superseded by the job that synced it,
/// on any branch.
pub async fn scan_older_than_synced_data_is_superseded(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let (synced, _) = sync(
        stores,
        &component,
        "main",
        Some(100),
        &fixtures::snapshot(2, 2, 1),
        10,
    )
    .await;
    let now = super::component(stores, component.id).await;
    assert_eq!(now.last_scan_at, Some(at(100)));
    assert_eq!(now.last_sync_job_id, Some(synced.id));

    let old = accept(stores, &component, "main", Some(50), 20).await;
    assert_eq!(old.job.status, JobStatus::Superseded);
    assert_eq!(old.job.superseded_by, Some(synced.id));
    assert_eq!(old.jobs_ahead, 0, "nothing is queued or running");
    let status = event_status(stores, old.job.webhook_event_id).await;
    assert_eq!(status, EventStatus::Processed);

    let old_elsewhere = create(stores, &component, "develop", Some(99), 21).await;
    assert_eq!(old_elsewhere.job.status, JobStatus::Superseded);
    assert_eq!(old_elsewhere.job.superseded_by, Some(synced.id));

    let same = create(stores, &component, "develop", Some(100), 22).await;
    assert_eq!(
        same.job.status,
        JobStatus::Queued,
        "the same scan time may sync again"
    );
    let newer = accept(stores, &component, "main", Some(150), 23).await;
    assert_eq!(newer.job.status, JobStatus::Queued);
    let manual = create(stores, &component, "main", None, 24).await;
    assert_eq!(manual.job.status, JobStatus::Queued);
    assert_eq!(manual.superseded, [newer.job.id]);
    assert_eq!(manual.jobs_ahead, 2);
}

/// A running job is never superseded: one running and one pending job may coexist.
pub async fn running_job_is_not_superseded(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let first = running(stores, &component, "main", Some(100), 10).await;

    let pending = accept(stores, &component, "main", Some(200), 20).await;
    assert_eq!(pending.job.status, JobStatus::Queued);
    assert!(
        pending.superseded.is_empty(),
        "the running job is left alone"
    );
    assert_eq!(pending.jobs_ahead, 2, "one running and one queued");

    let newest = accept(stores, &component, "main", Some(300), 21).await;
    assert_eq!(newest.superseded, [pending.job.id]);
    assert_eq!(job(stores, first.id).await.status, JobStatus::Running);
    assert_eq!(stores.jobs.active_jobs().await.unwrap(), 2);
}

/// `start` moves a queued job to running, counting the attempt.
pub async fn start_moves_queued_to_running(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let created = accept(stores, &component, "main", Some(5), 10).await;

    let started = start(stores, created.job.id, 20).await;
    assert_eq!(started.status, JobStatus::Running);
    assert_eq!(started.attempts, 1);
    assert_eq!(started.started_at, Some(at(20)));
    assert_eq!(started.heartbeat_at, Some(at(20)));
    assert_eq!(started.next_attempt_at, None);
    assert_eq!(started.revision, created.job.revision);
    assert_eq!(started.branch, "main");
    assert_eq!(
        job(stores, created.job.id).await,
        started,
        "the stored job matches"
    );
    assert_eq!(stores.jobs.active_jobs().await.unwrap(), 1);
}

/// While a job of a component and branch runs with a live heartbeat, another job of the same
/// pair is busy; other branches and components are not affected.
pub async fn start_busy_while_sibling_runs(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let other = register(stores, "billing").await;
    let first = running(stores, &component, "main", None, 100).await;
    let second = create(stores, &component, "main", None, 101).await.job;

    let outcome = stores.jobs.start(second.id, at(110), LEASE).await.unwrap();
    assert_eq!(outcome, StartOutcome::Busy { running: first.id });
    let outcome = stores.jobs.start(first.id, at(110), LEASE).await.unwrap();
    assert_eq!(
        outcome,
        StartOutcome::Busy { running: first.id },
        "a live job is not restarted"
    );
    assert_eq!(
        job(stores, second.id).await.status,
        JobStatus::Queued,
        "busy changes nothing"
    );
    assert_eq!(job(stores, first.id).await.attempts, 1);

    let develop = create(stores, &component, "develop", None, 102).await.job;
    start(stores, develop.id, 110).await;
    let elsewhere = create(stores, &other, "main", None, 103).await.job;
    start(stores, elsewhere.id, 110).await;

    stores.jobs.heartbeat(first.id, at(120)).await.unwrap();
    let outcome = stores.jobs.start(second.id, at(145), LEASE).await.unwrap();
    assert_eq!(
        outcome,
        StartOutcome::Busy { running: first.id },
        "the heartbeat keeps it live"
    );
    let taken = start(stores, second.id, 151).await;
    assert_eq!(
        taken.attempts, 1,
        "the sibling's expired heartbeat no longer blocks"
    );
}

/// A running job whose heartbeat is older than the lease is taken over by a new start.
pub async fn start_takes_over_expired_lease(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let first = running(stores, &component, "main", Some(5), 0).await;
    assert_eq!(first.attempts, 1);

    let outcome = stores.jobs.start(first.id, at(29), LEASE).await.unwrap();
    assert_eq!(outcome, StartOutcome::Busy { running: first.id });
    stores.jobs.heartbeat(first.id, at(29)).await.unwrap();
    let outcome = stores.jobs.start(first.id, at(58), LEASE).await.unwrap();
    assert_eq!(outcome, StartOutcome::Busy { running: first.id });

    let taken = start(stores, first.id, 59).await;
    assert_eq!(taken.status, JobStatus::Running);
    assert_eq!(taken.attempts, 2, "the takeover is a new attempt");
    assert_eq!(taken.heartbeat_at, Some(at(59)));
    assert_eq!(
        taken.started_at,
        Some(at(0)),
        "started_at keeps the first start"
    );
}

/// Ended jobs answer `Finished`; an unknown job is not found.
pub async fn start_finished_and_unknown_jobs(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let (completed, _) = sync(
        stores,
        &component,
        "main",
        Some(5),
        &fixtures::snapshot(1, 1, 1),
        10,
    )
    .await;
    let failed = running(stores, &component, "develop", None, 20).await;
    stores
        .jobs
        .fail(failed.id, "gave up", at(21))
        .await
        .unwrap();
    let superseded = create(stores, &component, "feature", None, 30).await.job;
    stores
        .jobs
        .supersede(superseded.id, None, at(31))
        .await
        .unwrap();

    for (id, status) in [
        (completed.id, JobStatus::Completed),
        (failed.id, JobStatus::Failed),
        (superseded.id, JobStatus::Superseded),
    ] {
        match stores.jobs.start(id, at(100), LEASE).await.unwrap() {
            StartOutcome::Finished(job) => assert_eq!(job.status, status),
            other => panic!("start of a {status:?} job: expected Finished, got {other:?}"),
        }
    }

    let unknown = stores.jobs.start(SyncJobId::new(), at(100), LEASE).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "starting an unknown job: expected NotFound, got {unknown:?}"
    );
}

/// `retry_later` puts a running job back in the queue with its error and due time.
pub async fn retry_later_requeues(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let first = running(stores, &component, "main", Some(5), 10).await;

    stores
        .jobs
        .retry_later(first.id, "rate limited by FOSSA", at(70))
        .await
        .unwrap();
    let waiting = job(stores, first.id).await;
    assert_eq!(waiting.status, JobStatus::Queued);
    assert_eq!(waiting.next_attempt_at, Some(at(70)));
    assert_eq!(
        waiting.error_message.as_deref(),
        Some("rate limited by FOSSA")
    );
    assert_eq!(waiting.attempts, 1);
    assert_eq!(stores.jobs.active_jobs().await.unwrap(), 1);

    let again = start(stores, first.id, 70).await;
    assert_eq!(again.attempts, 2);
    assert_eq!(again.next_attempt_at, None, "a running job is not waiting");
    assert_eq!(again.heartbeat_at, Some(at(70)));
}

/// `fail` ends the job and its webhook event as failed.
pub async fn fail_settles_job_and_event(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let created = accept(stores, &component, "main", Some(5), 10).await;
    start(stores, created.job.id, 20).await;

    stores
        .jobs
        .fail(created.job.id, "project not found in FOSSA", at(30))
        .await
        .unwrap();
    let failed = job(stores, created.job.id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(
        failed.error_message.as_deref(),
        Some("project not found in FOSSA")
    );
    assert_eq!(failed.completed_at, Some(at(30)));
    let event_id = created.job.webhook_event_id.unwrap();
    let event = stores.events.get_event(event_id).await.unwrap().unwrap();
    assert_eq!(event.processing_status, EventStatus::Failed);
    assert_eq!(event.processed_at, Some(at(30)));

    let manual = create(stores, &component, "develop", None, 40).await.job;
    stores
        .jobs
        .fail(manual.id, "component removed", at(41))
        .await
        .unwrap();
    assert_eq!(
        job(stores, manual.id).await.status,
        JobStatus::Failed,
        "queued jobs can fail"
    );
    assert_eq!(stores.jobs.active_jobs().await.unwrap(), 0);
}

/// `supersede` ends the job, names the covering job and marks its event processed.
pub async fn supersede_settles_job_and_event(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let covered = accept(stores, &component, "main", Some(5), 10).await;
    let covering = accept(stores, &component, "develop", Some(6), 11).await;

    stores
        .jobs
        .supersede(covered.job.id, Some(covering.job.id), at(40))
        .await
        .unwrap();
    let ended = job(stores, covered.job.id).await;
    assert_eq!(ended.status, JobStatus::Superseded);
    assert_eq!(ended.superseded_by, Some(covering.job.id));
    assert_eq!(ended.completed_at, Some(at(40)));
    let event_id = covered.job.webhook_event_id.unwrap();
    let event = stores.events.get_event(event_id).await.unwrap().unwrap();
    assert_eq!(event.processing_status, EventStatus::Processed);
    assert_eq!(event.processed_at, Some(at(40)));

    let busy = running(stores, &component, "feature", None, 50).await;
    stores.jobs.supersede(busy.id, None, at(51)).await.unwrap();
    let ended = job(stores, busy.id).await;
    assert_eq!(
        ended.status,
        JobStatus::Superseded,
        "a running job can be superseded"
    );
    assert_eq!(ended.superseded_by, None);
}

/// Completed, failed and superseded jobs never change again, whatever is called on them.
pub async fn final_states_never_change(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let (completed, _) = sync(
        stores,
        &component,
        "main",
        Some(5),
        &fixtures::snapshot(2, 1, 1),
        10,
    )
    .await;
    let failed = accept(stores, &component, "develop", Some(6), 20).await.job;
    start(stores, failed.id, 21).await;
    stores
        .jobs
        .fail(failed.id, "gave up", at(22))
        .await
        .unwrap();
    let superseded = accept(stores, &component, "feature", Some(7), 30).await.job;
    stores
        .jobs
        .supersede(superseded.id, None, at(31))
        .await
        .unwrap();

    for id in [completed.id, failed.id, superseded.id] {
        let before = job(stores, id).await;
        let event_before = match before.webhook_event_id {
            Some(e) => stores.events.get_event(e).await.unwrap(),
            None => None,
        };
        // Whether these calls answer Ok or an error is up to the adapter; the job must not move.
        let _ = stores.jobs.retry_later(id, "late retry", at(900)).await;
        let _ = stores.jobs.fail(id, "late failure", at(901)).await;
        let _ = stores
            .jobs
            .supersede(id, Some(SyncJobId::new()), at(902))
            .await;
        let _ = stores.jobs.heartbeat(id, at(903)).await;
        let outcome = stores.jobs.start(id, at(904), LEASE).await.unwrap();
        assert!(
            matches!(outcome, StartOutcome::Finished(_)),
            "start of an ended job: {outcome:?}"
        );

        assert_eq!(
            job(stores, id).await,
            before,
            "an ended job ({:?}) changed",
            before.status
        );
        let event_after = match before.webhook_event_id {
            Some(e) => stores.events.get_event(e).await.unwrap(),
            None => None,
        };
        assert_eq!(
            event_after, event_before,
            "the event of an ended job changed"
        );
    }
    assert_eq!(stores.jobs.active_jobs().await.unwrap(), 0);
}

/// `queued_before` lists waiting jobs by the time they were queued or are due; only queued
/// and running jobs count as active.
pub async fn queued_before_and_active_jobs(stores: &Stores) {
    let mut components = Vec::new();
    for name in ["one", "two", "three", "four", "five"] {
        components.push(register(stores, name).await);
    }
    let [one, two, three, four, five] = components.as_slice() else {
        unreachable!("five components were registered");
    };
    let a = create(stores, one, "main", None, 10).await.job;
    let b = create(stores, two, "main", None, 20).await.job;
    let c = running(stores, three, "main", None, 30).await;
    stores
        .jobs
        .retry_later(c.id, "transient", at(15))
        .await
        .unwrap();
    running(stores, four, "main", None, 40).await;
    sync(stores, five, "main", None, &fixtures::snapshot(1, 1, 1), 50).await;

    let ids = |jobs: Vec<SyncJob>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let due = stores.jobs.queued_before(at(100), 10).await.unwrap();
    assert_eq!(
        ids(due),
        [a.id, c.id, b.id],
        "by queue time, or retry time when waiting"
    );
    let due = stores.jobs.queued_before(at(16), 10).await.unwrap();
    assert_eq!(ids(due), [a.id, c.id]);
    let due = stores.jobs.queued_before(at(100), 2).await.unwrap();
    assert_eq!(ids(due), [a.id, c.id], "the limit applies");
    let due = stores.jobs.queued_before(at(10), 10).await.unwrap();
    assert!(due.is_empty(), "before is exclusive");

    assert_eq!(stores.jobs.active_jobs().await.unwrap(), 4);
}

/// `stalled_before` lists running jobs by their last heartbeat (or start); queued and
/// finished jobs never count, and a heartbeat moves a job out of the list.
pub async fn stalled_running_jobs(stores: &Stores) {
    let mut components = Vec::new();
    for name in ["one", "two", "three", "four"] {
        components.push(register(stores, name).await);
    }
    let [one, two, three, four] = components.as_slice() else {
        unreachable!("four components were registered");
    };
    let a = running(stores, one, "main", None, 10).await;
    let b = running(stores, two, "main", None, 20).await;
    stores.jobs.heartbeat(b.id, at(30)).await.unwrap();
    create(stores, three, "main", None, 5).await;
    sync(stores, four, "main", None, &fixtures::snapshot(1, 1, 1), 6).await;

    let ids = |jobs: Vec<SyncJob>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let stalled = stores.jobs.stalled_before(at(25), 10).await.unwrap();
    assert_eq!(ids(stalled), [a.id], "b's heartbeat at 30 keeps it off");
    let stalled = stores.jobs.stalled_before(at(100), 10).await.unwrap();
    assert_eq!(ids(stalled), [a.id, b.id], "oldest heartbeat first");
    let stalled = stores.jobs.stalled_before(at(100), 1).await.unwrap();
    assert_eq!(ids(stalled), [a.id], "the limit applies");
    let stalled = stores.jobs.stalled_before(at(10), 10).await.unwrap();
    assert!(stalled.is_empty(), "before is exclusive");
}

/// Pruning deletes final jobs that ended before the cut and nothing else.
pub async fn prune_jobs(stores: &Stores) {
    let component = register(stores, "payment-service").await;
    let (completed, _) = sync(
        stores,
        &component,
        "main",
        None,
        &fixtures::snapshot(1, 1, 1),
        10,
    )
    .await;
    let superseded = create(stores, &component, "a", None, 12).await.job;
    stores
        .jobs
        .supersede(superseded.id, None, at(40))
        .await
        .unwrap();
    let failed = create(stores, &component, "b", None, 13).await.job;
    stores
        .jobs
        .fail(failed.id, "gave up", at(50))
        .await
        .unwrap();
    let queued = create(stores, &component, "c", None, 5).await.job;
    let run = running(stores, &component, "d", None, 6).await;

    assert_eq!(stores.jobs.prune_jobs(at(45)).await.unwrap(), 2);
    assert_eq!(stores.jobs.get_job(completed.id).await.unwrap(), None);
    assert_eq!(stores.jobs.get_job(superseded.id).await.unwrap(), None);
    for kept in [failed.id, queued.id, run.id] {
        assert!(
            stores.jobs.get_job(kept).await.unwrap().is_some(),
            "job {kept} was kept"
        );
    }
    assert_eq!(
        stores.jobs.prune_jobs(at(1_000)).await.unwrap(),
        1,
        "only the failed job"
    );
}

/// The job list is newest first, filters by component and status, and pages.
pub async fn list_jobs_filters_and_paging(stores: &Stores) {
    let a = register(stores, "service-a").await;
    let b = register(stores, "service-b").await;
    let a10 = create(stores, &a, "main", None, 10).await.job;
    let a20 = create(stores, &a, "develop", None, 20).await.job;
    let a30 = create(stores, &a, "feature", None, 30).await.job;
    let b40 = create(stores, &b, "main", None, 40).await.job;
    stores.jobs.fail(a20.id, "gave up", at(25)).await.unwrap();

    let ids = |page: crate::domain::Page<SyncJob>| -> Vec<SyncJobId> {
        page.items.iter().map(|j| j.id).collect()
    };
    let all = stores.jobs.list_jobs(&JobQuery::default()).await.unwrap();
    assert_eq!(all.total, 4);
    assert_eq!(ids(all), [b40.id, a30.id, a20.id, a10.id]);

    let of_a = JobQuery {
        component_id: Some(a.id),
        ..JobQuery::default()
    };
    assert_eq!(
        ids(stores.jobs.list_jobs(&of_a).await.unwrap()),
        [a30.id, a20.id, a10.id]
    );
    let failed = JobQuery {
        status: Some(JobStatus::Failed),
        ..JobQuery::default()
    };
    assert_eq!(ids(stores.jobs.list_jobs(&failed).await.unwrap()), [a20.id]);
    let page = JobQuery {
        page: PageRequest::new(1, 2),
        ..JobQuery::default()
    };
    let page = stores.jobs.list_jobs(&page).await.unwrap();
    assert_eq!((page.total, page.offset, page.limit), (4, 1, 2));
    assert_eq!(ids(page), [a30.id, a20.id]);
}
