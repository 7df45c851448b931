//! [`InMemoryNotifier`]: fan-out within one process on a tokio broadcast channel.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::ports::{ChannelEvent, Notification, NotificationStream, Notifier};

/// A [`Notifier`] for one process, on a [`tokio::sync::broadcast`] channel.
///
/// Publishing never waits for subscribers: each subscriber has its own position in a ring of
/// `capacity` events, and one that falls further behind than that receives a
/// [`Notification::Gap`] saying how many events it missed, then continues with the oldest
/// event still held.
pub struct InMemoryNotifier {
    sender: broadcast::Sender<ChannelEvent>,
}

impl InMemoryNotifier {
    /// How many events a subscriber may fall behind by default before it gets a gap.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A notifier holding [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) events per subscriber.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A notifier holding `capacity` events (at least one) per subscriber.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// How many subscriptions are open.
    #[must_use]
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }
}

impl Default for InMemoryNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for InMemoryNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryNotifier")
            .field("subscribers", &self.subscribers())
            .finish()
    }
}

#[async_trait]
impl Notifier for InMemoryNotifier {
    async fn publish(&self, event: ChannelEvent) -> Result<(), StoreError> {
        // An error only means nobody is subscribed, which is not a failure to publish.
        let _ = self.sender.send(event);
        Ok(())
    }

    async fn subscribe(&self) -> Result<NotificationStream, StoreError> {
        let receiver = self.sender.subscribe();
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            let item = match receiver.recv().await {
                Ok(event) => Notification::Event(event),
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
