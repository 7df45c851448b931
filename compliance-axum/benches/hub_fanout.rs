//! The hub's fan-out without sockets: one event to 10 000 subscribed connections (serialize
//! once, queue everywhere), and a subscribe with a replay.
//!
//! Run: `cargo bench -p compliance-axum --bench hub_fanout`
//! Over real sockets, see `examples/ws_fanout.rs`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use compliance_axum::{Hub, HubConfig};
use compliance_core::ports::ChannelEvent;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const SUBSCRIBERS: usize = 10_000;

fn event(n: u64) -> ChannelEvent {
    ChannelEvent {
        channel: "components".into(),
        event: "sync.completed".into(),
        data: json!({
            "sync_job_id": "0191d3a4-7c1e-7a52-9d1e-3f2b9c4d5e6f",
            "component_id": "0191d3a4-7c1e-7a52-9d1e-3f2b9c4d5e70",
            "revision": "abc123def456789",
            "issues_count": n,
            "dependencies_count": 147,
            "status": "FAILING",
            "new_issues": 1,
            "resolved_issues": 0
        }),
        timestamp: chrono::Utc::now(),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub");
    let hub = Hub::new(
        HubConfig {
            max_connections: SUBSCRIBERS + 10,
            ..HubConfig::default()
        },
        CancellationToken::new(),
    );
    let mut connections = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let (mut connection, rx) = hub.connect().unwrap();
        connection.subscribe("components", None).unwrap();
        connections.push((connection, rx));
    }
    for (_, rx) in &mut connections {
        while rx.try_recv().is_ok() {}
    }

    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    let mut n = 0;
    group.bench_function("publish_to_10000_subscribers", |b| {
        b.iter_batched(
            || {
                // Drain outside the timing so the queues never fill (a connection task
                // would drain them).
                for (_, rx) in &mut connections {
                    while rx.try_recv().is_ok() {}
                }
                n += 1;
                event(n)
            },
            |event| hub.publish(&event).unwrap(),
            BatchSize::PerIteration,
        );
    });

    let history = Hub::new(HubConfig::default(), CancellationToken::new());
    let mut first = 0;
    for n in 0..256 {
        let seq = history.publish(&event(n)).unwrap();
        if n == 0 {
            first = seq;
        }
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("subscribe_with_255_event_replay", |b| {
        b.iter_batched(
            || history.connect().unwrap(),
            |(mut connection, rx)| {
                connection.subscribe("components", Some(first)).unwrap();
                (connection, rx)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
