//! `RedisNotifier` against a real Redis: fan-out between instances, order, gaps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::TestRedis;
use compliance_core::ports::{ChannelEvent, Notification, NotificationStream, Notifier};
use compliance_queue_redis::{RedisNotifier, RedisOptions};
use futures::StreamExt;

fn event(channel: &str, n: u32) -> ChannelEvent {
    ChannelEvent {
        channel: channel.to_owned(),
        event: "sync.completed".to_owned(),
        data: serde_json::json!({ "n": n }),
        timestamp: Utc::now(),
    }
}

async fn next(stream: &mut NotificationStream) -> Notification {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a notification within 10 s")
        .expect("the stream goes on")
}

/// Publishes until Redis takes it (the publisher may be reconnecting).
async fn publish_eventually(notifier: &RedisNotifier, event: ChannelEvent) {
    for _ in 0..50 {
        if notifier.publish(event.clone()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("publish kept failing");
}

#[tokio::test]
async fn every_instance_receives_every_event_in_publish_order() {
    let Some(redis) =
        TestRedis::start("every_instance_receives_every_event_in_publish_order").await
    else {
        return;
    };
    let publisher = RedisNotifier::new(redis.options());
    let other = RedisNotifier::new(redis.options());
    let mut here = publisher.subscribe().await.unwrap();
    let mut there = other.subscribe().await.unwrap();

    for n in 0..50 {
        let channel = if n % 2 == 0 {
            "components"
        } else {
            "component:42"
        };
        publisher.publish(event(channel, n)).await.unwrap();
    }

    for stream in [&mut here, &mut there] {
        for n in 0..50 {
            let Notification::Event(got) = next(stream).await else {
                panic!("unexpected gap");
            };
            assert_eq!(got.data["n"], n);
            let channel = if n % 2 == 0 {
                "components"
            } else {
                "component:42"
            };
            assert_eq!(got.channel, channel);
        }
    }
}

#[tokio::test]
async fn events_of_another_prefix_and_malformed_messages_are_not_delivered() {
    let Some(redis) =
        TestRedis::start("events_of_another_prefix_and_malformed_messages_are_not_delivered").await
    else {
        return;
    };
    let options = redis.fresh_options();
    let channel_prefix = format!("{}events:", options.prefix());
    let notifier = RedisNotifier::new(options);
    let neighbour = RedisNotifier::new(redis.fresh_options());
    let mut stream = notifier.subscribe().await.unwrap();

    neighbour.publish(event("components", 1)).await.unwrap();
    let mut conn = redis.connection().await;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{channel_prefix}components"))
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    notifier.publish(event("components", 2)).await.unwrap();

    let Notification::Event(got) = next(&mut stream).await else {
        panic!("unexpected gap");
    };
    assert_eq!(got.data["n"], 2);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_gets_a_gap_and_publish_never_waits() {
    let Some(redis) =
        TestRedis::start("a_subscriber_that_falls_behind_gets_a_gap_and_publish_never_waits").await
    else {
        return;
    };
    let notifier = RedisNotifier::with_capacity(redis.options(), 4);
    let mut slow = notifier.subscribe().await.unwrap();

    for n in 0..20 {
        notifier.publish(event("components", n)).await.unwrap();
    }
    // Let the listener receive everything before reading.
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert!(matches!(next(&mut slow).await, Notification::Gap { .. }));
    let Notification::Event(got) = next(&mut slow).await else {
        panic!("one gap, then events");
    };
    assert_eq!(got.data["n"], 16, "the ring keeps the newest four");
}

#[tokio::test]
async fn after_its_connection_is_killed_a_subscriber_gets_a_gap_then_events_again() {
    let Some(redis) = TestRedis::start(
        "after_its_connection_is_killed_a_subscriber_gets_a_gap_then_events_again",
    )
    .await
    else {
        return;
    };
    let user = redis.user(Some(2)).await;
    let options = RedisOptions::from_url(&user.url)
        .unwrap()
        .key_prefix(redis.prefix.clone());
    let notifier = RedisNotifier::new(options);
    let mut stream = notifier.subscribe().await.unwrap();
    notifier.publish(event("components", 1)).await.unwrap();
    assert!(matches!(next(&mut stream).await, Notification::Event(_)));

    assert!(user.kill_connections().await >= 1);

    let Notification::Gap { reason } = next(&mut stream).await else {
        panic!("a gap must follow the lost connection");
    };
    assert!(reason.contains("interrupted"), "{reason}");
    assert!(notifier.listening());
    publish_eventually(&notifier, event("components", 2)).await;
    let Notification::Event(got) = next(&mut stream).await else {
        panic!("events flow again");
    };
    assert_eq!(got.data["n"], 2);
}

#[tokio::test]
async fn a_notifier_on_an_unreachable_redis_starts_and_reports_unavailable() {
    // Port 1 on localhost refuses connections; this needs no running Redis.
    let options = RedisOptions::from_url("redis://:hunter2@127.0.0.1:1")
        .unwrap()
        .connect_timeout(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(200));
    let notifier = RedisNotifier::new(options);

    let mut stream = notifier
        .subscribe()
        .await
        .expect("subscribing does not fail");
    let err = notifier.publish(event("components", 1)).await.unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert!(!format!("{err:?} {notifier:?}").contains("hunter2"));
    assert!(!notifier.ready().await);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err(),
        "nothing arrives while redis is down"
    );
}
