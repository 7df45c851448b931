//! A Redis server of the test's own, on a port of its own, with a password: the test may stop
//! it, start it again empty, or start it late, without touching the shared Redis.
#![allow(dead_code, unreachable_pub)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REQUIRE_VAR: &str = "COMPLIANCE_TEST_REQUIRE_SERVICES";

/// A `redis-server` child process (not started until [`start`](Self::start)); killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    pub password: String,
    child: Option<Child>,
}

impl PrivateRedis {
    /// A free port and a password, with no server yet; `None` (with the reason printed) when
    /// `redis-server` is not installed and services are not required.
    pub fn reserve(test: &str) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
                "redis-server is not installed but {REQUIRE_VAR}=1"
            );
            eprintln!("skipping {test}: redis-server is not installed");
            return None;
        }
        // The port is free now; another process taking it before the server starts is
        // unlikely on a test machine, and `start` fails loudly if it happens.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Some(Self {
            port,
            password: format!("pw-{}", uuid::Uuid::new_v4().simple()),
            child: None,
        })
    }

    /// The URL with the password (default user) and database `db`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://:{}@127.0.0.1:{}/{db}", self.password, self.port)
    }

    /// Starts the server, empty (no persistence), and waits until it answers.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--requirepass")
            .arg(&self.password)
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if self.ping().await {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not answer",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server at once (as a crash: nothing is saved).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.start().await;
    }

    /// A plain connection to database `db`.
    pub async fn connection(&self, db: u32) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url(db))
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the private redis")
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url(0)) else {
            return false;
        };
        let Ok(Ok(mut conn)) = tokio::time::timeout(
            Duration::from_millis(500),
            client.get_multiplexed_async_connection(),
        )
        .await
        else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
