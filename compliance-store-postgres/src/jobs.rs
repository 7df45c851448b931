//! [`SyncJobStore`] on the `sync_jobs` table: the job state machine.

use std::time::Duration;

use async_trait::async_trait;
use compliance_core::domain::{JobQuery, JobStatus, NewSyncJob, Page, SyncJob};
use compliance_core::ports::{
    AcceptRecord, CreatedJob, QueuePlacement, StartOutcome, SyncJobStore,
};
use compliance_core::{StoreError, SyncJobId, Timestamp};
use sqlx::Row;
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::ingest::{begin_locked, lock_key, Item};
use crate::rows::{self, micros, JOB_COLUMNS};
use crate::PgStore;

/// `now - lease`: a running job whose heartbeat is after this is alive.
fn alive_after(now: Timestamp, lease: Duration) -> Timestamp {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_sub_signed(lease))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

impl PgStore {
    /// `Ok` when job `id` exists (an update matched nothing because of its state), else
    /// `NotFound`.
    async fn job_exists(&self, id: SyncJobId) -> Result<(), StoreError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sync_jobs WHERE id = $1)")
                .bind(id.as_uuid())
                .fetch_one(&self.shared.pool)
                .await
                .map_err(PgStoreError::sqlx("reading a sync job"))?;
        if exists {
            Ok(())
        } else {
            Err(StoreError::not_found(format!("sync job {id}")))
        }
    }

    /// Ends an unfinished job with `status` and settles its webhook event with `event_status`
    /// in one statement; `NotFound` when the job does not exist, nothing when it has ended.
    async fn finish(
        &self,
        id: SyncJobId,
        set_job: &str,
        event_status: &str,
        error: Option<&str>,
        by: Option<SyncJobId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(&format!(
            "WITH done AS ( \
               UPDATE sync_jobs SET {set_job}, completed_at = $2, next_attempt_at = NULL \
               WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') \
               RETURNING webhook_event_id) \
             UPDATE webhook_events e SET processing_status = '{event_status}', \
               processed_at = $2, error_message = COALESCE($3, e.error_message) \
             FROM done WHERE e.id = done.webhook_event_id"
        ))
        .bind(id.as_uuid())
        .bind(micros(now))
        .bind(error)
        .bind(by.map(|b| b.as_uuid()))
        .execute(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("ending a sync job"))?;
        if done.rows_affected() == 0 {
            // Either the job has ended already (fine, final states never change) or it has no
            // event, or it does not exist.
            self.job_exists(id).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SyncJobStore for PgStore {
    async fn create_job(
        &self,
        job: NewSyncJob,
        placement: QueuePlacement,
    ) -> Result<CreatedJob, StoreError> {
        let record = self
            .shared
            .ingest
            .write(Item {
                event: None,
                job,
                placement,
            })
            .await?;
        match record {
            AcceptRecord::Created(created) => Ok(created),
            AcceptRecord::Duplicate(_) => Err(StoreError::backend(
                "creating a sync job",
                "a job without a webhook was taken for a redelivery",
            )),
        }
    }

    async fn get_job(&self, id: SyncJobId) -> Result<Option<SyncJob>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM sync_jobs WHERE id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("reading a sync job"))?;
        Ok(row.as_ref().map(rows::job).transpose()?)
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<SyncJob>, StoreError> {
        let limit = query.page.effective_limit();
        let filter = "($1::uuid IS NULL OR component_id = $1) \
             AND ($2::text IS NULL OR status = $2)";
        let component = query.component_id.map(|c| c.as_uuid());
        let status = query.status.map(JobStatus::as_str);
        let found = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS}, count(*) OVER () AS total_rows FROM sync_jobs \
             WHERE {filter} ORDER BY queued_at DESC, id DESC OFFSET $3 LIMIT $4"
        ))
        .bind(component)
        .bind(status)
        .bind(i64::from(query.page.offset))
        .bind(i64::from(limit))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing sync jobs"))?;
        let total = match found.first() {
            Some(row) => row
                .try_get::<i64, _>("total_rows")
                .map_err(|e| PgStoreError::Corrupt(e.to_string()))?,
            None => sqlx::query_scalar(&format!("SELECT count(*) FROM sync_jobs WHERE {filter}"))
                .bind(component)
                .bind(status)
                .fetch_one(&self.shared.pool)
                .await
                .map_err(PgStoreError::sqlx("counting sync jobs"))?,
        };
        Ok(Page {
            items: found.iter().map(rows::job).collect::<Result<_, _>>()?,
            total: rows::count64(total),
            offset: query.page.offset,
            limit,
        })
    }

    async fn start(
        &self,
        id: SyncJobId,
        now: Timestamp,
        lease: Duration,
    ) -> Result<StartOutcome, StoreError> {
        let now = micros(now);
        let alive_after = alive_after(now, lease);
        // A job's component and branch never change, so they can be read before locking.
        let key = sqlx::query("SELECT component_id, branch FROM sync_jobs WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(PgStoreError::sqlx("reading a sync job"))?;
        let Some(key) = key else {
            return Err(StoreError::not_found(format!("sync job {id}")));
        };
        let component: Uuid = key
            .try_get("component_id")
            .map_err(|e| PgStoreError::Corrupt(e.to_string()))?;
        let branch: String = key
            .try_get("branch")
            .map_err(|e| PgStoreError::Corrupt(e.to_string()))?;
        // Two workers starting two jobs of one component and branch must not both see the
        // other as idle: they take the same lock as coalescing does.
        let lock = lock_key(&self.shared.lock_namespace, component.into(), &branch);
        let mut tx = begin_locked(&self.shared.pool, vec![lock]).await?;

        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM sync_jobs WHERE id = $1 FOR UPDATE"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(PgStoreError::sqlx("locking a sync job"))?;
        // Pruned between the two reads.
        let Some(row) = row else {
            return Err(StoreError::not_found(format!("sync job {id}")));
        };
        let job = rows::job(&row)?;
        if job.status.is_final() {
            return Ok(StartOutcome::Finished(job));
        }
        let alive = |heartbeat: Option<Timestamp>| heartbeat.is_some_and(|at| at > alive_after);
        if job.status == compliance_core::domain::JobStatus::Running && alive(job.heartbeat_at) {
            return Ok(StartOutcome::Busy { running: id });
        }

        let sibling: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM sync_jobs WHERE component_id = $1 AND branch = $2 \
             AND status = 'RUNNING' AND id <> $3 AND heartbeat_at > $4 LIMIT 1",
        )
        .bind(component)
        .bind(&branch)
        .bind(id.as_uuid())
        .bind(alive_after)
        .fetch_optional(&mut *tx)
        .await
        .map_err(PgStoreError::sqlx("looking for a running sibling job"))?;
        if let Some(running) = sibling {
            return Ok(StartOutcome::Busy {
                running: SyncJobId::from_uuid(running),
            });
        }

        let row = sqlx::query(&format!(
            "UPDATE sync_jobs SET status = 'RUNNING', attempts = attempts + 1, \
               started_at = COALESCE(started_at, $2), heartbeat_at = $2, next_attempt_at = NULL \
             WHERE id = $1 RETURNING {JOB_COLUMNS}"
        ))
        .bind(id.as_uuid())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(PgStoreError::sqlx("starting a sync job"))?;
        let started = rows::job(&row)?;
        tx.commit()
            .await
            .map_err(PgStoreError::sqlx("committing a job start"))?;
        Ok(StartOutcome::Started(started))
    }

    async fn heartbeat(&self, id: SyncJobId, now: Timestamp) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE sync_jobs SET heartbeat_at = $2 WHERE id = $1 AND status = 'RUNNING'",
        )
        .bind(id.as_uuid())
        .bind(micros(now))
        .execute(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("recording a heartbeat"))?;
        if done.rows_affected() == 0 {
            self.job_exists(id).await?;
            return Err(StoreError::LeaseLost { job_id: id });
        }
        Ok(())
    }

    async fn retry_later(
        &self,
        id: SyncJobId,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE sync_jobs SET status = 'QUEUED', error_message = $2, next_attempt_at = $3, \
               heartbeat_at = NULL \
             WHERE id = $1 AND status IN ('QUEUED', 'RUNNING')",
        )
        .bind(id.as_uuid())
        .bind(error)
        .bind(micros(next_attempt_at))
        .execute(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("scheduling a retry"))?;
        if done.rows_affected() == 0 {
            self.job_exists(id).await?;
        }
        Ok(())
    }

    async fn fail(&self, id: SyncJobId, error: &str, now: Timestamp) -> Result<(), StoreError> {
        self.finish(
            id,
            "status = 'FAILED', error_message = $3",
            "FAILED",
            Some(error),
            None,
            now,
        )
        .await
    }

    async fn supersede(
        &self,
        id: SyncJobId,
        by: Option<SyncJobId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.finish(
            id,
            "status = 'SUPERSEDED', superseded_by = $4",
            "PROCESSED",
            None,
            by,
            now,
        )
        .await
    }

    async fn queued_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        self.jobs_due_before(
            "QUEUED",
            "COALESCE(next_attempt_at, queued_at)",
            before,
            limit,
            "listing queued jobs",
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
            "COALESCE(heartbeat_at, started_at, queued_at)",
            before,
            limit,
            "listing stalled jobs",
        )
        .await
    }

    async fn active_jobs(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sync_jobs WHERE status IN ('QUEUED', 'RUNNING')",
        )
        .fetch_one(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("counting active jobs"))?;
        Ok(rows::count64(n))
    }

    async fn prune_jobs(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM sync_jobs WHERE status IN ('COMPLETED', 'FAILED', 'SUPERSEDED') \
             AND completed_at < $1",
        )
        .bind(before)
        .execute(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("pruning sync jobs"))?;
        Ok(done.rows_affected())
    }
}

impl PgStore {
    /// Jobs in `status` whose `due` expression is before `before`, by `due` then id, at most
    /// `limit`: the sweeper's two lists. Both strings are constants of this file, written into
    /// the SQL so that the planner sees the status.
    async fn jobs_due_before(
        &self,
        status: &'static str,
        due: &'static str,
        before: Timestamp,
        limit: u32,
        context: &'static str,
    ) -> Result<Vec<SyncJob>, StoreError> {
        let found = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM sync_jobs \
             WHERE status = '{status}' AND {due} < $1 ORDER BY {due}, id LIMIT $2"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx(context))?;
        Ok(found.iter().map(rows::job).collect::<Result<_, _>>()?)
    }
}
