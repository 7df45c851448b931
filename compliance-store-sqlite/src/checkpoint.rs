//! WAL checkpoints off the writer's path.
//!
//! By default SQLite checkpoints inside the commit that crosses the WAL's size threshold: the
//! writer copies the WAL into the database file and syncs it while every caller of that group
//! (and every request queued behind it) waits. The writer connection therefore runs with
//! `wal_autocheckpoint=0`, and this task checkpoints from its own connection instead: a
//! `PASSIVE` checkpoint never blocks the writer or the readers, so commits stay short.
//!
//! A passive checkpoint cannot copy frames that a reader still needs; should the WAL keep
//! growing past [`RESTART_FRAMES`] anyway, a `RESTART` checkpoint waits (up to the busy
//! timeout) for readers to move on so that the WAL starts over from the beginning.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How often the task checkpoints.
const EVERY: Duration = Duration::from_millis(250);

/// WAL frames (pages) past which a checkpoint waits for readers: about 256 MiB of 4 KiB pages.
const RESTART_FRAMES: i64 = 65_536;

/// The running checkpoint task.
pub(crate) struct Checkpointer {
    shutdown: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts checkpointing the database `options` opens.
    pub(crate) fn start(options: SqliteConnectOptions) -> Self {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(options, shutdown.clone()));
        Self {
            shutdown,
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// Stops the task and closes its connection.
    pub(crate) async fn close(&self) {
        self.shutdown.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                warn!(error = %e, "sqlite checkpoint task ended abnormally");
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn run(options: SqliteConnectOptions, shutdown: CancellationToken) {
    let mut conn: Option<SqliteConnection> = None;
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if conn.is_none() {
            match SqliteConnection::connect_with(&options).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    warn!(error = %e, "sqlite checkpoint connection failed; writes go on");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        if let Err(e) = checkpoint(c).await {
            // The writer is unaffected; the next tick tries again on a fresh connection.
            warn!(error = %e, "sqlite checkpoint failed");
            conn = None;
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

async fn checkpoint(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    let log: i64 = row.try_get(1)?;
    let copied: i64 = row.try_get(2)?;
    if log > RESTART_FRAMES {
        debug!(log, copied, "sqlite wal is large; restarting it");
        sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
