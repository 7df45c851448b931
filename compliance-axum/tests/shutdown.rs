//! Graceful shutdown (in-flight requests finish, new connections are refused) and readiness,
//! with a store that answers slowly and a queue that is down.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use compliance_core::domain::{Component, ComponentQuery, ComponentSummary, NewComponent, Page};
use compliance_core::memory::{InMemoryQueue, InMemoryStore};
use compliance_core::ports::{
    ComponentDirectory, DeadLetter, JobQueue, QueuePlacement, QueueStats, Reservation, Stores,
};
use compliance_core::{ComponentId, RepoUrl, StoreError, SyncJobId, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A directory whose list takes a while, like a slow query.
struct SlowDirectory(Arc<InMemoryStore>);

#[async_trait]
impl ComponentDirectory for SlowDirectory {
    async fn register(&self, new: NewComponent, now: Timestamp) -> Result<Component, StoreError> {
        self.0.register(new, now).await
    }
    async fn get(&self, id: ComponentId) -> Result<Option<Component>, StoreError> {
        self.0.get(id).await
    }
    async fn find_by_repository(&self, url: &RepoUrl) -> Result<Option<Component>, StoreError> {
        self.0.find_by_repository(url).await
    }
    async fn list(&self, query: &ComponentQuery) -> Result<Page<ComponentSummary>, StoreError> {
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.0.list(query).await
    }
    async fn stale(&self, before: Timestamp, limit: u32) -> Result<Vec<Component>, StoreError> {
        self.0.stale(before, limit).await
    }
}

#[tokio::test]
async fn in_flight_requests_finish_and_new_connections_are_refused() {
    let store = Arc::new(InMemoryStore::new());
    let mut stores = Stores::from_adapter(store.clone());
    stores.components = Arc::new(SlowDirectory(store));
    let h = Harness::with(Setup {
        stores: Some(stores),
        ..Setup::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (api, router) = (h.api.clone(), h.router.clone());
    let server = tokio::spawn(async move {
        compliance_axum::serve(listener, &api, router, std::future::pending()).await
    });

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/components HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {READ_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    h.api.shutdown();

    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""total":0"#));

    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn readiness_reports_a_store_that_does_not_answer_in_time() {
    let store = Arc::new(InMemoryStore::new());
    let mut stores = Stores::from_adapter(store.clone());
    stores.components = Arc::new(SlowDirectory(store));
    let h = Harness::with(Setup {
        stores: Some(stores),
        configure: Box::new(|b| b.readiness_timeout(Duration::from_millis(100))),
        ..Setup::default()
    })
    .await;

    let reply = h.send(get("/readyz", None)).await;

    assert_eq!(reply.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "unavailable", "store": "timeout", "queue": "ok"})
    );
    // Liveness does not depend on the store.
    assert_eq!(
        h.send(get("/healthz", None)).await.status,
        axum::http::StatusCode::OK
    );
}

/// A queue whose backend went away: every call fails as unavailable.
struct DownQueue(InMemoryQueue);

fn down() -> StoreError {
    StoreError::Unavailable {
        context: "queue backend unreachable".into(),
        source: None,
    }
}

#[async_trait]
impl JobQueue for DownQueue {
    fn placement(&self) -> QueuePlacement {
        self.0.placement()
    }
    async fn enqueue(&self, _: SyncJobId, _: Duration) -> Result<(), StoreError> {
        Err(down())
    }
    async fn reserve(&self, _: &str, _: Duration) -> Result<Option<Reservation>, StoreError> {
        Err(down())
    }
    async fn extend(&self, _: &Reservation, _: Duration) -> Result<Reservation, StoreError> {
        Err(down())
    }
    async fn ack(&self, _: &Reservation) -> Result<(), StoreError> {
        Err(down())
    }
    async fn retry(&self, _: &Reservation, _: Duration) -> Result<(), StoreError> {
        Err(down())
    }
    async fn dead_letter(&self, _: &Reservation, _: &str) -> Result<(), StoreError> {
        Err(down())
    }
    async fn stats(&self) -> Result<QueueStats, StoreError> {
        Err(down())
    }
    async fn dead_letters(&self, _: u32) -> Result<Vec<DeadLetter>, StoreError> {
        Err(down())
    }
    async fn redrive(&self, _: SyncJobId) -> Result<bool, StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn readiness_reports_a_queue_that_is_down() {
    let h = Harness::with(Setup {
        queue: Some(Arc::new(DownQueue(InMemoryQueue::new()))),
        ..Setup::default()
    })
    .await;

    let reply = h.send(get("/readyz", None)).await;

    assert_eq!(reply.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "unavailable", "store": "ok", "queue": "error"})
    );
    // The queue's error text is logged, not sent to the prober.
    assert!(!reply.text.contains("unreachable"), "{}", reply.text);
    assert_eq!(
        h.send(get("/healthz", None)).await.status,
        axum::http::StatusCode::OK
    );
}
