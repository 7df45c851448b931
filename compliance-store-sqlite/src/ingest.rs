//! The hot path of the writer: accepted webhooks (with their jobs and queue entries), new
//! jobs, and rejected requests, written a whole group at a time.
//!
//! A group is planned from four set-based reads (delivery keys already accepted, the
//! components, their pending jobs, the active-job count), then coalesced in memory in arrival
//! order exactly as if each request had run alone, and written with multi-row statements.
//! When anything in the group fails at the database (a duplicate id, a race with another
//! process), the group's savepoint is rolled back and each request is retried alone in its
//! own savepoint, so only the faulty one fails.

use std::collections::{HashMap, HashSet};

use sqlx::sqlite::SqliteConnection;
use tokio::sync::oneshot;

use compliance_core::domain::{
    EventStatus, JobStatus, NewSyncJob, RejectionKind, SyncJob, WebhookEvent,
};
use compliance_core::ports::{AcceptRecord, CreatedJob, PriorDelivery, QueuePlacement};
use compliance_core::{ComponentId, StoreError, SyncJobId, Timestamp, WebhookEventId};

use crate::error::invalid;
use crate::group::{with_fallback, GroupFn, Written};
use crate::rows::{self, bound, get, ts, ts_opt};
use crate::sql::{id_list, insert_rows, text_list};
use crate::writer::{Answer, Pending};

/// An accepted webhook (`event` set) or a job created on its own, for the writer.
pub(crate) struct AcceptItem {
    pub(crate) event: Option<WebhookEvent>,
    pub(crate) job: NewSyncJob,
    pub(crate) placement: QueuePlacement,
    /// The store's clock when the call was made (supersession times, queue visibility).
    pub(crate) now: Timestamp,
    pub(crate) reply: oneshot::Sender<Result<AcceptRecord, StoreError>>,
}

/// A rejected request to log, for the writer.
pub(crate) struct RejectItem {
    pub(crate) event: WebhookEvent,
    pub(crate) reply: oneshot::Sender<Result<(), StoreError>>,
}

/// A webhook event with its stored times.
pub(crate) struct EventRow {
    event: WebhookEvent,
    source_ip: Option<String>,
    received_at: i64,
    processed_at: Option<i64>,
    accepted: bool,
}

impl EventRow {
    fn new(event: WebhookEvent, accepted: bool) -> Result<Self, StoreError> {
        Ok(Self {
            source_ip: event.source_ip.map(|ip| ip.to_string()),
            received_at: ts(event.received_at)?,
            processed_at: ts_opt(event.processed_at)?,
            accepted,
            event,
        })
    }

    fn settle(&mut self, status: EventStatus, at: Timestamp, at_ns: i64) {
        self.event.processing_status = status;
        self.event.processed_at = Some(at);
        self.processed_at = Some(at_ns);
    }
}

/// A new job with its stored times.
struct JobRow {
    job: SyncJob,
    queued_at: i64,
    scan_completed_at: Option<i64>,
    completed_at: Option<i64>,
}

/// An accept request checked and converted, ready to plan.
struct Prepared {
    event: Option<EventRow>,
    job: SyncJob,
    queued_at: i64,
    scan_completed_at: Option<i64>,
    in_store: bool,
    now: Timestamp,
    now_ns: i64,
}

impl Prepared {
    fn new(
        event: Option<WebhookEvent>,
        job: NewSyncJob,
        placement: QueuePlacement,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        let event = match event {
            Some(mut event) => {
                // The event always names the job it created, whatever the caller filled in.
                event.component_id = Some(job.component_id);
                event.sync_job_id = Some(job.id);
                if let Some(id) = job.webhook_event_id.filter(|id| *id != event.id) {
                    return Err(invalid(format!(
                        "job names webhook event {id}, the event is {}",
                        event.id
                    )));
                }
                Some(EventRow::new(event, true)?)
            }
            None => None,
        };
        Ok(Self {
            event,
            queued_at: ts(job.queued_at)?,
            scan_completed_at: ts_opt(job.scan_completed_at)?,
            job: job.into_job(),
            in_store: placement == QueuePlacement::InStore,
            now_ns: ts(now)?,
            now,
        })
    }
}

/// Writes accepted webhooks and new jobs; returns whether queue entries were made ready.
pub(crate) async fn accept_group(
    conn: &mut SqliteConnection,
    items: Vec<AcceptItem>,
    answers: &mut Vec<Box<dyn Answer>>,
) -> Result<bool, sqlx::Error> {
    let mut prepared = Vec::with_capacity(items.len());
    let mut replies = Vec::with_capacity(items.len());
    for item in items {
        match Prepared::new(item.event, item.job, item.placement, item.now) {
            Ok(p) => {
                prepared.push(p);
                replies.push(item.reply);
            }
            Err(e) => answers.push(Box::new(Pending {
                reply: item.reply,
                result: Err(e),
            })),
        }
    }
    let run: GroupFn<Prepared, AcceptRecord> = |conn, group| Box::pin(write_accepts(conn, group));
    with_fallback(
        conn,
        "record accepted webhook",
        prepared,
        replies,
        answers,
        run,
    )
    .await
}

/// Writes rejected requests.
pub(crate) async fn reject_group(
    conn: &mut SqliteConnection,
    items: Vec<RejectItem>,
    answers: &mut Vec<Box<dyn Answer>>,
) -> Result<(), sqlx::Error> {
    let mut prepared = Vec::with_capacity(items.len());
    let mut replies = Vec::with_capacity(items.len());
    for item in items {
        match EventRow::new(item.event, false) {
            Ok(row) => {
                prepared.push(row);
                replies.push(item.reply);
            }
            Err(e) => answers.push(Box::new(Pending {
                reply: item.reply,
                result: Err(e),
            })),
        }
    }
    let run: GroupFn<EventRow, ()> = |conn, group| {
        Box::pin(async move {
            insert_events(conn, group.iter()).await?;
            Ok(Written {
                outcomes: group.iter().map(|_| Ok(())).collect(),
                wake: false,
            })
        })
    };
    with_fallback(
        conn,
        "record rejected webhook",
        prepared,
        replies,
        answers,
        run,
    )
    .await
    .map(|_| ())
}

/// A pending (`QUEUED`) job of a component and branch, from the database or from this group.
struct PendingJob {
    id: SyncJobId,
    scan_completed_at: Option<Timestamp>,
    event_id: Option<WebhookEventId>,
    /// Where it sits in the group's rows, when the group created it.
    created: Option<Created>,
}

#[derive(Clone, Copy)]
struct Created {
    job: usize,
    event: Option<usize>,
}

/// What the component row says about its current data.
struct ComponentData {
    last_scan_at: Option<Timestamp>,
    last_sync_job_id: Option<SyncJobId>,
}

/// A pending job from before the group, superseded by one of it.
struct SupersededRow {
    id: SyncJobId,
    by: SyncJobId,
    at: i64,
    event_id: Option<WebhookEventId>,
}

/// Whether a scan completed at `scan` is older than one completed at `other`.
fn older(scan: Option<Timestamp>, other: Option<Timestamp>) -> bool {
    matches!((scan, other), (Some(scan), Some(other)) if scan < other)
}

fn mark_superseded(row: &mut JobRow, by: Option<SyncJobId>, at: Timestamp, at_ns: i64) {
    row.job.status = JobStatus::Superseded;
    row.job.superseded_by = by;
    row.job.completed_at = Some(at);
    row.job.next_attempt_at = None;
    row.completed_at = Some(at_ns);
}

async fn write_accepts(
    conn: &mut SqliteConnection,
    group: &[Prepared],
) -> Result<Written<AcceptRecord>, sqlx::Error> {
    let mut deliveries = prior_deliveries(conn, group).await?;
    let components = component_data(conn, group).await?;
    let mut pending = pending_jobs(conn, &components).await?;
    let mut active = active_jobs(conn).await?;

    let mut events: Vec<EventRow> = Vec::with_capacity(group.len());
    let mut jobs: Vec<JobRow> = Vec::with_capacity(group.len());
    let mut entries: Vec<(SyncJobId, i64)> = Vec::new();
    let mut dropped_entries: HashSet<SyncJobId> = HashSet::new();
    let mut superseded_before: Vec<SupersededRow> = Vec::new();
    let mut outcomes = Vec::with_capacity(group.len());

    for p in group {
        let key = p.event.as_ref().and_then(|e| e.event.delivery_key.clone());
        if let Some(prior) = key.as_ref().and_then(|k| deliveries.get(k)) {
            outcomes.push(Ok(AcceptRecord::Duplicate(prior.clone())));
            continue;
        }
        let Some(component) = components.get(&p.job.component_id) else {
            outcomes.push(Err(StoreError::not_found(format!(
                "component {}",
                p.job.component_id
            ))));
            continue;
        };

        let mut row = JobRow {
            job: p.job.clone(),
            queued_at: p.queued_at,
            scan_completed_at: p.scan_completed_at,
            completed_at: None,
        };
        let mut superseded = Vec::new();
        let queue = pending
            .entry((row.job.component_id, row.job.branch.clone()))
            .or_default();
        if older(row.job.scan_completed_at, component.last_scan_at) {
            mark_superseded(&mut row, component.last_sync_job_id, p.now, p.now_ns);
        } else if let Some(newer) = queue
            .iter()
            .find(|q| older(row.job.scan_completed_at, q.scan_completed_at))
        {
            mark_superseded(&mut row, Some(newer.id), p.now, p.now_ns);
        } else {
            for old in queue.drain(..) {
                superseded.push(old.id);
                active = active.saturating_sub(1);
                match old.created {
                    Some(created) => {
                        if let Some(old_row) = jobs.get_mut(created.job) {
                            mark_superseded(old_row, Some(row.job.id), p.now, p.now_ns);
                        }
                        if let Some(event) = created.event.and_then(|i| events.get_mut(i)) {
                            event.settle(EventStatus::Processed, p.now, p.now_ns);
                        }
                        dropped_entries.insert(old.id);
                    }
                    None => superseded_before.push(SupersededRow {
                        id: old.id,
                        by: row.job.id,
                        at: p.now_ns,
                        event_id: old.event_id,
                    }),
                }
            }
        }

        let settled = row.job.status == JobStatus::Superseded;
        let event_index = match &p.event {
            Some(source) => {
                let mut event = EventRow {
                    event: source.event.clone(),
                    source_ip: source.source_ip.clone(),
                    received_at: source.received_at,
                    processed_at: source.processed_at,
                    accepted: true,
                };
                if settled {
                    event.settle(EventStatus::Processed, p.now, p.now_ns);
                }
                if let Some(key) = key {
                    deliveries.insert(
                        key,
                        PriorDelivery {
                            event_id: event.event.id,
                            sync_job_id: row.job.id,
                            component_id: row.job.component_id,
                            received_at: event.event.received_at,
                        },
                    );
                }
                events.push(event);
                Some(events.len() - 1)
            }
            None => None,
        };
        if !settled {
            active += 1;
            queue.push(PendingJob {
                id: row.job.id,
                scan_completed_at: row.job.scan_completed_at,
                event_id: row
                    .job
                    .webhook_event_id
                    .or(p.event.as_ref().map(|e| e.event.id)),
                created: Some(Created {
                    job: jobs.len(),
                    event: event_index,
                }),
            });
            if p.in_store {
                entries.push((row.job.id, p.now_ns));
            }
        }
        outcomes.push(Ok(AcceptRecord::Created(CreatedJob {
            job: row.job.clone(),
            superseded,
            jobs_ahead: active,
        })));
        jobs.push(row);
    }

    insert_events(conn, events.iter()).await?;
    insert_jobs(conn, &jobs).await?;
    entries.retain(|(id, _)| !dropped_entries.contains(id));
    insert_entries(conn, &entries).await?;
    supersede_before(conn, &superseded_before, group).await?;

    Ok(Written {
        outcomes,
        wake: !entries.is_empty(),
    })
}

// The group's set-based statements. Each takes its keys as one JSON array bound to `?`; the
// array must drive the lookup (json_each outermost, one index search per element), never be
// re-read for every row of a table: `plans_walk_the_json_list_not_the_tables` checks it.

/// Accepted deliveries with the given delivery keys.
const PRIOR_DELIVERIES: &str =
    "SELECT delivery_key, id, sync_job_id, component_id, received_at FROM webhook_events \
     WHERE accepted = 1 AND delivery_key IN (SELECT value FROM json_each(?))";

/// The components with the given ids (hex).
const COMPONENT_DATA: &str = "SELECT id, last_scan_at, last_sync_job_id FROM components \
     WHERE id IN (SELECT unhex(value) FROM json_each(?))";

/// The pending jobs of the given components (hex ids).
const PENDING_JOBS: &str =
    "SELECT id, component_id, branch, scan_completed_at, webhook_event_id FROM sync_jobs \
     WHERE status = 'QUEUED' AND component_id IN (SELECT unhex(value) FROM json_each(?)) \
     ORDER BY queued_at, id";

/// Jobs `QUEUED` or `RUNNING`.
const ACTIVE_JOBS: &str = "SELECT count(*) FROM sync_jobs WHERE status IN ('QUEUED', 'RUNNING')";

/// Supersedes the listed jobs (`[{id, by, at, event}]`) that are still queued. The `+` keeps
/// SQLite from walking every queued job through the status index and re-reading the JSON
/// list for each: the list drives, each element finds its job by primary key.
const SUPERSEDE_JOBS: &str =
    "WITH v AS (SELECT unhex(value ->> 'id') AS id, unhex(value ->> 'by') AS by, \
     value ->> 'at' AS at FROM json_each(?)) \
     UPDATE sync_jobs SET status = 'SUPERSEDED', superseded_by = v.by, completed_at = v.at, \
     next_attempt_at = NULL FROM v WHERE sync_jobs.id = v.id AND +sync_jobs.status = 'QUEUED'";

/// Settles the events of the listed jobs.
const SETTLE_EVENTS: &str =
    "WITH v AS (SELECT unhex(value ->> 'event') AS id, value ->> 'at' AS at \
     FROM json_each(?) WHERE value ->> 'event' IS NOT NULL) \
     UPDATE webhook_events SET processing_status = 'PROCESSED', processed_at = v.at \
     FROM v WHERE webhook_events.id = v.id";

/// Drops the queue entries of the listed jobs unless a live lease holds one.
const DROP_ENTRIES: &str = "DELETE FROM queue_entries \
     WHERE job_id IN (SELECT unhex(value ->> 'id') FROM json_each(?)) \
     AND dead_at IS NULL AND (lease_token IS NULL OR visible_at <= ?)";

/// Accepted deliveries already stored for the group's delivery keys.
async fn prior_deliveries(
    conn: &mut SqliteConnection,
    group: &[Prepared],
) -> Result<HashMap<String, PriorDelivery>, sqlx::Error> {
    let keys: Vec<&str> = group
        .iter()
        .filter_map(|p| p.event.as_ref()?.event.delivery_key.as_deref())
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(PRIOR_DELIVERIES)
        .bind(text_list(keys))
        .fetch_all(&mut *conn)
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        if let Some((key, prior)) = prior_delivery(row) {
            found.insert(key, prior);
        }
    }
    Ok(found)
}

/// A stored delivery; `None` when the row lacks its job or component (pruned links).
pub(crate) fn prior_delivery(row: &sqlx::sqlite::SqliteRow) -> Option<(String, PriorDelivery)> {
    let key: String = get(row, "delivery_key").ok()?;
    let prior = PriorDelivery {
        event_id: WebhookEventId::from_uuid(get(row, "id").ok()?),
        sync_job_id: SyncJobId::from_uuid(get::<Option<uuid::Uuid>>(row, "sync_job_id").ok()??),
        component_id: ComponentId::from_uuid(get::<Option<uuid::Uuid>>(row, "component_id").ok()??),
        received_at: rows::time(get(row, "received_at").ok()?),
    };
    Some((key, prior))
}

async fn component_data(
    conn: &mut SqliteConnection,
    group: &[Prepared],
) -> Result<HashMap<ComponentId, ComponentData>, sqlx::Error> {
    let ids: HashSet<ComponentId> = group.iter().map(|p| p.job.component_id).collect();
    let rows = sqlx::query(COMPONENT_DATA)
        .bind(id_list(ids.iter().map(ComponentId::as_uuid)))
        .fetch_all(&mut *conn)
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: uuid::Uuid = sqlx::Row::try_get(row, "id")?;
        let last_scan_at: Option<i64> = sqlx::Row::try_get(row, "last_scan_at")?;
        let last_job: Option<uuid::Uuid> = sqlx::Row::try_get(row, "last_sync_job_id")?;
        found.insert(
            ComponentId::from_uuid(id),
            ComponentData {
                last_scan_at: last_scan_at.map(rows::time),
                last_sync_job_id: last_job.map(SyncJobId::from_uuid),
            },
        );
    }
    Ok(found)
}

type PendingMap = HashMap<(ComponentId, String), Vec<PendingJob>>;

async fn pending_jobs(
    conn: &mut SqliteConnection,
    components: &HashMap<ComponentId, ComponentData>,
) -> Result<PendingMap, sqlx::Error> {
    let mut pending = PendingMap::new();
    if components.is_empty() {
        return Ok(pending);
    }
    let rows = sqlx::query(PENDING_JOBS)
        .bind(id_list(components.keys().map(ComponentId::as_uuid)))
        .fetch_all(&mut *conn)
        .await?;
    for row in &rows {
        let id: uuid::Uuid = sqlx::Row::try_get(row, "id")?;
        let component: uuid::Uuid = sqlx::Row::try_get(row, "component_id")?;
        let branch: String = sqlx::Row::try_get(row, "branch")?;
        let scan: Option<i64> = sqlx::Row::try_get(row, "scan_completed_at")?;
        let event: Option<uuid::Uuid> = sqlx::Row::try_get(row, "webhook_event_id")?;
        pending
            .entry((ComponentId::from_uuid(component), branch))
            .or_default()
            .push(PendingJob {
                id: SyncJobId::from_uuid(id),
                scan_completed_at: scan.map(rows::time),
                event_id: event.map(WebhookEventId::from_uuid),
                created: None,
            });
    }
    Ok(pending)
}

/// How many jobs are `QUEUED` or `RUNNING`.
pub(crate) async fn active_jobs(conn: &mut SqliteConnection) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(ACTIVE_JOBS)
        .fetch_one(&mut *conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn insert_events<'a>(
    conn: &mut SqliteConnection,
    events: impl Iterator<Item = &'a EventRow>,
) -> Result<(), sqlx::Error> {
    let events: Vec<&EventRow> = events.collect();
    insert_rows(
        conn,
        "INSERT INTO webhook_events (id, event_type, source_ip, source_system, raw_payload, \
         payload_truncated, signature, signature_valid, processing_status, rejection, \
         http_status, component_id, sync_job_id, repository_url, revision, branch, \
         pipeline_id, pipeline_url, actor, delivery_key, accepted, received_at, processed_at, \
         error_message) VALUES ",
        "",
        24,
        128,
        &events,
        |q, row| {
            let e = &row.event;
            q.bind(e.id.as_uuid())
                .bind(e.event_type.as_deref())
                .bind(row.source_ip.as_deref())
                .bind(e.source_system.as_deref())
                .bind(e.raw_payload.as_str())
                .bind(e.payload_truncated)
                .bind(e.signature.as_deref())
                .bind(e.signature_valid)
                .bind(e.processing_status.as_str())
                .bind(e.rejection.map(RejectionKind::as_str))
                .bind(i64::from(e.http_status))
                .bind(e.component_id.map(|c| c.as_uuid()))
                .bind(e.sync_job_id.map(|j| j.as_uuid()))
                .bind(e.repository_url.as_deref())
                .bind(e.revision.as_deref())
                .bind(e.branch.as_deref())
                .bind(e.pipeline_id.as_deref())
                .bind(e.pipeline_url.as_deref())
                .bind(e.actor.as_deref())
                .bind(e.delivery_key.as_deref())
                .bind(row.accepted)
                .bind(row.received_at)
                .bind(row.processed_at)
                .bind(e.error_message.as_deref())
        },
    )
    .await
}

async fn insert_jobs(conn: &mut SqliteConnection, jobs: &[JobRow]) -> Result<(), sqlx::Error> {
    insert_rows(
        conn,
        "INSERT INTO sync_jobs (id, component_id, trigger, webhook_event_id, status, revision, \
         branch, scan_completed_at, queued_at, completed_at, superseded_by) VALUES ",
        "",
        11,
        256,
        jobs,
        |q, row| {
            let j = &row.job;
            q.bind(j.id.as_uuid())
                .bind(j.component_id.as_uuid())
                .bind(j.trigger.as_str())
                .bind(j.webhook_event_id.map(|e| e.as_uuid()))
                .bind(j.status.as_str())
                .bind(j.revision.as_deref())
                .bind(j.branch.as_str())
                .bind(row.scan_completed_at)
                .bind(row.queued_at)
                .bind(row.completed_at)
                .bind(j.superseded_by.map(|s| s.as_uuid()))
        },
    )
    .await
}

/// Queue entries for new jobs; a job already in the queue keeps its entry.
async fn insert_entries(
    conn: &mut SqliteConnection,
    entries: &[(SyncJobId, i64)],
) -> Result<(), sqlx::Error> {
    insert_rows(
        conn,
        "INSERT INTO queue_entries (job_id, visible_at) VALUES ",
        "ON CONFLICT (job_id) DO NOTHING",
        2,
        256,
        entries,
        |q, (job, visible_at)| q.bind(job.as_uuid()).bind(*visible_at),
    )
    .await
}

/// Supersedes pending jobs that were stored before the group, settles their events and
/// takes their queue entries out (unless a worker holds one: it will find the job finished
/// and acknowledge it).
async fn supersede_before(
    conn: &mut SqliteConnection,
    rows: &[SupersededRow],
    group: &[Prepared],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id.as_uuid().simple().to_string(),
                "by": r.by.as_uuid().simple().to_string(),
                "at": r.at,
                "event": r.event_id.map(|e| e.as_uuid().simple().to_string()),
            })
        })
        .collect();
    let list = serde_json::Value::Array(list).to_string();
    sqlx::query(SUPERSEDE_JOBS)
        .bind(list.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query(SETTLE_EVENTS)
        .bind(list.as_str())
        .execute(&mut *conn)
        .await?;
    let now = group.iter().map(|p| bound(p.now)).max().unwrap_or(i64::MIN);
    sqlx::query(DROP_ENTRIES)
        .bind(list.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Cuts a rejected request's payload to `limit` bytes (on a character boundary).
pub(crate) fn bound_payload(event: &mut WebhookEvent, limit: usize) {
    if event.raw_payload.len() <= limit {
        return;
    }
    let mut cut = limit;
    while !event.raw_payload.is_char_boundary(cut) {
        cut -= 1;
    }
    event.raw_payload.truncate(cut);
    event.payload_truncated = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_cut_on_a_character_boundary() {
        let mut event = compliance_core::domain::WebhookEvent {
            id: WebhookEventId::new(),
            event_type: None,
            source_ip: None,
            source_system: None,
            raw_payload: "ééé".to_owned(),
            payload_truncated: false,
            signature: None,
            signature_valid: false,
            processing_status: EventStatus::Failed,
            rejection: None,
            http_status: 401,
            component_id: None,
            sync_job_id: None,
            repository_url: None,
            revision: None,
            branch: None,
            pipeline_id: None,
            pipeline_url: None,
            actor: None,
            delivery_key: None,
            received_at: Timestamp::from_timestamp_nanos(0),
            processed_at: None,
            error_message: None,
        };
        bound_payload(&mut event, 3);
        assert_eq!(event.raw_payload, "é");
        assert!(event.payload_truncated);
    }

    /// The query plan of `sql`, one line per step.
    async fn plan(conn: &mut SqliteConnection, sql: &str) -> Vec<String> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        rows.iter()
            .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
            .collect()
    }

    /// Each statement of the hot path looks rows up from the JSON list: no table is scanned
    /// (a nested scan of a growing table, or of the list per row, made ingest slower with
    /// every queued job), and no search runs before the list is read.
    #[tokio::test]
    async fn plans_walk_the_json_list_not_the_tables() {
        use sqlx::Connection;

        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        crate::store::MIGRATOR.run(&mut conn).await.unwrap();
        for sql in [
            PRIOR_DELIVERIES,
            COMPONENT_DATA,
            PENDING_JOBS,
            SUPERSEDE_JOBS,
            SETTLE_EVENTS,
            DROP_ENTRIES,
        ] {
            let steps = plan(&mut conn, sql).await;
            for step in &steps {
                let scans_table = step.starts_with("SCAN") && !step.contains("json_each");
                assert!(!scans_table, "{step} in {steps:?} for {sql}");
            }
            let first_search = steps.iter().position(|s| s.starts_with("SEARCH"));
            let first_list = steps.iter().position(|s| s.contains("json_each"));
            if let (Some(search), Some(list)) = (first_search, first_list) {
                let list_first =
                    list < search || steps.iter().any(|s| s.starts_with("LIST SUBQUERY"));
                assert!(list_first, "the list does not drive {steps:?} for {sql}");
            }
        }
        // Counting active jobs reads the status index only.
        let steps = plan(&mut conn, ACTIVE_JOBS).await;
        assert!(steps.iter().all(|s| s.contains("INDEX")), "{steps:?}");
    }
}
