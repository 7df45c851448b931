//! Redis refusing the queue's credentials for a while (its user disabled, as during a password
//! change made on the server first): operations fail meanwhile and work again once the
//! credentials are accepted, without restarting the process.
//!
//! Found by the reference server's fault suite (`examples/tests/faults.rs`): redis-rs's
//! connection manager reconnects only after I/O errors, so one refused reconnect left the
//! queue answering "authentication failed" until the process restarted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::TestRedis;
use compliance_core::ports::JobQueue;
use compliance_core::SyncJobId;
use compliance_queue_redis::{RedisOptions, RedisQueue};

async fn set_user(redis: &TestRedis, name: &str, state: &str) {
    let mut admin = redis.connection().await;
    let _: String = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(name)
        .arg(state)
        .query_async(&mut admin)
        .await
        .expect("acl setuser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_works_again_once_redis_accepts_its_credentials_again() {
    let Some(redis) =
        TestRedis::start("the_queue_works_again_once_redis_accepts_its_credentials_again").await
    else {
        return;
    };
    let user = redis.user(None).await;
    let options = RedisOptions::from_url(&user.url)
        .unwrap()
        .key_prefix(redis.prefix.clone())
        .connect_timeout(Duration::from_secs(1))
        .command_timeout(Duration::from_secs(2));
    let queue = RedisQueue::new(options);
    let first = SyncJobId::new();
    queue.enqueue(first, Duration::ZERO).await.unwrap();

    // Refused: the user is off and its connection dropped, so the reconnect fails to log in.
    set_user(&redis, &user.name, "off").await;
    assert!(user.kill_connections().await >= 1);
    let mut refused = 0;
    for _ in 0..3 {
        if queue
            .enqueue(SyncJobId::new(), Duration::ZERO)
            .await
            .is_err()
        {
            refused += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(refused, 3, "operations succeeded while the user was off");

    // Accepted again: the next operations work, with no restart.
    set_user(&redis, &user.name, "on").await;
    let back = Instant::now();
    let second = SyncJobId::new();
    let mut last_error = None;
    while back.elapsed() < Duration::from_secs(10) {
        match queue.enqueue(second, Duration::ZERO).await {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        last_error.is_none(),
        "still failing 10 s after the credentials were accepted again: {last_error:?}"
    );
    let reserved = queue
        .reserve("worker", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("a queued job");
    assert_eq!(reserved.job_id, first);
}
