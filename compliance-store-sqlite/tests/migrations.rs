//! Schema migrations: a fresh or older database is brought up to date on open, data kept; a
//! database written by a newer version is refused with a clear error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::borrow::Cow;
use std::path::Path;

use compliance_core::ports::ComponentDirectory;
use compliance_core::testing::fixtures::{self, at};
use compliance_core::StoreError;
use compliance_store_sqlite::{schema_versions, SqliteConfig, SqliteStore};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use tempfile::TempDir;

/// The migrations of this crate, read the same way the crate embeds them.
static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true),
    )
    .await
    .unwrap()
}

async fn applied(path: &Path) -> Vec<i64> {
    let mut conn = raw(path).await;
    let versions = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_database_gets_every_migration_and_keeps_data_across_opens() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("compliance.db");
    let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
    let component = store
        .register(
            fixtures::component("payments", "https://github.com/acme/payments"),
            at(0),
        )
        .await
        .unwrap();
    store.close().await;
    assert_eq!(applied(&path).await, schema_versions());

    let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
    assert_eq!(store.get(component.id).await.unwrap(), Some(component));
    store.close().await;
    assert_eq!(
        applied(&path).await,
        schema_versions(),
        "nothing applied twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_database_is_migrated_on_open() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("compliance.db");

    // What an older build left behind: every migration but the newest, and a table of its
    // own that the migrations must leave alone.
    let all = MIGRATIONS.iter().cloned().collect::<Vec<_>>();
    let older = Migrator {
        migrations: Cow::Owned(all[..all.len() - 1].to_vec()),
        ..Migrator::DEFAULT
    };
    let mut conn = raw(&path).await;
    older.run(&mut conn).await.unwrap();
    sqlx::query("CREATE TABLE operator_notes (note TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO operator_notes VALUES ('kept')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(applied(&path).await.len(), all.len() - 1);

    let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
    store
        .register(
            fixtures::component("payments", "https://github.com/acme/payments"),
            at(0),
        )
        .await
        .unwrap();
    store.close().await;
    assert_eq!(applied(&path).await, schema_versions());
    let mut conn = raw(&path).await;
    let note: String = sqlx::query_scalar("SELECT note FROM operator_notes")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(note, "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("compliance.db");
    SqliteStore::open(SqliteConfig::file(&path))
        .await
        .unwrap()
        .close()
        .await;

    // A newer build applied a migration this one does not know.
    let future = 99_991_231_000_000_i64;
    let mut conn = raw(&path).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
         execution_time) VALUES (?, 'from the future', 1, x'00', 0)",
    )
    .bind(future)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    match SqliteStore::open(SqliteConfig::file(&path)).await {
        Err(StoreError::Backend { context, .. }) => {
            assert!(context.contains("newer"), "{context}");
            assert!(context.contains(&future.to_string()), "{context}");
        }
        Err(other) => panic!("expected a Backend error naming the schema, got {other}"),
        Ok(_) => panic!("a database from a newer version was opened"),
    }
    assert!(
        applied(&path).await.contains(&future),
        "the refused database was left untouched"
    );
}
