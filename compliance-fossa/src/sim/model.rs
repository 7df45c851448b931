//! The simulator's in-memory FOSSA: projects, revisions, issues and dependencies, plus the
//! scripted faults and the request log, behind one handle.
//!
//! Issues and dependencies are stored as the JSON FOSSA would send (shared between
//! revisions), with the few fields the server filters on kept beside them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use compliance_core::domain::IssueCategory;
use compliance_core::Timestamp;

use super::faults::{Endpoint, Fault, FaultRule, Faults};

/// Requests kept in the log; older ones are dropped.
const LOG_LIMIT: usize = 20_000;

/// Whether FOSSA has finished analysing a revision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Analysis {
    /// Results are available.
    #[default]
    Done,
    /// Still running: the issues endpoint answers 202.
    InProgress,
}

/// One issue as the simulator serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimIssue {
    /// FOSSA's id.
    pub id: u64,
    /// Its category.
    pub category: IssueCategory,
    /// Ignored issues are only listed with `status=ignored` or `status=all`.
    pub ignored: bool,
    /// The locator of the dependency it is about.
    pub package_locator: String,
    /// The JSON object served.
    pub json: Arc<str>,
}

/// One dependency as the simulator serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimDependency {
    /// Its locator (`NULL` for an unresolved placeholder).
    pub locator: String,
    /// Depth in the tree.
    pub depth: u32,
    /// Licenses, for issues generated against it.
    pub licenses: Vec<String>,
    /// Ignored dependencies are only listed with `include_ignored=true`.
    pub ignored: bool,
    /// The JSON object served.
    pub json: Arc<str>,
}

/// One analysed (or analysing) revision of a project.
#[derive(Clone, Debug, PartialEq)]
pub struct SimRevision {
    /// The bare revision (commit SHA).
    pub revision: String,
    /// Commit message.
    pub message: Option<String>,
    /// When dependency analysis finished.
    pub analyzed_at: Timestamp,
    /// When the issue scan ran.
    pub scanned_at: Timestamp,
    /// Done or still running.
    pub analysis: Analysis,
    /// Issues of every category.
    pub issues: Vec<SimIssue>,
    /// Dependencies in the order served.
    pub dependencies: Vec<SimDependency>,
}

/// One project.
#[derive(Clone, Debug, PartialEq)]
pub struct SimProject {
    /// Project locator.
    pub locator: String,
    /// Display title.
    pub title: String,
    /// Default branch.
    pub branch: String,
    /// Repository URL.
    pub url: Option<String>,
    /// FOSSA's project type (`provided`, `autobuild`, …).
    pub project_type: String,
    /// Public project.
    pub public: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// Teams, as FOSSA's objects.
    pub teams: Vec<serde_json::Value>,
    /// Revisions, oldest first; the last one is the latest.
    pub revisions: Vec<SimRevision>,
}

impl SimProject {
    /// The latest revision.
    #[must_use]
    pub fn latest(&self) -> Option<&SimRevision> {
        self.revisions.last()
    }

    /// The revision `revision`.
    #[must_use]
    pub fn revision(&self, revision: &str) -> Option<&SimRevision> {
        self.revisions.iter().find(|r| r.revision == revision)
    }
}

/// How a request presented its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer …`
    Bearer,
    /// `Authorization: token …` (FOSSA's legacy form).
    Token,
    /// Anything else.
    Other,
}

/// One request the simulator received (the token itself is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Raw path, percent-encoding intact.
    pub path: String,
    /// Raw query string.
    pub query: Option<String>,
    /// The endpoint it matched.
    pub endpoint: Option<Endpoint>,
    /// Status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// How the token was presented.
    pub auth: AuthScheme,
    /// Whether the presented token was the right one.
    pub authorized: bool,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Accept` header.
    pub accept: Option<String>,
}

impl RecordedRequest {
    /// The query decoded into pairs (`scope[type]` and `scope%5Btype%5D` both read as
    /// `scope[type]`).
    #[must_use]
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect()
    }

    /// The first value of query parameter `key`.
    #[must_use]
    pub fn param(&self, key: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find_map(|(k, v)| (k == key).then_some(v))
    }
}

/// What a simulator call could not do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// No such project.
    #[error("no simulated project {0}")]
    NoProject(String),
    /// No such revision.
    #[error("no revision {revision} in simulated project {project}")]
    NoRevision {
        /// Project locator.
        project: String,
        /// The revision.
        revision: String,
    },
    /// A revision with that name exists already.
    #[error("revision {0} exists already")]
    RevisionExists(String),
    /// Fixture data did not parse.
    #[error("fixture {file}: {reason}")]
    Fixture {
        /// Which file.
        file: &'static str,
        /// What was wrong.
        reason: String,
    },
}

pub(crate) struct Inner {
    pub(crate) projects: BTreeMap<String, SimProject>,
    pub(crate) faults: Faults,
    pub(crate) log: Vec<RecordedRequest>,
    pub(crate) next_issue_id: u64,
    pub(crate) in_flight: usize,
    pub(crate) peak_in_flight: usize,
}

/// A request being answered; see [`SimState::peak_in_flight`].
pub(crate) struct InFlight(SimState);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.in_flight = inner.in_flight.saturating_sub(1);
    }
}

/// A handle on the simulator's data, faults and request log. Clones share the same state.
#[derive(Clone)]
pub struct SimState {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("SimState")
            .field("projects", &inner.projects.len())
            .field("pending_faults", &inner.faults.pending())
            .field("requests", &inner.log.len())
            .finish()
    }
}

impl Default for SimState {
    fn default() -> Self {
        Self::new()
    }
}

impl SimState {
    /// An empty FOSSA.
    #[must_use]
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                projects: BTreeMap::new(),
                faults: Faults::default(),
                log: Vec::new(),
                next_issue_id: 700_000_001,
                in_flight: 0,
                peak_in_flight: 0,
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent between statements, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a project, replacing one with the same locator.
    pub fn add_project(&self, project: SimProject) {
        self.lock()
            .projects
            .insert(project.locator.clone(), project);
    }

    /// A copy of a project.
    #[must_use]
    pub fn project(&self, locator: &str) -> Option<SimProject> {
        self.lock().projects.get(locator).cloned()
    }

    /// Locators of every project.
    #[must_use]
    pub fn project_locators(&self) -> Vec<String> {
        self.lock().projects.keys().cloned().collect()
    }

    /// Adds a revision to a project; it becomes the latest.
    ///
    /// # Errors
    ///
    /// [`SimError::NoProject`], or [`SimError::RevisionExists`].
    pub fn push_revision(&self, locator: &str, revision: SimRevision) -> Result<(), SimError> {
        let mut inner = self.lock();
        let project = inner
            .projects
            .get_mut(locator)
            .ok_or_else(|| SimError::NoProject(locator.to_owned()))?;
        if project.revision(&revision.revision).is_some() {
            return Err(SimError::RevisionExists(revision.revision));
        }
        project.revisions.push(revision);
        Ok(())
    }

    /// Marks a revision as analysing (issues answer 202) or done.
    ///
    /// # Errors
    ///
    /// [`SimError::NoProject`] or [`SimError::NoRevision`].
    pub fn set_analysis(
        &self,
        locator: &str,
        revision: &str,
        analysis: Analysis,
    ) -> Result<(), SimError> {
        let mut inner = self.lock();
        let project = inner
            .projects
            .get_mut(locator)
            .ok_or_else(|| SimError::NoProject(locator.to_owned()))?;
        let found = project
            .revisions
            .iter_mut()
            .find(|r| r.revision == revision)
            .ok_or_else(|| SimError::NoRevision {
                project: locator.to_owned(),
                revision: revision.to_owned(),
            })?;
        found.analysis = analysis;
        Ok(())
    }

    /// Marks a revision's analysis as finished.
    ///
    /// # Errors
    ///
    /// As [`set_analysis`](Self::set_analysis).
    pub fn finish_analysis(&self, locator: &str, revision: &str) -> Result<(), SimError> {
        self.set_analysis(locator, revision, Analysis::Done)
    }

    /// Scripts `fault` for the next `times` requests to `endpoint`.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        self.lock().faults.push(FaultRule {
            endpoint: Some(endpoint),
            fault,
            remaining: Some(times),
        });
    }

    /// Scripts `fault` for every request to `endpoint` until [`clear_faults`](Self::clear_faults).
    pub fn inject_always(&self, endpoint: Endpoint, fault: Fault) {
        self.lock().faults.push(FaultRule {
            endpoint: Some(endpoint),
            fault,
            remaining: None,
        });
    }

    /// Scripts `fault` for the next `times` requests to any endpoint.
    pub fn inject_everywhere(&self, fault: Fault, times: u32) {
        self.lock().faults.push(FaultRule {
            endpoint: None,
            fault,
            remaining: Some(times),
        });
    }

    /// Adds `latency` before every answer of `endpoint` (`None`: every endpoint); zero
    /// removes it.
    pub fn set_latency(&self, endpoint: Option<Endpoint>, latency: Duration) {
        self.lock().faults.set_latency(endpoint, latency);
    }

    /// Removes every scripted fault and latency.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Scripted faults not used up yet.
    #[must_use]
    pub fn pending_faults(&self) -> usize {
        self.lock().faults.pending()
    }

    /// The requests received so far, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.clone()
    }

    /// The requests received for `endpoint`.
    #[must_use]
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.lock()
            .log
            .iter()
            .filter(|r| r.endpoint == Some(endpoint))
            .cloned()
            .collect()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// The most requests that were being answered at the same moment.
    #[must_use]
    pub fn peak_in_flight(&self) -> usize {
        self.lock().peak_in_flight
    }

    /// Counts one request as being answered until the guard is dropped.
    pub(crate) fn enter(&self) -> InFlight {
        let mut inner = self.lock();
        inner.in_flight += 1;
        inner.peak_in_flight = inner.peak_in_flight.max(inner.in_flight);
        InFlight(self.clone())
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut inner = self.lock();
        if inner.log.len() >= LOG_LIMIT {
            inner.log.remove(0);
        }
        inner.log.push(request);
    }
}
