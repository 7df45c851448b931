//! The JSON messages of `/ws`.
//!
//! Client to server:
//!
//! | message | effect |
//! | --- | --- |
//! | `{"type":"subscribe","channel":"component:…","last_seq":N}` | follow a channel; `last_seq` (optional) asks for what came after `N` |
//! | `{"type":"unsubscribe","channel":"…"}` | stop following it |
//! | `{"type":"ping"}` | answered with `{"type":"pong"}` |
//!
//! Server to client:
//!
//! | message | when |
//! | --- | --- |
//! | `{"type":"subscribed","channel","seq"}` | a subscription took effect; `seq` is the channel's latest sequence number |
//! | `{"type":"event","channel","event","data","timestamp","seq"}` | an event, replayed or live |
//! | `{"type":"gap","channel","seq","reason"}` | events may have been missed: refetch, then continue from `seq` |
//! | `{"type":"unsubscribed","channel"}` | an unsubscribe took effect |
//! | `{"type":"error","message"}` | the client sent something the server does not understand |
//! | `{"type":"pong"}` | answer to `ping` |
//!
//! Sequence numbers increase by one per event on a channel. They are large integers (below
//! 2^53, so JavaScript numbers hold them exactly): a channel's numbering starts from the time it
//! was created in this server, so numbers from an earlier run or an evicted channel fall
//! outside the history and get a `gap` instead of a wrong replay.

use compliance_core::ports::ChannelEvent;
use compliance_core::Timestamp;
use serde::{Deserialize, Serialize};

/// Longest accepted channel name.
pub const MAX_CHANNEL_LEN: usize = 128;

/// A message from the client.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Follow a channel.
    Subscribe {
        /// The channel.
        channel: String,
        /// The last sequence number the client saw on this channel.
        #[serde(default)]
        last_seq: Option<u64>,
    },
    /// Stop following a channel.
    Unsubscribe {
        /// The channel.
        channel: String,
    },
    /// Keepalive at the application level.
    Ping,
}

impl ClientMessage {
    /// Parses one text frame.
    ///
    /// # Errors
    ///
    /// A message safe to send back to the client.
    pub fn parse(text: &str) -> Result<Self, String> {
        let message: Self = serde_json::from_str(text).map_err(|e| {
            format!("invalid message: {e}; expected subscribe, unsubscribe or ping")
        })?;
        match &message {
            Self::Subscribe { channel, .. } | Self::Unsubscribe { channel } => {
                validate_channel(channel)?;
            }
            Self::Ping => {}
        }
        Ok(message)
    }
}

/// Checks a channel name: 1 to [`MAX_CHANNEL_LEN`] characters of `A-Z a-z 0-9 : _ . -`.
///
/// # Errors
///
/// A message safe to send back to the client.
pub fn validate_channel(channel: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-');
    if channel.is_empty() || channel.len() > MAX_CHANNEL_LEN || !channel.chars().all(allowed) {
        return Err(format!(
            "invalid channel name: use 1 to {MAX_CHANNEL_LEN} characters of A-Z a-z 0-9 : _ . -"
        ));
    }
    Ok(())
}

/// A message from the server (events have their own [`event_frame`] to be serialized once
/// for every subscriber).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// A subscription took effect.
    Subscribed {
        /// The channel.
        channel: &'a str,
        /// The channel's latest sequence number.
        seq: u64,
    },
    /// An unsubscribe took effect.
    Unsubscribed {
        /// The channel.
        channel: &'a str,
    },
    /// Events may have been missed.
    Gap {
        /// The channel.
        channel: &'a str,
        /// The sequence number to continue from after refetching.
        seq: u64,
        /// Why.
        reason: GapReason,
    },
    /// The client sent something wrong.
    Error {
        /// What.
        message: &'a str,
    },
    /// Answer to a `ping`.
    Pong,
}

impl ServerMessage<'_> {
    /// The message as JSON text.
    #[must_use]
    pub fn to_text(&self) -> String {
        // Serializing these plain structs cannot fail; an empty object is a safe fallback.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Why a `gap` was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The `last_seq` is older than the bounded history, or not from this server's numbering.
    HistoryExceeded,
    /// The replay would not fit the connection's send buffer.
    ReplayTooLarge,
    /// The notifier reported that events may have been lost (for example a dropped link to
    /// PostgreSQL or Redis).
    NotifierGap,
}

#[derive(Serialize)]
struct EventFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channel: &'a str,
    event: &'a str,
    data: &'a serde_json::Value,
    timestamp: &'a Timestamp,
    seq: u64,
}

/// The JSON text of an `event` message.
#[must_use]
pub fn event_frame(event: &ChannelEvent, seq: u64) -> String {
    let frame = EventFrame {
        kind: "event",
        channel: &event.channel,
        event: &event.event,
        data: &event.data,
        timestamp: &event.timestamp,
        seq,
    };
    serde_json::to_string(&frame).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_client_messages() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","channel":"component:abc","last_seq":7}"#),
            Ok(ClientMessage::Subscribe {
                channel: "component:abc".into(),
                last_seq: Some(7)
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","channel":"components"}"#),
            Ok(ClientMessage::Subscribe {
                channel: "components".into(),
                last_seq: None
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"unsubscribe","channel":"components"}"#),
            Ok(ClientMessage::Unsubscribe {
                channel: "components".into()
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        );
    }

    #[test]
    fn refuses_bad_messages_with_a_reason() {
        assert!(ClientMessage::parse("not json").is_err());
        assert!(ClientMessage::parse(r#"{"type":"shout"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"subscribe"}"#).is_err());
        let long = "x".repeat(MAX_CHANNEL_LEN + 1);
        let message = format!(r#"{{"type":"subscribe","channel":"{long}"}}"#);
        assert!(ClientMessage::parse(&message)
            .unwrap_err()
            .contains("invalid channel name"));
        assert!(ClientMessage::parse(r#"{"type":"subscribe","channel":"a b"}"#).is_err());
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let subscribed = ServerMessage::Subscribed {
            channel: "components",
            seq: 5,
        };
        assert_eq!(
            subscribed.to_text(),
            r#"{"type":"subscribed","channel":"components","seq":5}"#
        );
        let gap = ServerMessage::Gap {
            channel: "components",
            seq: 9,
            reason: GapReason::HistoryExceeded,
        };
        assert_eq!(
            gap.to_text(),
            r#"{"type":"gap","channel":"components","seq":9,"reason":"history_exceeded"}"#
        );
        assert_eq!(ServerMessage::Pong.to_text(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn event_frames_carry_channel_event_data_timestamp_and_seq() {
        let event = ChannelEvent {
            channel: "components".into(),
            event: "sync.started".into(),
            data: serde_json::json!({"attempt": 1}),
            timestamp: chrono::DateTime::from_timestamp(1_736_937_300, 0).unwrap(),
        };
        let frame: serde_json::Value = serde_json::from_str(&event_frame(&event, 42)).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({
                "type": "event",
                "channel": "components",
                "event": "sync.started",
                "data": {"attempt": 1},
                "timestamp": "2025-01-15T10:35:00Z",
                "seq": 42
            })
        );
    }
}
