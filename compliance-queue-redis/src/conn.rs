//! A lazily opened, self-healing connection, and the mapping of Redis errors to port errors.

use std::future::Future;
use std::time::Duration;

use compliance_core::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError};
use tokio::sync::Mutex;

use crate::config::RedisOptions;

/// One multiplexed connection, opened on first use.
///
/// Opening lazily lets the application start while Redis is down: operations answer
/// `Unavailable` until Redis can be reached, and the [`ConnectionManager`] reconnects by itself
/// after a restart.
///
/// The manager reconnects only after I/O errors: once a reconnect was refused its credentials
/// (a user disabled for a while, a password changed on the server first), it would answer
/// that refusal to every later command, for good. The connector therefore drops a manager
/// that reports a refused authentication, and the next operation opens a fresh one.
pub(crate) struct Connector {
    options: RedisOptions,
    /// `None` before the first use and after a refused authentication.
    manager: Mutex<Option<ConnectionManager>>,
}

impl Connector {
    pub(crate) fn new(options: RedisOptions) -> Self {
        Self {
            options,
            manager: Mutex::new(None),
        }
    }

    pub(crate) fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// The connection, opening it on first use, after a failed attempt, or after Redis refused
    /// the credentials.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let options = &self.options;
        let open = async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(options.connect_timeout)
                .set_response_timeout(options.command_timeout)
                // A short reconnect schedule: callers get `Unavailable` soon and retry on
                // their own rhythm instead of piling up behind a long backoff.
                .set_number_of_retries(1)
                .set_max_delay(500);
            let opened = tokio::time::timeout(
                options.connect_timeout,
                ConnectionManager::new_with_config(options.client.clone(), config),
            )
            .await;
            match opened {
                Ok(Ok(manager)) => Ok(manager),
                Ok(Err(e)) => Err(map_error("connecting to redis", e)),
                Err(_) => Err(timed_out("connecting to redis", options.connect_timeout)),
            }
        };
        // Held while opening, so that callers arriving meanwhile share the one attempt.
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let manager = open.await?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    /// Runs `op` on the connection, bounded by the command timeout, with errors mapped.
    pub(crate) async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        // One bound over both steps: callers queued behind a failing first connection must
        // not wait for every attempt before theirs.
        let limit = self.options.connect_timeout + self.options.command_timeout;
        let attempt = async {
            let connection = self.connection().await?;
            match op(connection).await {
                Ok(value) => Ok(value),
                Err(error) => {
                    if error.kind() == ErrorKind::AuthenticationFailed {
                        // The manager would keep this answer; the next operation starts over.
                        *self.manager.lock().await = None;
                    }
                    Err(map_error(what, error))
                }
            }
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(what, limit)),
        }
    }

    /// Whether Redis answers a `PING` now.
    pub(crate) async fn ping(&self) -> bool {
        self.run("ping", |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .is_ok()
    }
}

fn timed_out(what: &'static str, after: Duration) -> StoreError {
    StoreError::Unavailable {
        context: format!("{what}: no answer within {} ms", after.as_millis()),
        source: None,
    }
}

/// Maps a Redis error to the port's kinds: anything that a reconnect or a wait can cure is
/// `Unavailable`, the rest (wrong types, script bugs, refused credentials) is `Backend`.
///
/// Redis error texts carry the server's message and never the URL, so keeping the error as the
/// source does not leak the password.
pub(crate) fn map_error(what: &'static str, error: RedisError) -> StoreError {
    if matches!(
        error.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    ) {
        return StoreError::backend(what, error);
    }
    let transient = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::ReadOnly
        );
    if transient {
        StoreError::unavailable(what, error)
    } else {
        StoreError::backend(what, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_retryable_and_type_errors_are_not() {
        let io = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        let busy = RedisError::from((ErrorKind::BusyLoadingError, "loading"));
        let wrong = RedisError::from((ErrorKind::TypeError, "wrong type"));
        let refused = RedisError::from((ErrorKind::AuthenticationFailed, "bad password"));

        assert!(map_error("x", io).is_retryable());
        assert!(map_error("x", busy).is_retryable());
        assert!(!map_error("x", wrong).is_retryable());
        assert!(!map_error("x", refused).is_retryable());
    }
}
