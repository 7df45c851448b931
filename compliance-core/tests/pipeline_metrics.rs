//! The metrics the ingest service and the worker record, by name and label.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pipeline_support;

use std::time::Duration;

use compliance_core::metrics;
use compliance_core::testing::fixtures;
use compliance_core::testing::{ScriptedScanSource, Step};
use compliance_core::ScanSourceError;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use pipeline_support::{rev, scan_body, signed_request, Harness};

/// A recorded metric: name, labels, value.
type Metric = (String, Vec<(String, String)>, DebugValue);

/// Runs `test` on a current-thread runtime with a recorder of its own.
fn recorded<F, Fut>(test: F) -> Snapshotter
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    ::metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test());
    });
    snapshotter
}

/// The counter `name` with exactly `labels`, or zero.
fn counter(snapshot: &[Metric], name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| match value {
            DebugValue::Counter(n) => *n,
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

fn samples(snapshot: &[Metric], name: &str) -> usize {
    snapshot
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, _, value)| match value {
            DebugValue::Histogram(v) => v.len(),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .sum()
}

fn flatten(snapshotter: &Snapshotter) -> Vec<Metric> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

#[test]
fn ingest_counts_every_outcome_and_times_every_request() {
    let snapshotter = recorded(|| async {
        let h = Harness::new(ScriptedScanSource::always(fixtures::snapshot(1, 1, 1))).await;
        let accepted = h.signed(&h.body(&rev(1), "main", None));
        h.ingest.receive(accepted.clone()).await;
        h.ingest.receive(accepted).await;
        let body = h.body(&rev(2), "main", None);
        h.ingest
            .receive(signed_request(
                body.as_bytes(),
                h.now().timestamp(),
                "wrong",
            ))
            .await;
        h.send("{}").await;
        h.send(&scan_body(
            "https://github.com/acme/nope",
            &rev(3),
            "main",
            None,
        ))
        .await;
    });
    let snapshot = flatten(&snapshotter);

    let received = |outcome| {
        counter(
            &snapshot,
            metrics::WEBHOOK_RECEIVED,
            &[("outcome", outcome)],
        )
    };
    assert_eq!(received("accepted"), 1);
    assert_eq!(received("duplicate"), 1);
    assert_eq!(received("invalid_signature"), 1);
    assert_eq!(received("invalid_payload"), 1);
    assert_eq!(received("component_not_found"), 1);
    assert_eq!(
        counter(
            &snapshot,
            metrics::WEBHOOK_SIGNATURE_INVALID,
            &[("reason", "mismatch")]
        ),
        1
    );
    assert_eq!(
        counter(&snapshot, metrics::WEBHOOK_COMPONENT_NOT_FOUND, &[]),
        1
    );
    assert_eq!(
        counter(
            &snapshot,
            metrics::SYNC_JOB_QUEUED,
            &[("trigger", "webhook")]
        ),
        1
    );
    assert_eq!(samples(&snapshot, metrics::WEBHOOK_PROCESSING_DURATION), 5);
}

#[test]
fn the_worker_counts_completions_retries_failures_and_supersessions() {
    let snapshotter = recorded(|| async {
        // Plays 429, then a snapshot, then a refused token for every later call.
        let source = ScriptedScanSource::new(Step::err(|| ScanSourceError::Unauthorized {
            context: "token refused".into(),
        }))
        .then(Step::err(|| ScanSourceError::RateLimited {
            retry_after: Some(Duration::from_secs(5)),
        }))
        .then(Step::ok(fixtures::snapshot(4, 2, 1)));
        let h = Harness::new(source).await;
        let worker = h.worker();

        h.send(&h.body(&rev(1), "main", None)).await;
        worker.run_once().await.unwrap().unwrap();
        h.advance(Duration::from_secs(5));
        worker.run_once().await.unwrap().unwrap();

        // Two webhooks before the next run: the first is superseded by the second, which
        // then fails for good.
        h.send(&h.body(&rev(2), "main", None)).await;
        h.advance(Duration::from_secs(1));
        h.send(&h.body(&rev(3), "main", None)).await;
        while worker.run_once().await.unwrap().is_some() {}
    });
    let snapshot = flatten(&snapshotter);

    assert_eq!(
        counter(
            &snapshot,
            metrics::SYNC_JOB_RETRIED,
            &[("reason", "rate_limited")]
        ),
        1
    );
    assert_eq!(counter(&snapshot, metrics::SYNC_JOB_COMPLETED, &[]), 1);
    assert_eq!(counter(&snapshot, metrics::SYNC_ISSUES_SYNCED, &[]), 4);
    assert_eq!(
        counter(
            &snapshot,
            metrics::SYNC_JOB_FAILED,
            &[("reason", "unauthorized")]
        ),
        1
    );
    assert_eq!(counter(&snapshot, metrics::SYNC_JOB_SUPERSEDED, &[]), 1);
    assert_eq!(samples(&snapshot, metrics::SYNC_DURATION), 1);
}
