//! Waking idle workers as soon as an entry is added, with a blocking `XREAD`.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};

/// How many idle blocking connections are kept for reuse.
const KEEP_IDLE: usize = 16;

/// Connections reserved for blocking reads.
///
/// A blocking command holds its connection until it returns, so it cannot share the
/// multiplexed connection the other operations use; each waiting worker borrows one of these.
pub(crate) struct BlockingPool {
    client: Client,
    connect_timeout: Duration,
    idle: Mutex<Vec<MultiplexedConnection>>,
}

impl BlockingPool {
    pub(crate) fn new(client: Client, connect_timeout: Duration) -> Self {
        Self {
            client,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<MultiplexedConnection>> {
        // The vector stays valid even if a holder panicked.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn take(&self) -> Option<MultiplexedConnection> {
        if let Some(connection) = self.lock().pop() {
            return Some(connection);
        }
        let config = AsyncConnectionConfig::new().set_connection_timeout(self.connect_timeout);
        let opened = tokio::time::timeout(
            self.connect_timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await;
        match opened {
            Ok(Ok(connection)) => Some(connection),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "no blocking connection to redis");
                None
            }
            Err(_) => None,
        }
    }

    fn give_back(&self, connection: MultiplexedConnection) {
        let mut idle = self.lock();
        if idle.len() < KEEP_IDLE {
            idle.push(connection);
        }
    }

    /// Returns when an entry after `after` is added to `stream`, or after `wait`.
    pub(crate) async fn wait_for_entry(&self, stream: &str, after: &str, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        let deadline = tokio::time::Instant::now() + wait;
        let Some(mut connection) = self.take().await else {
            tokio::time::sleep_until(deadline).await;
            return;
        };
        // BLOCK 0 would mean "forever".
        let block_ms = wait.as_millis().max(1);
        let mut command = redis::cmd("XREAD");
        command
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms.to_string())
            .arg("STREAMS")
            .arg(stream)
            .arg(after);
        let read = command.query_async::<redis::Value>(&mut connection);
        // A little slack over the block time before the connection is presumed dead.
        match tokio::time::timeout(wait + Duration::from_secs(1), read).await {
            Ok(Ok(_)) => self.give_back(connection),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "blocking read failed");
                tokio::time::sleep_until(deadline).await;
            }
            Err(_) => {}
        }
    }
}
