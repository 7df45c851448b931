//! The single writer and its group commit.
//!
//! Every write of the store goes through one task that owns the only writing connection, so
//! our own writers never contend for SQLite's lock ("database is locked" cannot happen
//! between them). Callers send requests over a channel and wait on a oneshot. The task takes
//! whatever is queued (up to `max_batch`), runs it all in one `BEGIN IMMEDIATE` transaction,
//! commits once, and only then answers each caller: a caller's answer always waits for the
//! commit that holds its rows, and one commit (one WAL append, one fsync in `Full` mode)
//! serves many callers.
//!
//! Each request runs inside its own `SAVEPOINT`, so one failing request is rolled back alone
//! and the others still commit. Accepted and rejected webhooks, the hot path, are not run one
//! by one: [`crate::ingest`] plans the whole group from a handful of set-based reads and
//! writes it with multi-row statements, falling back to one savepoint per webhook when the
//! group as a whole fails.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use compliance_core::StoreError;

use crate::error::{closed, shared_error};
use crate::ingest::{self, AcceptItem, RejectItem};

/// A write run by the writer inside the group transaction.
pub(crate) type WriteFn<T> = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send,
>;

/// What the writer is asked to do.
pub(crate) enum Request {
    /// An accepted webhook or a new job (planned with the rest of its group).
    Accept(AcceptItem),
    /// A rejected request to log (written with the rest of its group).
    Reject(RejectItem),
    /// Any other write, run alone in its savepoint.
    Op(Box<dyn ErasedOp>),
}

/// A reply held until the commit: the request's own result, or the commit's failure.
pub(crate) trait Answer: Send {
    /// Sends the reply; `commit` is the outcome of the transaction that held the request.
    fn answer(self: Box<Self>, commit: Result<(), &Arc<sqlx::Error>>);
}

/// A reply channel with its result.
pub(crate) struct Pending<T> {
    pub(crate) reply: oneshot::Sender<Result<T, StoreError>>,
    pub(crate) result: Result<T, StoreError>,
}

impl<T: Send> Answer for Pending<T> {
    fn answer(self: Box<Self>, commit: Result<(), &Arc<sqlx::Error>>) {
        let result = match (commit, self.result) {
            (Err(e), Ok(_)) => Err(shared_error("commit the write", e)),
            (_, result) => result,
        };
        // The caller may have gone away (timeout, cancelled request); its write stands.
        let _ = self.reply.send(result);
    }
}

/// The outcome of one request inside the transaction.
pub(crate) struct Done {
    /// Whether the request succeeded (its savepoint is released) or failed (rolled back).
    pub(crate) ok: bool,
    /// Whether it made queue entries ready (waiting workers are woken after the commit).
    pub(crate) wake: bool,
    /// Its reply.
    pub(crate) answer: Box<dyn Answer>,
}

/// A type-erased [`WriteFn`] with its reply channel.
pub(crate) trait ErasedOp: Send {
    /// Runs the write.
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Done>;

    /// Answers without running: the group it belonged to failed.
    fn fail(self: Box<Self>, err: &Arc<sqlx::Error>);
}

struct Op<T> {
    write: WriteFn<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    wake: bool,
}

impl<T: Send + 'static> ErasedOp for Op<T> {
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Done> {
        Box::pin(async move {
            let Op { write, reply, wake } = *self;
            let result = write(conn).await;
            let ok = result.is_ok();
            Done {
                ok,
                wake: wake && ok,
                answer: Box::new(Pending { reply, result }),
            }
        })
    }

    fn fail(self: Box<Self>, err: &Arc<sqlx::Error>) {
        let _ = self.reply.send(Err(shared_error("run the write", err)));
    }
}

/// Whether a write makes queue entries ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Wake waiting workers after the commit.
    Workers,
    /// Nothing for workers.
    Nobody,
}

/// The sending side of the writer, shared by every handle of the store.
pub(crate) struct Writer {
    requests: mpsc::Sender<Request>,
    shutdown: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer task on `conn`.
    pub(crate) fn start(
        conn: SqliteConnection,
        options: SqliteConnectOptions,
        max_batch: usize,
        work: Arc<Notify>,
    ) -> Self {
        let (requests, receiver) = mpsc::channel(max_batch.saturating_mul(16).max(64));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(
            WriterTask {
                conn: Some(conn),
                options,
                max_batch,
                work,
            }
            .run(receiver, shutdown.clone()),
        );
        Self {
            requests,
            shutdown,
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// Runs `write` in the next group transaction and returns its result once committed.
    pub(crate) async fn write<T, F>(&self, wake: Wake, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op = Op {
            write: Box::new(write),
            reply,
            wake: wake == Wake::Workers,
        };
        self.send(Request::Op(Box::new(op))).await?;
        answer.await.map_err(|_| closed())?
    }

    /// Queues a request.
    pub(crate) async fn send(&self, request: Request) -> Result<(), StoreError> {
        self.requests.send(request).await.map_err(|_| closed())
    }

    /// Stops taking requests, finishes the queued ones and closes the connection.
    pub(crate) async fn close(&self) {
        self.shutdown.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                warn!(error = %e, "sqlite writer task ended abnormally");
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Dropping the last handle closes the channel, which ends the task on its own; the
        // token makes it stop even if a request sender were still alive somewhere.
        self.shutdown.cancel();
    }
}

struct WriterTask {
    /// `None` after a connection failure, until the next batch reconnects.
    conn: Option<SqliteConnection>,
    options: SqliteConnectOptions,
    max_batch: usize,
    work: Arc<Notify>,
}

impl WriterTask {
    async fn run(mut self, mut receiver: mpsc::Receiver<Request>, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            let received = tokio::select! {
                biased;
                n = receiver.recv_many(&mut batch, self.max_batch) => n,
                () = shutdown.cancelled() => {
                    // Finish what was already asked, refuse the rest.
                    receiver.close();
                    while receiver.recv_many(&mut batch, self.max_batch).await > 0 {
                        self.commit(std::mem::take(&mut batch)).await;
                    }
                    break;
                }
            };
            if received == 0 {
                break;
            }
            self.commit(std::mem::take(&mut batch)).await;
        }
        if let Some(conn) = self.conn.take() {
            if let Err(e) = conn.close().await {
                warn!(error = %e, "closing the sqlite writer connection failed");
            }
        }
        debug!("sqlite writer stopped");
    }

    /// Runs one group in one transaction and answers every request in it.
    async fn commit(&mut self, batch: Vec<Request>) {
        let size = batch.len();
        let started = std::time::Instant::now();
        let mut accepts = Vec::new();
        let mut rejects = Vec::new();
        let mut ops = Vec::new();
        for request in batch {
            match request {
                Request::Accept(item) => accepts.push(item),
                Request::Reject(item) => rejects.push(item),
                Request::Op(op) => ops.push(op),
            }
        }

        let conn = match self.connection().await {
            Ok(conn) => conn,
            Err(e) => {
                let e = Arc::new(e);
                warn!(error = %e, "sqlite writer cannot connect");
                fail_all(accepts, rejects, ops, &e);
                return;
            }
        };
        let mut answers: Vec<Box<dyn Answer>> = Vec::with_capacity(size);
        let outcome = run_group(conn, accepts, rejects, ops, &mut answers).await;

        let (commit, wake) = match outcome {
            Ok(wake) => (Ok(()), wake),
            Err(e) => (Err(e), false),
        };
        if let Err(e) = &commit {
            warn!(error = %e, batch = size, "sqlite group commit failed");
            if is_connection_failure(e) {
                // The next batch opens a fresh connection.
                self.conn = None;
            }
        }
        for answer in answers {
            answer.answer(commit.as_ref().map(|_| ()));
        }
        if wake {
            // Wake every worker already waiting, and leave a permit for one that is about
            // to wait, so an entry committed between its reserve and its wait is not missed.
            self.work.notify_waiters();
            self.work.notify_one();
        }
        debug!(
            batch = size,
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "sqlite group committed"
        );
    }

    async fn connection(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        if self.conn.is_none() {
            let conn = SqliteConnection::connect_with(&self.options).await?;
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or(sqlx::Error::WorkerCrashed)
    }
}

/// Runs a group inside one transaction; returns whether workers should be woken, or the
/// error that rolled the whole transaction back. `answers` receives the reply of every
/// request that ran; requests that could not run are answered here.
async fn run_group(
    conn: &mut SqliteConnection,
    accepts: Vec<AcceptItem>,
    rejects: Vec<RejectItem>,
    ops: Vec<Box<dyn ErasedOp>>,
    answers: &mut Vec<Box<dyn Answer>>,
) -> Result<bool, Arc<sqlx::Error>> {
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let e = Arc::new(e);
            fail_all(accepts, rejects, ops, &e);
            return Err(e);
        }
    };
    let mut wake = false;
    let mut pending_ops = ops.into_iter();

    let result = async {
        if !accepts.is_empty() {
            wake |= ingest::accept_group(&mut tx, accepts, answers).await?;
        }
        if !rejects.is_empty() {
            ingest::reject_group(&mut tx, rejects, answers).await?;
        }
        for op in pending_ops.by_ref() {
            savepoint(&mut tx, "op").await?;
            let done = op.run(&mut tx).await;
            let ok = done.ok;
            wake |= done.wake;
            answers.push(done.answer);
            finish_savepoint(&mut tx, "op", ok).await?;
        }
        Ok::<(), sqlx::Error>(())
    }
    .await;

    match result {
        Ok(()) => tx.commit().await.map(|()| wake).map_err(Arc::new),
        Err(e) => {
            // A savepoint could not be released or rolled back: the transaction is in an
            // unknown state, so all of it goes. Requests not yet run are answered too.
            if let Err(rollback) = tx.rollback().await {
                warn!(error = %rollback, "rollback after a failed group failed");
            }
            let e = Arc::new(e);
            for op in pending_ops {
                op.fail(&e);
            }
            Err(e)
        }
    }
}

/// Answers every request of a group that could not run.
fn fail_all(
    accepts: Vec<AcceptItem>,
    rejects: Vec<RejectItem>,
    ops: Vec<Box<dyn ErasedOp>>,
    err: &Arc<sqlx::Error>,
) {
    for item in accepts {
        let _ = item.reply.send(Err(shared_error("begin the write", err)));
    }
    for item in rejects {
        let _ = item.reply.send(Err(shared_error("begin the write", err)));
    }
    for op in ops {
        op.fail(err);
    }
}

/// Opens a savepoint.
pub(crate) async fn savepoint(conn: &mut SqliteConnection, name: &str) -> Result<(), sqlx::Error> {
    conn.execute(format!("SAVEPOINT {name}").as_str()).await?;
    Ok(())
}

/// Releases a savepoint, rolling back to it first when its work failed.
pub(crate) async fn finish_savepoint(
    conn: &mut SqliteConnection,
    name: &str,
    ok: bool,
) -> Result<(), sqlx::Error> {
    if !ok {
        conn.execute(format!("ROLLBACK TO {name}").as_str()).await?;
    }
    conn.execute(format!("RELEASE {name}").as_str()).await?;
    Ok(())
}

/// Whether `e` means the connection itself is gone.
fn is_connection_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::WorkerCrashed | sqlx::Error::Io(_))
}
