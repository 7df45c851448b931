//! What the REST routes answer: registration, lists with filters and paging, compliance data
//! after a sync, manual syncs, the event log, replays, dead letters, consistent errors.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use compliance_core::domain::{JobStatus, Trigger};
use compliance_core::ports::{JobQueue, Notifier, ScanSource};
use compliance_core::testing::fixtures;
use compliance_core::testing::scripted::{ScriptedScanSource, Step};
use compliance_core::worker::{SyncWorker, WorkerConfig};
use compliance_core::{ScanSourceError, SyncJobId};
use serde_json::{json, Value};

fn worker(h: &Harness, source: ScriptedScanSource) -> SyncWorker {
    let queue: Arc<dyn JobQueue> = h.queue.clone();
    let notifier: Arc<dyn Notifier> = h.notifier.clone();
    let source: Arc<dyn ScanSource> = Arc::new(source);
    SyncWorker::new(
        h.stores.clone(),
        queue,
        source,
        notifier,
        h.clock.clone(),
        WorkerConfig::default(),
    )
}

fn fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|x| x["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn registering_listing_and_getting_components() {
    let h = Harness::new().await;
    let created = h
        .send(post(
            "/api/components",
            Some(ADMIN_TOKEN),
            json!({
                "name": "payment-service",
                "repository_url": REPO,
                "fossa_locator": "custom+48213/github.com/acme/payment-service",
                "default_branch": "main"
            }),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let component = created.json();
    assert_eq!(
        component["repository_key"],
        "github.com/acme/payment-service"
    );
    assert_eq!(component["compliance_status"], "UNKNOWN");

    // The same repository spelled differently.
    let duplicate = h
        .send(post(
            "/api/components",
            Some(ADMIN_TOKEN),
            json!({
                "name": "payments",
                "repository_url": "git@github.com:acme/payment-service.git",
                "fossa_locator": "custom+1/x"
            }),
        ))
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert!(duplicate.json()["error"]
        .as_str()
        .unwrap()
        .contains("already linked"));

    h.send(post(
        "/api/components",
        Some(ADMIN_TOKEN),
        json!({"name": "ledger", "repository_url": "https://github.com/acme/ledger", "fossa_locator": "custom+1/ledger"}),
    ))
    .await;

    let list = h
        .send(get("/api/components?limit=1", Some(READ_TOKEN)))
        .await
        .json();
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["name"], "ledger");
    assert_eq!(list["items"][0]["issues"]["total"], 0);

    let found = h
        .send(get(
            "/api/components?search=PAYMENT&status=UNKNOWN",
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["id"], component["id"]);

    let id = component["id"].as_str().unwrap();
    let one = h
        .send(get(&format!("/api/components/{id}"), Some(READ_TOKEN)))
        .await;
    assert_eq!(one.json()["name"], "payment-service");
}

#[tokio::test]
async fn registration_errors_list_each_field() {
    let h = Harness::new().await;
    let reply = h
        .send(post(
            "/api/components",
            Some(ADMIN_TOKEN),
            json!({"name": "", "repository_url": "nope", "fossa_locator": ""}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&reply.json()),
        vec!["name", "repository_url", "fossa_locator"]
    );

    let missing = h
        .send(post(
            "/api/components",
            Some(ADMIN_TOKEN),
            json!({"name": "x"}),
        ))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.json()["error"].is_string());

    let broken = Request::post("/api/components")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let reply = h.send(broken).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "The body is not valid JSON");

    let plain = Request::post("/api/components")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        h.send(plain).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let h = Harness::configured(|b| b.json_body_limit(64)).await;
    let big = h
        .send(post(
            "/api/components",
            Some(ADMIN_TOKEN),
            json!({"name": "x".repeat(200), "repository_url": REPO, "fossa_locator": "l"}),
        ))
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(big.json()["error"].is_string());
}

#[tokio::test]
async fn bad_parameters_are_reported_together() {
    let h = Harness::new().await;
    let component = h.register("payment-service", REPO).await;

    let reply = h
        .send(get(
            "/api/components?status=GREEN&limit=0",
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&reply.json()), vec!["status", "limit"]);

    let uri = format!(
        "/api/components/{}/issues?status=OPEN&category=legal&severity=urgent",
        component.id
    );
    let reply = h.send(get(&uri, Some(READ_TOKEN))).await;
    assert_eq!(
        fields(&reply.json()),
        vec!["status", "category", "severity"]
    );

    let reply = h
        .send(get(
            "/api/webhook-events?from=yesterday&component_id=7",
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(fields(&reply.json()), vec!["component_id", "from"]);

    let reply = h
        .send(get("/api/components?offset=-1", Some(READ_TOKEN)))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.json()["error"].is_string());

    let reply = h
        .send(get("/api/components/not-a-uuid", Some(READ_TOKEN)))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&reply.json()), vec!["id"]);

    let unknown = uuid::Uuid::now_v7();
    for path in [
        "",
        "/compliance",
        "/issues",
        "/dependencies",
        "/scans",
        "/sync-jobs",
    ] {
        let reply = h
            .send(get(
                &format!("/api/components/{unknown}{path}"),
                Some(READ_TOKEN),
            ))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json()["error"], "Component not found");
    }
    let reply = h
        .send(get(&format!("/api/sync-jobs/{unknown}"), Some(READ_TOKEN)))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn compliance_data_after_a_sync() {
    let h = Harness::new().await;
    let component = h.register("payment-service", REPO).await;
    let snapshot = fixtures::snapshot(6, 12, 7);
    let revision = snapshot.revision.clone();
    let accepted = h
        .send(signed_webhook(&webhook_body(REPO, &revision)))
        .await
        .json();
    let report = worker(&h, ScriptedScanSource::always(snapshot))
        .run_once()
        .await
        .unwrap();
    assert!(report.is_some());
    let id = component.id;

    let view = h
        .send(get(
            &format!("/api/components/{id}/compliance"),
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert_eq!(view["component"]["compliance_status"], "FAILING");
    assert_eq!(view["issues"]["total"], 6);
    assert_eq!(view["latest_scan"]["revision"], revision);
    assert_eq!(view["dependencies"]["total"], 12);
    assert!(!view["licenses"].as_array().unwrap().is_empty());

    let issues = h
        .send(get(
            &format!("/api/components/{id}/issues?limit=2"),
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert_eq!(issues["total"], 6);
    assert_eq!(issues["items"].as_array().unwrap().len(), 2);
    assert_eq!(issues["items"][0]["status"], "ACTIVE");
    let category = issues["items"][0]["category"].as_str().unwrap().to_owned();
    let filtered = h
        .send(get(
            &format!("/api/components/{id}/issues?category={category}"),
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert!(filtered["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["category"] == category.as_str()));
    assert!(filtered["total"].as_u64().unwrap() < 6);

    let direct = h
        .send(get(
            &format!("/api/components/{id}/dependencies?direct=true"),
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert!(direct["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["is_direct"] == true));
    assert!(direct["total"].as_u64().unwrap() < 12);

    let scans = h
        .send(get(
            &format!("/api/components/{id}/scans"),
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert_eq!(scans["total"], 1);

    let jobs = h
        .send(get(
            &format!("/api/components/{id}/sync-jobs?status=COMPLETED"),
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert_eq!(jobs["total"], 1);
    assert_eq!(jobs["items"][0]["id"], accepted["sync_id"]);

    let sync_id = accepted["sync_id"].as_str().unwrap();
    let job = h
        .send(get(&format!("/api/sync-jobs/{sync_id}"), Some(READ_TOKEN)))
        .await
        .json();
    assert_eq!(job["status"], "COMPLETED");
    assert_eq!(job["issues_synced"], 6);
    assert_eq!(job["trigger"], "WEBHOOK");
}

#[tokio::test]
async fn a_manual_sync_queues_a_manual_job() {
    let h = Harness::new().await;
    let component = h.register("payment-service", REPO).await;

    let reply = h
        .send(request(
            Method::POST,
            &format!("/api/components/{}/sync", component.id),
            Some(ADMIN_TOKEN),
            None,
        ))
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let body = reply.json();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["component"]["name"], "payment-service");
    let id: SyncJobId = body["sync_id"].as_str().unwrap().parse().unwrap();
    let job = h.stores.jobs.get_job(id).await.unwrap().unwrap();
    assert_eq!(job.trigger, Trigger::Manual);
    assert_eq!(h.queue.stats().await.unwrap().ready, 1);

    let unknown = uuid::Uuid::now_v7();
    let reply = h
        .send(request(
            Method::POST,
            &format!("/api/components/{unknown}/sync"),
            Some(ADMIN_TOKEN),
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_event_log_filters_by_status_component_and_time() {
    let h = Harness::new().await;
    let component = h.register("payment-service", REPO).await;
    h.send(signed_webhook(&webhook_body(REPO, "aaa111"))).await;
    h.send(signed_webhook(&webhook_body(
        "https://github.com/acme/nothing",
        "bbb222",
    )))
    .await;

    let all = h
        .send(get("/api/webhook-events", Some(READ_TOKEN)))
        .await
        .json();
    assert_eq!(all["total"], 2);
    let failed = h
        .send(get("/api/webhook-events?status=FAILED", Some(READ_TOKEN)))
        .await
        .json();
    assert_eq!(failed["total"], 1);
    assert_eq!(failed["items"][0]["rejection"], "component_not_found");
    let mine = h
        .send(get(
            &format!("/api/webhook-events?component_id={}", component.id),
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["revision"], "aaa111");

    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let none = h
        .send(get(
            &format!("/api/webhook-events?from={}", future.replace('+', "%2B")),
            Some(READ_TOKEN),
        ))
        .await
        .json();
    assert_eq!(none["total"], 0);

    let id = mine["items"][0]["id"].as_str().unwrap();
    let one = h
        .send(get(&format!("/api/webhook-events/{id}"), Some(READ_TOKEN)))
        .await
        .json();
    assert_eq!(one["processing_status"], "QUEUED");
    assert_eq!(one["signature_valid"], true);
}

#[tokio::test]
async fn replaying_an_event_queues_its_revision_again() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;
    let accepted = h
        .send(signed_webhook(&webhook_body(REPO, "abc123abc")))
        .await
        .json();
    let event = accepted["webhook_event_id"].as_str().unwrap();
    // Run the first job so the replay is not coalesced with it.
    worker(&h, ScriptedScanSource::always(fixtures::snapshot(1, 1, 1)))
        .run_once()
        .await
        .unwrap();

    let reply = h
        .send(request(
            Method::POST,
            &format!("/api/webhook-events/{event}/replay"),
            Some(ADMIN_TOKEN),
            None,
        ))
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let body = reply.json();
    assert_ne!(body["sync_id"], accepted["sync_id"]);
    let id: SyncJobId = body["sync_id"].as_str().unwrap().parse().unwrap();
    let job = h.stores.jobs.get_job(id).await.unwrap().unwrap();
    assert_eq!(job.trigger, Trigger::Manual);
    assert_eq!(job.revision.as_deref(), Some("abc123abc"));
    assert_eq!(
        job.webhook_event_id.map(|e| e.to_string()).as_deref(),
        Some(event)
    );

    // A refused request cannot be replayed.
    h.send(signed_webhook(&webhook_body(
        "https://github.com/acme/none",
        "abc123",
    )))
    .await;
    let failed = h
        .send(get("/api/webhook-events?status=FAILED", Some(READ_TOKEN)))
        .await
        .json();
    let refused = failed["items"][0]["id"].as_str().unwrap();
    let reply = h
        .send(request(
            Method::POST,
            &format!("/api/webhook-events/{refused}/replay"),
            Some(ADMIN_TOKEN),
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);

    let reply = h
        .send(request(
            Method::POST,
            &format!("/api/webhook-events/{}/replay", uuid::Uuid::now_v7()),
            Some(ADMIN_TOKEN),
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dead_letters_are_listed_and_redriven_as_new_jobs() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;
    let accepted = h
        .send(signed_webhook(&webhook_body(REPO, "dead00beef")))
        .await
        .json();
    let failing = ScriptedScanSource::new(Step::err(|| ScanSourceError::NotFound {
        context: "project".into(),
    }));
    worker(&h, failing).run_once().await.unwrap();

    let dead = h
        .send(get("/api/dead-letters", Some(READ_TOKEN)))
        .await
        .json();
    assert_eq!(dead.as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["job_id"], accepted["sync_id"]);
    assert!(dead[0]["reason"].is_string());

    let missing = h
        .send(post(
            "/api/dead-letters/redrive",
            Some(ADMIN_TOKEN),
            json!({"job_id": uuid::Uuid::now_v7()}),
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let neither = h
        .send(post(
            "/api/dead-letters/redrive",
            Some(ADMIN_TOKEN),
            json!({}),
        ))
        .await;
    assert_eq!(neither.status, StatusCode::BAD_REQUEST);

    let reply = h
        .send(post(
            "/api/dead-letters/redrive",
            Some(ADMIN_TOKEN),
            json!({"job_id": accepted["sync_id"]}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let result = reply.json();
    assert_eq!(result["redriven"].as_array().unwrap().len(), 1);
    assert_eq!(result["redriven"][0]["job_id"], accepted["sync_id"]);
    assert_eq!(result["redriven"][0]["status"], "queued");
    let new_id: SyncJobId = result["redriven"][0]["sync_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let job = h.stores.jobs.get_job(new_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.revision.as_deref(), Some("dead00beef"));

    let after = h
        .send(get("/api/dead-letters", Some(READ_TOKEN)))
        .await
        .json();
    assert!(after.as_array().unwrap().is_empty());

    // The new job runs to completion; the old entry is acknowledged as finished.
    let ok = worker(&h, ScriptedScanSource::always(fixtures::snapshot(0, 1, 2)));
    while let Some(_report) = ok.run_once().await.unwrap() {}
    let job = h.stores.jobs.get_job(new_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let h = Harness::new().await;
    let reply = h.send(get("/api/nothing-here", Some(READ_TOKEN))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "No such route");

    let reply = h
        .send(request(
            Method::DELETE,
            "/api/components",
            Some(ADMIN_TOKEN),
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.json()["error"], "Method not allowed");
}
