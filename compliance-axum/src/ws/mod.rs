//! `GET /ws`: live channel events over WebSocket.
//!
//! See [`protocol`] for the messages. The [`Hub`] follows core's notifier once and fans events
//! out to every connection; [`connection::run`] drives one socket.

pub mod connection;
pub mod hub;
pub mod protocol;

pub use hub::{Connection, Hub, HubConfig, HubFull, HubStats, SubscribeError};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::auth::ReadAccess;
use crate::error::ApiError;
use crate::state::ApiState;

/// Upgrades an authenticated request to a WebSocket served by the hub.
#[utoipa::path(
    get, path = "/ws", tag = "live",
    description = "Live channel events over WebSocket. Client messages: `subscribe` (with \
                   `channel` and optional `last_seq`), `unsubscribe`, `ping`. Server messages: \
                   `subscribed`, `event`, `gap`, `unsubscribed`, `error`, `pong`.",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 503, description = "Too many live connections", body = crate::error::ErrorBody),
    ),
)]
pub(crate) async fn upgrade(
    State(state): State<ApiState>,
    _access: ReadAccess,
    upgrade: WebSocketUpgrade,
) -> Response {
    let hub = state.hub().clone();
    let Ok((connection, outbound)) = hub.connect() else {
        return ApiError::unavailable("Too many live connections; try again later").into_response();
    };
    let config = hub.config();
    // Small buffers keep an idle connection cheap; messages in both directions are small.
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(config.max_message_bytes)
        .max_frame_size(config.max_message_bytes)
        .on_upgrade(move |socket| async move {
            connection::run(socket, connection, outbound).await;
        })
}
