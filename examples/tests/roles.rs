//! A scaled deployment split by role: one `compliance-server --role api` process takes the
//! webhooks and serves the REST API, two `--role worker` processes run the syncs, all on one
//! SQLite file. Every webhook answered 202 must end with exactly one completed job, and the
//! stored data must equal FOSSA's; the worker processes must not expose the API.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use std::time::Duration;

use harness::child::{self, fossa, Setup};
use harness::load::Load;
use harness::WEBHOOK_PATH;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_processes_split_the_work_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = fossa().await;
    let setup = Setup {
        database_url: child::sqlite_url(dir.path()),
        fossa_url: sim.base_url().to_owned(),
        fossa_token: sim.token().to_owned(),
        log_dir: dir.path().to_owned(),
    };
    let api = setup.start("api", &["--role", "api"]).await;
    let components = child::register_components(&sim, &api, 3).await;

    // Accepted while no worker runs: the jobs wait in the store's queue.
    let load = Load::new(components.clone(), sim.state().clone());
    let stop = CancellationToken::new();
    let senders = load.spawn(api.addr, 4, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The api role runs no worker: nothing has started yet.
    let client = child::api_client();
    for (_, _, component) in &components {
        let page = child::get(
            &client,
            &api,
            &format!("/api/components/{component}/sync-jobs?limit=1000"),
        )
        .await;
        for job in page["items"].as_array().unwrap() {
            assert!(
                matches!(job["status"].as_str(), Some("QUEUED" | "SUPERSEDED")),
                "a job moved without a worker: {job}"
            );
        }
    }

    // The workers come up while the load goes on; they serve health checks only.
    let workers = [
        setup
            .start("worker-1", &["--role", "worker", "--workers", "2"])
            .await,
        setup
            .start("worker-2", &["--role", "worker", "--workers", "2"])
            .await,
    ];
    for worker in &workers {
        let answer = reqwest::Client::new()
            .post(worker.url(WEBHOOK_PATH))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status().as_u16(),
            404,
            "a worker must not take webhooks"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    for sender in senders {
        sender.await.unwrap();
    }

    let accepted = load.accepted();
    assert!(
        accepted.len() >= 20,
        "only {} webhooks accepted",
        accepted.len()
    );
    let ids = accepted.iter().map(|(id, _)| id.clone()).collect();
    let settled = child::wait_ended(&api, &ids, Duration::from_secs(60))
        .await
        .unwrap_or_else(|open| panic!("jobs still open: {open:?}"));
    let sent = load.sent.lock().unwrap().clone();
    let report = child::audit(&api, &sim, &components, &accepted, &sent).await;
    println!(
        "roles: sent {}, accepted {}, completed {}, superseded {}, lost {}, duplicates {}, \
         settled {settled:?} after the load",
        sent.len(),
        report.accepted,
        report.completed,
        report.superseded,
        report.lost,
        report.duplicates
    );
    assert_eq!(report.lost, 0);
    assert_eq!(report.duplicates, 0);
    assert_eq!(report.dead_lettered, 0, "no fault was injected");
    assert!(report.completed >= 1);

    for worker in workers {
        worker.stop();
    }
    api.stop();
}
