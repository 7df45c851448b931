//! Serving with a graceful shutdown.
//!
//! hyper's graceful shutdown stops accepting and waits for in-flight requests, but a
//! WebSocket, once upgraded, is no longer a request it tracks. [`serve`] therefore also
//! cancels the API's shutdown token, which makes every WebSocket send a 1001 (going away)
//! close frame, and waits a bounded time for them to finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::state::ComplianceApi;

/// How long [`serve`] waits for WebSockets to close after the shutdown started.
pub const WEBSOCKET_DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `signal` resolves or the API's shutdown token is
/// cancelled; then stops accepting, closes WebSockets with 1001, finishes in-flight requests
/// and returns.
///
/// # Errors
///
/// The listener's I/O error.
pub async fn serve<F>(
    listener: TcpListener,
    api: &ComplianceApi,
    router: Router,
    signal: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let token = api.shutdown_token().clone();
    let trigger = {
        let token = token.clone();
        async move {
            tokio::select! {
                () = signal => {}
                () = token.cancelled() => {}
            }
            tracing::info!("shutting down: no new connections, closing websockets");
            token.cancel();
        }
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(trigger)
    .await?;

    if tokio::time::timeout(WEBSOCKET_DRAIN, api.hub().closed())
        .await
        .is_err()
    {
        tracing::warn!(
            open = api.hub().stats().connections,
            "websockets still open after the drain period"
        );
    }
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix: the usual signal for [`serve`].
pub async fn termination_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
