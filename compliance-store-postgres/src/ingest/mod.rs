//! Group commit: accepted webhooks (and new jobs) written many per transaction.
//!
//! Callers hand their write to an [`IngestWriter`] and wait. A few writer tasks take whatever
//! has gathered (up to `ingest_max_batch`), write it in one transaction of set-based
//! statements (`UNNEST` arrays), commit, and only then answer every caller of the batch: an
//! answer never comes before the commit that holds the caller's rows.
//!
//! A batch that fails for a reason that is not the server's (a duplicate event id, say) is
//! written again one caller at a time, so one bad write fails only its own caller.

use std::sync::Arc;

use compliance_core::domain::{NewSyncJob, WebhookEvent};
use compliance_core::ports::{AcceptRecord, QueuePlacement};
use compliance_core::{Clock, ComponentId, StoreError};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::sync::CancellationToken;

use crate::config::PgConfig;
use crate::error::PgStoreError;

mod batch;

use batch::write_once;
pub(crate) use batch::EventColumns;

/// How often a batch is tried again when another instance wrote one of its delivery keys
/// between the duplicate check and the insert.
const MAX_RACE_RETRIES: usize = 3;

/// One write: an accepted webhook (event and job) or a bare job.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) event: Option<WebhookEvent>,
    pub(crate) job: NewSyncJob,
    pub(crate) placement: QueuePlacement,
}

type Reply = oneshot::Sender<Result<AcceptRecord, StoreError>>;

struct Request {
    item: Item,
    reply: Reply,
}

/// The handle callers write through.
pub(crate) struct IngestWriter {
    sender: mpsc::Sender<Request>,
}

/// What the writer tasks share.
pub(super) struct Context {
    pub(super) pool: PgPool,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) lock_namespace: String,
    pub(super) queue_channel: String,
}

impl IngestWriter {
    /// Starts `config.ingest_writers` writer tasks; they stop on `shutdown` or when the last
    /// handle is dropped.
    pub(crate) fn start(
        pool: PgPool,
        clock: Arc<dyn Clock>,
        config: &PgConfig,
        lock_namespace: String,
        queue_channel: String,
        shutdown: CancellationToken,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(config.ingest_backlog);
        let receiver = Arc::new(Mutex::new(receiver));
        let context = Arc::new(Context {
            pool,
            clock,
            lock_namespace,
            queue_channel,
        });
        for _ in 0..config.ingest_writers {
            tokio::spawn(writer_loop(
                context.clone(),
                receiver.clone(),
                config.ingest_max_batch,
                shutdown.clone(),
            ));
        }
        Self { sender }
    }

    /// Writes `item` in the next batch and returns once that batch has committed.
    pub(crate) async fn write(&self, item: Item) -> Result<AcceptRecord, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Request { item, reply })
            .await
            .map_err(|_| PgStoreError::WriterGone)?;
        answer.await.map_err(|_| PgStoreError::WriterGone)?
    }
}

async fn writer_loop(
    context: Arc<Context>,
    receiver: Arc<Mutex<mpsc::Receiver<Request>>>,
    max_batch: usize,
    shutdown: CancellationToken,
) {
    loop {
        // Holding the receiver only while gathering lets the next writer gather the next batch
        // while this one waits for its commit.
        let batch = {
            let mut receiver = tokio::select! {
                () = shutdown.cancelled() => return,
                guard = receiver.lock() => guard,
            };
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                request = receiver.recv() => match request {
                    Some(request) => request,
                    None => return,
                },
            };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match receiver.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            batch
        };
        write_batch(&context, batch).await;
    }
}

/// Writes a batch and answers its callers.
async fn write_batch(context: &Context, batch: Vec<Request>) {
    let size = batch.len();
    let (mut items, mut replies): (Vec<Item>, Vec<Reply>) =
        batch.into_iter().map(|r| (r.item, r.reply)).unzip();

    let span = tracing::debug_span!("ingest_batch", size);
    let _entered = span.enter();
    match write_with_retries(context, &items).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                // A caller that gave up waiting is not an error of the batch.
                let _ = reply.send(result);
            }
        }
        Err(err) if size == 1 => {
            if let (Some(item), Some(reply)) = (items.pop(), replies.pop()) {
                let _ = reply.send(Err(item_error(err, &item)));
            }
        }
        Err(err) if !err.is_transient() => {
            tracing::debug!(error = %err, "batch failed, writing its items one by one");
            for (item, reply) in items.into_iter().zip(replies) {
                let result = match write_with_retries(context, std::slice::from_ref(&item)).await {
                    Ok(mut results) => results.pop().unwrap_or_else(|| {
                        Err(StoreError::backend(
                            "writing an accepted webhook",
                            "no result",
                        ))
                    }),
                    Err(err) => Err(item_error(err, &item)),
                };
                let _ = reply.send(result);
            }
        }
        Err(err) => {
            // Limitation: a connection lost during COMMIT leaves the outcome unknown, and the
            // callers are answered "unavailable" though the batch may have committed. A
            // redelivery with the same delivery key is then answered with the stored job; one
            // without a key gets a second job, which coalescing supersedes or runs again.
            tracing::warn!(error = %err, size, "ingest batch failed");
            let message = err.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable {
                    context: format!("writing accepted webhooks: {message}"),
                    source: None,
                }));
            }
        }
    }
}

/// The error of a single write, with unique violations named for what they are.
fn item_error(err: PgStoreError, item: &Item) -> StoreError {
    match err.unique_violation().as_deref() {
        Some("sync_jobs_pkey") => StoreError::conflict(format!("sync job {} exists", item.job.id)),
        Some("webhook_events_pkey") => StoreError::conflict(format!(
            "webhook event {} exists",
            item.event
                .as_ref()
                .map(|e| e.id.to_string())
                .unwrap_or_default()
        )),
        _ => err.into_store_error(),
    }
}

async fn write_with_retries(
    context: &Context,
    items: &[Item],
) -> Result<Vec<Result<AcceptRecord, StoreError>>, PgStoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write_once(context, items).await? {
            Written::Done(results) => return Ok(results),
            Written::Raced if attempt < MAX_RACE_RETRIES => {
                tracing::debug!(attempt, "delivery key written concurrently, retrying batch");
            }
            Written::Raced => {
                return Err(PgStoreError::Corrupt(
                    "delivery keys kept changing under the batch".to_owned(),
                ))
            }
        }
    }
}

pub(super) enum Written {
    Done(Vec<Result<AcceptRecord, StoreError>>),
    /// Another transaction committed one of the batch's delivery keys after the duplicate
    /// check; the transaction was rolled back.
    Raced,
}

/// The lock key of a component and branch: coalescing and `start` serialize on it.
pub(crate) fn lock_key(namespace: &str, component: ComponentId, branch: &str) -> i64 {
    // FNV-1a: stable across processes and versions, which a std hasher is not.
    // Limitation: two pairs whose 64-bit hashes collide share a lock; they then serialize
    // needlessly, nothing worse.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let id = component.as_uuid();
    let bytes = namespace
        .as_bytes()
        .iter()
        .chain(id.as_bytes())
        .chain([0u8].iter())
        .chain(branch.as_bytes());
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Begins a transaction holding the transaction-scoped advisory locks of `keys`, in one
/// round trip. The keys are taken in ascending order, so two transactions never wait for each
/// other in a cycle.
pub(crate) async fn begin_locked(
    pool: &PgPool,
    mut keys: Vec<i64>,
) -> Result<Transaction<'static, Postgres>, PgStoreError> {
    keys.sort_unstable();
    keys.dedup();
    let list = keys
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // Integers formatted here, so the statement can be sent as text with the BEGIN.
    pool.begin_with(format!(
        "BEGIN; DO $$BEGIN PERFORM pg_advisory_xact_lock(k) \
         FROM unnest('{{{list}}}'::bigint[]) AS k; END$$"
    ))
    .await
    .map_err(PgStoreError::sqlx("starting a locked transaction"))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn lock_keys_are_stable_and_separate_branches_and_namespaces() {
        let c = ComponentId::from_uuid(Uuid::from_u128(7));
        let main = lock_key("a", c, "main");
        assert_eq!(main, lock_key("a", c, "main"));
        assert_ne!(main, lock_key("a", c, "dev"));
        assert_ne!(main, lock_key("b", c, "main"));
        // The branch is separated from the id, so "x" + "ab" differs from "xa" + "b".
        assert_ne!(lock_key("x", c, "ab"), lock_key("xa", c, "b"));
    }
}
