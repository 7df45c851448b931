//! The conformance suite of the four store ports.
//!
//! An adapter crate runs it like this (one fresh, empty store per check):
//!
//! ```no_run
//! # async fn demo() {
//! use compliance_core::memory::InMemoryStore;
//! compliance_core::testing::store::run_all(|| async { InMemoryStore::new() }).await;
//! # }
//! ```
//!
//! Adapters whose ports live in several values build a [`Stores`] and call
//! [`run_all_stores`]. Each check is also public, taking `&Stores`, for adapters that want one
//! test per check.
//!
//! # What the checks pin down
//!
//! Beyond the port contracts, the checks rely on these readings of them:
//!
//! - Orders, as the domain documents them: components by name then id; events and jobs newest
//!   first; issues by severity (critical first), then [`IssueKey`]'s order (category in
//!   [`IssueCategory::ALL`] order — licensing, vulnerability, quality — then FOSSA id);
//!   dependencies by name then locator; licenses by count (descending) then name, with
//!   dependencies without a license under `None`; `stale` puts components that never synced
//!   first (`NULLS FIRST`), then the oldest sync. Fixture names and ids are lower-case and of
//!   one width, so any collation gives the same order.
//! - Filters: `from` is inclusive and `to` exclusive; text search ignores case; a dependency
//!   "carries" a license when it is one of its `licenses`.
//! - Coalescing compares scan times strictly: an equal or unknown (`None`) scan time is never
//!   older. Each superseded job names the job that replaced it, so a burst forms a chain that
//!   ends at the one pending job. A running job is never superseded by a new one.
//! - `start` answers `Busy { running: id }` for a running job whose own heartbeat is live, and
//!   a lease counts as live while `heartbeat_at + lease > now`. A takeover counts a new attempt
//!   and keeps `started_at`; starting clears `next_attempt_at`.
//! - `retry_later`, `fail`, `supersede` and `heartbeat` on an ended job may answer `Ok` or an
//!   error, but change nothing. `fail` and `supersede` also work on a queued job.
//! - `record_accepted` of a job for an unknown component, or with a job id that exists, fails
//!   and writes nothing (so its delivery key stays free).
//! - `apply_snapshot` stores an issue reported twice in one snapshot once; a scan result's
//!   `scanned_at` is the project's `scanned_at`, else its `last_analyzed_at`; a snapshot
//!   without scan time keeps the component's `last_scan_at`.
//! - Pruning events or jobs works while other rows refer to them (a job naming a pruned event,
//!   a component or scan result naming a pruned job).
//!
//! [`IssueKey`]: crate::domain::IssueKey
//! [`IssueCategory::ALL`]: crate::domain::IssueCategory::ALL

mod compliance;
mod components;
mod events;
mod jobs;

pub use compliance::{
    apply_snapshot_is_idempotent, apply_snapshot_lease_lost, apply_snapshot_replaces_dependencies,
    apply_snapshot_resolves_the_rest, apply_snapshot_stale, apply_snapshot_stores_everything,
    compliance_view_counts, list_dependencies_filters_and_order, list_issues_filters_and_order,
    list_scans_newest_first, reads_of_unknown_component,
};
pub use components::{
    find_by_every_url_spelling, list_filters_and_paging, register_and_get, register_conflict,
    stale_components,
};
pub use events::{
    concurrent_duplicate_deliveries, duplicate_delivery_key, list_events_filters_and_paging,
    prune_events, record_accepted_is_atomic, record_and_get_events,
};
pub use jobs::{
    branches_coalesce_independently, burst_coalesces_to_one_pending, fail_settles_job_and_event,
    final_states_never_change, list_jobs_filters_and_paging, older_scan_is_superseded_by_pending,
    prune_jobs, queued_before_and_active_jobs, retry_later_requeues, running_job_is_not_superseded,
    scan_older_than_synced_data_is_superseded, stalled_running_jobs, start_busy_while_sibling_runs,
    start_finished_and_unknown_jobs, start_moves_queued_to_running, start_takes_over_expired_lease,
    supersede_settles_job_and_event,
};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Component, ScanSnapshot, SyncJob};
use crate::error::StoreError;
use crate::id::SyncJobId;
use crate::ports::{
    AcceptRecord, ApplyOutcome, ApplySummary, ComplianceStore, ComponentDirectory, CreatedJob,
    QueuePlacement, SnapshotApply, StartOutcome, Stores, SyncJobStore, WebhookEventLog,
};
use crate::testing::fixtures::{self, at};

/// Every store port in one value.
pub trait StoreAdapter:
    ComponentDirectory + WebhookEventLog + SyncJobStore + ComplianceStore
{
}

impl<T> StoreAdapter for T where
    T: ComponentDirectory + WebhookEventLog + SyncJobStore + ComplianceStore
{
}

/// Runs every store check, each against a fresh store from `make`.
pub async fn run_all<F, Fut, S>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: StoreAdapter,
{
    run_all_stores(|| {
        let fut = make();
        async move { Stores::from_adapter(Arc::new(fut.await)) }
    })
    .await;
}

/// Runs every store check, each against fresh [`Stores`] from `make`.
pub async fn run_all_stores<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    macro_rules! checks {
        ($($check:ident),* $(,)?) => {
            $( $check(&make().await).await; )*
        };
    }
    checks!(
        register_and_get,
        register_conflict,
        find_by_every_url_spelling,
        list_filters_and_paging,
        stale_components,
        record_and_get_events,
        list_events_filters_and_paging,
        prune_events,
        duplicate_delivery_key,
        concurrent_duplicate_deliveries,
        record_accepted_is_atomic,
        burst_coalesces_to_one_pending,
        branches_coalesce_independently,
        older_scan_is_superseded_by_pending,
        scan_older_than_synced_data_is_superseded,
        running_job_is_not_superseded,
        start_moves_queued_to_running,
        start_busy_while_sibling_runs,
        start_takes_over_expired_lease,
        start_finished_and_unknown_jobs,
        retry_later_requeues,
        fail_settles_job_and_event,
        supersede_settles_job_and_event,
        final_states_never_change,
        queued_before_and_active_jobs,
        stalled_running_jobs,
        prune_jobs,
        list_jobs_filters_and_paging,
        apply_snapshot_stores_everything,
        apply_snapshot_resolves_the_rest,
        apply_snapshot_is_idempotent,
        apply_snapshot_replaces_dependencies,
        apply_snapshot_lease_lost,
        apply_snapshot_stale,
        compliance_view_counts,
        list_issues_filters_and_order,
        list_dependencies_filters_and_order,
        list_scans_newest_first,
        reads_of_unknown_component,
    );
}

/// The lease checks pass to `start`.
const LEASE: Duration = Duration::from_secs(30);

/// Registers `name` for `https://github.com/acme/{name}`.
async fn register(stores: &Stores, name: &str) -> Component {
    let url = format!("https://github.com/acme/{name}");
    stores
        .components
        .register(fixtures::component(name, &url), at(0))
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e}"))
}

/// Records an accepted webhook (fresh delivery key) and returns the created job.
async fn accept(
    stores: &Stores,
    component: &Component,
    branch: &str,
    scan_at: Option<i64>,
    received: i64,
) -> CreatedJob {
    let key = uuid::Uuid::new_v4().simple().to_string();
    let accepted =
        fixtures::accepted_webhook(component, branch, scan_at.map(at), at(received), Some(&key));
    match stores.events.record_accepted(accepted).await {
        Ok(AcceptRecord::Created(created)) => created,
        Ok(AcceptRecord::Duplicate(prior)) => panic!("fresh delivery key reported as {prior:?}"),
        Err(e) => panic!("record_accepted: {e}"),
    }
}

/// Creates a job without a webhook event.
async fn create(
    stores: &Stores,
    component: &Component,
    branch: &str,
    scan_at: Option<i64>,
    queued: i64,
) -> CreatedJob {
    let job = fixtures::new_job(component.id, branch, scan_at.map(at), at(queued));
    stores
        .jobs
        .create_job(job, QueuePlacement::External)
        .await
        .unwrap_or_else(|e| panic!("create_job: {e}"))
}

/// Starts `id` at `now` and expects it to start.
async fn start(stores: &Stores, id: SyncJobId, now: i64) -> SyncJob {
    match stores.jobs.start(id, at(now), LEASE).await {
        Ok(StartOutcome::Started(job)) => job,
        other => panic!("start {id}: expected Started, got {other:?}"),
    }
}

/// Creates a job and starts it.
async fn running(
    stores: &Stores,
    component: &Component,
    branch: &str,
    scan_at: Option<i64>,
    now: i64,
) -> SyncJob {
    let created = create(stores, component, branch, scan_at, now).await;
    start(stores, created.job.id, now).await
}

/// Applies `snapshot` for the running `job` and returns the outcome.
async fn try_apply(
    stores: &Stores,
    job: &SyncJob,
    snapshot: &ScanSnapshot,
    synced: i64,
) -> Result<ApplyOutcome, StoreError> {
    stores
        .compliance
        .apply_snapshot(SnapshotApply {
            job_id: job.id,
            attempt: job.attempts,
            component_id: job.component_id,
            branch: job.branch.clone(),
            scan_completed_at: job.scan_completed_at,
            snapshot: snapshot.clone(),
            synced_at: at(synced),
        })
        .await
}

/// Applies `snapshot` for the running `job` and expects it to be applied.
async fn apply(
    stores: &Stores,
    job: &SyncJob,
    snapshot: &ScanSnapshot,
    synced: i64,
) -> ApplySummary {
    match try_apply(stores, job, snapshot, synced).await {
        Ok(ApplyOutcome::Applied(summary)) => summary,
        other => panic!(
            "apply_snapshot for {}: expected Applied, got {other:?}",
            job.id
        ),
    }
}

/// Creates, starts and applies a job with `snapshot`: the component now holds its data.
async fn sync(
    stores: &Stores,
    component: &Component,
    branch: &str,
    scan_at: Option<i64>,
    snapshot: &ScanSnapshot,
    now: i64,
) -> (SyncJob, ApplySummary) {
    let job = running(stores, component, branch, scan_at, now).await;
    let summary = apply(stores, &job, snapshot, now + 1).await;
    (job, summary)
}

/// The stored job `id`.
async fn job(stores: &Stores, id: SyncJobId) -> SyncJob {
    stores
        .jobs
        .get_job(id)
        .await
        .unwrap_or_else(|e| panic!("get_job {id}: {e}"))
        .unwrap_or_else(|| panic!("job {id} is missing"))
}

/// The stored component `id`.
async fn component(stores: &Stores, id: crate::id::ComponentId) -> Component {
    stores
        .components
        .get(id)
        .await
        .unwrap_or_else(|e| panic!("get component {id}: {e}"))
        .unwrap_or_else(|| panic!("component {id} is missing"))
}
