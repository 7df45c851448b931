//! One group-commit transaction: the reads coalescing needs, then set-based writes.

use std::collections::{HashMap, HashSet};

use compliance_core::domain::{EventStatus, JobStatus, RejectionKind, WebhookEvent};
use compliance_core::ports::{AcceptRecord, CreatedJob, PriorDelivery, QueuePlacement};
use compliance_core::{ComponentId, StoreError, SyncJobId, Timestamp, WebhookEventId};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::{lock_key, lock_keys, Context, Item, Written};
use crate::coalesce::{self, ComponentData, PendingJob};
use crate::error::PgStoreError;
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

    let mut tx = context
        .pool
        .begin()
        .await
        .map_err(PgStoreError::sqlx("starting an ingest transaction"))?;

    let keys = items
        .iter()
        .map(|i| lock_key(&context.lock_namespace, i.job.component_id, &i.job.branch))
        .collect();
    lock_keys(&mut tx, keys).await?;

    let components = read_components(&mut tx, items).await?;
    for (fate, item) in fates.iter_mut().zip(items) {
        if matches!(fate, Fate::Write) && !components.contains_key(&item.job.component_id) {
            *fate = Fate::Failed(StoreError::not_found(format!(
                "component {}",
                item.job.component_id
            )));
        }
    }
    mark_duplicates(&mut tx, items, &mut fates).await?;

    let writing: Vec<usize> = (0..items.len())
        .filter(|&i| matches!(fates.get(i), Some(Fate::Write)))
        .collect();
    let mut created: HashMap<usize, CreatedJob> = HashMap::new();
    if !writing.is_empty() {
        let pending = read_pending(&mut tx, items, &writing).await?;
        let new_jobs = writing
            .iter()
            .filter_map(|&i| items.get(i).map(|item| item.job.clone()))
            .collect();
        let plan = coalesce::plan(new_jobs, &components, pending, now);

        let events: Vec<WebhookEvent> = writing
            .iter()
            .zip(&plan.jobs)
            .filter_map(|(&i, job)| {
                let item = items.get(i)?;
                let mut event = item.event.clone()?;
                event.component_id = Some(job.component_id);
                event.sync_job_id = Some(job.id);
                if job.status == JobStatus::Superseded {
                    event.processing_status = EventStatus::Processed;
                    event.processed_at = Some(now);
                }
                Some(event)
            })
            .collect();
        if insert_events(&mut tx, &events).await? < events.len() {
            tx.rollback()
                .await
                .map_err(PgStoreError::sqlx("rolling back a raced batch"))?;
            return Ok(Written::Raced);
        }
        insert_jobs(&mut tx, &plan.jobs).await?;
        supersede_stored(&mut tx, &plan.supersede_stored, now).await?;

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
        write_queue_entries(context, &mut tx, enqueue, &plan.supersede_stored).await?;

        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sync_jobs WHERE status IN ('QUEUED', 'RUNNING')",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(PgStoreError::sqlx("counting active jobs"))?;

        for ((&i, job), superseded) in writing.iter().zip(plan.jobs).zip(plan.superseded) {
            created.insert(
                i,
                CreatedJob {
                    job,
                    superseded,
                    jobs_ahead: rows::count64(active),
                },
            );
        }
    }

    tx.commit()
        .await
        .map_err(PgStoreError::sqlx("committing accepted webhooks"))?;

    let results = answers(items, fates, created);
    Ok(Written::Done(results))
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

async fn read_components(
    tx: &mut Transaction<'_, Postgres>,
    items: &[Item],
) -> Result<HashMap<ComponentId, ComponentData>, PgStoreError> {
    let ids: Vec<Uuid> = items
        .iter()
        .map(|i| i.job.component_id.as_uuid())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let found =
        sqlx::query("SELECT id, last_scan_at, last_sync_job_id FROM components WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&mut **tx)
            .await
            .map_err(PgStoreError::sqlx("reading components for coalescing"))?;
    found
        .iter()
        .map(|row| {
            let id: Uuid = row.try_get("id").map_err(corrupt)?;
            let last_sync: Option<Uuid> = row.try_get("last_sync_job_id").map_err(corrupt)?;
            Ok((
                ComponentId::from_uuid(id),
                ComponentData {
                    last_scan_at: row.try_get("last_scan_at").map_err(corrupt)?,
                    last_sync_job_id: last_sync.map(SyncJobId::from_uuid),
                },
            ))
        })
        .collect()
}

fn corrupt(err: sqlx::Error) -> PgStoreError {
    PgStoreError::Corrupt(err.to_string())
}

/// Finds deliveries accepted before (in the database) or earlier in the batch.
async fn mark_duplicates(
    tx: &mut Transaction<'_, Postgres>,
    items: &[Item],
    fates: &mut [Fate],
) -> Result<(), PgStoreError> {
    let item_keys: Vec<Option<String>> = items
        .iter()
        .zip(fates.iter())
        .map(|(item, fate)| match fate {
            Fate::Write => item.event.as_ref()?.delivery_key.clone(),
            _ => None,
        })
        .collect();
    let keys: Vec<&str> = item_keys.iter().flatten().map(String::as_str).collect();
    if keys.is_empty() {
        return Ok(());
    }
    let found = sqlx::query(
        "SELECT delivery_key, id, sync_job_id, component_id, received_at FROM webhook_events \
         WHERE accepted AND delivery_key = ANY($1)",
    )
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("looking up earlier deliveries"))?;

    let mut prior: HashMap<String, PriorDelivery> = HashMap::new();
    for row in &found {
        let key: String = row.try_get("delivery_key").map_err(corrupt)?;
        let job: Option<Uuid> = row.try_get("sync_job_id").map_err(corrupt)?;
        let component: Option<Uuid> = row.try_get("component_id").map_err(corrupt)?;
        if let (Some(job), Some(component)) = (job, component) {
            let event: Uuid = row.try_get("id").map_err(corrupt)?;
            prior.insert(
                key,
                PriorDelivery {
                    event_id: WebhookEventId::from_uuid(event),
                    sync_job_id: SyncJobId::from_uuid(job),
                    component_id: ComponentId::from_uuid(component),
                    received_at: row.try_get("received_at").map_err(corrupt)?,
                },
            );
        }
    }

    let mut first_in_batch: HashMap<String, usize> = HashMap::new();
    for (i, key) in item_keys.into_iter().enumerate() {
        let Some(key) = key else {
            continue;
        };
        let fate = if let Some(p) = prior.get(&key) {
            Fate::Duplicate(p.clone())
        } else if let Some(&first) = first_in_batch.get(&key) {
            Fate::DuplicateOf(first)
        } else {
            first_in_batch.insert(key, i);
            continue;
        };
        if let Some(slot) = fates.get_mut(i) {
            *slot = fate;
        }
    }
    Ok(())
}

/// The `QUEUED` jobs of every component and branch being written, locked, oldest first.
async fn read_pending(
    tx: &mut Transaction<'_, Postgres>,
    items: &[Item],
    writing: &[usize],
) -> Result<Vec<PendingJob>, PgStoreError> {
    let pairs: HashSet<(Uuid, &str)> = writing
        .iter()
        .filter_map(|&i| items.get(i))
        .map(|i| (i.job.component_id.as_uuid(), i.job.branch.as_str()))
        .collect();
    let (components, branches): (Vec<Uuid>, Vec<&str>) = pairs.into_iter().unzip();
    let found = sqlx::query(
        "SELECT j.id, j.component_id, j.branch, j.scan_completed_at FROM sync_jobs j \
         JOIN unnest($1::uuid[], $2::text[]) AS k(component_id, branch) \
           ON j.component_id = k.component_id AND j.branch = k.branch \
         WHERE j.status = 'QUEUED' ORDER BY j.queued_at, j.id FOR UPDATE OF j",
    )
    .bind(components)
    .bind(branches)
    .fetch_all(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("reading pending jobs"))?;
    found
        .iter()
        .map(|row| {
            Ok(PendingJob {
                id: SyncJobId::from_uuid(row.try_get("id").map_err(corrupt)?),
                component_id: ComponentId::from_uuid(row.try_get("component_id").map_err(corrupt)?),
                branch: row.try_get("branch").map_err(corrupt)?,
                scan_completed_at: row.try_get("scan_completed_at").map_err(corrupt)?,
            })
        })
        .collect()
}

/// Inserts accepted events; returns how many were inserted (fewer when another transaction
/// holds one of the delivery keys).
async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[WebhookEvent],
) -> Result<usize, PgStoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let c = EventColumns::from(events);
    let inserted = sqlx::query(
        "INSERT INTO webhook_events (id, event_type, source_ip, source_system, raw_payload, \
           payload_truncated, signature, signature_valid, processing_status, rejection, \
           http_status, component_id, sync_job_id, repository_url, revision, branch, \
           pipeline_id, pipeline_url, actor, delivery_key, received_at, processed_at, \
           error_message, accepted) \
         SELECT *, true FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
           $6::bool[], $7::text[], $8::bool[], $9::text[], $10::text[], $11::int2[], \
           $12::uuid[], $13::uuid[], $14::text[], $15::text[], $16::text[], $17::text[], \
           $18::text[], $19::text[], $20::text[], $21::timestamptz[], $22::timestamptz[], \
           $23::text[]) \
         ON CONFLICT (delivery_key) WHERE accepted AND delivery_key IS NOT NULL DO NOTHING",
    )
    .bind(c.id)
    .bind(c.event_type)
    .bind(c.source_ip)
    .bind(c.source_system)
    .bind(c.raw_payload)
    .bind(c.payload_truncated)
    .bind(c.signature)
    .bind(c.signature_valid)
    .bind(c.processing_status)
    .bind(c.rejection)
    .bind(c.http_status)
    .bind(c.component_id)
    .bind(c.sync_job_id)
    .bind(c.repository_url)
    .bind(c.revision)
    .bind(c.branch)
    .bind(c.pipeline_id)
    .bind(c.pipeline_url)
    .bind(c.actor)
    .bind(c.delivery_key)
    .bind(c.received_at)
    .bind(c.processed_at)
    .bind(c.error_message)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("inserting accepted webhook events"))?;
    Ok(usize::try_from(inserted.rows_affected()).unwrap_or(usize::MAX))
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

async fn insert_jobs(
    tx: &mut Transaction<'_, Postgres>,
    jobs: &[compliance_core::domain::SyncJob],
) -> Result<(), PgStoreError> {
    let mut id = Vec::with_capacity(jobs.len());
    let mut component = Vec::with_capacity(jobs.len());
    let mut trigger = Vec::with_capacity(jobs.len());
    let mut event = Vec::with_capacity(jobs.len());
    let mut status = Vec::with_capacity(jobs.len());
    let mut revision = Vec::with_capacity(jobs.len());
    let mut branch = Vec::with_capacity(jobs.len());
    let mut scan = Vec::with_capacity(jobs.len());
    let mut queued = Vec::with_capacity(jobs.len());
    let mut completed = Vec::with_capacity(jobs.len());
    let mut superseded_by = Vec::with_capacity(jobs.len());
    for job in jobs {
        id.push(job.id.as_uuid());
        component.push(job.component_id.as_uuid());
        trigger.push(job.trigger.as_str());
        event.push(job.webhook_event_id.map(|e| e.as_uuid()));
        status.push(job.status.as_str());
        revision.push(job.revision.as_deref());
        branch.push(job.branch.as_str());
        scan.push(job.scan_completed_at);
        queued.push(job.queued_at);
        completed.push(job.completed_at);
        superseded_by.push(job.superseded_by.map(|j| j.as_uuid()));
    }
    sqlx::query(
        "INSERT INTO sync_jobs (id, component_id, trigger, webhook_event_id, status, revision, \
           branch, scan_completed_at, queued_at, completed_at, superseded_by) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], \
           $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], \
           $11::uuid[])",
    )
    .bind(id)
    .bind(component)
    .bind(trigger)
    .bind(event)
    .bind(status)
    .bind(revision)
    .bind(branch)
    .bind(scan)
    .bind(queued)
    .bind(completed)
    .bind(superseded_by)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("inserting sync jobs"))?;
    Ok(())
}

/// Marks stored pending jobs superseded and settles their events.
async fn supersede_stored(
    tx: &mut Transaction<'_, Postgres>,
    superseded: &[(SyncJobId, SyncJobId)],
    now: Timestamp,
) -> Result<(), PgStoreError> {
    if superseded.is_empty() {
        return Ok(());
    }
    let (ids, bys): (Vec<Uuid>, Vec<Uuid>) = superseded
        .iter()
        .map(|(id, by)| (id.as_uuid(), by.as_uuid()))
        .unzip();
    sqlx::query(
        "WITH done AS ( \
           UPDATE sync_jobs j SET status = 'SUPERSEDED', superseded_by = s.by, \
             completed_at = $3, next_attempt_at = NULL \
           FROM unnest($1::uuid[], $2::uuid[]) AS s(id, by) \
           WHERE j.id = s.id AND j.status = 'QUEUED' \
           RETURNING j.webhook_event_id) \
         UPDATE webhook_events e SET processing_status = 'PROCESSED', processed_at = $3 \
         FROM done WHERE e.id = done.webhook_event_id",
    )
    .bind(ids)
    .bind(bys)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("superseding pending jobs"))?;
    Ok(())
}

/// Queue entries of the new jobs, removal of the entries of superseded ones that no worker
/// holds, and a wake-up for waiting workers.
async fn write_queue_entries(
    context: &Context,
    tx: &mut Transaction<'_, Postgres>,
    enqueue: Vec<Uuid>,
    superseded: &[(SyncJobId, SyncJobId)],
) -> Result<(), PgStoreError> {
    if !superseded.is_empty() {
        let ids: Vec<Uuid> = superseded.iter().map(|(id, _)| id.as_uuid()).collect();
        sqlx::query(
            "DELETE FROM queue_entries WHERE job_id = ANY($1) \
             AND (lease_token IS NULL OR visible_at <= now())",
        )
        .bind(ids)
        .execute(&mut **tx)
        .await
        .map_err(PgStoreError::sqlx("removing superseded queue entries"))?;
    }
    if enqueue.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO queue_entries (job_id, visible_at, enqueued_at) \
         SELECT j, now(), now() FROM unnest($1::uuid[]) AS j ON CONFLICT (job_id) DO NOTHING",
    )
    .bind(enqueue)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("enqueuing sync jobs"))?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(&context.queue_channel)
        .execute(&mut **tx)
        .await
        .map_err(PgStoreError::sqlx("waking workers"))?;
    Ok(())
}
