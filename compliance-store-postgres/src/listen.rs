//! One `LISTEN` connection per store: wakes waiting workers and feeds the notifier's
//! subscribers.
//!
//! The connection is opened on first use (the first subscription or the first
//! `wait_for_work`) on a pool of its own, so it never takes a connection from requests. When
//! it drops, it is re-established with backoff, and once it listens again every subscriber
//! receives a [`Notification::Gap`]: events published meanwhile were missed, and clients that
//! refetch after the gap see everything.

use std::sync::Arc;
use std::time::Duration;

use compliance_core::ports::{ChannelEvent, Notification};
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPool, PgPoolOptions};
use tokio::sync::{broadcast, Notify, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::error::PgStoreError;

/// The first wait before reconnecting a dropped listener; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The prefix of a NOTIFY payload that carries the id of a stored body instead of the body.
pub(crate) const STORED_PREFIX: char = '@';

pub(crate) struct ListenerHub {
    inner: Arc<HubInner>,
    started: OnceCell<()>,
}

struct HubInner {
    /// The store's pool, for reading stored bodies.
    pool: PgPool,
    listen_pool: PgPool,
    queue_channel: String,
    events_channel: String,
    work: Notify,
    events: broadcast::Sender<Notification>,
    shutdown: CancellationToken,
}

impl ListenerHub {
    pub(crate) fn new(
        pool: PgPool,
        listen_pool: PgPoolOptions,
        options: PgConnectOptions,
        queue_channel: String,
        events_channel: String,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> Self {
        let (events, _) = broadcast::channel(capacity.max(1));
        Self {
            inner: Arc::new(HubInner {
                pool,
                listen_pool: listen_pool.connect_lazy_with(options),
                queue_channel,
                events_channel,
                work: Notify::new(),
                events,
                shutdown,
            }),
            started: OnceCell::new(),
        }
    }

    /// Opens the listening connection unless it is open; returns once it listens.
    pub(crate) async fn ensure_started(&self) -> Result<(), PgStoreError> {
        self.started
            .get_or_try_init(|| async {
                let listener = self.inner.connect().await?;
                tokio::spawn(run(self.inner.clone(), listener));
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// A receiver of every notification from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.inner.events.subscribe()
    }

    /// Waits for a queue wake-up, or `timeout`.
    pub(crate) async fn wait_for_work(&self, timeout: Duration) {
        if let Err(err) = self.ensure_started().await {
            // Without a listener the timeout alone paces the worker.
            tracing::debug!(error = %err, "queue listener unavailable");
        }
        tokio::select! {
            () = self.inner.work.notified() => {}
            () = tokio::time::sleep(timeout) => {}
        }
    }
}

impl HubInner {
    async fn connect(&self) -> Result<PgListener, PgStoreError> {
        let mut listener = PgListener::connect_with(&self.listen_pool)
            .await
            .map_err(PgStoreError::sqlx("opening the listener connection"))?;
        listener
            .listen_all([self.queue_channel.as_str(), self.events_channel.as_str()])
            .await
            .map_err(PgStoreError::sqlx("listening for notifications"))?;
        Ok(listener)
    }

    fn wake_workers(&self) {
        self.work.notify_waiters();
        // A worker between its last `reserve` and its next wait would miss the wake-up above;
        // the stored permit makes its next wait return at once instead.
        self.work.notify_one();
    }

    fn gap(&self, reason: &str) {
        tracing::info!(reason, "notification gap");
        // No subscriber is not an error.
        let _ = self.events.send(Notification::Gap {
            reason: reason.to_owned(),
        });
        self.wake_workers();
    }

    async fn dispatch(&self, notification: &PgNotification) {
        if notification.channel() == self.queue_channel {
            self.wake_workers();
            return;
        }
        if notification.channel() != self.events_channel {
            return;
        }
        match self.decode(notification.payload()).await {
            Ok(event) => {
                let _ = self.events.send(Notification::Event(event));
            }
            Err(err) => {
                tracing::warn!(error = %err, "unreadable notification");
                self.gap("an event could not be read");
            }
        }
    }

    async fn decode(&self, payload: &str) -> Result<ChannelEvent, PgStoreError> {
        let body = match payload.strip_prefix(STORED_PREFIX) {
            Some(id) => {
                let id: i64 = id
                    .parse()
                    .map_err(|_| PgStoreError::Corrupt(format!("notification id {id:?}")))?;
                sqlx::query_scalar::<_, String>("SELECT body FROM notifications WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(PgStoreError::sqlx("reading a stored notification"))?
                    .ok_or_else(|| PgStoreError::Corrupt(format!("notification {id} is gone")))?
            }
            None => payload.to_owned(),
        };
        serde_json::from_str(&body).map_err(|e| PgStoreError::Corrupt(format!("event: {e}")))
    }
}

async fn run(hub: Arc<HubInner>, mut listener: PgListener) {
    loop {
        let next = tokio::select! {
            () = hub.shutdown.cancelled() => return,
            next = listener.try_recv() => next,
        };
        match next {
            Ok(Some(notification)) => hub.dispatch(&notification).await,
            // sqlx has reconnected and listens again; what was sent meanwhile is lost.
            // Limitation: missed events are not replayed; subscribers get a gap and refetch.
            Ok(None) => hub.gap("listener connection was lost and re-established"),
            Err(err) => {
                tracing::warn!(error = %err, "listener connection failed");
                // The listen pool has one connection: give it back before asking for another.
                drop(listener);
                let Some(fresh) = reconnect(&hub).await else {
                    return;
                };
                listener = fresh;
                hub.gap("listener connection was lost and re-established");
            }
        }
    }
}

/// Opens a new listening connection, backing off while PostgreSQL is unreachable; `None` on
/// shutdown.
async fn reconnect(hub: &HubInner) -> Option<PgListener> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::select! {
            () = hub.shutdown.cancelled() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        match hub.connect().await {
            Ok(listener) => return Some(listener),
            Err(err) => {
                tracing::debug!(error = %err, ?backoff, "listener reconnect failed");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
