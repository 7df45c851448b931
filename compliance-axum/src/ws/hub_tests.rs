use super::*;

use serde_json::{json, Value};

fn event(channel: &str, n: u64) -> ChannelEvent {
    ChannelEvent {
        channel: channel.to_owned(),
        event: "sync.started".to_owned(),
        data: json!({ "n": n }),
        timestamp: chrono::DateTime::from_timestamp(1_736_937_300, 0).unwrap(),
    }
}

fn hub_with(config: HubConfig) -> Hub {
    Hub::new(config, CancellationToken::new())
}

fn drain(rx: &mut mpsc::Receiver<Utf8Bytes>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(frame) = rx.try_recv() {
        out.push(serde_json::from_str(&frame).unwrap());
    }
    out
}

fn seq_of(frame: &Value) -> u64 {
    frame["seq"].as_u64().unwrap()
}

#[test]
fn subscriber_gets_subscribed_then_numbered_events() {
    let hub = hub_with(HubConfig::default());
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", None).unwrap();
    let first = hub.publish(&event("components", 1)).unwrap();
    let second = hub.publish(&event("components", 2)).unwrap();
    hub.publish(&event("component:other", 3)).unwrap();

    let frames = drain(&mut rx);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0]["type"], "subscribed");
    assert_eq!(seq_of(&frames[0]) + 1, first);
    assert_eq!(second, first + 1);
    assert_eq!(frames[1]["type"], "event");
    assert_eq!(frames[1]["data"]["n"], 1);
    assert_eq!(seq_of(&frames[1]), first);
    assert_eq!(seq_of(&frames[2]), second);
}

#[test]
fn resubscribing_with_last_seq_replays_exactly_the_missed_events() {
    let hub = hub_with(HubConfig::default());
    let seqs: Vec<u64> = (1..=5)
        .map(|n| hub.publish(&event("components", n)).unwrap())
        .collect();

    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", Some(seqs[1])).unwrap();
    hub.publish(&event("components", 6)).unwrap();

    let frames = drain(&mut rx);
    assert_eq!(frames[0]["type"], "subscribed");
    assert_eq!(seq_of(&frames[0]), seqs[4]);
    let replayed: Vec<u64> = frames[1..]
        .iter()
        .map(|f| f["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed, vec![3, 4, 5, 6]);
}

#[test]
fn last_seq_at_head_replays_nothing() {
    let hub = hub_with(HubConfig::default());
    let head = hub.publish(&event("components", 1)).unwrap();
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", Some(head)).unwrap();
    let frames = drain(&mut rx);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["type"], "subscribed");
}

#[test]
fn last_seq_older_than_history_gets_a_gap() {
    let hub = hub_with(HubConfig {
        history_per_channel: 3,
        ..HubConfig::default()
    });
    let seqs: Vec<u64> = (1..=10)
        .map(|n| hub.publish(&event("components", n)).unwrap())
        .collect();
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", Some(seqs[2])).unwrap();

    let frames = drain(&mut rx);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1]["type"], "gap");
    assert_eq!(frames[1]["reason"], "history_exceeded");
    assert_eq!(seq_of(&frames[1]), seqs[9]);

    // The oldest kept event is still replayable from the one before it.
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", Some(seqs[6])).unwrap();
    let frames = drain(&mut rx);
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[1]["data"]["n"], 8);
}

#[test]
fn a_seq_from_another_numbering_gets_a_gap() {
    let hub = hub_with(HubConfig::default());
    let head = hub.publish(&event("components", 1)).unwrap();
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", Some(head + 100)).unwrap();
    let frames = drain(&mut rx);
    assert_eq!(frames[1]["type"], "gap");

    // A channel nobody has published to yet has no history either.
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("component:new", Some(3)).unwrap();
    let frames = drain(&mut rx);
    assert_eq!(frames[1]["type"], "gap");
}

#[test]
fn a_replay_larger_than_the_send_buffer_becomes_a_gap() {
    let hub = hub_with(HubConfig {
        send_buffer: 4,
        ..HubConfig::default()
    });
    let seqs: Vec<u64> = (1..=10)
        .map(|n| hub.publish(&event("components", n)).unwrap())
        .collect();
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", Some(seqs[0])).unwrap();
    let frames = drain(&mut rx);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1]["reason"], "replay_too_large");
}

#[test]
fn a_full_queue_drops_that_connection_and_no_other() {
    let hub = hub_with(HubConfig {
        send_buffer: 4,
        ..HubConfig::default()
    });
    let (mut slow, _slow_rx) = hub.connect().unwrap();
    let (mut fast, mut fast_rx) = hub.connect().unwrap();
    slow.subscribe("components", None).unwrap();
    fast.subscribe("components", None).unwrap();
    drain(&mut fast_rx);

    for n in 0..20 {
        hub.publish(&event("components", n)).unwrap();
        assert_eq!(drain(&mut fast_rx).len(), 1, "fast client missed event {n}");
    }
    assert!(slow.kill_token().is_cancelled());
    assert!(!fast.kill_token().is_cancelled());
    assert_eq!(
        slow.subscribe("component:x", None),
        Err(SubscribeError::Slow)
    );
}

#[test]
fn subscriptions_per_connection_are_capped() {
    let hub = hub_with(HubConfig {
        max_subscriptions: 2,
        ..HubConfig::default()
    });
    let (mut conn, _rx) = hub.connect().unwrap();
    conn.subscribe("a", None).unwrap();
    conn.subscribe("b", None).unwrap();
    conn.subscribe("a", None).unwrap();
    assert_eq!(
        conn.subscribe("c", None),
        Err(SubscribeError::TooManySubscriptions(2))
    );
    assert!(conn.unsubscribe("a"));
    assert!(!conn.unsubscribe("a"));
    conn.subscribe("c", None).unwrap();
}

#[test]
fn idle_channels_are_evicted_least_recently_used_first() {
    let hub = hub_with(HubConfig {
        max_channels: 2,
        ..HubConfig::default()
    });
    hub.publish(&event("a", 1)).unwrap();
    hub.publish(&event("b", 1)).unwrap();
    hub.publish(&event("a", 2)).unwrap();
    hub.publish(&event("c", 1)).unwrap();
    assert_eq!(hub.stats().channels, 2);

    // "b" was least recently used: a client that saw it gets a gap, not a wrong replay.
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("a", Some(0)).unwrap();
    assert_eq!(drain(&mut rx)[1]["type"], "gap");
    let (mut other, _rx) = hub.connect().unwrap();
    other.subscribe("c", None).unwrap();

    // Both channels followed: a third cannot be made.
    let (mut third, _rx) = hub.connect().unwrap();
    assert_eq!(
        third.subscribe("d", None),
        Err(SubscribeError::TooManyChannels)
    );
    assert_eq!(hub.publish(&event("d", 1)), None);
}

#[test]
fn a_recreated_channel_numbers_above_everything_before() {
    let hub = hub_with(HubConfig {
        max_channels: 1,
        ..HubConfig::default()
    });
    let old = hub.publish(&event("a", 1)).unwrap();
    hub.publish(&event("b", 1)).unwrap();
    let new = hub.publish(&event("a", 2)).unwrap();
    assert!(new > old);

    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("a", Some(old)).unwrap();
    assert_eq!(drain(&mut rx)[1]["type"], "gap");
}

#[test]
fn a_notifier_gap_reaches_every_subscriber_and_clears_history() {
    let hub = hub_with(HubConfig::default());
    let before = hub.publish(&event("components", 1)).unwrap();
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", None).unwrap();
    hub.gap_all(GapReason::NotifierGap);

    let frames = drain(&mut rx);
    assert_eq!(frames[1]["type"], "gap");
    assert_eq!(frames[1]["reason"], "notifier_gap");
    assert_eq!(seq_of(&frames[1]), before);
    assert_eq!(hub.stats().history_bytes, 0);

    let (mut late, mut late_rx) = hub.connect().unwrap();
    late.subscribe("components", Some(before - 1)).unwrap();
    assert_eq!(drain(&mut late_rx)[1]["type"], "gap");
}

#[test]
fn history_is_bounded_in_bytes() {
    let hub = hub_with(HubConfig {
        max_history_bytes: 2000,
        ..HubConfig::default()
    });
    for n in 0..100 {
        hub.publish(&event(&format!("component:{n}"), n)).unwrap();
    }
    assert!(hub.stats().history_bytes <= 2000);
    assert!(hub.stats().channels < 100);

    // With every channel followed, the budget still holds by shortening histories.
    let hub = hub_with(HubConfig {
        max_history_bytes: 2000,
        ..HubConfig::default()
    });
    let (mut conn, _rx) = hub.connect().unwrap();
    conn.subscribe("components", None).unwrap();
    for n in 0..100 {
        hub.publish(&event("components", n));
    }
    assert!(hub.stats().history_bytes <= 2000);
}

#[tokio::test]
async fn dropping_a_connection_unsubscribes_and_counts_down() {
    let hub = hub_with(HubConfig {
        max_connections: 1,
        ..HubConfig::default()
    });
    let (mut conn, _rx) = hub.connect().unwrap();
    assert_eq!(hub.connect().err(), Some(HubFull));
    conn.subscribe("components", None).unwrap();
    assert_eq!(hub.stats().connections, 1);

    let waiter = tokio::spawn({
        let hub = hub.clone();
        async move { hub.closed().await }
    });
    drop(conn);
    waiter.await.unwrap();
    assert_eq!(hub.stats().connections, 0);
    // Nothing to replay and nobody listening: the channel is gone.
    assert_eq!(hub.stats().channels, 0);
    assert!(hub.connect().is_ok());
}

#[tokio::test]
async fn the_pump_forwards_notifier_events_and_gaps() {
    let hub = hub_with(HubConfig::default());
    let (mut conn, mut rx) = hub.connect().unwrap();
    conn.subscribe("components", None).unwrap();

    let items = vec![
        Notification::Event(event("components", 1)),
        Notification::Gap {
            reason: "reconnected".into(),
        },
    ];
    let stream: NotificationStream = Box::pin(futures::stream::iter(items));
    let notifier: Arc<dyn Notifier> = Arc::new(NeverNotifier);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(hub.clone().pump(notifier, Some(stream), shutdown.clone()));

    let mut frames = Vec::new();
    while frames.len() < 3 {
        let frame = rx.recv().await.unwrap();
        frames.push(serde_json::from_str::<Value>(&frame).unwrap());
    }
    assert_eq!(frames[1]["type"], "event");
    assert_eq!(frames[2]["type"], "gap");
    shutdown.cancel();
    task.await.unwrap();
}

struct NeverNotifier;

#[async_trait::async_trait]
impl Notifier for NeverNotifier {
    async fn publish(&self, _event: ChannelEvent) -> Result<(), compliance_core::StoreError> {
        Ok(())
    }

    async fn subscribe(&self) -> Result<NotificationStream, compliance_core::StoreError> {
        Ok(Box::pin(futures::stream::pending()))
    }
}
