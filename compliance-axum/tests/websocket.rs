//! `/ws` with a real client over loopback: sync events for a webhook, resuming from the last
//! `seq`, a slow client dropped while a fast one keeps receiving, and 1001 on shutdown.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use compliance_axum::HubConfig;
use compliance_core::events::component_channel;
use compliance_core::ports::{ChannelEvent, JobQueue, Notifier, ScanSource};
use compliance_core::testing::fixtures;
use compliance_core::testing::scripted::ScriptedScanSource;
use compliance_core::worker::{SyncWorker, WorkerConfig};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Serves the harness's router on a loopback port.
async fn serve(h: &Harness) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api = h.api.clone();
    let router = h.router.clone();
    tokio::spawn(async move {
        compliance_axum::serve(listener, &api, router, std::future::pending()).await
    });
    addr
}

async fn connect(addr: SocketAddr) -> Client {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {READ_TOKEN}").parse().unwrap(),
    );
    let (client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    client
}

async fn say(client: &mut Client, value: Value) {
    client
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, skipping pings; fails after five seconds.
async fn next_json(client: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("no message within 5 s")
            .expect("connection ended")
            .expect("read failed");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
}

fn worker(h: &Harness, snapshot_seed: u64) -> SyncWorker {
    let queue: Arc<dyn JobQueue> = h.queue.clone();
    let notifier: Arc<dyn Notifier> = h.notifier.clone();
    let source: Arc<dyn ScanSource> = Arc::new(ScriptedScanSource::always(fixtures::snapshot(
        3,
        5,
        snapshot_seed,
    )));
    SyncWorker::new(
        h.stores.clone(),
        queue,
        source,
        notifier,
        h.clock.clone(),
        WorkerConfig::default(),
    )
}

#[tokio::test]
async fn sync_events_arrive_and_a_reconnect_gets_exactly_what_it_missed() {
    let h = Harness::new().await;
    let component = h.register("payment-service", REPO).await;
    let addr = serve(&h).await;
    let channel = component_channel(component.id);

    let mut client = connect(addr).await;
    say(
        &mut client,
        json!({"type": "subscribe", "channel": channel}),
    )
    .await;
    let subscribed = next_json(&mut client).await;
    assert_eq!(subscribed["type"], "subscribed");
    assert_eq!(subscribed["channel"], channel.as_str());

    let accepted = h.send(signed_webhook(&webhook_body(REPO, "abc123"))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    worker(&h, 1).run_once().await.unwrap().expect("a job ran");

    let started = next_json(&mut client).await;
    assert_eq!(started["type"], "event");
    assert_eq!(started["event"], "sync.started");
    assert_eq!(started["channel"], channel.as_str());
    assert_eq!(started["data"]["sync_job_id"], accepted.json()["sync_id"]);
    assert!(started["timestamp"].is_string());
    let completed = next_json(&mut client).await;
    assert_eq!(completed["event"], "sync.completed");
    assert_eq!(completed["data"]["issues_count"], 3);
    assert_eq!(completed["data"]["dependencies_count"], 5);
    assert_eq!(completed["data"]["status"], "FAILING");
    let last_seq = completed["seq"].as_u64().unwrap();
    assert_eq!(started["seq"].as_u64().unwrap() + 1, last_seq);
    assert_eq!(
        subscribed["seq"].as_u64().unwrap() + 1,
        started["seq"].as_u64().unwrap()
    );
    drop(client);

    // While the client is away, a second scan is synced.
    let again = h.send(signed_webhook(&webhook_body(REPO, "def456"))).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    worker(&h, 2).run_once().await.unwrap().expect("a job ran");

    let mut client = connect(addr).await;
    say(
        &mut client,
        json!({"type": "subscribe", "channel": channel, "last_seq": last_seq}),
    )
    .await;
    let resubscribed = next_json(&mut client).await;
    assert_eq!(resubscribed["type"], "subscribed");
    assert_eq!(resubscribed["seq"].as_u64().unwrap(), last_seq + 2);
    let missed_started = next_json(&mut client).await;
    let missed_completed = next_json(&mut client).await;
    assert_eq!(missed_started["event"], "sync.started");
    assert_eq!(missed_started["seq"].as_u64().unwrap(), last_seq + 1);
    assert_eq!(
        missed_started["data"]["sync_job_id"],
        again.json()["sync_id"]
    );
    assert_eq!(missed_completed["event"], "sync.completed");
    assert_eq!(missed_completed["seq"].as_u64().unwrap(), last_seq + 2);
    // Nothing else was replayed: the next message answers our ping.
    say(&mut client, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut client).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn a_seq_beyond_the_history_gets_a_gap() {
    let h = Harness::configured(|b| {
        b.hub(HubConfig {
            history_per_channel: 2,
            ..HubConfig::default()
        })
    })
    .await;
    let addr = serve(&h).await;
    let mut client = connect(addr).await;
    say(
        &mut client,
        json!({"type": "subscribe", "channel": "components"}),
    )
    .await;
    assert_eq!(next_json(&mut client).await["type"], "subscribed");
    let mut seqs = Vec::new();
    for n in 0..5 {
        h.notifier.publish(event(n, 8)).await.unwrap();
        seqs.push(next_json(&mut client).await["seq"].as_u64().unwrap());
    }

    // Four events came after the first one; the history holds two.
    say(
        &mut client,
        json!({"type": "subscribe", "channel": "components", "last_seq": seqs[0]}),
    )
    .await;
    assert_eq!(next_json(&mut client).await["type"], "subscribed");
    let gap = next_json(&mut client).await;
    assert_eq!(gap["type"], "gap");
    assert_eq!(gap["reason"], "history_exceeded");
    assert_eq!(gap["seq"].as_u64().unwrap(), seqs[4]);
}

fn event(n: u64, padding: usize) -> ChannelEvent {
    ChannelEvent {
        channel: "components".into(),
        event: "sync.completed".into(),
        data: json!({"n": n, "padding": "x".repeat(padding)}),
        timestamp: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_while_a_fast_one_keeps_receiving() {
    let h = Harness::configured(|b| {
        b.hub(HubConfig {
            send_buffer: 16,
            ..HubConfig::default()
        })
    })
    .await;
    let addr = serve(&h).await;

    let mut slow = connect(addr).await;
    say(
        &mut slow,
        json!({"type": "subscribe", "channel": "components"}),
    )
    .await;
    assert_eq!(next_json(&mut slow).await["type"], "subscribed");
    let mut fast = connect(addr).await;
    say(
        &mut fast,
        json!({"type": "subscribe", "channel": "components"}),
    )
    .await;
    assert_eq!(next_json(&mut fast).await["type"], "subscribed");
    assert_eq!(h.api.hub().stats().connections, 2);

    // Large events fill the slow client's socket buffers quickly.
    let mut published = 0;
    for n in 0..4000u64 {
        h.notifier.publish(event(n, 32 * 1024)).await.unwrap();
        published += 1;
        let got = next_json(&mut fast).await;
        assert_eq!(got["data"]["n"], n, "the fast client missed an event");
        if h.api.hub().stats().connections == 1 {
            break;
        }
    }
    assert_eq!(
        h.api.hub().stats().connections,
        1,
        "the slow client was not dropped after {published} events"
    );

    // The fast client still gets new events.
    h.notifier.publish(event(99_999, 8)).await.unwrap();
    assert_eq!(next_json(&mut fast).await["data"]["n"], 99_999);

    // The slow client, reading at last, finds its stream cut short.
    let mut received = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => received += 1,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("slow client's connection was not closed"),
        }
    }
    assert!(
        received < published,
        "slow client got all {published} events"
    );
}

#[tokio::test]
async fn shutdown_closes_websockets_with_going_away() {
    let h = Harness::new().await;
    let addr = serve(&h).await;
    let mut client = connect(addr).await;
    say(
        &mut client,
        json!({"type": "subscribe", "channel": "components"}),
    )
    .await;
    next_json(&mut client).await;

    h.api.shutdown();

    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match client.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("no close frame");
    assert_eq!(close.unwrap().code, CloseCode::Away);
    tokio::time::timeout(Duration::from_secs(5), h.api.hub().closed())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_handshake_needs_a_token() {
    let h = Harness::new().await;
    let addr = serve(&h).await;
    let error = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap_err();
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}
