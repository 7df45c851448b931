//! [`InMemoryStore`]: every store port over one mutex-protected state.

mod compliance;
mod jobs;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::domain::{
    Component, ComponentQuery, ComponentSummary, Dependency, IssueCounts, IssueKey, IssueRecord,
    IssueStatus, NewComponent, Page, ScanResult, SyncJob, WebhookEvent,
};
use crate::error::StoreError;
use crate::id::{ComponentId, SyncJobId, WebhookEventId};
use crate::memory::lock;
use crate::ports::ComponentDirectory;
use crate::repo_url::RepoUrl;

/// Every store port in memory: components, webhook events, sync jobs and compliance data.
///
/// All state sits behind one [`Mutex`], so each port call is one atomic step (the in-memory
/// counterpart of a transaction) and concurrent callers see each other's writes at once. No
/// lock is held across an `.await`.
///
/// Coalescing, delivery-key uniqueness, the job state machine and resolve-the-rest follow the
/// port contracts exactly; the conformance suites in `compliance_core::testing` check them.
///
/// [`QueuePlacement::InStore`](crate::ports::QueuePlacement::InStore) is accepted and
/// ignored: this store has no queue of its own, so pair it with
/// [`InMemoryQueue`](crate::memory::InMemoryQueue), whose placement is `External`.
///
/// The clock is read only for times the port calls do not carry (for example when
/// `record_accepted` supersedes a pending job).
pub struct InMemoryStore {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

impl InMemoryStore {
    /// An empty store on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store reading time from `clock`.
    #[must_use]
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            clock,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("InMemoryStore")
            .field("components", &state.components.len())
            .field("events", &state.events.len())
            .field("jobs", &state.jobs.len())
            .finish_non_exhaustive()
    }
}

/// Everything the store holds.
// Limitation: queries and coalescing scan every job or component linearly; fine for tests and
// single-process trials, not for millions of rows (use the SQLite or PostgreSQL store there).
#[derive(Default)]
struct State {
    components: HashMap<ComponentId, Component>,
    /// Repository key → component.
    by_repository: HashMap<String, ComponentId>,
    events: HashMap<WebhookEventId, WebhookEvent>,
    /// Delivery key → the accepted event that carries it.
    deliveries: HashMap<String, WebhookEventId>,
    jobs: HashMap<SyncJobId, SyncJob>,
    /// Per component, every issue ever stored, by key.
    issues: HashMap<ComponentId, BTreeMap<IssueKey, IssueRecord>>,
    /// Per component, the dependencies of the latest applied scan.
    dependencies: HashMap<ComponentId, Vec<Dependency>>,
    /// Per component, applied scans in the order they were applied.
    scans: HashMap<ComponentId, Vec<ScanResult>>,
}

impl State {
    fn active_issue_counts(&self, component: ComponentId) -> IssueCounts {
        let mut counts = IssueCounts::default();
        for record in self
            .issues
            .get(&component)
            .into_iter()
            .flat_map(BTreeMap::values)
        {
            if record.status == IssueStatus::Active {
                counts.add(record.issue.key.category, record.issue.severity);
            }
        }
        counts
    }

    fn dependency_count(&self, component: ComponentId) -> u64 {
        self.dependencies
            .get(&component)
            .map_or(0, |deps| deps.len() as u64)
    }
}

/// Whether `haystack` contains `needle`, ignoring case.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

#[async_trait]
impl ComponentDirectory for InMemoryStore {
    async fn register(&self, new: NewComponent, now: Timestamp) -> Result<Component, StoreError> {
        let component = new.into_component(now);
        let mut state = lock(&self.state);
        if state.by_repository.contains_key(&component.repository_key) {
            return Err(StoreError::conflict(format!(
                "repository {} is already registered",
                component.repository_key
            )));
        }
        state
            .by_repository
            .insert(component.repository_key.clone(), component.id);
        state.components.insert(component.id, component.clone());
        Ok(component)
    }

    async fn get(&self, id: ComponentId) -> Result<Option<Component>, StoreError> {
        Ok(lock(&self.state).components.get(&id).cloned())
    }

    async fn find_by_repository(&self, url: &RepoUrl) -> Result<Option<Component>, StoreError> {
        let state = lock(&self.state);
        Ok(state
            .by_repository
            .get(url.key())
            .and_then(|id| state.components.get(id))
            .cloned())
    }

    async fn list(&self, query: &ComponentQuery) -> Result<Page<ComponentSummary>, StoreError> {
        let state = lock(&self.state);
        let mut matching: Vec<&Component> = state
            .components
            .values()
            .filter(|c| query.status.is_none_or(|s| c.compliance_status == s))
            .filter(|c| {
                query
                    .search
                    .as_deref()
                    .is_none_or(|text| contains_ignore_case(&c.name, text))
            })
            .collect();
        matching.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));

        let summaries = matching
            .into_iter()
            .map(|c| ComponentSummary {
                component: c.clone(),
                issues: state.active_issue_counts(c.id),
                dependency_count: state.dependency_count(c.id),
            })
            .collect();
        Ok(Page::from_vec(summaries, query.page))
    }

    async fn stale(&self, before: Timestamp, limit: u32) -> Result<Vec<Component>, StoreError> {
        let state = lock(&self.state);
        let mut stale: Vec<&Component> = state
            .components
            .values()
            .filter(|c| c.last_synced_at.is_none_or(|at| at < before))
            .collect();
        // `None` sorts before any time: components that never synced come first.
        stale.sort_by(|a, b| {
            a.last_synced_at
                .cmp(&b.last_synced_at)
                .then(a.id.cmp(&b.id))
        });
        Ok(stale.into_iter().take(limit as usize).cloned().collect())
    }
}
