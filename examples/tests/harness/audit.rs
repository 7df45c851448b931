//! The audit every fault test ends with: each webhook answered 202 has exactly one sync job,
//! that job ended (completed, covered by a newer job, or dead-lettered with a reason), and the
//! stored compliance data equals what the FOSSA simulator holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use compliance_core::domain::{
    DependencyQuery, IssueQuery, IssueStatus, JobQuery, JobStatus, PageRequest, SyncJob, Trigger,
};
use compliance_core::ports::Stores;
use compliance_core::{RepoUrl, SyncJobId};
use compliance_fossa::sim::SimState;

/// One webhook the server answered 202.
#[derive(Clone, Debug)]
pub(crate) struct Accepted {
    /// The `sync_id` of the answer.
    pub(crate) sync_id: SyncJobId,
    /// Whether the answer said it repeated an earlier delivery.
    pub(crate) duplicate: bool,
    /// The repository URL sent.
    pub(crate) repo_url: String,
    /// The revision sent.
    pub(crate) revision: String,
    /// The body's `timestamp` (Unix seconds): later means newer data.
    pub(crate) scan_completed: i64,
}

impl Accepted {
    /// Reads a 202 answer's body.
    pub(crate) fn from_answer(
        body: &serde_json::Value,
        repo_url: &str,
        revision: &str,
        at: i64,
    ) -> Self {
        let sync_id = body["sync_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("202 without a sync_id: {body}"));
        Self {
            sync_id,
            duplicate: body["duplicate"].as_bool().unwrap_or(false),
            repo_url: repo_url.to_owned(),
            revision: revision.to_owned(),
            scan_completed: at,
        }
    }
}

/// The audit's figures.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditReport {
    /// Answers 202.
    pub(crate) accepted: usize,
    /// Distinct sync jobs those answers named.
    pub(crate) jobs: usize,
    /// Jobs that applied their snapshot.
    pub(crate) completed: usize,
    /// Jobs a newer job covered.
    pub(crate) superseded: usize,
    /// Jobs that gave up, with a reason.
    pub(crate) dead_lettered: usize,
    /// Answers 202 without a finished job (must be 0).
    pub(crate) lost: usize,
    /// Webhook jobs beyond one per accepted delivery (must be 0).
    pub(crate) duplicates: usize,
    /// Components whose stored data was compared with the simulator.
    pub(crate) components_checked: usize,
}

/// Waits until no job is queued or running; returns how long that took, or `None` when
/// `within` passed first.
pub(crate) async fn wait_settled(stores: &Stores, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    loop {
        let mut busy = 0;
        for status in [JobStatus::Queued, JobStatus::Running] {
            let query = JobQuery {
                status: Some(status),
                page: PageRequest::new(0, 1),
                ..JobQuery::default()
            };
            busy += stores.jobs.list_jobs(&query).await.map_or(1, |p| p.total);
        }
        if busy == 0 {
            return Some(started.elapsed());
        }
        if started.elapsed() >= within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every job in the store.
pub(crate) async fn all_jobs(stores: &Stores) -> Vec<SyncJob> {
    let mut jobs = Vec::new();
    let mut offset = 0;
    loop {
        let query = JobQuery {
            page: PageRequest::new(offset, PageRequest::MAX_LIMIT),
            ..JobQuery::default()
        };
        let page = stores.jobs.list_jobs(&query).await.expect("list jobs");
        let n = page.items.len() as u32;
        jobs.extend(page.items);
        if n < PageRequest::MAX_LIMIT {
            return jobs;
        }
        offset += n;
    }
}

/// Runs the audit; panics with the figures when a 202 was lost, duplicated, or the stored
/// data differs from the simulator's.
pub(crate) async fn audit(stores: &Stores, sim: &SimState, accepted: &[Accepted]) -> AuditReport {
    let jobs: HashMap<SyncJobId, SyncJob> = all_jobs(stores)
        .await
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
    let mut report = AuditReport {
        accepted: accepted.len(),
        ..AuditReport::default()
    };

    // One job per accepted delivery: redeliveries name the original job, nothing else shares.
    let named: BTreeSet<SyncJobId> = accepted.iter().map(|a| a.sync_id).collect();
    report.jobs = named.len();
    let fresh = accepted.iter().filter(|a| !a.duplicate).count();
    let webhook_jobs = jobs
        .values()
        .filter(|j| j.trigger == Trigger::Webhook)
        .count();
    report.duplicates =
        fresh.saturating_sub(named.len()) + webhook_jobs.saturating_sub(named.len());

    let mut problems = Vec::new();
    for id in &named {
        let Some(job) = jobs.get(id) else {
            report.lost += 1;
            problems.push(format!("{id}: no job"));
            continue;
        };
        match job.status {
            JobStatus::Completed => report.completed += 1,
            JobStatus::Superseded => {
                report.superseded += 1;
                if let Err(why) = covered(job, &jobs) {
                    report.lost += 1;
                    problems.push(format!("{id}: superseded, but {why}"));
                }
            }
            JobStatus::Failed if job.error_message.as_deref().is_some_and(|m| !m.is_empty()) => {
                report.dead_lettered += 1;
            }
            other => {
                report.lost += 1;
                problems.push(format!("{id}: ended {other:?} ({:?})", job.error_message));
            }
        }
    }

    report.components_checked = check_data(stores, sim, accepted, &jobs, &mut problems).await;
    assert!(
        problems.is_empty() && report.duplicates == 0,
        "audit failed: {report:?}\n{}",
        problems.join("\n")
    );
    report
}

/// A superseded job must name a job that exists and itself finished.
fn covered(job: &SyncJob, jobs: &HashMap<SyncJobId, SyncJob>) -> Result<(), String> {
    let mut at = job;
    for _ in 0..1000 {
        let Some(next) = at.superseded_by else {
            return Err("names no job".into());
        };
        let Some(next) = jobs.get(&next) else {
            return Err(format!("names {next}, which does not exist"));
        };
        match next.status {
            JobStatus::Completed | JobStatus::Failed => return Ok(()),
            JobStatus::Superseded => at = next,
            other => return Err(format!("names {}, still {other:?}", next.id)),
        }
    }
    Err("a supersede cycle".into())
}

/// For each component the webhooks named: its data is the newest completed revision sent,
/// and the active issues and dependencies equal the simulator's for that revision.
async fn check_data(
    stores: &Stores,
    sim: &SimState,
    accepted: &[Accepted],
    jobs: &HashMap<SyncJobId, SyncJob>,
    problems: &mut Vec<String>,
) -> usize {
    let mut by_repo: BTreeMap<&str, Vec<&Accepted>> = BTreeMap::new();
    for a in accepted {
        by_repo.entry(a.repo_url.as_str()).or_default().push(a);
    }
    let mut checked = 0;
    for (repo, sent) in by_repo {
        let url = RepoUrl::parse(repo).expect("sent URLs parse");
        let component = stores
            .components
            .find_by_repository(&url)
            .await
            .expect("find component")
            .expect("component of an accepted webhook");
        let newest_completed = sent
            .iter()
            .filter(|a| {
                jobs.get(&a.sync_id)
                    .is_some_and(|j| j.status == JobStatus::Completed)
            })
            .max_by_key(|a| a.scan_completed);
        let Some(revision) = component.last_revision.clone() else {
            problems.push(format!("{repo}: no data stored"));
            continue;
        };
        if let Some(newest) = newest_completed {
            let newest_sent = sent.iter().map(|a| a.scan_completed).max().unwrap_or(0);
            if newest.scan_completed == newest_sent && newest.revision != revision {
                problems.push(format!(
                    "{repo}: stores {revision}, the newest revision sent was {}",
                    newest.revision
                ));
            }
        }

        let project = sim
            .project(&component.fossa_locator)
            .expect("simulator project of a component");
        let Some(fossa) = project.revision(&revision) else {
            problems.push(format!(
                "{repo}: stores {revision}, unknown to the simulator"
            ));
            continue;
        };
        let expected_issues: BTreeSet<(String, String)> = fossa
            .issues
            .iter()
            .filter(|i| !i.ignored)
            .map(|i| (format!("{:?}", i.category), i.id.to_string()))
            .collect();
        let query = IssueQuery {
            status: Some(IssueStatus::Active),
            page: PageRequest::new(0, PageRequest::MAX_LIMIT),
            ..IssueQuery::default()
        };
        let stored_issues: BTreeSet<(String, String)> = stores
            .compliance
            .list_issues(component.id, &query)
            .await
            .expect("list issues")
            .items
            .into_iter()
            .map(|r| (format!("{:?}", r.issue.key.category), r.issue.key.fossa_id))
            .collect();
        if stored_issues != expected_issues {
            problems.push(format!(
                "{repo}@{revision}: active issues {stored_issues:?}, FOSSA has {expected_issues:?}"
            ));
        }

        let expected_deps: BTreeSet<&str> = fossa
            .dependencies
            .iter()
            .filter(|d| !d.ignored && d.locator != "NULL")
            .map(|d| d.locator.as_str())
            .collect();
        let stored_deps = stores
            .compliance
            .list_dependencies(component.id, &DependencyQuery::default())
            .await
            .expect("list dependencies")
            .total;
        if stored_deps != expected_deps.len() as u64 {
            problems.push(format!(
                "{repo}@{revision}: {stored_deps} dependencies stored, FOSSA has {}",
                expected_deps.len()
            ));
        }
        checked += 1;
    }
    checked
}
