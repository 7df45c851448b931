//! The fan-out hub: one notifier subscription, many WebSocket connections.
//!
//! Each channel numbers its events and keeps a bounded history so a reconnecting client can
//! ask for what it missed. Every connection has a bounded queue of ready-to-send frames; the
//! hub only ever `try_send`s into it, so a connection that cannot keep up is cut off instead
//! of slowing the hub or anyone else. An event is serialized once and the same bytes are shared
//! by every subscriber and the history.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use compliance_core::ports::{ChannelEvent, Notification, NotificationStream, Notifier};
use futures::StreamExt;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::metrics as m;
use crate::ws::protocol::{event_frame, GapReason, ServerMessage};

/// Limits and timers of the hub and its connections.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Events kept per channel for replay.
    pub history_per_channel: usize,
    /// Channels tracked at once; the least recently used channel without subscribers is
    /// forgotten to make room.
    pub max_channels: usize,
    /// Bytes of history kept over all channels; past it, idle channels are forgotten, least
    /// recently used first.
    pub max_history_bytes: usize,
    /// Frames queued per connection before it counts as too slow and is dropped.
    pub send_buffer: usize,
    /// Channels one connection may follow at once.
    pub max_subscriptions: usize,
    /// Open connections at once; more are refused with 503 before the upgrade.
    pub max_connections: usize,
    /// Largest client message accepted, in bytes.
    pub max_message_bytes: usize,
    /// How often the server pings an idle connection.
    pub ping_interval: Duration,
    /// A connection that sent nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// A single write that takes longer than this drops the connection.
    pub write_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            history_per_channel: 256,
            max_channels: 4096,
            max_history_bytes: 64 * 1024 * 1024,
            send_buffer: 512,
            max_subscriptions: 32,
            max_connections: 50_000,
            max_message_bytes: 4096,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a subscribe was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The connection follows as many channels as it may.
    #[error("too many subscriptions on this connection (at most {0})")]
    TooManySubscriptions(usize),
    /// The hub tracks as many channels as it may and none can be forgotten.
    #[error("the server follows too many channels; try again later")]
    TooManyChannels,
    /// The connection's queue is full or closed; it is being dropped.
    #[error("connection too slow")]
    Slow,
}

/// The connection limit is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many WebSocket connections")]
pub struct HubFull;

/// Figures for monitoring and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubStats {
    /// Open connections.
    pub connections: usize,
    /// Channels tracked.
    pub channels: usize,
    /// Bytes of history held.
    pub history_bytes: usize,
}

/// The WebSocket fan-out hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Inner {
    state: Mutex<State>,
    config: HubConfig,
    shutdown: CancellationToken,
    live: AtomicUsize,
    next_connection: AtomicU64,
    all_closed: Notify,
}

struct State {
    channels: HashMap<Arc<str>, Channel>,
    tick: u64,
    history_bytes: usize,
    highest_seq: u64,
}

struct Channel {
    /// The latest sequence number (the first event gets `head + 1`).
    head: u64,
    /// History covers the events in `(floor, head]`.
    floor: u64,
    history: VecDeque<(u64, Utf8Bytes)>,
    subscribers: HashMap<u64, Subscriber>,
    last_used: u64,
}

#[derive(Clone)]
struct Subscriber {
    tx: mpsc::Sender<Utf8Bytes>,
    kill: CancellationToken,
}

impl Subscriber {
    /// Queues `frame`; on a full or closed queue the connection is told to go.
    fn offer(&self, frame: Utf8Bytes) -> bool {
        if self.tx.try_send(frame).is_ok() {
            return true;
        }
        if !self.kill.is_cancelled() {
            metrics::counter!(m::WS_DROPPED, "reason" => "slow").increment(1);
            tracing::debug!("dropping slow websocket client");
            self.kill.cancel();
        }
        false
    }
}

impl Hub {
    /// A hub with `config` that stops its connections when `shutdown` is cancelled.
    #[must_use]
    pub fn new(config: HubConfig, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    channels: HashMap::new(),
                    tick: 0,
                    history_bytes: 0,
                    highest_seq: 0,
                }),
                config,
                shutdown,
                live: AtomicUsize::new(0),
                next_connection: AtomicU64::new(1),
                all_closed: Notify::new(),
            }),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// The token whose cancellation closes every connection with 1001 (going away).
    #[must_use]
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Current figures.
    #[must_use]
    pub fn stats(&self) -> HubStats {
        let state = self.lock();
        HubStats {
            connections: self.inner.live.load(Ordering::Acquire),
            channels: state.channels.len(),
            history_bytes: state.history_bytes,
        }
    }

    /// Waits until every connection has closed.
    pub async fn closed(&self) {
        loop {
            let notified = self.inner.all_closed.notified();
            if self.inner.live.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Numbers `event`, keeps it in its channel's history and queues it for every
    /// subscriber; returns its sequence number (`None` when no channel could be made for it).
    pub fn publish(&self, event: &ChannelEvent) -> Option<u64> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if !state.channels.contains_key(event.channel.as_str())
            && !state.make_room(self.inner.config.max_channels)
        {
            tracing::warn!(channel = %event.channel, "hub channel table full; event not kept");
            return None;
        }
        let base = state.next_base();
        state.tick += 1;
        let tick = state.tick;
        let channel = state
            .channels
            .entry(Arc::from(event.channel.as_str()))
            .or_insert_with(|| Channel::new(base));

        channel.head += 1;
        channel.last_used = tick;
        let seq = channel.head;
        let frame = Utf8Bytes::from(event_frame(event, seq));
        let size = frame.len();

        channel.history.push_back((seq, frame.clone()));
        let mut freed = 0;
        while channel.history.len() > self.inner.config.history_per_channel {
            freed += channel.pop_oldest();
        }
        channel
            .subscribers
            .retain(|_, subscriber| subscriber.offer(frame.clone()));

        state.highest_seq = state.highest_seq.max(seq);
        state.history_bytes = (state.history_bytes + size).saturating_sub(freed);
        state.enforce_history_budget(self.inner.config.max_history_bytes, &event.channel);
        Some(seq)
    }

    /// Tells every subscriber of every channel that events may have been missed, and forgets
    /// all history (a reconnecting client cannot be replayed across the hole).
    pub fn gap_all(&self, reason: GapReason) {
        let mut guard = self.lock();
        let state = &mut *guard;
        for (name, channel) in &mut state.channels {
            channel.floor = channel.head;
            channel.history.clear();
            let frame = Utf8Bytes::from(
                ServerMessage::Gap {
                    channel: name,
                    seq: channel.head,
                    reason,
                }
                .to_text(),
            );
            channel
                .subscribers
                .retain(|_, subscriber| subscriber.offer(frame.clone()));
        }
        state.history_bytes = 0;
    }

    /// Registers a new connection; the receiver yields the frames to send to it.
    ///
    /// # Errors
    ///
    /// [`HubFull`] when [`HubConfig::max_connections`] are open.
    pub fn connect(&self) -> Result<(Connection, mpsc::Receiver<Utf8Bytes>), HubFull> {
        let max = self.inner.config.max_connections;
        let admitted = self
            .inner
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(HubFull);
        }
        metrics::gauge!(m::WS_CONNECTIONS).increment(1.0);
        let (tx, rx) = mpsc::channel(self.inner.config.send_buffer.max(1));
        let connection = Connection {
            hub: self.clone(),
            id: self.inner.next_connection.fetch_add(1, Ordering::Relaxed),
            subscriber: Subscriber {
                tx,
                kill: CancellationToken::new(),
            },
            channels: Vec::new(),
        };
        Ok((connection, rx))
    }

    /// Follows `notifier` until `shutdown`, resubscribing (and announcing a gap) whenever its
    /// stream ends or fails.
    pub async fn pump(
        self,
        notifier: Arc<dyn Notifier>,
        first: Option<NotificationStream>,
        shutdown: CancellationToken,
    ) {
        let mut stream = first;
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut current = match stream.take() {
                Some(s) => s,
                None => match notifier.subscribe().await {
                    Ok(s) => {
                        backoff = Duration::from_millis(100);
                        // Whatever was published while we were not listening is lost.
                        self.gap_all(GapReason::NotifierGap);
                        s
                    }
                    Err(error) => {
                        tracing::warn!(%error, "hub cannot subscribe to notifier; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
            };
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = current.next() => next,
                };
                match next {
                    Some(Notification::Event(event)) => {
                        self.publish(&event);
                    }
                    Some(Notification::Gap { reason }) => {
                        tracing::warn!(%reason, "notifier reported a gap");
                        self.gap_all(GapReason::NotifierGap);
                    }
                    None => {
                        tracing::warn!("notifier stream ended; resubscribing");
                        break;
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent; a panic elsewhere must not take
        // the hub down with it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Channel {
    fn new(base: u64) -> Self {
        Self {
            head: base,
            floor: base,
            history: VecDeque::new(),
            subscribers: HashMap::new(),
            last_used: 0,
        }
    }

    /// Drops the oldest history entry; returns its size.
    fn pop_oldest(&mut self) -> usize {
        match self.history.pop_front() {
            Some((seq, frame)) => {
                self.floor = seq;
                frame.len()
            }
            None => 0,
        }
    }

    fn history_size(&self) -> usize {
        self.history.iter().map(|(_, f)| f.len()).sum()
    }
}

impl State {
    /// The first sequence number base for a new channel: above every number this hub has
    /// handed out, and above what an earlier run could have reached (time-based).
    fn next_base(&self) -> u64 {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2000)
        });
        now_ms.saturating_mul(1000).max(self.highest_seq + 1)
    }

    /// Makes room for one more channel; `false` when every channel has subscribers.
    fn make_room(&mut self, max_channels: usize) -> bool {
        while self.channels.len() >= max_channels {
            if !self.evict_idle(None) {
                return false;
            }
        }
        true
    }

    /// Forgets the least recently used channel without subscribers (never `keep`).
    fn evict_idle(&mut self, keep: Option<&str>) -> bool {
        // Limitation: a linear scan; it runs only when a limit is reached, and the table is
        // bounded by `max_channels`.
        let victim = self
            .channels
            .iter()
            .filter(|(name, c)| c.subscribers.is_empty() && Some(&***name) != keep)
            .min_by_key(|(_, c)| c.last_used)
            .map(|(name, _)| Arc::clone(name));
        let Some(victim) = victim else {
            return false;
        };
        if let Some(channel) = self.channels.remove(&victim) {
            self.history_bytes = self.history_bytes.saturating_sub(channel.history_size());
        }
        true
    }

    fn enforce_history_budget(&mut self, max_bytes: usize, current: &str) {
        while self.history_bytes > max_bytes {
            if self.evict_idle(Some(current)) {
                continue;
            }
            // Every other channel is followed: shorten the busiest history instead.
            let freed = self
                .channels
                .values_mut()
                .max_by_key(|c| c.history.len())
                .map_or(0, Channel::pop_oldest);
            if freed == 0 {
                return;
            }
            self.history_bytes = self.history_bytes.saturating_sub(freed);
        }
    }
}

/// One connection's registration with the hub; dropping it unsubscribes everything.
pub struct Connection {
    hub: Hub,
    id: u64,
    subscriber: Subscriber,
    channels: Vec<Arc<str>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Cancelled when the hub gave up on this connection (queue full).
    #[must_use]
    pub fn kill_token(&self) -> &CancellationToken {
        &self.subscriber.kill
    }

    /// The hub.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Channels this connection follows.
    #[must_use]
    pub fn channels(&self) -> &[Arc<str>] {
        &self.channels
    }

    /// Follows `channel`: queues `subscribed`, then the replay of what came after `last_seq`
    /// (or a `gap` when the history cannot cover it), atomically with respect to publishing so
    /// that no event is missed or repeated.
    ///
    /// # Errors
    ///
    /// See [`SubscribeError`].
    pub fn subscribe(
        &mut self,
        channel: &str,
        last_seq: Option<u64>,
    ) -> Result<(), SubscribeError> {
        let already = self.channels.iter().any(|c| &**c == channel);
        let max = self.hub.inner.config.max_subscriptions;
        if !already && self.channels.len() >= max {
            return Err(SubscribeError::TooManySubscriptions(max));
        }
        if self.subscriber.kill.is_cancelled() {
            return Err(SubscribeError::Slow);
        }

        let mut guard = self.hub.lock();
        let state = &mut *guard;
        if !state.channels.contains_key(channel)
            && !state.make_room(self.hub.inner.config.max_channels)
        {
            return Err(SubscribeError::TooManyChannels);
        }
        let base = state.next_base();
        state.tick += 1;
        let tick = state.tick;
        let name: Arc<str> = match state.channels.get_key_value(channel) {
            Some((name, _)) => Arc::clone(name),
            None => {
                let name: Arc<str> = Arc::from(channel);
                state.channels.insert(Arc::clone(&name), Channel::new(base));
                name
            }
        };
        let Some(entry) = state.channels.get_mut(&name) else {
            return Err(SubscribeError::TooManyChannels);
        };
        entry.last_used = tick;

        let frames = entry.frames_for(&name, last_seq, self.subscriber.tx.capacity());
        for frame in frames {
            if !self.subscriber.offer(frame) {
                entry.subscribers.remove(&self.id);
                return Err(SubscribeError::Slow);
            }
        }
        entry.subscribers.insert(self.id, self.subscriber.clone());
        drop(guard);

        if !already {
            self.channels.push(name);
        }
        Ok(())
    }

    /// Stops following `channel`; `false` when it was not followed.
    pub fn unsubscribe(&mut self, channel: &str) -> bool {
        let Some(index) = self.channels.iter().position(|c| &**c == channel) else {
            return false;
        };
        let name = self.channels.swap_remove(index);
        let mut state = self.hub.lock();
        remove_subscriber(&mut state, &name, self.id);
        true
    }

    /// Queues a frame for this connection only (`pong`, `error`, `unsubscribed`).
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Slow`] when the queue is full; the connection is being dropped.
    pub fn send(&self, text: String) -> Result<(), SubscribeError> {
        if self.subscriber.offer(Utf8Bytes::from(text)) {
            Ok(())
        } else {
            Err(SubscribeError::Slow)
        }
    }
}

impl Channel {
    fn frames_for(&self, name: &str, last_seq: Option<u64>, room: usize) -> Vec<Utf8Bytes> {
        let subscribed = ServerMessage::Subscribed {
            channel: name,
            seq: self.head,
        };
        let mut frames = vec![Utf8Bytes::from(subscribed.to_text())];
        let Some(last) = last_seq else {
            return frames;
        };
        let gap = |reason| {
            Utf8Bytes::from(
                ServerMessage::Gap {
                    channel: name,
                    seq: self.head,
                    reason,
                }
                .to_text(),
            )
        };
        if last < self.floor || last > self.head {
            frames.push(gap(GapReason::HistoryExceeded));
            return frames;
        }
        // `last <= head` and the history holds exactly `(floor, head]`.
        let missed = usize::try_from(self.head - last).unwrap_or(usize::MAX);
        if missed + 1 > room {
            frames.push(gap(GapReason::ReplayTooLarge));
            return frames;
        }
        let skip = self.history.len().saturating_sub(missed);
        frames.extend(self.history.iter().skip(skip).map(|(_, f)| f.clone()));
        frames
    }
}

fn remove_subscriber(state: &mut State, channel: &str, id: u64) {
    let Some(entry) = state.channels.get_mut(channel) else {
        return;
    };
    entry.subscribers.remove(&id);
    if entry.subscribers.is_empty() && entry.history.is_empty() {
        // Nothing to replay and nobody listening: the numbering can restart later from a
        // fresh base, which old clients' numbers fall outside of.
        state.channels.remove(channel);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        {
            let mut state = self.hub.lock();
            for name in &self.channels {
                remove_subscriber(&mut state, name, self.id);
            }
        }
        metrics::gauge!(m::WS_CONNECTIONS).decrement(1.0);
        if self.hub.inner.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.hub.inner.all_closed.notify_waiters();
        }
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
