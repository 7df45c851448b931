//! [`PgQueue`]: the job queue on the `queue_entries` table, with `FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use async_trait::async_trait;
use compliance_core::ports::{DeadLetter, JobQueue, QueuePlacement, QueueStats, Reservation};
use compliance_core::{StoreError, SyncJobId};
use sqlx::postgres::types::PgInterval;
use sqlx::Row;
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::rows;
use crate::PgStore;

/// A [`JobQueue`] in the store's database ([`QueuePlacement::InStore`]).
///
/// Each entry has `visible_at`: when it can next be reserved. Reserving moves it to the end of
/// the lease, so an entry whose worker died becomes ready again on its own (with
/// `deliveries` increased on the next reservation); the reservation's token is what `ack`,
/// `retry`, `extend` and `dead_letter` check. `reserve` takes the oldest visible entry with
/// `FOR UPDATE SKIP LOCKED`, so workers on any number of instances never wait for each other
/// and never take the same entry.
///
/// Time is the database's (`now()`), so instances with skewed clocks agree on leases.
/// [`JobQueue::wait_for_work`] returns when any instance enqueues (a `NOTIFY` on the queue
/// channel, sent right after the transaction that writes the entry has committed) or after
/// the timeout.
///
/// A dead-lettered job stays dead until [`JobQueue::redrive`]: `enqueue` leaves it alone.
#[derive(Clone, Debug)]
pub struct PgQueue {
    store: PgStore,
}

impl PgQueue {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }

    /// Connects a store with `config` and returns its queue.
    ///
    /// # Errors
    ///
    /// As [`PgStore::connect`].
    pub async fn connect(config: crate::PgConfig) -> Result<Self, StoreError> {
        Ok(PgStore::connect(config).await?.queue())
    }

    /// The store this queue lives in.
    #[must_use]
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    fn pool(&self) -> &sqlx::PgPool {
        &self.store.shared.pool
    }

    async fn notify(&self) -> Result<(), PgStoreError> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(&self.store.shared.queue_channel)
            .execute(self.pool())
            .await
            .map_err(PgStoreError::sqlx("waking workers"))?;
        Ok(())
    }
}

/// A duration as a PostgreSQL interval (whole microseconds, saturating).
fn interval(d: Duration) -> PgInterval {
    PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
    }
}

/// The token of `reservation`, or `None` when it cannot be one of ours.
fn token(reservation: &Reservation) -> Option<Uuid> {
    Uuid::parse_str(&reservation.lease_token).ok()
}

fn lease_lost(reservation: &Reservation) -> StoreError {
    StoreError::LeaseLost {
        job_id: reservation.job_id,
    }
}

#[async_trait]
impl JobQueue for PgQueue {
    fn placement(&self) -> QueuePlacement {
        QueuePlacement::InStore
    }

    async fn enqueue(&self, job: SyncJobId, delay: Duration) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO queue_entries (job_id, visible_at, enqueued_at) \
             SELECT $1, now() + $2, now() \
             WHERE NOT EXISTS (SELECT 1 FROM queue_dead_letters WHERE job_id = $1) \
             ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(job.as_uuid())
        .bind(interval(delay))
        .execute(self.pool())
        .await
        .map_err(PgStoreError::sqlx("enqueuing a job"))?;
        if inserted.rows_affected() > 0 {
            self.notify().await?;
        }
        Ok(())
    }

    async fn reserve(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Reservation>, StoreError> {
        let token = Uuid::new_v4();
        // The subquery runs once and locks the row it returns; rows other workers have locked
        // are skipped rather than waited for.
        let row = sqlx::query(
            "UPDATE queue_entries SET visible_at = now() + $1, deliveries = deliveries + 1, \
               lease_token = $2, leased_by = $3 \
             WHERE job_id = ( \
               SELECT job_id FROM queue_entries WHERE visible_at <= now() \
               ORDER BY visible_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING job_id, deliveries, visible_at",
        )
        .bind(interval(lease))
        .bind(token)
        .bind(worker)
        .fetch_optional(self.pool())
        .await
        .map_err(PgStoreError::sqlx("reserving a job"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let corrupt = |e: sqlx::Error| PgStoreError::Corrupt(e.to_string());
        let job: Uuid = row.try_get("job_id").map_err(corrupt)?;
        let deliveries: i32 = row.try_get("deliveries").map_err(corrupt)?;
        Ok(Some(Reservation {
            job_id: SyncJobId::from_uuid(job),
            deliveries: rows::count(deliveries),
            lease_token: token.to_string(),
            lease_until: row.try_get("visible_at").map_err(corrupt)?,
        }))
    }

    async fn extend(
        &self,
        reservation: &Reservation,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        let token = token(reservation).ok_or_else(|| lease_lost(reservation))?;
        let until: Option<compliance_core::Timestamp> = sqlx::query_scalar(
            "UPDATE queue_entries SET visible_at = now() + $3 \
             WHERE job_id = $1 AND lease_token = $2 RETURNING visible_at",
        )
        .bind(reservation.job_id.as_uuid())
        .bind(token)
        .bind(interval(lease))
        .fetch_optional(self.pool())
        .await
        .map_err(PgStoreError::sqlx("extending a lease"))?;
        let until = until.ok_or_else(|| lease_lost(reservation))?;
        Ok(Reservation {
            lease_until: until,
            ..reservation.clone()
        })
    }

    async fn ack(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let token = token(reservation).ok_or_else(|| lease_lost(reservation))?;
        let done = sqlx::query("DELETE FROM queue_entries WHERE job_id = $1 AND lease_token = $2")
            .bind(reservation.job_id.as_uuid())
            .bind(token)
            .execute(self.pool())
            .await
            .map_err(PgStoreError::sqlx("acknowledging a job"))?;
        if done.rows_affected() == 0 {
            return Err(lease_lost(reservation));
        }
        Ok(())
    }

    async fn retry(&self, reservation: &Reservation, delay: Duration) -> Result<(), StoreError> {
        let token = token(reservation).ok_or_else(|| lease_lost(reservation))?;
        let done = sqlx::query(
            "UPDATE queue_entries SET visible_at = now() + $3, lease_token = NULL, \
               leased_by = NULL WHERE job_id = $1 AND lease_token = $2",
        )
        .bind(reservation.job_id.as_uuid())
        .bind(token)
        .bind(interval(delay))
        .execute(self.pool())
        .await
        .map_err(PgStoreError::sqlx("releasing a job for retry"))?;
        if done.rows_affected() == 0 {
            return Err(lease_lost(reservation));
        }
        if delay.is_zero() {
            self.notify().await?;
        }
        Ok(())
    }

    async fn dead_letter(&self, reservation: &Reservation, reason: &str) -> Result<(), StoreError> {
        let token = token(reservation).ok_or_else(|| lease_lost(reservation))?;
        let done = sqlx::query(
            "WITH gone AS ( \
               DELETE FROM queue_entries WHERE job_id = $1 AND lease_token = $2 \
               RETURNING job_id, deliveries) \
             INSERT INTO queue_dead_letters (job_id, reason, deliveries, dead_at) \
             SELECT job_id, $3, deliveries, now() FROM gone \
             ON CONFLICT (job_id) DO UPDATE SET reason = EXCLUDED.reason, \
               deliveries = EXCLUDED.deliveries, dead_at = EXCLUDED.dead_at",
        )
        .bind(reservation.job_id.as_uuid())
        .bind(token)
        .bind(reason)
        .execute(self.pool())
        .await
        .map_err(PgStoreError::sqlx("dead-lettering a job"))?;
        if done.rows_affected() == 0 {
            return Err(lease_lost(reservation));
        }
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, StoreError> {
        let row = sqlx::query(
            "SELECT \
               count(*) FILTER (WHERE visible_at <= now()) AS ready, \
               count(*) FILTER (WHERE visible_at > now() AND lease_token IS NULL) AS delayed, \
               count(*) FILTER (WHERE visible_at > now() AND lease_token IS NOT NULL) AS leased, \
               (SELECT count(*) FROM queue_dead_letters) AS dead, \
               (EXTRACT(EPOCH FROM now() - min(visible_at) FILTER (WHERE visible_at <= now())) \
                 * 1000)::bigint AS oldest_ready_ms \
             FROM queue_entries",
        )
        .fetch_one(self.pool())
        .await
        .map_err(PgStoreError::sqlx("reading queue figures"))?;
        let corrupt = |e: sqlx::Error| PgStoreError::Corrupt(e.to_string());
        let n = |column: &str| -> Result<u64, PgStoreError> {
            Ok(rows::count64(
                row.try_get::<i64, _>(column).map_err(corrupt)?,
            ))
        };
        let oldest: Option<i64> = row.try_get("oldest_ready_ms").map_err(corrupt)?;
        Ok(QueueStats {
            ready: n("ready")?,
            delayed: n("delayed")?,
            leased: n("leased")?,
            dead: n("dead")?,
            oldest_ready_ms: oldest.map(rows::count64),
        })
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let found = sqlx::query(
            "SELECT job_id, reason, deliveries, dead_at FROM queue_dead_letters \
             ORDER BY dead_at DESC, seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(PgStoreError::sqlx("listing dead letters"))?;
        let corrupt = |e: sqlx::Error| PgStoreError::Corrupt(e.to_string());
        let letters = found
            .iter()
            .map(|row| {
                Ok(DeadLetter {
                    job_id: SyncJobId::from_uuid(row.try_get("job_id").map_err(corrupt)?),
                    reason: row.try_get("reason").map_err(corrupt)?,
                    deliveries: rows::count(row.try_get("deliveries").map_err(corrupt)?),
                    dead_at: row.try_get("dead_at").map_err(corrupt)?,
                })
            })
            .collect::<Result<Vec<_>, PgStoreError>>()?;
        Ok(letters)
    }

    async fn redrive(&self, job: SyncJobId) -> Result<bool, StoreError> {
        // A redriven entry starts afresh: it counts deliveries from zero again.
        let done = sqlx::query(
            "WITH revived AS (DELETE FROM queue_dead_letters WHERE job_id = $1 RETURNING job_id) \
             INSERT INTO queue_entries (job_id, visible_at, enqueued_at) \
             SELECT job_id, now(), now() FROM revived \
             ON CONFLICT (job_id) DO UPDATE SET visible_at = now(), deliveries = 0, \
               lease_token = NULL, leased_by = NULL",
        )
        .bind(job.as_uuid())
        .execute(self.pool())
        .await
        .map_err(PgStoreError::sqlx("redriving a dead letter"))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.notify().await?;
        Ok(true)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.store.shared.listener.wait_for_work(timeout).await;
    }
}
