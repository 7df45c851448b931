use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc as fmpsc;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::ws::hub::{Hub, HubConfig};
use compliance_core::ports::ChannelEvent;

/// A socket made of two channels: what the test sends in, and what the server writes out.
struct FakeSocket {
    incoming: fmpsc::UnboundedReceiver<Result<Message, String>>,
    outgoing: fmpsc::Sender<Message>,
}

impl Stream for FakeSocket {
    type Item = Result<Message, String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_next_unpin(cx)
    }
}

impl Sink<Message> for FakeSocket {
    type Error = fmpsc::SendError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.outgoing.poll_ready_unpin(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.outgoing.start_send_unpin(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.outgoing.poll_flush_unpin(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.outgoing.poll_close_unpin(cx)
    }
}

struct Client {
    to_server: fmpsc::UnboundedSender<Result<Message, String>>,
    from_server: fmpsc::Receiver<Message>,
    task: tokio::task::JoinHandle<Ended>,
}

impl Client {
    fn start(hub: &Hub, out_buffer: usize) -> Self {
        let (to_server, incoming) = fmpsc::unbounded();
        let (outgoing, from_server) = fmpsc::channel(out_buffer);
        let (connection, outbound) = hub.connect().unwrap();
        let socket = FakeSocket { incoming, outgoing };
        let task = tokio::spawn(run(socket, connection, outbound));
        Self {
            to_server,
            from_server,
            task,
        }
    }

    fn say(&self, value: Value) {
        self.to_server
            .unbounded_send(Ok(Message::Text(value.to_string().into())))
            .unwrap();
    }

    async fn next_json(&mut self) -> Value {
        loop {
            match self.from_server.next().await.unwrap() {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }
}

fn event(n: u64) -> ChannelEvent {
    ChannelEvent {
        channel: "components".into(),
        event: "sync.completed".into(),
        data: json!({ "n": n }),
        timestamp: chrono::DateTime::from_timestamp(1_736_937_300, 0).unwrap(),
    }
}

fn hub() -> Hub {
    Hub::new(HubConfig::default(), CancellationToken::new())
}

#[tokio::test]
async fn subscribe_receive_ping_and_unsubscribe() {
    let hub = hub();
    let mut client = Client::start(&hub, 16);

    client.say(json!({"type": "subscribe", "channel": "components"}));
    let subscribed = client.next_json().await;
    assert_eq!(subscribed["type"], "subscribed");

    hub.publish(&event(1));
    let received = client.next_json().await;
    assert_eq!(received["type"], "event");
    assert_eq!(received["event"], "sync.completed");
    assert_eq!(received["data"]["n"], 1);

    client.say(json!({"type": "ping"}));
    assert_eq!(client.next_json().await, json!({"type": "pong"}));

    client.say(json!({"type": "dance"}));
    let error = client.next_json().await;
    assert_eq!(error["type"], "error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("invalid message"));

    client.say(json!({"type": "unsubscribe", "channel": "components"}));
    assert_eq!(
        client.next_json().await,
        json!({"type": "unsubscribed", "channel": "components"})
    );
    hub.publish(&event(2));
    client.say(json!({"type": "ping"}));
    assert_eq!(client.next_json().await, json!({"type": "pong"}));

    drop(client.to_server);
    assert_eq!(client.task.await.unwrap(), Ended::ClientClosed);
    assert_eq!(hub.stats().connections, 0);
}

#[tokio::test]
async fn too_many_subscriptions_is_an_error_message_not_a_disconnect() {
    let hub = Hub::new(
        HubConfig {
            max_subscriptions: 1,
            ..HubConfig::default()
        },
        CancellationToken::new(),
    );
    let mut client = Client::start(&hub, 16);
    client.say(json!({"type": "subscribe", "channel": "a"}));
    assert_eq!(client.next_json().await["type"], "subscribed");
    client.say(json!({"type": "subscribe", "channel": "b"}));
    let error = client.next_json().await;
    assert_eq!(error["type"], "error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("too many subscriptions"));
    client.say(json!({"type": "ping"}));
    assert_eq!(client.next_json().await["type"], "pong");
}

#[tokio::test]
async fn shutdown_closes_with_going_away() {
    let shutdown = CancellationToken::new();
    let hub = Hub::new(HubConfig::default(), shutdown.clone());
    let mut client = Client::start(&hub, 16);
    client.say(json!({"type": "subscribe", "channel": "components"}));
    client.next_json().await;

    shutdown.cancel();
    match client.from_server.next().await.unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CLOSE_GOING_AWAY),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(client.task.await.unwrap(), Ended::Shutdown);
    hub.closed().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_while_others_keep_receiving() {
    let hub = Hub::new(
        HubConfig {
            send_buffer: 8,
            ..HubConfig::default()
        },
        CancellationToken::new(),
    );
    let mut slow = Client::start(&hub, 0);
    let mut fast = Client::start(&hub, 64);
    slow.say(json!({"type": "subscribe", "channel": "components"}));
    fast.say(json!({"type": "subscribe", "channel": "components"}));
    fast.next_json().await;
    // Let the slow client's subscription land before publishing.
    let first = slow.next_json().await;
    assert_eq!(first["type"], "subscribed");

    for n in 0..200 {
        hub.publish(&event(n));
        let got = fast.next_json().await;
        assert_eq!(got["data"]["n"], n);
        tokio::task::yield_now().await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), slow.task)
        .await
        .expect("slow client still connected")
        .unwrap();
    assert_eq!(ended, Ended::Slow);
    assert_eq!(hub.stats().connections, 1);
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_pinged_then_closed_as_idle() {
    let hub = hub();
    let mut client = Client::start(&hub, 16);
    let config = HubConfig::default();

    tokio::time::sleep(config.ping_interval + Duration::from_millis(10)).await;
    assert!(matches!(
        client.from_server.next().await,
        Some(Message::Ping(_))
    ));

    let ended = client.task.await.unwrap();
    assert_eq!(ended, Ended::Idle);
}

#[tokio::test(start_paused = true)]
async fn a_client_answering_pings_stays() {
    let hub = hub();
    let mut client = Client::start(&hub, 16);
    let config = HubConfig::default();
    for _ in 0..5 {
        tokio::time::sleep(config.ping_interval).await;
        if let Some(Message::Ping(_)) = client.from_server.next().await {
            client
                .to_server
                .unbounded_send(Ok(Message::Pong(bytes::Bytes::new())))
                .unwrap();
        }
    }
    assert!(!client.task.is_finished());
}

#[tokio::test]
async fn oversized_messages_close_the_connection() {
    let hub = Hub::new(
        HubConfig {
            max_message_bytes: 32,
            ..HubConfig::default()
        },
        CancellationToken::new(),
    );
    let mut client = Client::start(&hub, 16);
    client.say(json!({"type": "subscribe", "channel": "x".repeat(64)}));
    match client.from_server.next().await.unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CLOSE_POLICY),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(client.task.await.unwrap(), Ended::Error);
}
