//! Shared set-up of the tests that need PostgreSQL: the URL from the environment, and a fresh
//! schema per store that is dropped when the test ends.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use compliance_store_postgres::{PgConfig, PgStore};

pub(crate) mod load;
pub(crate) mod proxy;

/// The variable holding the test database's URL.
pub(crate) const URL_VAR: &str = "COMPLIANCE_TEST_POSTGRES_URL";

/// A database the test may create schemas in; every schema made through it is dropped when it
/// is dropped (also when the test panics).
pub(crate) struct TestDb {
    url: String,
    schemas: Arc<Mutex<Vec<String>>>,
}

impl TestDb {
    /// The test database, or `None` (after printing why) when the test should be skipped.
    ///
    /// # Panics
    ///
    /// When `COMPLIANCE_TEST_REQUIRE_SERVICES=1` and the URL is unset or unreachable.
    pub(crate) async fn from_env(test: &str) -> Option<Self> {
        let required = std::env::var("COMPLIANCE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1");
        let Ok(url) = std::env::var(URL_VAR) else {
            assert!(!required, "{test}: {URL_VAR} is not set");
            eprintln!("skipping {test}: {URL_VAR} is not set");
            return None;
        };
        let reachable =
            tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&url)).await;
        match reachable {
            Ok(Ok(pool)) => pool.close().await,
            _ => {
                assert!(!required, "{test}: PostgreSQL at {URL_VAR} is unreachable");
                eprintln!("skipping {test}: PostgreSQL at {URL_VAR} is unreachable");
                return None;
            }
        }
        Some(Self {
            url,
            schemas: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// A new, empty schema name, dropped with this value.
    pub(crate) fn schema(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        self.schemas.lock().unwrap().push(name.clone());
        name
    }

    /// Settings for `schema`, with a small pool (tests run side by side).
    pub(crate) fn config(&self, schema: &str) -> PgConfig {
        PgConfig::new(self.url.clone())
            .schema(schema)
            .max_connections(6)
            .acquire_timeout(Duration::from_secs(10))
    }

    /// A store on a fresh schema.
    pub(crate) async fn store(&self) -> PgStore {
        let schema = self.schema();
        PgStore::connect(self.config(&schema))
            .await
            .expect("connect")
    }

    /// The URL (for raw connections).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A plain pool on the test database, outside any schema.
    pub(crate) async fn admin(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .expect("admin connection")
    }

    /// Ends every server connection whose `application_name` is `name`; returns how many.
    pub(crate) async fn terminate(&self, admin: &sqlx::PgPool, name: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
        )
        .bind(name)
        .fetch_one(admin)
        .await
        .expect("terminate backends")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let schemas = std::mem::take(
            &mut *self
                .schemas
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if schemas.is_empty() {
            return;
        }
        let url = self.url.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: clean up from a
        // thread with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let Ok(pool) = sqlx::PgPool::connect(&url).await else {
                    return;
                };
                for schema in schemas {
                    let dropped =
                        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                            .execute(&pool)
                            .await;
                    if let Err(err) = dropped {
                        eprintln!("could not drop schema {schema}: {err}");
                    }
                }
                pool.close().await;
            });
        });
        let _ = cleanup.join();
    }
}
