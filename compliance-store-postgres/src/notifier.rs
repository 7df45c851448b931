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
// Limitation: only publishers of large events clean up (every `CLEANUP_EVERY`th one), so the
// last bodies stay until the next large event; a listener reading a body after its deletion
// reports a gap.
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
        let stream = futures::stream::unfold(Subscription::new(receiver), |mut sub| async move {
            let item = sub.next().await?;
            Some((item, sub))
        });
        Ok(Box::pin(stream))
    }
}

/// One subscriber's end of the hub's broadcast, turning overruns into gaps.
///
/// After a gap the receiver resumes at the oldest event still buffered, so the buffer is full
/// again and one more event from the hub overruns it a second time. Events lost that way were
/// dispatched before the gap was handed to the subscriber, so the catch-up the subscriber
/// does after reading the gap covers them: such an overrun is not reported again. An overrun
/// that reaches events dispatched after the gap is.
struct Subscription {
    receiver: broadcast::Receiver<Notification>,
    /// How many of the buffered events were dispatched before the last gap was handed out.
    before_gap: u64,
}

impl Subscription {
    fn new(receiver: broadcast::Receiver<Notification>) -> Self {
        Self {
            receiver,
            before_gap: 0,
        }
    }

    /// The next notification; `None` once the hub has stopped.
    async fn next(&mut self) -> Option<Notification> {
        loop {
            match self.receiver.recv().await {
                Ok(notification) => {
                    self.before_gap = self.before_gap.saturating_sub(1);
                    if matches!(notification, Notification::Gap { .. }) {
                        self.before_gap = self.buffered();
                    }
                    return Some(notification);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) if missed <= self.before_gap => {
                    self.before_gap -= missed;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // Read before the gap is handed out: all of these precede the catch-up.
                    self.before_gap = self.buffered();
                    return Some(Notification::Gap {
                        reason: format!("subscriber lagged and missed {missed} events"),
                    });
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    fn buffered(&self) -> u64 {
        u64::try_from(self.receiver.len()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use compliance_core::testing::notifier::event;

    use super::*;

    fn number(notification: Option<Notification>) -> Option<u64> {
        match notification? {
            Notification::Event(e) => e.data.get("n").and_then(serde_json::Value::as_u64),
            Notification::Gap { .. } => None,
        }
    }

    fn send(sender: &broadcast::Sender<Notification>, range: std::ops::Range<u64>) {
        for n in range {
            sender.send(Notification::Event(event(n))).unwrap();
        }
    }

    #[tokio::test]
    async fn an_overrun_of_events_sent_before_the_gap_is_not_reported_twice() {
        let (sender, receiver) = broadcast::channel(4);
        let mut sub = Subscription::new(receiver);
        send(&sender, 0..10);
        assert!(matches!(sub.next().await, Some(Notification::Gap { .. })));
        // 6..10 are buffered; two more push out 6 and 7, which the catch-up covers.
        send(&sender, 10..12);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(number(sub.next().await));
        }
        assert_eq!(got, [Some(8), Some(9), Some(10), Some(11)]);
    }

    #[tokio::test]
    async fn an_overrun_of_events_sent_after_the_gap_is_a_new_gap() {
        let (sender, receiver) = broadcast::channel(4);
        let mut sub = Subscription::new(receiver);
        send(&sender, 0..10);
        assert!(matches!(sub.next().await, Some(Notification::Gap { .. })));
        assert_eq!(number(sub.next().await), Some(6));
        // 7..10 are buffered; 10..16 push out all of them and 10 and 11 as well.
        send(&sender, 10..16);
        assert!(matches!(sub.next().await, Some(Notification::Gap { .. })));
        assert_eq!(number(sub.next().await), Some(12));
    }

    #[tokio::test]
    async fn a_hub_gap_also_covers_what_was_buffered_before_it() {
        let (sender, receiver) = broadcast::channel(4);
        let mut sub = Subscription::new(receiver);
        sender
            .send(Notification::Gap {
                reason: "reconnected".to_owned(),
            })
            .unwrap();
        send(&sender, 0..3);
        assert!(matches!(sub.next().await, Some(Notification::Gap { .. })));
        send(&sender, 3..5);
        // 0 is lost, but it was buffered before the gap was read.
        assert_eq!(number(sub.next().await), Some(1));
        drop(sender);
        for n in 2..5 {
            assert_eq!(number(sub.next().await), Some(n));
        }
        assert!(sub.next().await.is_none());
    }
}
