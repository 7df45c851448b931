//! One group-commit transaction in four round trips: begin and lock, read what coalescing
//! needs, write everything with one statement of data-modifying CTEs, commit.
//!
//! Few round trips matter more than anything else here: each one waits for the server to be
//! scheduled, and on a busy two-core machine that wait, not the work, sets the pace.

use std::collections::{HashMap, HashSet};

use compliance_core::domain::{EventStatus, JobStatus, RejectionKind, SyncJob, WebhookEvent};
use compliance_core::ports::{AcceptRecord, CreatedJob, PriorDelivery, QueuePlacement};
use compliance_core::{ComponentId, StoreError, SyncJobId, Timestamp, WebhookEventId};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::{begin_locked, lock_key, Context, Item, Written};
use crate::coalesce::{self, ComponentData, PendingJob};
use crate::error::{corrupt, PgStoreError};
use crate::rows::{self, micros};

/// What happens to each item of a batch before anything is written.
enum Fate {
    Failed(StoreError),
    /// The same delivery was accepted before this batch.
    Duplicate(PriorDelivery),
    /// The same delivery appears earlier in this batch, at this index.
    DuplicateOf(usize),
    Write,
}

pub(super) async fn write_once(context: &Context, items: &[Item]) -> Result<Written, PgStoreError> {
    let now = micros(context.clock.now());
    let mut fates: Vec<Fate> = items.iter().map(check_link).collect();

    let keys = items
        .iter()
        .map(|i| lock_key(&context.lock_namespace, i.job.component_id, &i.job.branch))
        .collect();
    let mut tx = begin_locked(&context.pool, keys).await?;

    let state = read_state(&mut tx, items).await?;
    decide_fates(items, &mut fates, &state);

    let writing: Vec<usize> = (0..items.len())
        .filter(|&i| matches!(fates.get(i), Some(Fate::Write)))
        .collect();
    let mut created: HashMap<usize, CreatedJob> = HashMap::new();
    let mut wake_workers = false;
    if !writing.is_empty() {
        let pending: Vec<PendingJob> = state
            .pending
            .into_iter()
            .filter(|p| {
                writing.iter().filter_map(|&i| items.get(i)).any(|item| {
                    item.job.component_id == p.component_id && item.job.branch == p.branch
                })
            })
            .collect();
        let new_jobs = writing
            .iter()
            .filter_map(|&i| items.get(i).map(|item| item.job.clone()))
            .collect();
        let plan = coalesce::plan(new_jobs, &state.components, pending, now);

        let events: Vec<WebhookEvent> = writing
            .iter()
            .zip(&plan.jobs)
            .filter_map(|(&i, job)| {
                let mut event = items.get(i)?.event.clone()?;
                event.component_id = Some(job.component_id);
                event.sync_job_id = Some(job.id);
                if job.status == JobStatus::Superseded {
                    event.processing_status = EventStatus::Processed;
                    event.processed_at = Some(now);
                }
                Some(event)
            })
            .collect();
        let enqueue: Vec<Uuid> = writing
            .iter()
            .zip(&plan.jobs)
            .filter(|(&i, job)| {
                job.status == JobStatus::Queued
                    && items
                        .get(i)
                        .is_some_and(|item| item.placement == QueuePlacement::InStore)
            })
            .map(|(_, job)| job.id.as_uuid())
            .collect();
        let queued_new = plan
            .jobs
            .iter()
            .filter(|j| j.status == JobStatus::Queued)
            .count();
        wake_workers = !enqueue.is_empty();

        let written = write_all(
            &mut tx,
            &events,
            &plan.jobs,
            &plan.supersede_stored,
            enqueue,
            now,
        )
        .await?;
        if written.events < events.len() {
            tx.rollback()
                .await
                .map_err(PgStoreError::sqlx("rolling back a raced batch"))?;
            return Ok(Written::Raced);
        }
        // The count was taken before this batch's own writes.
        let active = rows::count64(written.active_before)
            .saturating_add(queued_new as u64)
            .saturating_sub(written.superseded);
        for ((&i, job), superseded) in writing.iter().zip(plan.jobs).zip(plan.superseded) {
            created.insert(
                i,
                CreatedJob {
                    job,
                    superseded,
                    jobs_ahead: active,
                },
            );
        }
    }

    tx.commit()
        .await
        .map_err(PgStoreError::sqlx("committing accepted webhooks"))?;
    if wake_workers {
        wake(context);
    }
    Ok(Written::Done(answers(items, fates, created)))
}

/// The answer of every item once the batch has committed.
fn answers(
    items: &[Item],
    fates: Vec<Fate>,
    mut created: HashMap<usize, CreatedJob>,
) -> Vec<Result<AcceptRecord, StoreError>> {
    // What a later copy of a delivery in the same batch is answered with, taken before the
    // loop below hands the created jobs out.
    let firsts: HashMap<usize, PriorDelivery> = created
        .iter()
        .filter_map(|(&i, made)| {
            let event = items.get(i)?.event.as_ref()?;
            Some((
                i,
                PriorDelivery {
                    event_id: event.id,
                    sync_job_id: made.job.id,
                    component_id: made.job.component_id,
                    received_at: micros(event.received_at),
                },
            ))
        })
        .collect();
    let mut results: Vec<Result<AcceptRecord, StoreError>> = Vec::with_capacity(items.len());
    for (i, fate) in fates.into_iter().enumerate() {
        let result = match fate {
            Fate::Failed(err) => Err(err),
            Fate::Duplicate(prior) => Ok(AcceptRecord::Duplicate(prior)),
            Fate::DuplicateOf(first) => match firsts.get(&first) {
                Some(prior) => Ok(AcceptRecord::Duplicate(prior.clone())),
                None => Err(StoreError::backend(
                    "writing accepted webhooks",
                    "an earlier delivery of the batch was not written",
                )),
            },
            Fate::Write => created
                .remove(&i)
                .map(AcceptRecord::Created)
                .ok_or_else(|| {
                    StoreError::backend("writing accepted webhooks", "no job was planned")
                }),
        };
        results.push(result);
    }
    results
}

/// An accepted event must name the job's event, if the job names one.
fn check_link(item: &Item) -> Fate {
    match (&item.event, item.job.webhook_event_id) {
        (Some(event), Some(id)) if id != event.id => Fate::Failed(StoreError::Invalid {
            what: format!("job names webhook event {id}, the event is {}", event.id),
        }),
        _ => Fate::Write,
    }
}

/// What the database holds that the batch depends on.
struct State {
    components: HashMap<ComponentId, ComponentData>,
    /// Accepted deliveries with the batch's keys.
    prior: HashMap<String, PriorDelivery>,
    /// `QUEUED` jobs of the batch's components and branches (locked), oldest first.
    pending: Vec<PendingJob>,
}

/// Reads components, earlier deliveries and pending jobs in one statement; the pending jobs
/// are locked until the transaction ends.
async fn read_state(
    tx: &mut Transaction<'_, Postgres>,
    items: &[Item],
) -> Result<State, PgStoreError> {
    let components: Vec<Uuid> = items
        .iter()
        .map(|i| i.job.component_id.as_uuid())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let keys: Vec<&str> = items
        .iter()
        .filter_map(|i| i.event.as_ref()?.delivery_key.as_deref())
        .collect();
    let pairs: HashSet<(Uuid, &str)> = items
        .iter()
        .map(|i| (i.job.component_id.as_uuid(), i.job.branch.as_str()))
        .collect();
    let (pair_components, pair_branches): (Vec<Uuid>, Vec<&str>) = pairs.into_iter().unzip();

    // One row shape for three kinds of row: (kind, id, a, b, t1, t2, s).
    let found = sqlx::query(
        "WITH pending AS ( \
           SELECT j.id, j.component_id, j.branch, j.scan_completed_at, j.queued_at \
           FROM sync_jobs j JOIN unnest($3::uuid[], $4::text[]) AS k(component_id, branch) \
             ON j.component_id = k.component_id AND j.branch = k.branch \
           WHERE j.status = 'QUEUED' FOR UPDATE OF j) \
         SELECT 'c' AS kind, id, last_sync_job_id AS a, NULL::uuid AS b, \
           last_scan_at AS t1, NULL::timestamptz AS t2, NULL::text AS s \
         FROM components WHERE id = ANY($1) \
         UNION ALL \
         SELECT 'd', id, sync_job_id, component_id, received_at, NULL, delivery_key \
         FROM webhook_events WHERE accepted AND delivery_key = ANY($2) \
         UNION ALL \
         SELECT 'p', id, component_id, NULL, scan_completed_at, queued_at, branch FROM pending",
    )
    .bind(components)
    .bind(keys)
    .bind(pair_components)
    .bind(pair_branches)
    .fetch_all(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("reading what coalescing needs"))?;

    let mut state = State {
        components: HashMap::new(),
        prior: HashMap::new(),
        pending: Vec::new(),
    };
    let mut pending: Vec<(Timestamp, PendingJob)> = Vec::new();
    for row in &found {
        let kind: String = row.try_get("kind").map_err(corrupt)?;
        let id: Uuid = row.try_get("id").map_err(corrupt)?;
        let a: Option<Uuid> = row.try_get("a").map_err(corrupt)?;
        let b: Option<Uuid> = row.try_get("b").map_err(corrupt)?;
        let t1: Option<Timestamp> = row.try_get("t1").map_err(corrupt)?;
        let t2: Option<Timestamp> = row.try_get("t2").map_err(corrupt)?;
        let s: Option<String> = row.try_get("s").map_err(corrupt)?;
        match (kind.as_str(), a, b, t1, t2, s) {
            ("c", last_sync, _, last_scan_at, _, _) => {
                state.components.insert(
                    ComponentId::from_uuid(id),
                    ComponentData {
                        last_scan_at,
                        last_sync_job_id: last_sync.map(SyncJobId::from_uuid),
                    },
                );
            }
            ("d", Some(job), Some(component), Some(received_at), _, Some(key)) => {
                state.prior.insert(
                    key,
                    PriorDelivery {
                        event_id: WebhookEventId::from_uuid(id),
                        sync_job_id: SyncJobId::from_uuid(job),
                        component_id: ComponentId::from_uuid(component),
                        received_at,
                    },
                );
            }
            ("p", Some(component), _, scan, Some(queued_at), Some(branch)) => pending.push((
                queued_at,
                PendingJob {
                    id: SyncJobId::from_uuid(id),
                    component_id: ComponentId::from_uuid(component),
                    branch,
                    scan_completed_at: scan,
                },
            )),
            (kind, ..) => {
                return Err(PgStoreError::Corrupt(format!(
                    "unexpected {kind:?} row {id}"
                )))
            }
        }
    }
    pending.sort_by(|(a, x), (b, y)| a.cmp(b).then(x.id.cmp(&y.id)));
    state.pending = pending.into_iter().map(|(_, p)| p).collect();
    Ok(state)
}

/// Items for unknown components fail; deliveries accepted before, or earlier in the batch,
/// are duplicates. Only items still to be written take part in either check, so that a
/// failed item does not make a later copy of its delivery a duplicate of nothing.
fn decide_fates(items: &[Item], fates: &mut [Fate], state: &State) {
    let mut first_in_batch: HashMap<&str, usize> = HashMap::new();
    for (i, (item, fate)) in items.iter().zip(fates.iter_mut()).enumerate() {
        if !matches!(fate, Fate::Write) {
            continue;
        }
        if !state.components.contains_key(&item.job.component_id) {
            *fate = Fate::Failed(StoreError::not_found(format!(
                "component {}",
                item.job.component_id
            )));
            continue;
        }
        let Some(key) = item.event.as_ref().and_then(|e| e.delivery_key.as_deref()) else {
            continue;
        };
        if let Some(prior) = state.prior.get(key) {
            *fate = Fate::Duplicate(prior.clone());
        } else if let Some(&first) = first_in_batch.get(key) {
            *fate = Fate::DuplicateOf(first);
        } else {
            first_in_batch.insert(key, i);
        }
    }
}

/// What [`write_all`] did.
struct WriteCounts {
    /// Events inserted (fewer than given when another transaction took a delivery key).
    events: usize,
    /// Stored jobs superseded.
    superseded: u64,
    /// Queued and running jobs before this statement.
    active_before: i64,
}

/// Writes events, jobs, superseded jobs and their events, and queue entries, in one statement.
// Limitation: this statement costs PostgreSQL about 0.3 ms of CPU per webhook (ten index
// entries for the new event and job, plus the superseded job and event rewritten), which
// holds durable ingest near 1 500/s on a shared two-core machine, short of the 10 000/s
// target; see the compliance-store-postgres section of BENCHMARKS.md.
async fn write_all(
    tx: &mut Transaction<'_, Postgres>,
    events: &[WebhookEvent],
    jobs: &[SyncJob],
    supersede: &[(SyncJobId, SyncJobId)],
    enqueue: Vec<Uuid>,
    now: Timestamp,
) -> Result<WriteCounts, PgStoreError> {
    let e = EventColumns::from(events);
    let j = JobColumns::from(jobs);
    let (superseded, covered_by): (Vec<Uuid>, Vec<Uuid>) = supersede
        .iter()
        .map(|(id, by)| (id.as_uuid(), by.as_uuid()))
        .unzip();
    // The CTEs touch disjoint rows: new events and jobs, stored pending jobs and their
    // events, queue entries of both.
    let row = sqlx::query(
        "WITH ev AS ( \
           INSERT INTO webhook_events (id, event_type, source_ip, source_system, raw_payload, \
             payload_truncated, signature, signature_valid, processing_status, rejection, \
             http_status, component_id, sync_job_id, repository_url, revision, branch, \
             pipeline_id, pipeline_url, actor, delivery_key, received_at, processed_at, \
             error_message, accepted) \
           SELECT *, true FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::bool[], $7::text[], $8::bool[], $9::text[], $10::text[], \
             $11::int2[], $12::uuid[], $13::uuid[], $14::text[], $15::text[], $16::text[], \
             $17::text[], $18::text[], $19::text[], $20::text[], $21::timestamptz[], \
             $22::timestamptz[], $23::text[]) \
           ON CONFLICT (delivery_key) WHERE accepted AND delivery_key IS NOT NULL DO NOTHING \
           RETURNING 1), \
         jb AS ( \
           INSERT INTO sync_jobs (id, component_id, trigger, webhook_event_id, status, \
             revision, branch, scan_completed_at, queued_at, completed_at, superseded_by) \
           SELECT * FROM unnest($24::uuid[], $25::uuid[], $26::text[], $27::uuid[], \
             $28::text[], $29::text[], $30::text[], $31::timestamptz[], $32::timestamptz[], \
             $33::timestamptz[], $34::uuid[]) \
           RETURNING 1), \
         sup AS ( \
           UPDATE sync_jobs j SET status = 'SUPERSEDED', superseded_by = s.by, \
             completed_at = $37, next_attempt_at = NULL \
           FROM unnest($35::uuid[], $36::uuid[]) AS s(id, by) \
           WHERE j.id = s.id AND j.status = 'QUEUED' \
           RETURNING j.id, j.webhook_event_id), \
         settled AS ( \
           UPDATE webhook_events e SET processing_status = 'PROCESSED', processed_at = $37 \
           FROM sup WHERE e.id = sup.webhook_event_id RETURNING 1), \
         unqueued AS ( \
           DELETE FROM queue_entries q USING sup \
           WHERE q.job_id = sup.id AND (q.lease_token IS NULL OR q.visible_at <= now()) \
           RETURNING 1), \
         queued AS ( \
           INSERT INTO queue_entries (job_id, visible_at, enqueued_at) \
           SELECT q, now(), now() FROM unnest($38::uuid[]) AS q \
           ON CONFLICT (job_id) DO NOTHING RETURNING 1) \
         SELECT (SELECT count(*) FROM ev) AS events, (SELECT count(*) FROM sup) AS superseded, \
           (SELECT count(*) FROM jb) + (SELECT count(*) FROM settled) \
             + (SELECT count(*) FROM unqueued) + (SELECT count(*) FROM queued) AS others, \
           (SELECT count(*) FROM sync_jobs WHERE status IN ('QUEUED', 'RUNNING')) \
             AS active_before",
    )
    .bind(e.id)
    .bind(e.event_type)
    .bind(e.source_ip)
    .bind(e.source_system)
    .bind(e.raw_payload)
    .bind(e.payload_truncated)
    .bind(e.signature)
    .bind(e.signature_valid)
    .bind(e.processing_status)
    .bind(e.rejection)
    .bind(e.http_status)
    .bind(e.component_id)
    .bind(e.sync_job_id)
    .bind(e.repository_url)
    .bind(e.revision)
    .bind(e.branch)
    .bind(e.pipeline_id)
    .bind(e.pipeline_url)
    .bind(e.actor)
    .bind(e.delivery_key)
    .bind(e.received_at)
    .bind(e.processed_at)
    .bind(e.error_message)
    .bind(j.id)
    .bind(j.component)
    .bind(j.trigger)
    .bind(j.event)
    .bind(j.status)
    .bind(j.revision)
    .bind(j.branch)
    .bind(j.scan)
    .bind(j.queued)
    .bind(j.completed)
    .bind(j.superseded_by)
    .bind(superseded)
    .bind(covered_by)
    .bind(now)
    .bind(enqueue)
    .fetch_one(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("writing accepted webhooks"))?;

    let events: i64 = row.try_get("events").map_err(corrupt)?;
    let superseded: i64 = row.try_get("superseded").map_err(corrupt)?;
    Ok(WriteCounts {
        events: usize::try_from(events).unwrap_or(0),
        superseded: rows::count64(superseded),
        active_before: row.try_get("active_before").map_err(corrupt)?,
    })
}

/// Events as column arrays, for `unnest`.
#[derive(Default)]
pub(crate) struct EventColumns {
    pub(crate) id: Vec<Uuid>,
    pub(crate) event_type: Vec<Option<String>>,
    pub(crate) source_ip: Vec<Option<String>>,
    pub(crate) source_system: Vec<Option<String>>,
    pub(crate) raw_payload: Vec<String>,
    pub(crate) payload_truncated: Vec<bool>,
    pub(crate) signature: Vec<Option<String>>,
    pub(crate) signature_valid: Vec<bool>,
    pub(crate) processing_status: Vec<&'static str>,
    pub(crate) rejection: Vec<Option<&'static str>>,
    pub(crate) http_status: Vec<i16>,
    pub(crate) component_id: Vec<Option<Uuid>>,
    pub(crate) sync_job_id: Vec<Option<Uuid>>,
    pub(crate) repository_url: Vec<Option<String>>,
    pub(crate) revision: Vec<Option<String>>,
    pub(crate) branch: Vec<Option<String>>,
    pub(crate) pipeline_id: Vec<Option<String>>,
    pub(crate) pipeline_url: Vec<Option<String>>,
    pub(crate) actor: Vec<Option<String>>,
    pub(crate) delivery_key: Vec<Option<String>>,
    pub(crate) received_at: Vec<Timestamp>,
    pub(crate) processed_at: Vec<Option<Timestamp>>,
    pub(crate) error_message: Vec<Option<String>>,
}

impl From<&[WebhookEvent]> for EventColumns {
    fn from(events: &[WebhookEvent]) -> Self {
        let mut c = Self::default();
        for e in events {
            c.id.push(e.id.as_uuid());
            c.event_type.push(e.event_type.clone());
            c.source_ip.push(e.source_ip.map(|ip| ip.to_string()));
            c.source_system.push(e.source_system.clone());
            c.raw_payload.push(e.raw_payload.clone());
            c.payload_truncated.push(e.payload_truncated);
            c.signature.push(e.signature.clone());
            c.signature_valid.push(e.signature_valid);
            c.processing_status.push(e.processing_status.as_str());
            c.rejection.push(e.rejection.map(RejectionKind::as_str));
            c.http_status
                .push(i16::try_from(e.http_status).unwrap_or(i16::MAX));
            c.component_id.push(e.component_id.map(|id| id.as_uuid()));
            c.sync_job_id.push(e.sync_job_id.map(|id| id.as_uuid()));
            c.repository_url.push(e.repository_url.clone());
            c.revision.push(e.revision.clone());
            c.branch.push(e.branch.clone());
            c.pipeline_id.push(e.pipeline_id.clone());
            c.pipeline_url.push(e.pipeline_url.clone());
            c.actor.push(e.actor.clone());
            c.delivery_key.push(e.delivery_key.clone());
            c.received_at.push(micros(e.received_at));
            c.processed_at.push(e.processed_at.map(micros));
            c.error_message.push(e.error_message.clone());
        }
        c
    }
}

/// Jobs as column arrays, for `unnest`.
#[derive(Default)]
struct JobColumns<'a> {
    id: Vec<Uuid>,
    component: Vec<Uuid>,
    trigger: Vec<&'static str>,
    event: Vec<Option<Uuid>>,
    status: Vec<&'static str>,
    revision: Vec<Option<&'a str>>,
    branch: Vec<&'a str>,
    scan: Vec<Option<Timestamp>>,
    queued: Vec<Timestamp>,
    completed: Vec<Option<Timestamp>>,
    superseded_by: Vec<Option<Uuid>>,
}

impl<'a> From<&'a [SyncJob]> for JobColumns<'a> {
    fn from(jobs: &'a [SyncJob]) -> Self {
        let mut c = Self::default();
        for job in jobs {
            c.id.push(job.id.as_uuid());
            c.component.push(job.component_id.as_uuid());
            c.trigger.push(job.trigger.as_str());
            c.event.push(job.webhook_event_id.map(|e| e.as_uuid()));
            c.status.push(job.status.as_str());
            c.revision.push(job.revision.as_deref());
            c.branch.push(job.branch.as_str());
            c.scan.push(job.scan_completed_at);
            c.queued.push(job.queued_at);
            c.completed.push(job.completed_at);
            c.superseded_by.push(job.superseded_by.map(|j| j.as_uuid()));
        }
        c
    }
}

/// Tells waiting workers on every instance that work is ready, without holding up the batch.
///
/// Sent after the commit, in a transaction of its own: PostgreSQL serializes the commits of
/// transactions that NOTIFY, including their wait for the disk, which would undo group commit
/// across batches and instances. A lost wake-up only delays a worker until its idle timeout.
fn wake(context: &Context) {
    // Limitation: a wake-up lost to a connection failure right after the commit leaves idle
    // workers waiting until their `wait_for_work` timeout; the entry itself is safe.
    let pool = context.pool.clone();
    let channel = context.queue_channel.clone();
    tokio::spawn(async move {
        let notified = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&pool)
            .await;
        if let Err(err) = notified {
            tracing::debug!(error = %err, "could not wake workers");
        }
    });
}
