//! [`PgNotifier`]: fan-out to every instance over `LISTEN/NOTIFY`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::ports::{ChannelEvent, Notification, NotificationStream, Notifier};
use compliance_core::StoreError;
use tokio::sync::broadcast;

use crate::error::PgStoreError;
use crate::listen::STORED_PREFIX;
use crate::PgStore;

/// NOTIFY payloads must stay under 8000 bytes; larger events travel through the
/// `notifications` table.
const INLINE_LIMIT: usize = 7_900;

/// Stored bodies older than this are deleted; listeners read them within milliseconds.
const STORED_RETENTION: &str = "1 hour";

/// How many stored bodies are written between two clean-ups.
const CLEANUP_EVERY: u64 = 64;

/// A [`Notifier`] over PostgreSQL `LISTEN/NOTIFY`: an event published by any instance on the
/// same database (and schema) reaches the subscribers of every instance.
///
/// - Events up to about 7.9 KB travel in the NOTIFY payload; larger ones are written to the
///   `notifications` table and the NOTIFY carries their id, which listeners read back.
/// - Each store has one listening connection, shared by every subscriber; each subscriber
///   has its own buffer of [`PgConfig::notifier_capacity`](crate::PgConfig::notifier_capacity)
///   events and gets a [`Notification::Gap`] when it falls further behind.
/// - When the listening connection drops (PostgreSQL restarted, the connection was killed),
///   it is re-established with backoff and every subscriber gets a [`Notification::Gap`].
/// - NOTIFY is delivered in commit order, so one publisher's events arrive in order.
#[derive(Clone, Debug)]
pub struct PgNotifier {
    store: PgStore,
    stored: Arc<AtomicU64>,
}

impl PgNotifier {
    pub(crate) fn new(store: PgStore) -> Self {
        Self {
            store,
            stored: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Connects a store with `config` and returns its notifier.
    ///
    /// # Errors
    ///
    /// As [`PgStore::connect`].
    pub async fn connect(config: crate::PgConfig) -> Result<Self, StoreError> {
        Ok(PgStore::connect(config).await?.notifier())
    }

    async fn publish_stored(&self, body: &str) -> Result<(), PgStoreError> {
        let pool = &self.store.shared.pool;
        sqlx::query(
            "WITH stored AS (INSERT INTO notifications (body) VALUES ($2) RETURNING id) \
             SELECT pg_notify($1, $3 || id::text) FROM stored",
        )
        .bind(&self.store.shared.events_channel)
        .bind(body)
        .bind(STORED_PREFIX.to_string())
        .execute(pool)
        .await
        .map_err(PgStoreError::sqlx("publishing a large event"))?;

        if self.stored.fetch_add(1, Ordering::Relaxed) % CLEANUP_EVERY == 0 {
            let cleanup = sqlx::query(&format!(
                "DELETE FROM notifications WHERE created_at < now() - interval '{STORED_RETENTION}'"
            ))
            .execute(pool)
            .await;
            if let Err(err) = cleanup {
                tracing::debug!(error = %err, "stored notification clean-up failed");
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Notifier for PgNotifier {
    async fn publish(&self, event: ChannelEvent) -> Result<(), StoreError> {
        let body = serde_json::to_string(&event)
            .map_err(|e| StoreError::backend("encoding an event", e))?;
        if body.len() > INLINE_LIMIT {
            self.publish_stored(&body).await?;
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.store.shared.events_channel)
            .bind(&body)
            .execute(&self.store.shared.pool)
            .await
            .map_err(PgStoreError::sqlx("publishing an event"))?;
        Ok(())
    }

    async fn subscribe(&self) -> Result<NotificationStream, StoreError> {
        // Listening before returning: an event published after this returns is received.
        self.store.shared.listener.ensure_started().await?;
        let receiver = self.store.shared.listener.subscribe();
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            let item = match receiver.recv().await {
                Ok(notification) => notification,
                Err(broadcast::error::RecvError::Lagged(missed)) => Notification::Gap {
                    reason: format!("subscriber lagged and missed {missed} events"),
                },
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((item, receiver))
        });
        Ok(Box::pin(stream))
    }
}
