//! Serving with a graceful shutdown and a time limit on request heads.
//!
//! hyper's graceful shutdown stops accepting and waits for in-flight requests, but a
//! WebSocket, once upgraded, is no longer a request it tracks. [`serve`] therefore also
//! cancels the API's shutdown token, which makes every WebSocket send a 1001 (going away)
//! close frame, and waits a bounded time for them to finish.
//!
//! Connections are served by [`serve_router`], which closes a connection whose request head
//! (request line and headers) has not fully arrived [`HEADER_READ_TIMEOUT`] after it started,
//! or after the previous response on a kept-alive connection. `axum::serve` sets no such
//! limit, so a client sending its headers a byte at a time (slow loris) would hold a
//! connection and its task for as long as it liked.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::state::ComplianceApi;

/// How long [`serve`] waits for WebSockets to close after the shutdown started.
pub const WEBSOCKET_DRAIN: Duration = Duration::from_secs(5);

/// How long a client may take to send a request head, counted from the start of the
/// connection or the end of the previous response: generous for a CI runner on a slow link,
/// short enough that idle or deliberately slow connections do not pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

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
    serve_router(listener, router, trigger).await?;

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

/// Serves `router` on `listener` over HTTP/1.1 (with upgrades, for WebSockets) until
/// `signal` resolves; then stops accepting, lets in-flight requests finish and returns.
///
/// Each request carries the peer's address as [`ConnectInfo`], as
/// `into_make_service_with_connect_info` would give it. A connection whose request head does
/// not arrive within [`HEADER_READ_TIMEOUT`] is closed. Upgraded connections (WebSockets) are
/// not waited for: close them through their own shutdown, as [`serve`] does.
///
/// # Errors
///
/// None at present: failed accepts (a peer that reset, too many open files) are logged and
/// retried, so the server outlives them. The `Result` keeps room for listener errors.
pub async fn serve_router<F>(listener: TcpListener, router: Router, signal: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Every connection task holds a receiver of `open`; `open.closed()` resolves when the
    // last one ended. `stop` tells them to finish their current request and close.
    let (open, connections) = watch::channel(());
    let (stop, stopping) = watch::channel(false);
    let mut signal = pin!(signal);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        // Answers are small and written at once; Nagle's delay only adds latency.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let mut stopping = stopping.clone();
        let held = connections.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let mut connection = pin!(builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades());
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                }
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
            drop(held);
        });
    }

    drop(listener);
    let _ = stop.send(true);
    drop(connections);
    open.closed().await;
    Ok(())
}

/// Waits after a failed accept: at once for errors of one connection, a moment for errors
/// of the process (such as running out of file descriptors), so the loop does not spin.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
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
