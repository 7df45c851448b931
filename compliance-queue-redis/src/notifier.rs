//! [`RedisNotifier`]: channel events fanned out to every instance through Redis pub/sub.

use std::fmt;
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use compliance_core::ports::{ChannelEvent, Notification, NotificationStream, Notifier};
use compliance_core::StoreError;
use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::Client;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, RedisOptions};
use crate::conn::Connector;

/// How often the listening connection is pinged to find a half-open socket.
const PING_EVERY: Duration = Duration::from_secs(15);
/// The longest pause between two attempts to re-subscribe.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A [`Notifier`] on Redis pub/sub, for several instances behind a load balancer.
///
/// Each event is published as JSON on the Redis channel `{prefix}events:{channel}`: one
/// channel per component (`…events:component:{id}`) plus `…events:components`. Each notifier
/// listens with a single pattern subscription, `PSUBSCRIBE {prefix}events:*`, on its own
/// connection, and fans what it hears out to its local subscribers through a broadcast ring.
///
/// Pub/sub keeps nothing for absent listeners, so whenever the listening connection was down
/// (Redis restarted, the client was killed, the network broke) every local subscriber gets a
/// [`Notification::Gap`] once it is back, and should tell its clients to refetch. A subscriber
/// that falls more than the ring's capacity behind gets a `Gap` too; `publish` never waits
/// for subscribers.
///
/// The listening connection opens on the first `subscribe`; `subscribe` waits up to the
/// connect timeout for it and otherwise returns a stream that starts with a `Gap` once Redis
/// is reachable, so an application starts even while Redis is down.
pub struct RedisNotifier {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Connector,
    channel_prefix: String,
    events: broadcast::Sender<Notification>,
    link: Arc<watch::Sender<Link>>,
    listener: Once,
    shutdown: CancellationToken,
}

/// The listening connection's state; `generation` counts successful subscriptions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Link {
    connected: bool,
    generation: u64,
}

impl RedisNotifier {
    /// How many events a subscriber may fall behind by default before it gets a gap.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A notifier on the Redis at `url`, with default options.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `url` is not a Redis URL.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        Ok(Self::new(RedisOptions::from_url(url)?))
    }

    /// A notifier with `options`, holding [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) events
    /// per subscriber.
    #[must_use]
    pub fn new(options: RedisOptions) -> Self {
        Self::with_capacity(options, Self::DEFAULT_CAPACITY)
    }

    /// A notifier holding `capacity` events (at least one) per subscriber.
    #[must_use]
    pub fn with_capacity(options: RedisOptions, capacity: usize) -> Self {
        let (events, _) = broadcast::channel(capacity.max(1));
        let (link, _) = watch::channel(Link::default());
        Self {
            inner: Arc::new(Inner {
                channel_prefix: format!("{}events:", options.key_prefix),
                conn: Connector::new(options),
                events,
                link: Arc::new(link),
                listener: Once::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Whether Redis answers now (for a readiness probe).
    pub async fn ready(&self) -> bool {
        self.inner.conn.ping().await
    }

    /// Whether the listening connection is subscribed right now.
    #[must_use]
    pub fn listening(&self) -> bool {
        self.inner.link.borrow().connected
    }

    fn start_listener(&self) {
        let inner = &self.inner;
        inner.listener.call_once(|| {
            let listener = Listener {
                client: inner.conn.options().client.clone(),
                connect_timeout: inner.conn.options().connect_timeout,
                pattern: format!("{}*", escape_glob(&inner.channel_prefix)),
                events: inner.events.clone(),
                link: inner.link.clone(),
                shutdown: inner.shutdown.clone(),
            };
            tokio::spawn(listener.run());
        });
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl fmt::Debug for RedisNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNotifier")
            .field("url", &self.inner.conn.options().redacted_url())
            .field("channel_prefix", &self.inner.channel_prefix)
            .field("listening", &self.listening())
            .field("subscribers", &self.inner.events.receiver_count())
            .finish()
    }
}

#[async_trait]
impl Notifier for RedisNotifier {
    async fn publish(&self, event: ChannelEvent) -> Result<(), StoreError> {
        let channel = format!("{}{}", self.inner.channel_prefix, event.channel);
        let payload = serde_json::to_string(&event)
            .map_err(|e| StoreError::backend("encoding a channel event", e))?;
        self.inner
            .conn
            .run("publishing an event", |mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&payload)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn subscribe(&self) -> Result<NotificationStream, StoreError> {
        self.start_listener();
        let inner = &self.inner;
        let mut link = inner.link.subscribe();
        let wait = inner.conn.options().connect_timeout;
        // Not being connected yet is not an error: the listener sends a gap once it is.
        let _ = tokio::time::timeout(wait, link.wait_for(|l| l.connected)).await;

        let before = *link.borrow();
        let receiver = inner.events.subscribe();
        let after = *link.borrow();
        // The link came up (again) while we subscribed: its gap may have gone out before this
        // receiver existed.
        let missed = after.connected && before != after;
        let first = missed.then(|| Notification::Gap {
            reason: "redis subscription re-established while subscribing".to_owned(),
        });

        let events = futures::stream::unfold(receiver, |mut receiver| async move {
            let item = match receiver.recv().await {
                Ok(notification) => notification,
                Err(broadcast::error::RecvError::Lagged(missed)) => Notification::Gap {
                    reason: format!("subscriber lagged and missed {missed} events"),
                },
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((item, receiver))
        });
        Ok(Box::pin(futures::stream::iter(first).chain(events)))
    }
}

/// The task that holds the pattern subscription and re-establishes it.
struct Listener {
    client: Client,
    connect_timeout: Duration,
    pattern: String,
    events: broadcast::Sender<Notification>,
    link: Arc<watch::Sender<Link>>,
    shutdown: CancellationToken,
}

enum Ended {
    Shutdown,
    Lost(String),
}

impl Listener {
    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.subscribe().await {
                Ok((sink, stream)) => {
                    backoff = Duration::from_millis(100);
                    // Gap first, then the flag: a subscriber that sees the flag up does not
                    // need this gap, one that subscribed while the link was down does.
                    if self.events.receiver_count() > 0 {
                        let _ = self.events.send(Notification::Gap {
                            reason: "redis subscription was interrupted; events may be missed"
                                .to_owned(),
                        });
                    }
                    self.link.send_modify(|l| {
                        l.connected = true;
                        l.generation += 1;
                    });
                    tracing::debug!(pattern = %self.pattern, "redis subscription established");

                    let ended = self.pump(sink, stream).await;
                    self.link.send_modify(|l| l.connected = false);
                    match ended {
                        Ended::Shutdown => return,
                        Ended::Lost(why) => {
                            tracing::warn!(reason = %why, "redis subscription lost; reconnecting");
                        }
                    }
                }
                Err(why) => {
                    tracing::debug!(reason = %why, "cannot subscribe to redis yet");
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn subscribe(&self) -> Result<(PubSubSink, PubSubStream), String> {
        let attempt = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.psubscribe(&self.pattern).await?;
            Ok::<_, redis::RedisError>(pubsub.split())
        };
        tokio::select! {
            () = self.shutdown.cancelled() => Err("shutting down".to_owned()),
            opened = tokio::time::timeout(self.connect_timeout, attempt) => match opened {
                Ok(Ok(parts)) => Ok(parts),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out".to_owned()),
            },
        }
    }

    async fn pump(&self, mut sink: PubSubSink, mut stream: PubSubStream) -> Ended {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Ended::Shutdown,
                message = stream.next() => {
                    let Some(message) = message else {
                        return Ended::Lost("connection closed".to_owned());
                    };
                    self.deliver(message.get_channel_name(), message.get_payload_bytes());
                }
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(
                        self.connect_timeout,
                        sink.ping::<redis::Value>(),
                    )
                    .await;
                    match pong {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Ended::Lost(e.to_string()),
                        Err(_) => return Ended::Lost("ping timed out".to_owned()),
                    }
                }
            }
        }
    }

    fn deliver(&self, channel: &str, payload: &[u8]) {
        match serde_json::from_slice::<ChannelEvent>(payload) {
            Ok(event) => {
                // No receiver is not an error: nobody is listening in this process.
                let _ = self.events.send(Notification::Event(event));
            }
            Err(e) => tracing::warn!(channel, error = %e, "ignoring malformed channel event"),
        }
    }
}

/// `text` with Redis glob metacharacters escaped, so a prefix matches only itself.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_metacharacters_in_the_prefix_are_escaped() {
        assert_eq!(escape_glob("app:events:"), "app:events:");
        assert_eq!(escape_glob("t[1]*?:"), "t\\[1\\]\\*\\?:");
    }
}
