use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::StoreError;

/// An event on a named channel, as the WebSocket clients receive it (minus `seq`, which the hub
/// adds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelEvent {
    /// The channel, for example `component:0191…` or `components`.
    pub channel: String,
    /// The event type, for example `sync.completed`.
    pub event: String,
    /// Event-specific data.
    pub data: serde_json::Value,
    /// When it was published.
    pub timestamp: Timestamp,
}

/// What a subscription yields.
#[derive(Clone, Debug, PartialEq)]
pub enum Notification {
    /// An event.
    Event(ChannelEvent),
    /// Events may have been missed (a dropped connection was re-established); subscribers should
    /// tell their clients to refetch.
    Gap {
        /// Why, in words.
        reason: String,
    },
}

/// A subscription's stream; it ends only when the notifier shuts down.
pub type NotificationStream = Pin<Box<dyn Stream<Item = Notification> + Send + 'static>>;

/// Fan-out of channel events to every subscriber, in this process or in every instance.
///
/// # Contract
///
/// - Every subscriber that was subscribed when `publish` returned receives the event, unless
///   it reports a [`Notification::Gap`] covering it.
/// - Events published by one publisher arrive in the order published.
/// - A slow subscriber never blocks `publish`: it lags and gets a `Gap` instead.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Publishes `event` to every subscriber.
    async fn publish(&self, event: ChannelEvent) -> Result<(), StoreError>;

    /// Subscribes to every channel.
    async fn subscribe(&self) -> Result<NotificationStream, StoreError>;
}
