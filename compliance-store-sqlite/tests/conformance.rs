//! The conformance suites of compliance-core, against a temporary database file and against
//! a private in-memory database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use compliance_core::ports::{JobQueue, Stores};
use compliance_core::testing;
use compliance_store_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;

/// Fresh database files in one temporary directory, removed when the test ends.
struct Files {
    dir: TempDir,
    next: AtomicUsize,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: TempDir::new().unwrap(),
            next: AtomicUsize::new(0),
        }
    }

    async fn store(&self) -> SqliteStore {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("compliance-{n}.db"));
        SqliteStore::open(SqliteConfig::file(path)).await.unwrap()
    }
}

async fn memory_store() -> SqliteStore {
    SqliteStore::open(SqliteConfig::memory()).await.unwrap()
}

macro_rules! store_checks {
    ($($check:ident),* $(,)?) => {
        mod file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let files = super::Files::new();
                    let store = files.store().await;
                    compliance_core::testing::store::$check(&store.stores()).await;
                    store.close().await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let store = super::memory_store().await;
                    compliance_core::testing::store::$check(&store.stores()).await;
                    store.close().await;
                }
            )*
        }
    };
}

store_checks!(
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

/// The whole store suite through `run_all`, so that a check added to core is run here too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_run_all_on_file() {
    let files = Files::new();
    testing::store::run_all(|| files.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_run_all_in_memory() {
    testing::store::run_all_stores(|| async { memory_store().await.stores() as Stores }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_suite_on_file() {
    let files = Files::new();
    testing::queue::run_all(|| async {
        Arc::new(files.store().await.queue()) as Arc<dyn JobQueue>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_suite_in_memory() {
    testing::queue::run_all(|| async {
        Arc::new(memory_store().await.queue()) as Arc<dyn JobQueue>
    })
    .await;
}
