//! [`SqliteQueue`]: the job queue in the store's own database.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;

use compliance_core::ports::{DeadLetter, JobQueue, QueuePlacement, QueueStats, Reservation};
use compliance_core::{StoreError, SyncJobId};

use crate::error::store_error;
use crate::rows::{self, bound, get, get_u64, time, ts_after};
use crate::writer::Wake;
use crate::SqliteStore;

/// A [`JobQueue`] on the `queue_entries` table of a [`SqliteStore`]
/// ([`QueuePlacement::InStore`]).
///
/// The store writes the entry of every new `QUEUED` job in the same transaction as the job
/// (and its webhook event), so a `202` always has a job and the job always has an entry; no
/// sweeper is needed. `reserve` is one `UPDATE … RETURNING` on the oldest visible entry;
/// reserving moves the entry's visibility to the end of the lease, so an entry whose worker
/// died becomes ready again by itself, with its delivery count increased. Workers waiting in
/// [`JobQueue::wait_for_work`] are woken in-process as soon as a commit makes an entry ready.
///
/// Obtain one with [`SqliteStore::queue`]; it shares the store's writer, read pool and clock.
/// A dead-lettered job stays dead until [`JobQueue::redrive`]: `enqueue` leaves it alone.
#[derive(Clone, Debug)]
pub struct SqliteQueue {
    store: SqliteStore,
}

impl SqliteQueue {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

/// A new lease token.
fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[async_trait]
impl JobQueue for SqliteQueue {
    fn placement(&self) -> QueuePlacement {
        QueuePlacement::InStore
    }

    async fn enqueue(&self, job: SyncJobId, delay: Duration) -> Result<(), StoreError> {
        let visible_at = ts_after(self.store.now(), delay);
        self.store
            .inner
            .writer
            .write(Wake::Workers, move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO queue_entries (job_id, visible_at) VALUES (?, ?) \
                         ON CONFLICT (job_id) DO NOTHING",
                    )
                    .bind(job.as_uuid())
                    .bind(visible_at)
                    .execute(&mut *conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| store_error("enqueue", e))
                })
            })
            .await
    }

    async fn reserve(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Reservation>, StoreError> {
        let now = self.store.now();
        let now_ns = bound(now);
        let lease_until = ts_after(now, lease);
        let worker = worker.to_owned();
        let token = new_token();
        self.store
            .inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE queue_entries SET visible_at = ?, deliveries = deliveries + 1, \
                         lease_token = ?, worker = ? \
                         WHERE seq = (SELECT seq FROM queue_entries \
                             WHERE dead_at IS NULL AND visible_at <= ? \
                             ORDER BY visible_at, seq LIMIT 1) \
                         RETURNING job_id, deliveries",
                    )
                    .bind(lease_until)
                    .bind(token.as_str())
                    .bind(worker.as_str())
                    .bind(now_ns)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| store_error("reserve", e))?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    Ok(Some(Reservation {
                        job_id: SyncJobId::from_uuid(get(&row, "job_id")?),
                        deliveries: u32::try_from(get_u64(&row, "deliveries")?).unwrap_or(u32::MAX),
                        lease_token: token,
                        lease_until: time(lease_until),
                    }))
                })
            })
            .await
    }

    async fn extend(
        &self,
        reservation: &Reservation,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        let lease_until = ts_after(self.store.now(), lease);
        let held = reservation.clone();
        self.store
            .inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE queue_entries SET visible_at = ? \
                         WHERE job_id = ? AND lease_token = ? AND dead_at IS NULL",
                    )
                    .bind(lease_until)
                    .bind(held.job_id.as_uuid())
                    .bind(held.lease_token.as_str())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| store_error("extend lease", e))?;
                    if updated.rows_affected() == 0 {
                        return Err(StoreError::LeaseLost {
                            job_id: held.job_id,
                        });
                    }
                    Ok(Reservation {
                        lease_until: time(lease_until),
                        ..held
                    })
                })
            })
            .await
    }

    async fn ack(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let held = reservation.clone();
        self.store
            .inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    let deleted = sqlx::query(
                        "DELETE FROM queue_entries \
                         WHERE job_id = ? AND lease_token = ? AND dead_at IS NULL",
                    )
                    .bind(held.job_id.as_uuid())
                    .bind(held.lease_token.as_str())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| store_error("ack", e))?;
                    lease_held(deleted.rows_affected(), &held)
                })
            })
            .await
    }

    async fn retry(&self, reservation: &Reservation, delay: Duration) -> Result<(), StoreError> {
        let visible_at = ts_after(self.store.now(), delay);
        let held = reservation.clone();
        self.store
            .inner
            .writer
            .write(Wake::Workers, move |conn| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE queue_entries SET visible_at = ?, lease_token = NULL, \
                         worker = NULL WHERE job_id = ? AND lease_token = ? AND dead_at IS NULL",
                    )
                    .bind(visible_at)
                    .bind(held.job_id.as_uuid())
                    .bind(held.lease_token.as_str())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| store_error("retry", e))?;
                    lease_held(updated.rows_affected(), &held)
                })
            })
            .await
    }

    async fn dead_letter(&self, reservation: &Reservation, reason: &str) -> Result<(), StoreError> {
        let now = bound(self.store.now());
        let held = reservation.clone();
        let reason = reason.to_owned();
        self.store
            .inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    // A dead letter sorts after every live entry; it gets a fresh `seq` so
                    // that letters of the same instant list in the order they died.
                    let updated = sqlx::query(
                        "UPDATE queue_entries SET dead_at = ?, dead_reason = ?, \
                         lease_token = NULL, worker = NULL, \
                         seq = (SELECT max(seq) + 1 FROM queue_entries) \
                         WHERE job_id = ? AND lease_token = ? AND dead_at IS NULL",
                    )
                    .bind(now)
                    .bind(reason.as_str())
                    .bind(held.job_id.as_uuid())
                    .bind(held.lease_token.as_str())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| store_error("dead-letter", e))?;
                    lease_held(updated.rows_affected(), &held)
                })
            })
            .await
    }

    async fn stats(&self) -> Result<QueueStats, StoreError> {
        let now = bound(self.store.now());
        let mut conn = self.store.reader().await?;
        let row = sqlx::query(
            "SELECT \
               coalesce(sum(dead_at IS NULL AND visible_at <= ?1), 0) AS ready, \
               coalesce(sum(dead_at IS NULL AND visible_at > ?1 AND lease_token IS NULL), 0) \
                 AS delayed, \
               coalesce(sum(dead_at IS NULL AND visible_at > ?1 AND lease_token IS NOT NULL), 0) \
                 AS leased, \
               coalesce(sum(dead_at IS NOT NULL), 0) AS dead, \
               min(CASE WHEN dead_at IS NULL AND visible_at <= ?1 THEN visible_at END) \
                 AS oldest_ready \
             FROM queue_entries",
        )
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| store_error("queue stats", e))?;
        let oldest: Option<i64> = get(&row, "oldest_ready")?;
        Ok(QueueStats {
            ready: get_u64(&row, "ready")?,
            delayed: get_u64(&row, "delayed")?,
            leased: get_u64(&row, "leased")?,
            dead: get_u64(&row, "dead")?,
            oldest_ready_ms: oldest
                .map(|at| u64::try_from(now.saturating_sub(at) / 1_000_000).unwrap_or(0)),
        })
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let mut conn = self.store.reader().await?;
        let found = sqlx::query(
            "SELECT job_id, dead_reason, deliveries, dead_at FROM queue_entries \
             WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, seq DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| store_error("list dead letters", e))?;
        rows::all(&found, |row| {
            Ok(DeadLetter {
                job_id: SyncJobId::from_uuid(get(row, "job_id")?),
                reason: get::<Option<String>>(row, "dead_reason")?.unwrap_or_default(),
                deliveries: u32::try_from(get_u64(row, "deliveries")?).unwrap_or(u32::MAX),
                dead_at: time(get(row, "dead_at")?),
            })
        })
    }

    async fn redrive(&self, job: SyncJobId) -> Result<bool, StoreError> {
        let now = bound(self.store.now());
        self.store
            .inner
            .writer
            .write(Wake::Workers, move |conn| {
                Box::pin(async move { redrive(conn, job, now).await })
            })
            .await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let notified = self.store.inner.work.notified();
        tokio::pin!(notified);
        // Registered before looking at the table, so a commit between the look and the wait
        // still wakes us.
        notified.as_mut().enable();

        let wait = match self.next_visible().await {
            Ok(Some(at)) => {
                let now = bound(self.store.now());
                if at <= now {
                    return;
                }
                let until = u64::try_from(at.saturating_sub(now)).unwrap_or(u64::MAX);
                Duration::from_nanos(until).min(timeout)
            }
            // Nothing waiting, or the table cannot be read: sleep the whole timeout.
            Ok(None) | Err(_) => timeout,
        };
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

impl SqliteQueue {
    /// When the earliest live entry becomes visible.
    async fn next_visible(&self) -> Result<Option<i64>, StoreError> {
        let mut conn = self.store.reader().await?;
        sqlx::query_scalar("SELECT min(visible_at) FROM queue_entries WHERE dead_at IS NULL")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| store_error("read queue", e))
    }
}

/// `Ok` when the statement touched the held entry, `LeaseLost` otherwise.
fn lease_held(rows: u64, held: &Reservation) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::LeaseLost {
            job_id: held.job_id,
        })
    } else {
        Ok(())
    }
}

async fn redrive(
    conn: &mut SqliteConnection,
    job: SyncJobId,
    now: i64,
) -> Result<bool, StoreError> {
    // A redriven entry starts afresh: it counts deliveries from zero again and queues behind
    // the entries already waiting.
    let updated = sqlx::query(
        "UPDATE queue_entries SET dead_at = NULL, dead_reason = NULL, visible_at = ?, \
         deliveries = 0, lease_token = NULL, worker = NULL, \
         seq = (SELECT max(seq) + 1 FROM queue_entries) \
         WHERE job_id = ? AND dead_at IS NOT NULL",
    )
    .bind(now)
    .bind(job.as_uuid())
    .execute(&mut *conn)
    .await
    .map_err(|e| store_error("redrive", e))?;
    Ok(updated.rows_affected() > 0)
}
