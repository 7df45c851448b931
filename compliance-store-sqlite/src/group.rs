//! Running a group of similar requests with one plan, and falling back to one savepoint per
//! request when the group as a whole fails.

use futures::future::BoxFuture;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::oneshot;

use compliance_core::StoreError;

use crate::error::{invalid, shared_error, store_error};
use crate::writer::{finish_savepoint, savepoint, Answer, Pending};

/// What a group wrote, per request.
pub(crate) struct Written<T> {
    pub(crate) outcomes: Vec<Result<T, StoreError>>,
    pub(crate) wake: bool,
}

/// Plans and writes one group of requests.
pub(crate) type GroupFn<P, T> =
    for<'c> fn(&'c mut SqliteConnection, &'c [P]) -> BoxFuture<'c, Result<Written<T>, sqlx::Error>>;

/// Runs `run` over the whole group in a savepoint; when it fails, retries each request alone
/// so that only the faulty ones fail. Every reply ends up in `answers`.
pub(crate) async fn with_fallback<P, T: Send + 'static>(
    conn: &mut SqliteConnection,
    context: &str,
    prepared: Vec<P>,
    replies: Vec<oneshot::Sender<Result<T, StoreError>>>,
    answers: &mut Vec<Box<dyn Answer>>,
    run: GroupFn<P, T>,
) -> Result<bool, sqlx::Error> {
    if prepared.is_empty() {
        return Ok(false);
    }
    let mut replies = replies.into_iter();
    let group_error = match in_savepoint(conn, "grp", &prepared, run).await {
        Ok(Ok(written)) => {
            for (reply, result) in replies.zip(written.outcomes) {
                answers.push(Box::new(Pending { reply, result }));
            }
            return Ok(written.wake);
        }
        Ok(Err(e)) => e,
        Err(fatal) => {
            not_run(replies, answers);
            return Err(fatal);
        }
    };
    if prepared.len() == 1 {
        if let Some(reply) = replies.next() {
            answers.push(Box::new(Pending {
                reply,
                result: Err(store_error(context, group_error)),
            }));
        }
        return Ok(false);
    }

    let mut wake = false;
    for one in prepared.chunks(1) {
        let Some(reply) = replies.next() else { break };
        let result = match in_savepoint(conn, "one", one, run).await {
            Ok(Ok(written)) => {
                wake |= written.wake;
                written
                    .outcomes
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Err(invalid("empty write")))
            }
            Ok(Err(e)) => Err(store_error(context, e)),
            Err(fatal) => {
                not_run(std::iter::once(reply).chain(replies), answers);
                return Err(fatal);
            }
        };
        answers.push(Box::new(Pending { reply, result }));
    }
    Ok(wake)
}

/// Runs `run` over `group` in savepoint `name`. The outer error means the savepoint itself
/// failed (the transaction is broken); the inner one, that the group failed and was rolled
/// back.
async fn in_savepoint<P, T>(
    conn: &mut SqliteConnection,
    name: &str,
    group: &[P],
    run: GroupFn<P, T>,
) -> Result<Result<Written<T>, sqlx::Error>, sqlx::Error> {
    savepoint(conn, name).await?;
    let result = run(conn, group).await;
    finish_savepoint(conn, name, result.is_ok()).await?;
    Ok(result)
}

/// Answers requests that never ran: the transaction is rolled back, so the commit error
/// reaches them.
fn not_run<T: Send + 'static>(
    replies: impl Iterator<Item = oneshot::Sender<Result<T, StoreError>>>,
    answers: &mut Vec<Box<dyn Answer>>,
) {
    struct NotRun<T>(oneshot::Sender<Result<T, StoreError>>);
    impl<T: Send> Answer for NotRun<T> {
        fn answer(self: Box<Self>, commit: Result<(), &std::sync::Arc<sqlx::Error>>) {
            let err = match commit {
                Err(e) => shared_error("write the group", e),
                Ok(()) => StoreError::Backend {
                    context: "the write was not run".to_owned(),
                    source: None,
                },
            };
            let _ = self.0.send(Err(err));
        }
    }
    for reply in replies {
        answers.push(Box::new(NotRun(reply)));
    }
}
