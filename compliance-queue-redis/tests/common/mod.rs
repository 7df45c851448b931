//! Shared set-up for the tests that need a real Redis.
#![allow(dead_code, unreachable_pub)]

pub mod pipeline;
pub mod server;

use std::sync::atomic::{AtomicU32, Ordering};

use compliance_queue_redis::RedisOptions;

const URL_VAR: &str = "COMPLIANCE_TEST_REDIS_URL";
const REQUIRE_VAR: &str = "COMPLIANCE_TEST_REQUIRE_SERVICES";

/// A Redis for one test: its URL and a key prefix no other test uses; the prefix's keys are
/// deleted when it is dropped, even after a failure.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
    next: AtomicU32,
}

impl TestRedis {
    /// The test Redis, or `None` (with the reason printed) when the URL is unset and services
    /// are not required. Panics when Redis is required or configured but does not answer.
    pub async fn start(test: &str) -> Option<Self> {
        let url = match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                assert!(
                    std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
                    "{URL_VAR} is not set but {REQUIRE_VAR}=1"
                );
                eprintln!("skipping {test}: {URL_VAR} is not set");
                return None;
            }
        };
        let client = redis::Client::open(url.as_str()).expect("valid redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("{URL_VAR} is set but redis does not answer: {e}"));
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .expect("ping");
        Some(Self {
            url,
            prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
            next: AtomicU32::new(0),
        })
    }

    /// Options under this test's prefix.
    pub fn options(&self) -> RedisOptions {
        RedisOptions::from_url(&self.url)
            .expect("valid url")
            .key_prefix(self.prefix.clone())
    }

    /// Options under a fresh sub-prefix, for one adapter among several.
    pub fn fresh_options(&self) -> RedisOptions {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        RedisOptions::from_url(&self.url)
            .expect("valid url")
            .key_prefix(format!("{}{n}:", self.prefix))
    }

    /// A plain connection for poking at Redis from the test.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("valid url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }

    /// Deletes every key under `prefix` (a sub-prefix of this test's).
    pub async fn delete_keys(&self, prefix: &str) {
        let mut conn = self.connection().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .expect("keys");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("del");
        }
    }
}

/// A Redis user made for one test, so the test can drop exactly its own connections with
/// `CLIENT KILL USER` without disturbing tests running beside it. Deleted on drop.
pub struct TestUser {
    admin_url: String,
    /// The admin URL on this user's database.
    admin_db_url: String,
    prefix: String,
    pub name: String,
    /// The test's URL with this user's name and password (and database `db` when given).
    pub url: String,
}

impl TestRedis {
    /// Creates a user with every right and a random password.
    pub async fn user(&self, db: Option<u32>) -> TestUser {
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        let password = uuid::Uuid::new_v4().simple().to_string();
        let mut conn = self.connection().await;
        let _: String = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&name)
            .arg("on")
            .arg(format!(">{password}"))
            .arg("~*")
            .arg("&*")
            .arg("+@all")
            .query_async(&mut conn)
            .await
            .expect("acl setuser");
        let mut admin_db = url::Url::parse(&self.url).expect("url");
        if let Some(db) = db {
            admin_db.set_path(&format!("/{db}"));
        }
        let mut url = admin_db.clone();
        url.set_username(&name).expect("username");
        url.set_password(Some(&password)).expect("password");
        TestUser {
            admin_url: self.url.clone(),
            admin_db_url: admin_db.to_string(),
            prefix: self.prefix.clone(),
            name,
            url: url.to_string(),
        }
    }
}

impl TestUser {
    /// Drops every connection this user holds (the adapters must reconnect).
    pub async fn kill_connections(&self) -> i64 {
        let mut conn = redis::Client::open(self.admin_url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("USER")
            .arg(&self.name)
            .query_async(&mut conn)
            .await
            .expect("client kill")
    }
}

impl TestUser {
    /// Deletes the test's keys in this user's database, as a Redis that restarted empty.
    pub async fn delete_keys(&self) {
        let mut conn = redis::Client::open(self.admin_db_url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("keys");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("del");
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if let Ok(mut conn) =
            redis::Client::open(self.admin_db_url.as_str()).and_then(|c| c.get_connection())
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
        }
        let Ok(client) = redis::Client::open(self.admin_url.as_str()) else {
            return;
        };
        if let Ok(mut conn) = client.get_connection() {
            let _: Result<i64, _> = redis::cmd("ACL")
                .arg("DELUSER")
                .arg(&self.name)
                .query(&mut conn);
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Synchronous, so it also runs while a failed test unwinds.
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}
