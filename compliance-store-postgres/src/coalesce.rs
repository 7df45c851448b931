//! Coalescing of new jobs with pending ones, decided in memory for a whole batch.
//!
//! The ingest transaction reads what it needs (the components' newest data, the `QUEUED` jobs
//! of every component and branch in the batch, locked), lets [`plan`] decide, and writes the
//! result with set-based statements. Deciding in one place keeps several webhooks for one
//! component and branch within one batch exactly as correct as one webhook per transaction.

use std::collections::HashMap;

use compliance_core::domain::{JobStatus, NewSyncJob, SyncJob};
use compliance_core::{ComponentId, SyncJobId, Timestamp};

use crate::rows::micros;

/// What the component already holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ComponentData {
    /// Completion time of the scan behind the current data.
    pub(crate) last_scan_at: Option<Timestamp>,
    /// The job that applied it.
    pub(crate) last_sync_job_id: Option<SyncJobId>,
}

/// A `QUEUED` job already stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingJob {
    pub(crate) id: SyncJobId,
    pub(crate) component_id: ComponentId,
    pub(crate) branch: String,
    pub(crate) scan_completed_at: Option<Timestamp>,
}

/// The decisions for one batch.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// The new jobs as they are to be stored, in the order given.
    pub(crate) jobs: Vec<SyncJob>,
    /// Per new job, the jobs it superseded (stored ones and earlier ones of the batch).
    pub(crate) superseded: Vec<Vec<SyncJobId>>,
    /// Stored jobs to mark `SUPERSEDED`, with the job that covers each.
    pub(crate) supersede_stored: Vec<(SyncJobId, SyncJobId)>,
}

/// Where a pending job lives while the batch is planned.
#[derive(Clone, Copy)]
enum Slot {
    Stored(usize),
    New(usize),
}

/// Whether scan `a` is strictly older than scan `b` (unknown times are never older).
fn older(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a < b)
}

fn mark_superseded(job: &mut SyncJob, by: Option<SyncJobId>, now: Timestamp) {
    job.status = JobStatus::Superseded;
    job.superseded_by = by;
    job.completed_at = Some(now);
    job.next_attempt_at = None;
}

/// Decides, for each new job in order, what the `record_accepted` contract says: a job for a
/// scan older than the component's data is born superseded by the job behind that data;
/// otherwise each pending job of its component and branch is superseded by it, unless that
/// pending job's scan is newer, in which case the new one is born superseded by it.
///
/// `components` must hold every component the jobs name.
pub(crate) fn plan(
    new_jobs: Vec<NewSyncJob>,
    components: &HashMap<ComponentId, ComponentData>,
    stored: Vec<PendingJob>,
    now: Timestamp,
) -> Plan {
    let mut pending: HashMap<(ComponentId, String), Vec<Slot>> = HashMap::new();
    for (i, job) in stored.iter().enumerate() {
        pending
            .entry((job.component_id, job.branch.clone()))
            .or_default()
            .push(Slot::Stored(i));
    }

    let mut plan = Plan::default();
    for new in new_jobs {
        let mut job = new.into_job();
        job.queued_at = micros(job.queued_at);
        job.scan_completed_at = job.scan_completed_at.map(micros);
        let mut superseded = Vec::new();
        let data = components.get(&job.component_id).copied();
        let key = (job.component_id, job.branch.clone());

        if let Some(data) = data.filter(|d| older(job.scan_completed_at, d.last_scan_at)) {
            mark_superseded(&mut job, data.last_sync_job_id, now);
        } else {
            let slots = pending.remove(&key).unwrap_or_default();
            let mut still_pending = Vec::new();
            let mut slots = slots.into_iter();
            for slot in slots.by_ref() {
                let (pending_id, pending_scan) = match slot {
                    Slot::Stored(i) => match stored.get(i) {
                        Some(p) => (p.id, p.scan_completed_at),
                        None => continue,
                    },
                    Slot::New(i) => match plan.jobs.get(i) {
                        Some(j) => (j.id, j.scan_completed_at),
                        None => continue,
                    },
                };
                if older(job.scan_completed_at, pending_scan) {
                    mark_superseded(&mut job, Some(pending_id), now);
                    still_pending.push(slot);
                    break;
                }
                match slot {
                    Slot::Stored(_) => plan.supersede_stored.push((pending_id, job.id)),
                    Slot::New(i) => {
                        if let Some(earlier) = plan.jobs.get_mut(i) {
                            mark_superseded(earlier, Some(job.id), now);
                        }
                    }
                }
                superseded.push(pending_id);
            }
            still_pending.extend(slots);
            if job.status == JobStatus::Queued {
                still_pending.push(Slot::New(plan.jobs.len()));
            }
            if !still_pending.is_empty() {
                pending.insert(key, still_pending);
            }
        }

        plan.jobs.push(job);
        plan.superseded.push(superseded);
    }
    plan
}

#[cfg(test)]
mod tests {
    use compliance_core::domain::Trigger;
    use compliance_core::testing::fixtures::at;

    use super::*;

    fn new_job(component: ComponentId, branch: &str, scan: Option<i64>) -> NewSyncJob {
        NewSyncJob {
            id: SyncJobId::new(),
            component_id: component,
            trigger: Trigger::Webhook,
            webhook_event_id: None,
            revision: None,
            branch: branch.to_owned(),
            scan_completed_at: scan.map(at),
            queued_at: at(1_000),
        }
    }

    fn fresh(component: ComponentId) -> HashMap<ComponentId, ComponentData> {
        HashMap::from([(
            component,
            ComponentData {
                last_scan_at: None,
                last_sync_job_id: None,
            },
        )])
    }

    #[test]
    fn a_burst_in_one_batch_leaves_one_pending_job() {
        let c = ComponentId::new();
        let jobs: Vec<NewSyncJob> = (0..5).map(|i| new_job(c, "main", Some(i * 10))).collect();
        let ids: Vec<SyncJobId> = jobs.iter().map(|j| j.id).collect();
        let plan = plan(jobs, &fresh(c), Vec::new(), at(2_000));

        let queued: Vec<SyncJobId> = plan
            .jobs
            .iter()
            .filter(|j| j.status == JobStatus::Queued)
            .map(|j| j.id)
            .collect();
        assert_eq!(queued, vec![ids[4]]);
        for (i, job) in plan.jobs.iter().take(4).enumerate() {
            assert_eq!(job.superseded_by, Some(ids[i + 1]));
            assert_eq!(job.completed_at, Some(at(2_000)));
        }
        assert_eq!(plan.superseded[3], vec![ids[2]]);
        assert!(plan.supersede_stored.is_empty());
    }

    #[test]
    fn an_older_scan_is_born_superseded_by_the_pending_one() {
        let c = ComponentId::new();
        let stored = PendingJob {
            id: SyncJobId::new(),
            component_id: c,
            branch: "main".to_owned(),
            scan_completed_at: Some(at(50)),
        };
        let plan = plan(
            vec![new_job(c, "main", Some(40)), new_job(c, "main", Some(60))],
            &fresh(c),
            vec![stored.clone()],
            at(2_000),
        );
        let (first, second) = (&plan.jobs[0], &plan.jobs[1]);
        assert_eq!(first.status, JobStatus::Superseded);
        assert_eq!(first.superseded_by, Some(stored.id));
        assert_eq!(second.status, JobStatus::Queued);
        assert_eq!(plan.supersede_stored, vec![(stored.id, second.id)]);
        assert_eq!(plan.superseded[1], vec![stored.id]);
    }

    #[test]
    fn a_scan_older_than_the_data_is_covered_by_the_last_sync() {
        let c = ComponentId::new();
        let last = SyncJobId::new();
        let components = HashMap::from([(
            c,
            ComponentData {
                last_scan_at: Some(at(100)),
                last_sync_job_id: Some(last),
            },
        )]);
        let plan = plan(
            vec![new_job(c, "main", Some(99)), new_job(c, "main", None)],
            &components,
            Vec::new(),
            at(2_000),
        );
        assert_eq!(plan.jobs[0].status, JobStatus::Superseded);
        assert_eq!(plan.jobs[0].superseded_by, Some(last));
        // Unknown scan times ("latest") are never older.
        assert_eq!(plan.jobs[1].status, JobStatus::Queued);
    }

    #[test]
    fn branches_coalesce_separately() {
        let c = ComponentId::new();
        let plan = plan(
            vec![new_job(c, "main", Some(1)), new_job(c, "dev", Some(2))],
            &fresh(c),
            Vec::new(),
            at(2_000),
        );
        assert!(plan.jobs.iter().all(|j| j.status == JobStatus::Queued));
    }
}
