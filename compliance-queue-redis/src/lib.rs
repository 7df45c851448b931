//! The job queue on Redis Streams and the notifier on Redis pub/sub, for running many
//! stateless instances of the compliance sync behind one Redis.
//!
//! | adapter | port | Redis feature |
//! | --- | --- | --- |
//! | [`RedisQueue`] | [`JobQueue`](compliance_core::ports::JobQueue) ([`External`](compliance_core::ports::QueuePlacement::External)) | a stream read through a consumer group, sorted sets for leases and delays, a dead-letter stream, Lua scripts |
//! | [`RedisNotifier`] | [`Notifier`](compliance_core::ports::Notifier) | pub/sub, one pattern subscription per instance |
//!
//! Both take [`RedisOptions`], built from a `redis://[user][:password@]host[:port][/db]` URL;
//! the password never appears in a log line, an error or a `Debug` output.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use compliance_core::ports::{JobQueue, Notifier};
//! use compliance_queue_redis::{RedisNotifier, RedisOptions, RedisQueue};
//!
//! # async fn wire() -> Result<(), Box<dyn std::error::Error>> {
//! let options = RedisOptions::from_url("redis://:secret@127.0.0.1:6379/2")?.key_prefix("sync:");
//! let queue = Arc::new(RedisQueue::new(options.clone()));
//! let notifier: Arc<dyn Notifier> = Arc::new(RedisNotifier::new(options));
//!
//! // Creating them never fails because Redis is down; a readiness probe asks:
//! if !queue.ready().await {
//!     eprintln!("redis not reachable yet");
//! }
//! let queue: Arc<dyn JobQueue> = queue;
//! # let _ = (queue, notifier);
//! # Ok(())
//! # }
//! ```
//!
//! # No accepted webhook is lost: the dual write
//!
//! With the queue in Redis, accepting a webhook writes to two systems, and no transaction spans
//! both. The order and two safety nets make that safe:
//!
//! 1. The ingest service commits the webhook event and its `QUEUED` job to the database
//!    first, and only then calls [`JobQueue::enqueue`](compliance_core::ports::JobQueue::enqueue).
//!    The `202` goes out after the commit, so an accepted webhook always has a stored job,
//!    even if Redis never received it (down, restarted empty, or the process died between the
//!    two writes).
//! 2. `compliance_core::worker::Sweeper` periodically re-enqueues jobs still `QUEUED` in the
//!    store after a grace period (`SyncJobStore::queued_before`). `enqueue` is idempotent per
//!    job id, so a job that is merely waiting in the stream is not duplicated, and one Redis
//!    lost is put back.
//! 3. A job can still be delivered twice (the sweeper raced a slow enqueue, a lease expired
//!    under a slow worker). The worker's `SyncJobStore::start` claims the job in the store:
//!    a second delivery of a job that is running answers `Busy` and one of a job that has
//!    ended answers `Finished` and is acknowledged, so a duplicate delivery changes nothing.
//!
//! # Surviving Redis failures
//!
//! - The connection opens on first use and reconnects by itself; while Redis is unreachable
//!   every operation answers [`StoreError::Unavailable`](compliance_core::StoreError) within
//!   the command timeout, and [`RedisQueue::ready`] answers `false`.
//! - A Redis that comes back empty (restart without persistence, `FLUSHDB`, a deleted key) is
//!   repaired where it is found: scripts recreate the stream and the consumer group on
//!   `NOGROUP` (`XGROUP CREATE … 0 MKSTREAM`, so no remaining entry is skipped) and drop
//!   index entries that point at vanished stream entries. The sweeper then refills the queue
//!   with the jobs the store holds as `QUEUED` (waiting, or due for a retry).
//! - Jobs that were running when Redis lost its data are not in the store as `QUEUED`, so the
//!   sweeper would not bring them back. Their workers keep them instead: each lease token
//!   names the data set it was granted in (the `…:epoch` key, which vanishes with the rest),
//!   and a heartbeat (`extend`) whose job Redis forgot under an older epoch is granted the
//!   lease again, so the worker finishes the job and its `ack` succeeds. A stale worker whose
//!   job another worker took and finished in the same epoch still gets `LeaseLost`.
//!   `ack`, `retry` and `dead_letter` of a forgotten lease answer `LeaseLost`; the store
//!   already holds the outcome (a retried job is `QUEUED` again and swept back).
//! - A worker that dies while Redis is losing its data leaves its job `RUNNING` in the
//!   store with no queue entry; core's sweeper re-enqueues running jobs whose heartbeat is
//!   older than its grace period (`SyncJobStore::stalled_before`), and `start` hands them
//!   to the next worker.
//! - The notifier re-subscribes with backoff and sends each subscriber a
//!   [`Notification::Gap`](compliance_core::ports::Notification) so clients refetch.
//!
//! # Keys
//!
//! Everything lives under the prefix (default `compliance:`); give each deployment its own.
//! The queue uses `{prefix}queue:stream` (ready and leased entries, consumer group `workers`),
//! `…:jobs` (each queued job's state: deliveries, entry id, lease token), `…:delayed` and
//! `…:leases` (sorted sets of due time and lease end), `…:dead` (the dead-letter stream) and
//! `…:dead-index` (job → dead letter), and `…:epoch` (the data set's random id). The notifier publishes on `{prefix}events:{channel}`.
//! Scripts touch several keys at once, so on Redis Cluster put a hash tag in the prefix
//! (`{sync}:`).

mod config;
mod conn;
mod notifier;
mod queue;

pub use config::{ConfigError, RedisOptions, DEFAULT_KEY_PREFIX};
pub use notifier::RedisNotifier;
pub use queue::RedisQueue;
