//! WebSocket subscribers: connect to `/ws` with a bearer token, subscribe to a channel, and
//! record when sync events arrive.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/ws`, subscribes to `channel` and waits for the server's `subscribed`.
pub(crate) async fn subscribe(
    addr: SocketAddr,
    token: &str,
    channel: &str,
) -> Result<Socket, String> {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(|e| format!("websocket: {e}"))?;
    let subscribe = serde_json::json!({"type": "subscribe", "channel": channel}).to_string();
    socket
        .send(Message::text(subscribe))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;

    let confirmed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = socket.next().await {
            if let Message::Text(text) = message.map_err(|e| e.to_string())? {
                if is_subscribed(text.as_str()) {
                    return Ok(());
                }
            }
        }
        Err("closed before subscribing".to_owned())
    })
    .await
    .map_err(|_| "no subscribed reply in 30 s".to_owned())?;
    confirmed.map(|()| socket)
}

/// Whether `text` is the server's `subscribed` reply (parsed, not matched as text: the
/// baseline's JSON has spaces after its colons).
fn is_subscribed(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Reply>(text).is_ok_and(|r| r.kind == "subscribed")
}

/// A sync event as a subscriber saw it.
#[derive(Clone, Debug)]
pub(crate) struct SyncEvent {
    pub(crate) sync_job_id: String,
    pub(crate) revision: Option<String>,
    pub(crate) issues: Option<u64>,
    pub(crate) dependencies: Option<u64>,
    pub(crate) completed: bool,
    pub(crate) at: Instant,
}

/// Reads `text` as a `sync.completed` or `sync.failed` event.
pub(crate) fn sync_event(text: &str, at: Instant) -> Option<SyncEvent> {
    #[derive(serde::Deserialize)]
    struct Frame {
        #[serde(rename = "type")]
        kind: String,
        event: Option<String>,
        data: Option<Data>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        sync_job_id: String,
        revision: Option<String>,
        issues_count: Option<u64>,
        dependencies_count: Option<u64>,
    }
    let frame: Frame = serde_json::from_str(text).ok()?;
    let completed = match frame.event.as_deref() {
        Some("sync.completed") => true,
        Some("sync.failed") => false,
        _ => return None,
    };
    if frame.kind != "event" {
        return None;
    }
    let data = frame.data?;
    Some(SyncEvent {
        sync_job_id: data.sync_job_id,
        revision: data.revision,
        issues: data.issues_count,
        dependencies: data.dependencies_count,
        completed,
        at,
    })
}

/// Collects every sync event a subscriber receives until `stop`.
pub(crate) fn record(
    mut socket: Socket,
    seen: Arc<Mutex<Vec<SyncEvent>>>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => break,
                message = socket.next() => message,
            };
            let Some(Ok(message)) = message else { break };
            if let Message::Text(text) = message {
                if let Some(event) = sync_event(text.as_str(), Instant::now()) {
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(event);
                }
            }
        }
        let _ = socket.close(None).await;
    })
}

/// Forwards every text frame mentioning `sync.completed`, stamped on arrival, without
/// parsing it: with thousands of subscribers in this process, the less each does, the less
/// the load generator delays what it measures.
pub(crate) fn forward(
    index: usize,
    mut socket: Socket,
    sink: tokio::sync::mpsc::UnboundedSender<(usize, Instant, Utf8Bytes)>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => break,
                message = socket.next() => message,
            };
            let Some(Ok(message)) = message else { break };
            if let Message::Text(text) = message {
                if text.as_str().contains("sync.completed")
                    && sink.send((index, Instant::now(), text)).is_err()
                {
                    break;
                }
            }
        }
        let _ = socket.close(None).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_events_are_read_from_frames() {
        let now = Instant::now();
        let frame = r#"{"type":"event","channel":"components","event":"sync.completed","data":{"sync_job_id":"j1","component_id":"c","revision":"abc","issues_count":1},"timestamp":"2025-01-15T10:35:00Z","seq":7}"#;
        let event = sync_event(frame, now).unwrap();
        assert_eq!(event.sync_job_id, "j1");
        assert_eq!(event.revision.as_deref(), Some("abc"));
        assert_eq!((event.issues, event.dependencies), (Some(1), None));
        assert!(event.completed);

        let failed = r#"{"type":"event","channel":"c","event":"sync.failed","data":{"sync_job_id":"j2","error":"x"},"timestamp":"t","seq":1}"#;
        assert!(!sync_event(failed, now).unwrap().completed);

        let started = r#"{"type":"event","channel":"c","event":"sync.started","data":{"sync_job_id":"j3"},"timestamp":"t","seq":2}"#;
        assert!(sync_event(started, now).is_none());
        assert!(sync_event(r#"{"type":"subscribed","channel":"c","seq":0}"#, now).is_none());
        assert!(sync_event("not json", now).is_none());

        // The baseline's frames have spaces after colons and commas.
        let spaced = r#"{"type": "event", "channel": "components", "event": "sync.completed", "data": {"sync_job_id": "j4", "revision": "r"}, "timestamp": "t", "seq": 3}"#;
        assert_eq!(sync_event(spaced, now).unwrap().sync_job_id, "j4");
        assert!(is_subscribed(
            r#"{"type":"subscribed","channel":"c","seq":0}"#
        ));
        assert!(is_subscribed(
            r#"{"type": "subscribed", "channel": "c", "seq": 0}"#
        ));
        assert!(!is_subscribed(
            r#"{"type": "error", "message": "subscribed"}"#
        ));
        assert!(!is_subscribed("subscribed"));
    }
}
