//! The conformance suite of [`Notifier`].
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use compliance_core::memory::InMemoryNotifier;
//! use compliance_core::ports::Notifier;
//! compliance_core::testing::notifier::run_all(|| async {
//!     Arc::new(InMemoryNotifier::new()) as Arc<dyn Notifier>
//! })
//! .await;
//! # }
//! ```
//!
//! [`run_all`] checks what every notifier guarantees. A notifier with a bounded buffer per
//! subscriber also calls [`lagging_subscriber_gets_gap`] with a burst larger than that buffer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::ports::{ChannelEvent, Notification, NotificationStream, Notifier};
use crate::testing::fixtures::at;
use crate::testing::within;

/// How long a check waits for one notification before it fails.
const PATIENCE: Duration = Duration::from_secs(5);

/// Runs every notifier check, each against a fresh notifier from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Notifier>>,
{
    every_subscriber_gets_every_event_in_order(&make().await).await;
    subscribe_after_publish_misses_old_events(&make().await).await;
    publish_without_subscribers(&make().await).await;
    lagging_subscriber_never_blocks_publisher(&make().await).await;
}

/// The `n`-th test event.
#[must_use]
pub fn event(n: u64) -> ChannelEvent {
    ChannelEvent {
        channel: if n % 2 == 0 {
            "components".to_owned()
        } else {
            "component:0191e2b4-7c1a-7000-8000-000000000001".to_owned()
        },
        event: "sync.completed".to_owned(),
        data: serde_json::json!({ "n": n, "issues_count": n * 3 }),
        timestamp: at(i64::try_from(n).unwrap_or(i64::MAX)),
    }
}

/// The number `n` of an event made by [`event`].
fn number(event: &ChannelEvent) -> u64 {
    event
        .data
        .get("n")
        .and_then(serde_json::Value::as_u64)
        .expect("a test event")
}

async fn next(stream: &mut NotificationStream, what: &str) -> Notification {
    within(PATIENCE, what, stream.next())
        .await
        .unwrap_or_else(|| panic!("{what}: the subscription ended"))
}

/// Every subscriber receives every event, unchanged and in publish order.
pub async fn every_subscriber_gets_every_event_in_order(notifier: &Arc<dyn Notifier>) {
    const EVENTS: u64 = 50;
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        subscribers.push(notifier.subscribe().await.unwrap());
    }
    for n in 0..EVENTS {
        notifier.publish(event(n)).await.unwrap();
    }
    for (i, stream) in subscribers.iter_mut().enumerate() {
        for n in 0..EVENTS {
            match next(stream, "a subscribed event").await {
                Notification::Event(got) => {
                    assert_eq!(
                        got,
                        event(n),
                        "subscriber {i} got events out of order or changed"
                    );
                }
                Notification::Gap { reason } => {
                    panic!("subscriber {i} reported a gap on a quiet run: {reason}")
                }
            }
        }
    }
}

/// A subscription sees events published after it, not before.
pub async fn subscribe_after_publish_misses_old_events(notifier: &Arc<dyn Notifier>) {
    let mut early = notifier.subscribe().await.unwrap();
    notifier.publish(event(1)).await.unwrap();
    // Wait until the first event has surely gone through before subscribing again.
    assert_eq!(
        next(&mut early, "the first event").await,
        Notification::Event(event(1))
    );

    let mut late = notifier.subscribe().await.unwrap();
    notifier.publish(event(2)).await.unwrap();
    assert_eq!(
        next(&mut late, "the second event").await,
        Notification::Event(event(2))
    );
    assert_eq!(
        next(&mut early, "the second event").await,
        Notification::Event(event(2))
    );
}

/// Publishing with nobody listening succeeds.
pub async fn publish_without_subscribers(notifier: &Arc<dyn Notifier>) {
    for n in 0..10 {
        within(
            PATIENCE,
            "publish with no subscriber",
            notifier.publish(event(n)),
        )
        .await
        .unwrap();
    }
    let mut stream = notifier.subscribe().await.unwrap();
    notifier.publish(event(99)).await.unwrap();
    assert_eq!(
        next(&mut stream, "an event").await,
        Notification::Event(event(99))
    );
}

/// A subscriber that does not read never blocks `publish`, and never loses events silently:
/// what it reads later is in order, and every hole is announced by a gap.
pub async fn lagging_subscriber_never_blocks_publisher(notifier: &Arc<dyn Notifier>) {
    const BURST: u64 = 2_000;
    let mut stalled = notifier.subscribe().await.unwrap();

    within(
        Duration::from_secs(30),
        "publishing past a stalled subscriber",
        async {
            for n in 0..BURST {
                notifier.publish(event(n)).await.unwrap();
            }
        },
    )
    .await;

    notifier.publish(event(BURST)).await.unwrap();
    let mut expected = 0;
    let mut gap_pending = false;
    loop {
        match next(&mut stalled, "the stalled subscriber's backlog").await {
            Notification::Gap { .. } => gap_pending = true,
            Notification::Event(got) => {
                let n = number(&got);
                assert!(
                    n == expected || (gap_pending && n > expected),
                    "event {n} arrived when {expected} was due, with no gap announced"
                );
                gap_pending = false;
                expected = n + 1;
                if n == BURST {
                    break;
                }
            }
        }
    }
}

/// A subscriber that falls further behind than `burst` events gets a gap, then newer events.
pub async fn lagging_subscriber_gets_gap(notifier: &Arc<dyn Notifier>, burst: u64) {
    let mut stalled = notifier.subscribe().await.unwrap();
    within(
        Duration::from_secs(30),
        "publishing a burst past a stalled subscriber",
        async {
            for n in 0..burst {
                notifier.publish(event(n)).await.unwrap();
            }
        },
    )
    .await;

    match next(&mut stalled, "the first notification after the burst").await {
        Notification::Gap { reason } => assert!(!reason.is_empty(), "a gap says why"),
        Notification::Event(got) => {
            panic!(
                "expected a gap after {burst} unread events, got event {}",
                number(&got)
            )
        }
    }
    let after_gap = next(&mut stalled, "an event after the gap").await;
    let Notification::Event(got) = after_gap else {
        panic!("expected an event after the gap, got {after_gap:?}");
    };
    assert!(number(&got) > 0, "the events before the gap were dropped");
    assert!(number(&got) < burst);
}
