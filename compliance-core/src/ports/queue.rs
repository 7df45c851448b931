use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::id::SyncJobId;

/// Where a queue's entries are written when a job is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePlacement {
    /// The queue lives in the store's database: the store writes the queue entry in the same
    /// transaction as the job (the ingest service does not call `enqueue`).
    InStore,
    /// The queue is a separate system (Redis, memory): the ingest service calls `enqueue` after
    /// the store has committed the job, and a sweeper re-enqueues jobs left `QUEUED`.
    External,
}

/// A job handed to one worker for a limited time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The job.
    pub job_id: SyncJobId,
    /// How many times this entry has been handed out, this one included.
    pub deliveries: u32,
    /// An opaque token that proves this reservation holds the lease; adapters check it on
    /// `extend`, `ack`, `retry` and `dead_letter`.
    pub lease_token: String,
    /// When the lease ends unless extended.
    pub lease_until: Timestamp,
}

/// Queue figures for backpressure and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Entries ready to be reserved now.
    pub ready: u64,
    /// Entries waiting for a retry delay.
    pub delayed: u64,
    /// Entries reserved by a worker.
    pub leased: u64,
    /// Dead-lettered entries.
    pub dead: u64,
    /// Age of the oldest ready entry, in milliseconds.
    pub oldest_ready_ms: Option<u64>,
}

impl QueueStats {
    /// Entries not yet finished (ready, delayed or leased).
    #[must_use]
    pub fn depth(&self) -> u64 {
        self.ready + self.delayed + self.leased
    }
}

/// A dead-lettered entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The job.
    pub job_id: SyncJobId,
    /// Why it was given up.
    pub reason: String,
    /// How many times it was delivered.
    pub deliveries: u32,
    /// When it was dead-lettered.
    pub dead_at: Timestamp,
}

/// The queue workers take sync jobs from.
///
/// # Contract
///
/// - `enqueue` is idempotent per job id: enqueuing a job that is already waiting or leased
///   changes nothing (a delay never postpones an entry that is already ready).
/// - `reserve` hands each ready entry to one caller at a time; the entry stays invisible until
///   `lease` passes, then becomes ready again (with `deliveries` increased) unless it was
///   acked, retried, dead-lettered or its lease extended.
/// - `ack`, `retry`, `dead_letter` and `extend` with a stale reservation (lease expired and
///   the entry handed to someone else) fail with [`StoreError::LeaseLost`].
/// - `retry` makes the entry ready again after `delay`.
/// - Entries come out in roughly the order they became ready (FIFO within an adapter's clock
///   resolution).
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Whether the store writes queue entries itself (see [`QueuePlacement`]).
    fn placement(&self) -> QueuePlacement;

    /// Makes `job` ready after `delay` (zero for now).
    async fn enqueue(&self, job: SyncJobId, delay: Duration) -> Result<(), StoreError>;

    /// Takes the oldest ready entry for `lease`, or `None` when nothing is ready.
    async fn reserve(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Reservation>, StoreError>;

    /// Extends a held lease to `lease` from now; returns the updated reservation.
    async fn extend(
        &self,
        reservation: &Reservation,
        lease: Duration,
    ) -> Result<Reservation, StoreError>;

    /// Removes the entry: the job is done (whatever its outcome).
    async fn ack(&self, reservation: &Reservation) -> Result<(), StoreError>;

    /// Releases the entry to be ready again after `delay`.
    async fn retry(&self, reservation: &Reservation, delay: Duration) -> Result<(), StoreError>;

    /// Moves the entry to the dead letters with `reason`.
    async fn dead_letter(&self, reservation: &Reservation, reason: &str) -> Result<(), StoreError>;

    /// Current figures.
    async fn stats(&self) -> Result<QueueStats, StoreError>;

    /// Dead letters, newest first, at most `limit`.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;

    /// Moves a dead letter back to ready; `false` when `job` is not dead-lettered.
    async fn redrive(&self, job: SyncJobId) -> Result<bool, StoreError>;

    /// Waits until work may be ready or `timeout` passes, whichever is first.
    ///
    /// Adapters that can be woken (in-process signal, `LISTEN`, blocking reads) override this
    /// to cut latency; the default just sleeps.
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}
