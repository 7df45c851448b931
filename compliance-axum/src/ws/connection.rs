//! One WebSocket connection: client messages in, queued frames out, keepalive, and the
//! reasons a connection ends.
//!
//! Written over any `Stream` + `Sink` of [`Message`]s so it runs the same over a real socket
//! and over channels in tests.

use std::fmt::Display;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use crate::metrics as m;
use crate::ws::hub::{Connection, SubscribeError};
use crate::ws::protocol::{ClientMessage, ServerMessage};

/// WebSocket close code for "going away" (server shutting down, or idle client).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code for "policy violation" (used for too-large messages).
pub const CLOSE_POLICY: u16 = 1008;

/// Frames written in one go before flushing, so one busy connection cannot hog its task.
const WRITE_BATCH: usize = 64;

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client closed it or went away.
    ClientClosed,
    /// The server is shutting down; the client got a 1001 close frame.
    Shutdown,
    /// The client did not keep up with its events and was dropped.
    Slow,
    /// Nothing was heard from the client within the idle timeout.
    Idle,
    /// Reading or writing failed.
    Error,
}

impl Ended {
    fn label(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::Shutdown => "shutdown",
            Self::Slow => "slow",
            Self::Idle => "idle",
            Self::Error => "error",
        }
    }
}

/// Runs one connection until it ends.
///
/// `connection` and `outbound` come from [`Hub::connect`](crate::ws::Hub::connect).
pub async fn run<S, E1, E2>(
    mut socket: S,
    mut connection: Connection,
    mut outbound: mpsc::Receiver<Utf8Bytes>,
) -> Ended
where
    S: Stream<Item = Result<Message, E1>> + Sink<Message, Error = E2> + Unpin,
    E1: Display,
    E2: Display,
{
    let config = connection.hub().config().clone();
    let shutdown = connection.hub().shutdown_token().clone();
    let kill = connection.kill_token().clone();
    let mut ping = interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();

    let ended = loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                close(&mut socket, CLOSE_GOING_AWAY, "server shutting down").await;
                break Ended::Shutdown;
            }
            () = kill.cancelled() => break Ended::Slow,
            frame = outbound.recv() => {
                let Some(frame) = frame else { break Ended::Slow };
                if let Err(ended) = write_batch(&mut socket, frame, &mut outbound, &connection, config.write_timeout).await {
                    break ended;
                }
            }
            incoming = socket.next() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "websocket read failed");
                        break Ended::Error;
                    }
                    None => break Ended::ClientClosed,
                };
                last_heard = Instant::now();
                match message {
                    Message::Text(text) => {
                        if text.len() > config.max_message_bytes {
                            close(&mut socket, CLOSE_POLICY, "message too large").await;
                            break Ended::Error;
                        }
                        if handle_text(&mut connection, &text).is_err() {
                            break Ended::Slow;
                        }
                    }
                    Message::Binary(_) => {
                        let reply = ServerMessage::Error { message: "send JSON text messages" };
                        if connection.send(reply.to_text()).is_err() {
                            break Ended::Slow;
                        }
                    }
                    Message::Close(_) => break Ended::ClientClosed,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > config.idle_timeout {
                    close(&mut socket, CLOSE_GOING_AWAY, "idle").await;
                    break Ended::Idle;
                }
                let sent = send_within(&mut socket, Message::Ping(bytes::Bytes::new()), &connection, config.write_timeout).await;
                if let Err(ended) = sent {
                    break ended;
                }
            }
        }
    };
    metrics::counter!(m::WS_DISCONNECTED, "reason" => ended.label()).increment(1);
    tracing::debug!(reason = ended.label(), "websocket closed");
    ended
}

/// Applies one client message; `Err` when the connection must go (its queue is full).
fn handle_text(connection: &mut Connection, text: &str) -> Result<(), SubscribeError> {
    let message = match ClientMessage::parse(text) {
        Ok(message) => message,
        Err(reason) => {
            return connection.send(ServerMessage::Error { message: &reason }.to_text());
        }
    };
    match message {
        ClientMessage::Subscribe { channel, last_seq } => {
            match connection.subscribe(&channel, last_seq) {
                Ok(()) => Ok(()),
                Err(SubscribeError::Slow) => Err(SubscribeError::Slow),
                Err(refused) => {
                    let reason = refused.to_string();
                    connection.send(ServerMessage::Error { message: &reason }.to_text())
                }
            }
        }
        ClientMessage::Unsubscribe { channel } => {
            connection.unsubscribe(&channel);
            connection.send(ServerMessage::Unsubscribed { channel: &channel }.to_text())
        }
        ClientMessage::Ping => connection.send(ServerMessage::Pong.to_text()),
    }
}

/// Writes `first` and whatever else is already queued, then flushes; all within the write
/// timeout and abandoned as soon as the hub gives up on the connection.
async fn write_batch<S, E>(
    socket: &mut S,
    first: Utf8Bytes,
    outbound: &mut mpsc::Receiver<Utf8Bytes>,
    connection: &Connection,
    timeout: Duration,
) -> Result<(), Ended>
where
    S: Sink<Message, Error = E> + Unpin,
    E: Display,
{
    let write = async {
        socket.feed(Message::Text(first)).await?;
        for _ in 1..WRITE_BATCH {
            match outbound.try_recv() {
                Ok(frame) => socket.feed(Message::Text(frame)).await?,
                Err(_) => break,
            }
        }
        socket.flush().await
    };
    guarded(write, connection, timeout).await
}

async fn send_within<S, E>(
    socket: &mut S,
    message: Message,
    connection: &Connection,
    timeout: Duration,
) -> Result<(), Ended>
where
    S: Sink<Message, Error = E> + Unpin,
    E: Display,
{
    guarded(socket.send(message), connection, timeout).await
}

async fn guarded<F, E>(write: F, connection: &Connection, timeout: Duration) -> Result<(), Ended>
where
    F: std::future::Future<Output = Result<(), E>>,
    E: Display,
{
    tokio::select! {
        () = connection.kill_token().cancelled() => Err(Ended::Slow),
        written = tokio::time::timeout(timeout, write) => match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "websocket write failed");
                Err(Ended::Error)
            }
            Err(_) => {
                metrics::counter!(m::WS_DROPPED, "reason" => "write_timeout").increment(1);
                Err(Ended::Slow)
            }
        },
    }
}

async fn close<S, E>(socket: &mut S, code: u16, reason: &'static str)
where
    S: Sink<Message, Error = E> + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    // Best effort: a client that does not take the close frame within a second is just cut.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
