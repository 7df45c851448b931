//! [`RedisQueue`]: the job queue on a Redis stream with a consumer group.

mod scripts;
mod wait;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use compliance_core::ports::{DeadLetter, JobQueue, QueuePlacement, QueueStats, Reservation};
use compliance_core::{Clock, StoreError, SyncJobId, SystemClock, Timestamp};
use redis::streams::StreamRangeReply;
use redis::{FromRedisValue, Script};

use crate::config::{ConfigError, RedisOptions};
use crate::conn::Connector;
use scripts::Scripts;
use wait::BlockingPool;

/// The consumer group every worker reads through.
const GROUP: &str = "workers";

/// The longest lease or delay accepted (longer ones are cut to this), so every deadline stays
/// exact in Lua's floating-point numbers.
const MAX_SPAN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A [`JobQueue`] on Redis Streams ([`QueuePlacement::External`]).
///
/// Ready entries are stream entries read through one consumer group (`XREADGROUP`); the
/// queue tracks each lease's deadline and token itself, reclaims expired leases with `XCLAIM`,
/// keeps retry delays in a sorted set that scripts move into the stream once due, and moves
/// given-up entries to a dead-letter stream. Every multi-key change is one Lua script. The keys
/// are listed in the crate docs.
///
/// Reclaiming uses `XCLAIM` of the one entry whose lease ended rather than `XAUTOCLAIM`:
/// `XAUTOCLAIM` takes one minimum idle time for every pending entry, while each reservation
/// here has its own lease length and heartbeats move its end; the lease ends live in a sorted
/// set, so the earliest expired one is found without scanning the pending list.
///
/// Time (lease ends, delays, ages) comes from a [`Clock`] on the caller's side, so all
/// instances sharing a queue should run NTP-synchronised clocks.
///
/// Creating a queue never fails because Redis is down: the connection opens on first use,
/// operations answer [`StoreError::Unavailable`] until Redis answers, and [`ready`](Self::ready)
/// tells a readiness probe whether it does now.
pub struct RedisQueue {
    conn: Connector,
    keys: [String; 7],
    scripts: Scripts,
    clock: Arc<dyn Clock>,
    blocking: BlockingPool,
}

impl RedisQueue {
    /// A queue on the Redis at `url`, with default options.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `url` is not a Redis URL.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        Ok(Self::new(RedisOptions::from_url(url)?))
    }

    /// A queue with `options`; its keys live under `{prefix}queue:`.
    #[must_use]
    pub fn new(options: RedisOptions) -> Self {
        let base = format!("{}queue:", options.key_prefix);
        let keys = [
            "stream",
            "jobs",
            "delayed",
            "leases",
            "dead",
            "dead-index",
            "epoch",
        ]
        .map(|name| format!("{base}{name}"));
        Self {
            blocking: BlockingPool::new(options.client.clone(), options.connect_timeout),
            conn: Connector::new(options),
            keys,
            scripts: Scripts::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Measures leases, delays and ages on `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether Redis answers now (for a readiness probe).
    pub async fn ready(&self) -> bool {
        self.conn.ping().await
    }

    /// The Redis keys this queue uses, for operators and tests.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.keys.to_vec()
    }

    fn stream_key(&self) -> &str {
        self.keys.first().map_or("", String::as_str)
    }

    fn dead_key(&self) -> &str {
        self.keys.get(4).map_or("", String::as_str)
    }

    // Limitation: lease ends and due times come from each instance's own clock, so instances
    // whose clocks disagree by more than a lease can reclaim each other's live leases early;
    // run NTP. (Redis's clock would avoid this but makes the queue untestable on a manual
    // clock.)
    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Runs `script` with the queue's keys, the group, the clock's now and `args`.
    async fn eval<T: FromRedisValue>(
        &self,
        what: &'static str,
        script: &Script,
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key.as_str());
        }
        invocation.arg(GROUP).arg(self.now_ms());
        for arg in args {
            invocation.arg(*arg);
        }
        self.conn
            .run(what, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await
    }

    /// Runs a script that answers 1 when the reservation still held the lease.
    async fn settle(
        &self,
        what: &'static str,
        script: &Script,
        reservation: &Reservation,
        extra: &str,
    ) -> Result<(), StoreError> {
        let job = reservation.job_id.to_string();
        let held: i64 = self
            .eval(what, script, &[&job, &reservation.lease_token, extra])
            .await?;
        if held == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost {
                job_id: reservation.job_id,
            })
        }
    }
}

fn millis(span: Duration) -> String {
    span.min(MAX_SPAN).as_millis().to_string()
}

fn timestamp(ms: i64, what: &str) -> Result<Timestamp, StoreError> {
    Timestamp::from_timestamp_millis(ms).ok_or_else(|| StoreError::Backend {
        context: format!("{what}: time out of range ({ms} ms)"),
        source: None,
    })
}

fn corrupt(what: &str, detail: impl fmt::Display) -> StoreError {
    StoreError::Backend {
        context: format!("{what}: {detail}"),
        source: None,
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    fn placement(&self) -> QueuePlacement {
        QueuePlacement::External
    }

    async fn enqueue(&self, job: SyncJobId, delay: Duration) -> Result<(), StoreError> {
        let id = job.to_string();
        let added: i64 = self
            .eval(
                "enqueuing a job",
                &self.scripts.enqueue,
                &[&id, &millis(delay)],
            )
            .await?;
        tracing::trace!(sync_job_id = %job, added = added == 1, "enqueue");
        Ok(())
    }

    async fn reserve(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Reservation>, StoreError> {
        // The script makes the token from this random id, the data set's epoch and the
        // consumer name, so `extend` can re-claim the entry for the consumer and can tell a
        // lease Redis forgot from one another worker took over.
        // Limitation: each worker name becomes a consumer of the group, and consumers of
        // workers that stopped stay listed (with nothing pending) until an operator runs
        // `XGROUP DELCONSUMER`; Redis has no expiry for them.
        let random = uuid::Uuid::new_v4().simple().to_string();
        let reply: Option<(String, u32, String, i64)> = self
            .eval(
                "reserving a job",
                &self.scripts.reserve,
                &[worker, &millis(lease), &random],
            )
            .await?;
        let Some((job, deliveries, lease_token, lease_until)) = reply else {
            return Ok(None);
        };

        let lease_until = timestamp(lease_until, "reserving a job")?;
        let Ok(job_id) = job.parse::<SyncJobId>() else {
            // Not ours to run; drop it so it cannot come back on every lease expiry.
            tracing::warn!(entry = %job, "discarding queue entry with an invalid job id");
            let discard: Result<i64, _> = self
                .eval(
                    "discarding an invalid entry",
                    &self.scripts.ack,
                    &[&job, &lease_token],
                )
                .await;
            discard?;
            return Err(corrupt("reserving a job", "entry without a valid job id"));
        };
        if deliveries > 1 {
            tracing::debug!(sync_job_id = %job_id, deliveries, "reclaimed expired lease");
        }
        Ok(Some(Reservation {
            job_id,
            deliveries,
            lease_token,
            lease_until,
        }))
    }

    async fn extend(
        &self,
        reservation: &Reservation,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        let job = reservation.job_id.to_string();
        let until: Option<i64> = self
            .eval(
                "extending a lease",
                &self.scripts.extend,
                &[
                    &job,
                    &reservation.lease_token,
                    &millis(lease),
                    &uuid::Uuid::new_v4().simple().to_string(),
                ],
            )
            .await?;
        let Some(until) = until else {
            return Err(StoreError::LeaseLost {
                job_id: reservation.job_id,
            });
        };
        Ok(Reservation {
            lease_until: timestamp(until, "extending a lease")?,
            ..reservation.clone()
        })
    }

    async fn ack(&self, reservation: &Reservation) -> Result<(), StoreError> {
        self.settle("acknowledging a job", &self.scripts.ack, reservation, "")
            .await
    }

    async fn retry(&self, reservation: &Reservation, delay: Duration) -> Result<(), StoreError> {
        self.settle(
            "releasing a job for retry",
            &self.scripts.retry,
            reservation,
            &millis(delay),
        )
        .await
    }

    async fn dead_letter(&self, reservation: &Reservation, reason: &str) -> Result<(), StoreError> {
        // Limitation: the dead-letter stream is not trimmed; dead letters stay until
        // redriven, so an operator has to redrive or delete them (they are rare: a job is
        // dead-lettered only after its last retry).
        self.settle(
            "dead-lettering a job",
            &self.scripts.dead_letter,
            reservation,
            reason,
        )
        .await
    }

    async fn stats(&self) -> Result<QueueStats, StoreError> {
        let (ready, delayed, leased, dead, oldest): (i64, i64, i64, i64, i64) = self
            .eval("reading queue figures", &self.scripts.stats, &[])
            .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let oldest_ready_ms = (oldest >= 0).then(|| count(self.now_ms().saturating_sub(oldest)));
        Ok(QueueStats {
            ready: count(ready),
            delayed: count(delayed),
            leased: count(leased),
            dead: count(dead),
            oldest_ready_ms,
        })
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.dead_key().to_owned();
        let reply: StreamRangeReply = self
            .conn
            .run("reading dead letters", |mut c| async move {
                redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        reply
            .ids
            .iter()
            .map(|entry| {
                let what = "reading dead letters";
                let job_id = entry
                    .get::<String>("job")
                    .and_then(|j| j.parse::<SyncJobId>().ok())
                    .ok_or_else(|| corrupt(what, format!("entry {} has no job id", entry.id)))?;
                let at = entry.get::<i64>("at").unwrap_or_default();
                Ok(DeadLetter {
                    job_id,
                    reason: entry.get("reason").unwrap_or_default(),
                    deliveries: entry.get("deliveries").unwrap_or_default(),
                    dead_at: timestamp(at, what)?,
                })
            })
            .collect()
    }

    async fn redrive(&self, job: SyncJobId) -> Result<bool, StoreError> {
        let id = job.to_string();
        let moved: i64 = self
            .eval("redriving a dead letter", &self.scripts.redrive, &[&id])
            .await?;
        Ok(moved == 1)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let probe: Result<(i64, i64, String), StoreError> = self
            .eval("probing for work", &self.scripts.probe, &[])
            .await;
        let Ok((ready_now, until_due, last_id)) = probe else {
            tokio::time::sleep(timeout).await;
            return;
        };
        if ready_now == 1 {
            return;
        }
        let wait = match u64::try_from(until_due) {
            Ok(ms) => timeout.min(Duration::from_millis(ms)),
            Err(_) => timeout,
        };
        self.blocking
            .wait_for_entry(self.stream_key(), &last_id, wait)
            .await;
    }
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = self.conn.options();
        f.debug_struct("RedisQueue")
            .field("url", &options.redacted_url())
            .field("stream", &self.stream_key())
            .finish_non_exhaustive()
    }
}
