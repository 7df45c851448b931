//! [`SyncJobStore`] on SQLite: the job state machine.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Row, Sqlite};
use tokio::sync::oneshot;

use compliance_core::domain::{JobQuery, JobStatus, NewSyncJob, Page, SyncJob};
use compliance_core::ports::{
    AcceptRecord, CreatedJob, QueuePlacement, StartOutcome, SyncJobStore,
};
use compliance_core::{StoreError, SyncJobId, Timestamp};

use crate::error::{closed, store_error};
use crate::ingest::{active_jobs, AcceptItem};
use crate::rows::{self, bound, ts, JOB_COLUMNS};
use crate::sql::limit_offset;
use crate::store::PRUNE_SLICE;
use crate::writer::{Request, Wake};
use crate::SqliteStore;

/// Statuses a job never leaves.
const FINAL: &str = "('COMPLETED', 'FAILED', 'SUPERSEDED')";

#[async_trait]
impl SyncJobStore for SqliteStore {
    async fn create_job(
        &self,
        job: NewSyncJob,
        placement: QueuePlacement,
    ) -> Result<CreatedJob, StoreError> {
        let (reply, answer) = oneshot::channel();
        let item = AcceptItem {
            event: None,
            job,
            placement,
            now: self.now(),
            reply,
        };
        self.inner.writer.send(Request::Accept(item)).await?;
        match answer.await.map_err(|_| closed())?? {
            AcceptRecord::Created(created) => Ok(created),
            // Only an event carries a delivery key, and a bare job has none.
            AcceptRecord::Duplicate(prior) => Err(StoreError::Backend {
                context: format!("a bare job matched delivery of event {}", prior.event_id),
                source: None,
            }),
        }
    }

    async fn get_job(&self, id: SyncJobId) -> Result<Option<SyncJob>, StoreError> {
        let mut conn = self.reader().await?;
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM sync_jobs WHERE id = ?"))
            .bind(id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| store_error("get sync job", e))?;
        row.as_ref().map(rows::job).transpose()
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<SyncJob>, StoreError> {
        let filter = |qb: &mut QueryBuilder<'_, Sqlite>| {
            qb.push(" WHERE 1 = 1");
            if let Some(component) = query.component_id {
                qb.push(" AND component_id = ")
                    .push_bind(component.as_uuid());
            }
            if let Some(status) = query.status {
                qb.push(" AND status = ").push_bind(status.as_str());
            }
        };
        let (limit, offset) = limit_offset(query.page);

        let mut count = QueryBuilder::new("SELECT count(*) FROM sync_jobs");
        filter(&mut count);
        let mut items = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM sync_jobs"));
        filter(&mut items);
        items
            .push(" ORDER BY queued_at DESC, id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);

        let mut read = self.snapshot().await?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(read.conn())
            .await
            .map_err(|e| store_error("count sync jobs", e))?;
        let found = items
            .build()
            .fetch_all(read.conn())
            .await
            .map_err(|e| store_error("list sync jobs", e))?;
        read.finish().await;

        Ok(Page {
            items: rows::all(&found, rows::job)?,
            total: u64::try_from(total).unwrap_or(0),
            offset: query.page.offset,
            limit: query.page.effective_limit(),
        })
    }

    async fn start(
        &self,
        id: SyncJobId,
        now: Timestamp,
        lease: Duration,
    ) -> Result<StartOutcome, StoreError> {
        let now_ns = ts(now)?;
        let lease_ns = i64::try_from(lease.as_nanos()).unwrap_or(i64::MAX);
        // A heartbeat after this instant is alive.
        let alive_after = now_ns.saturating_sub(lease_ns);
        self.inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(start(conn, id, now_ns, alive_after))
            })
            .await
    }

    async fn heartbeat(&self, id: SyncJobId, now: Timestamp) -> Result<(), StoreError> {
        let now = ts(now)?;
        self.inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE sync_jobs SET heartbeat_at = ? WHERE id = ? AND status = 'RUNNING'",
                    )
                    .bind(now)
                    .bind(id.as_uuid())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| store_error("heartbeat", e))?;
                    if updated.rows_affected() > 0 {
                        return Ok(());
                    }
                    require_job(conn, id).await?;
                    Err(StoreError::LeaseLost { job_id: id })
                })
            })
            .await
    }

    async fn retry_later(
        &self,
        id: SyncJobId,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        let next = ts(next_attempt_at)?;
        let error = error.to_owned();
        self.inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    let updated = sqlx::query(&format!(
                        "UPDATE sync_jobs SET status = 'QUEUED', error_message = ?, \
                         next_attempt_at = ?, heartbeat_at = NULL \
                         WHERE id = ? AND status NOT IN {FINAL}"
                    ))
                    .bind(error.as_str())
                    .bind(next)
                    .bind(id.as_uuid())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| store_error("retry sync job later", e))?;
                    if updated.rows_affected() == 0 {
                        // Final jobs never change again: nothing to do.
                        require_job(conn, id).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn fail(&self, id: SyncJobId, error: &str, now: Timestamp) -> Result<(), StoreError> {
        let now = ts(now)?;
        let error = error.to_owned();
        self.inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    let ended = sqlx::query(&format!(
                        "UPDATE sync_jobs SET status = 'FAILED', error_message = ?, \
                         completed_at = ?, next_attempt_at = NULL \
                         WHERE id = ? AND status NOT IN {FINAL} RETURNING webhook_event_id"
                    ))
                    .bind(error.as_str())
                    .bind(now)
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| store_error("fail sync job", e))?;
                    let Some(ended) = ended else {
                        return require_job(conn, id).await;
                    };
                    let event: Option<uuid::Uuid> = rows::get(&ended, "webhook_event_id")?;
                    if let Some(event) = event {
                        sqlx::query(
                            "UPDATE webhook_events SET processing_status = 'FAILED', \
                             processed_at = ?, error_message = ? WHERE id = ?",
                        )
                        .bind(now)
                        .bind(error.as_str())
                        .bind(event)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| store_error("settle webhook event", e))?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn supersede(
        &self,
        id: SyncJobId,
        by: Option<SyncJobId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = ts(now)?;
        self.inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    if supersede_job(conn, id, by, now).await? {
                        Ok(())
                    } else {
                        require_job(conn, id).await
                    }
                })
            })
            .await
    }

    async fn queued_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        self.jobs_due_before(
            "QUEUED",
            "coalesce(next_attempt_at, queued_at)",
            before,
            limit,
            "list queued sync jobs",
        )
        .await
    }

    async fn stalled_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        self.jobs_due_before(
            "RUNNING",
            "coalesce(heartbeat_at, started_at, queued_at)",
            before,
            limit,
            "list stalled sync jobs",
        )
        .await
    }

    async fn active_jobs(&self) -> Result<u64, StoreError> {
        let mut conn = self.reader().await?;
        active_jobs(&mut conn)
            .await
            .map_err(|e| store_error("count active sync jobs", e))
    }

    /// Deletes in slices of 5 000 jobs, one group commit each; the queue entries (dead
    /// letters) of deleted jobs go with them.
    async fn prune_jobs(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before = bound(before);
        let mut total = 0;
        loop {
            let deleted = self
                .inner
                .writer
                .write(Wake::Nobody, move |conn| {
                    Box::pin(async move {
                        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(&format!(
                            "SELECT id FROM sync_jobs \
                             WHERE status IN {FINAL} AND completed_at < ? LIMIT ?"
                        ))
                        .bind(before)
                        .bind(PRUNE_SLICE)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(|e| store_error("prune sync jobs", e))?;
                        let list = crate::sql::id_list(ids.iter().copied());
                        for table in ["queue_entries WHERE job_id", "sync_jobs WHERE id"] {
                            sqlx::query(&format!(
                                "DELETE FROM {table} IN (SELECT unhex(value) FROM json_each(?))"
                            ))
                            .bind(list.as_str())
                            .execute(&mut *conn)
                            .await
                            .map_err(|e| store_error("prune sync jobs", e))?;
                        }
                        Ok(ids.len() as u64)
                    })
                })
                .await?;
            total += deleted;
            if deleted < PRUNE_SLICE.unsigned_abs() {
                return Ok(total);
            }
        }
    }
}

impl SqliteStore {
    /// Jobs in `status` whose `due` expression is before `before`, by `due` then id, at most
    /// `limit`: the sweeper's two lists. Both strings are constants of this file, written into
    /// the SQL so that the planner sees the status.
    async fn jobs_due_before(
        &self,
        status: &'static str,
        due: &'static str,
        before: Timestamp,
        limit: u32,
        context: &str,
    ) -> Result<Vec<SyncJob>, StoreError> {
        let mut conn = self.reader().await?;
        let found = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM sync_jobs \
             WHERE status = '{status}' AND {due} < ? ORDER BY {due}, id LIMIT ?"
        ))
        .bind(bound(before))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| store_error(context, e))?;
        rows::all(&found, rows::job)
    }
}

/// `start` inside the writer's transaction.
async fn start(
    conn: &mut SqliteConnection,
    id: SyncJobId,
    now: i64,
    alive_after: i64,
) -> Result<StartOutcome, StoreError> {
    let context = "start sync job";
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM sync_jobs WHERE id = ?"))
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| store_error(context, e))?
        .ok_or_else(|| StoreError::not_found(format!("sync job {id}")))?;
    let job = rows::job(&row)?;
    if job.status.is_final() {
        return Ok(StartOutcome::Finished(job));
    }
    let alive = |at: Option<Timestamp>| at.is_some_and(|at| bound(at) > alive_after);
    if job.status == JobStatus::Running && alive(job.heartbeat_at) {
        return Ok(StartOutcome::Busy { running: id });
    }

    let sibling: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM sync_jobs WHERE status = 'RUNNING' AND component_id = ? AND branch = ? \
         AND id <> ? AND heartbeat_at > ? LIMIT 1",
    )
    .bind(job.component_id.as_uuid())
    .bind(job.branch.as_str())
    .bind(id.as_uuid())
    .bind(alive_after)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| store_error(context, e))?;
    if let Some(running) = sibling {
        return Ok(StartOutcome::Busy {
            running: SyncJobId::from_uuid(running),
        });
    }

    let row = sqlx::query(&format!(
        "UPDATE sync_jobs SET status = 'RUNNING', attempts = attempts + 1, \
         started_at = coalesce(started_at, ?1), heartbeat_at = ?1, next_attempt_at = NULL \
         WHERE id = ?2 RETURNING {JOB_COLUMNS}"
    ))
    .bind(now)
    .bind(id.as_uuid())
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| store_error(context, e))?;
    rows::job(&row).map(StartOutcome::Started)
}

/// Ends a job as superseded unless it has already ended, and settles its event; `false`
/// when nothing changed.
pub(crate) async fn supersede_job(
    conn: &mut SqliteConnection,
    id: SyncJobId,
    by: Option<SyncJobId>,
    now: i64,
) -> Result<bool, StoreError> {
    let context = "supersede sync job";
    let ended = sqlx::query(&format!(
        "UPDATE sync_jobs SET status = 'SUPERSEDED', superseded_by = ?, completed_at = ?, \
         next_attempt_at = NULL WHERE id = ? AND status NOT IN {FINAL} \
         RETURNING webhook_event_id"
    ))
    .bind(by.map(|b| b.as_uuid()))
    .bind(now)
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| store_error(context, e))?;
    let Some(ended) = ended else {
        return Ok(false);
    };
    let event: Option<uuid::Uuid> = ended
        .try_get("webhook_event_id")
        .map_err(|e| store_error(context, e))?;
    if let Some(event) = event {
        sqlx::query(
            "UPDATE webhook_events SET processing_status = 'PROCESSED', processed_at = ? \
             WHERE id = ?",
        )
        .bind(now)
        .bind(event)
        .execute(&mut *conn)
        .await
        .map_err(|e| store_error(context, e))?;
    }
    Ok(true)
}

/// `Ok` when job `id` exists, `NotFound` otherwise.
async fn require_job(conn: &mut SqliteConnection, id: SyncJobId) -> Result<(), StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sync_jobs WHERE id = ?")
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| store_error("find sync job", e))?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found(format!("sync job {id}"))),
    }
}
